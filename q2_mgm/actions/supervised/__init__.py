"""The supervised area: fine-tune, train, split-corpus, predict-*, evaluate-*, classify-samples and regress-samples,
registered by `register(plugin)`. Parameter specs shared by these actions are gathered at the top, as
q2-sample-classifier does; their defaults live in the core (q2_mgm.core.training.FINE_TUNING)."""
from qiime2.plugin import Bool, Categorical, Choices, Float, Int, MetadataColumn, Numeric, Range, Str, TypeMap, \
    Visualization
from q2_sample_classifier import (Classifier, ClassifierPredictions, Probabilities, Regressor,
                                  RegressorPredictions)
from q2_types.feature_data import FeatureData, Taxonomy
from q2_types.feature_table import FeatureTable, Frequency, RelativeFrequency
from q2_types.sample_data import SampleData

from ..._examples import usage as _examples
from ..._types import MGMCorpus, MGMModel, MGMTrainingHistory, Pretrained
from ...visualizers.evaluate import evaluate_classification, evaluate_regression
from .._parameters import (CORPUS_DESCRIPTION, DEVICE_DESCRIPTION, DEVICES, EVALUATION_PARAMETERS, GROUPS_DESCRIPTION,
                           HARMONIZE_DESCRIPTION, ID_COLUMN, MAX_LENGTH_DESCRIPTION, MISSING_SAMPLES,
                           MISSING_SAMPLES_DESCRIPTION, SEED, TABLE_DESCRIPTION, TAXONOMY_DESCRIPTION, citations)
from .methods import fine_tune, predict_classification, predict_regression, split_corpus, train
from .pipelines import classify_samples, regress_samples

TABLE = FeatureTable[Frequency | RelativeFrequency]
# keyed on `task`, not on the column's type: q2cli 2022.11 cannot offer a TypeMap'd metadata column as --m-* options
Task, TrainedModel = TypeMap({Str % Choices("classification"): MGMModel[Classifier],
                              Str % Choices("regression"): MGMModel[Regressor]})
LabelColumn = MetadataColumn[Categorical | Numeric]

# the parameters of every training loop (fine-tune, train, the pipelines), with their descriptions
TRAINING_PARAMETERS = {
    "epochs": Int % Range(1, 10_000), "learning_rate": Float % Range(0, 1, inclusive_start=False),
    "batch_size": Int % Range(1, 4096), "validation_fraction": Float % Range(0.05, 0.5, inclusive_end=True),
    "patience": Int % Range(1, 1000), "class_weighting": Bool, "random_state": SEED, "device": DEVICES,
}
TRAINING_DESCRIPTIONS = {
    "epochs": "Most passes over the training samples; training stops earlier when validation stops improving. "
              "Epochs, learning rate, batch size and patience apply where layers are trained, not to fine-tune's "
              "default frozen encoder, whose head is fit exactly.",
    "learning_rate": "Peak learning rate of AdamW (linear warm-up over the first 10% of steps, then linear decay).",
    "batch_size": "Sentences per training step.",
    "validation_fraction": "Share of the labelled samples held out to validate each epoch (for early stopping "
                           "and to keep the best epoch). With `groups`, whole groups are held out.",
    "patience": "Epochs without a better validation score (AUC for classes, loss for numbers) before stopping.",
    "class_weighting": "Weight each class inversely to its size in the loss, so a minority class counts as much.",
    "random_state": "Seed for the split, the head's initial weights and the batch order: the same seed gives "
                    "the same model.",
    "device": DEVICE_DESCRIPTION,
}
# what fine-tune (and the pipelines) add: how much of the pretrained model is kept, and the forest blended in
RECIPE_PARAMETERS = {"freeze_layers": Int % Range(0, 1000), "forest_weight": Float % Range(0, 1, inclusive_end=True),
                     "forest_trees": Int % Range(10, 10_000)}
RECIPE_DESCRIPTIONS = {
    "freeze_layers": "Keep the embeddings and the first N transformer layers fixed. 0 trains every layer "
                     "(upstream's fine-tuning, epoch by epoch). N at or above the model's depth (8 for the general "
                     "model) freezes the whole encoder: the linear head is then fit exactly, in one pass with no "
                     "epochs (L2 logistic regression, or ridge for numbers, on the final hidden state at the last "
                     "token, validated on the held-out share, then refit on every sample). Fastest, and the most "
                     "accurate on the accuracy benchmark's CPU budget.",
    "forest_weight": "Share of each prediction taken from a RandomForest on the corpus's genus abundances (the "
                     "amounts the sentence leaves out), fit on the same samples and stored in the model as arrays. "
                     "0 predicts with MGM alone. With the default 0.7 the blend beat MGM alone on 19 of 20 "
                     "cohorts of the accuracy benchmark (q2-mgm's README).",
    "forest_trees": "Trees in that RandomForest.",
}
FIT_BATCHES_DESCRIPTION = (
    "Optional batch of each sample (study, sequencing run). With it, fine-tune fits the across-study recipe of "
    "classify-samples-cv (mgm-transfer: the frozen general model's features and CLR abundances, each batch "
    "standardised on its own samples, labels unused) instead of the head, validates it leaving one batch out, and "
    "records it in the model; predict-* then corrects a new cohort on its own samples. freeze_layers, "
    "forest_weight, forest_trees, validation_fraction and the epoch settings do not apply then.")
PREDICT_BATCHES_DESCRIPTION = (
    "For a model fit with batches: each sample's batch (study, sequencing run), each standardised on its own "
    "samples before prediction, labels unused. Left out, all the corpus's samples are one batch (one new cohort; "
    "at least 3 samples). Each batch's scores are centred on that batch, so the predicted classes and "
    "probabilities are relative within it: rank samples by them (AUROC); a case share far from the training "
    "batches' shifts the calls. A model fit without batches takes none.")
LABEL_DESCRIPTION = ("The sample metadata column to learn. Samples with no value are left out and counted; samples "
                     "the metadata does not hold follow missing_samples.")
# what every action that reads a label column of the corpus's (table's) samples adds
LABEL_PARAMETERS = {"missing_samples": MISSING_SAMPLES}
LABEL_DESCRIPTIONS = {"missing_samples": MISSING_SAMPLES_DESCRIPTION}
TASK_DESCRIPTION = ("'classification' learns the column's values as classes (a numeric column's values become "
                    "class names) and gives an MGMModel[Classifier]; 'regression' learns a numeric column and gives "
                    "an MGMModel[Regressor].")
HISTORY_DESCRIPTION = "Loss and validation metrics per epoch (viewable as metadata)."
TRAINED_DESCRIPTION = ("The fine-tuned model, with its label set, training sample count, settings and versions "
                       "in training.json.")
PREDICTION_INPUTS = {"corpus": "Samples to predict, tokenized as the model's training samples were."}
EVALUATION_INPUTS = {"history": "The training history of the model, to show its training curves.",
                     "table": "The feature table the model was trained from: a RandomForest baseline is trained "
                              "on its labelled samples outside the test set (only those of training_corpus, where "
                              "given) and tested on the same samples.",
                     "training_corpus": "The corpus the model was trained on (split-corpus's training corpus): the "
                                        "RandomForest baseline is fit on exactly its samples, and the evaluation "
                                        "lists the samples left out and why: those tokenization dropped (no reads, "
                                        "or none in MGM's vocabulary) and, with the table, those the metadata gave "
                                        "no label."}
EVALUATION_DESCRIPTIONS = {"n_estimators": "Trees in the RandomForest baseline.",
                           "random_state": "Seed of the RandomForest baseline."}
TEST_SIZE = Float % Range(0.05, 0.95)


def register(plugin):
    _register_training(plugin)
    _register_prediction(plugin)
    _register_evaluation(plugin)
    _register_pipeline(plugin, classify_samples, Categorical, "classes",
                       [("trained_model", MGMModel[Classifier]), ("history", MGMTrainingHistory),
                        ("predictions", SampleData[ClassifierPredictions]),
                        ("probabilities", SampleData[Probabilities]), ("evaluation", Visualization)],
                       {**TRAINING_PARAMETERS}, {"classify_delivery_mode": _examples.classify_samples_example})
    regression_parameters = {k: v for k, v in TRAINING_PARAMETERS.items() if k != "class_weighting"}
    _register_pipeline(plugin, regress_samples, Numeric, "values",
                       [("trained_model", MGMModel[Regressor]), ("history", MGMTrainingHistory),
                        ("predictions", SampleData[RegressorPredictions]), ("evaluation", Visualization)],
                       regression_parameters, {"regress_infant_age": _examples.regress_samples_example})


def _register_training(plugin):
    plugin.methods.register_function(
        function=fine_tune,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Pretrained]},
        parameters={"metadata": LabelColumn, "task": Task, "groups": ID_COLUMN,
                    "batches": ID_COLUMN, **RECIPE_PARAMETERS, **TRAINING_PARAMETERS,
                    **LABEL_PARAMETERS},
        outputs=[("trained_model", TrainedModel), ("history", MGMTrainingHistory)],
        input_descriptions={"corpus": CORPUS_DESCRIPTION,
                            "model": "The pretrained model to start from; the general model when left out."},
        parameter_descriptions={"metadata": LABEL_DESCRIPTION, "task": TASK_DESCRIPTION,
                                "groups": GROUPS_DESCRIPTION, "batches": FIT_BATCHES_DESCRIPTION,
                                **TRAINING_DESCRIPTIONS, **RECIPE_DESCRIPTIONS, **LABEL_DESCRIPTIONS},
        output_descriptions={"trained_model": TRAINED_DESCRIPTION, "history": HISTORY_DESCRIPTION},
        name="Fine-tune MGM to classify or regress samples",
        description="A linear head on the final hidden state at each sentence's last token, as upstream MGM. By "
                    "default the general model's encoder stays frozen, the head is fit exactly, and a RandomForest "
                    "on the genus abundances supplies 70% of each prediction: on 20 real cohorts this beat "
                    "upstream's fine-tuning on 19 and was level with a RandomForest alone (q2-mgm's README). "
                    "freeze_layers 0 and forest_weight 0 give upstream's recipe: every layer trained with the "
                    "transformers Trainer, early stopping on a validation split, the best epoch kept.",
        citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
        examples={"fine_tune_a_classifier": _examples.fine_tune_example},
    )
    plugin.methods.register_function(  # the network alone, from scratch: no frozen layers, no forest
        function=train,
        inputs={"corpus": SampleData[MGMCorpus]},
        parameters={"metadata": LabelColumn, "task": Task, "groups": ID_COLUMN,
                    **TRAINING_PARAMETERS, **LABEL_PARAMETERS},
        outputs=[("trained_model", TrainedModel), ("history", MGMTrainingHistory)],
        input_descriptions={"corpus": CORPUS_DESCRIPTION},
        parameter_descriptions={"metadata": LABEL_DESCRIPTION, "task": TASK_DESCRIPTION,
                                "groups": GROUPS_DESCRIPTION, **TRAINING_DESCRIPTIONS, **LABEL_DESCRIPTIONS},
        output_descriptions={"trained_model": TRAINED_DESCRIPTION, "history": HISTORY_DESCRIPTION},
        name="Train MGM from random weights",
        examples={"train_from_scratch": _examples.train_example},
        description="The general model's architecture and vocabulary, randomly initialised and trained on your "
                    "labels alone (upstream's `train` mode): compare with fine-tune to see what pretraining buys.",
        citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
    )
    plugin.methods.register_function(
        function=split_corpus,
        inputs={"corpus": SampleData[MGMCorpus]},
        parameters={"metadata": MetadataColumn[Categorical | Numeric], "groups": ID_COLUMN,
                    "test_size": TEST_SIZE, "random_state": SEED, **LABEL_PARAMETERS},
        outputs=[("training_corpus", SampleData[MGMCorpus]), ("test_corpus", SampleData[MGMCorpus])],
        input_descriptions={"corpus": CORPUS_DESCRIPTION},
        parameter_descriptions={"metadata": "The label column; the split is stratified by it when it is "
                                            "categorical. Samples with no value are left out and counted; samples "
                                            "the metadata does not hold follow missing_samples.",
                                "groups": GROUPS_DESCRIPTION, "test_size": "Share of samples (or groups) to test on.",
                                "random_state": "Seed of the split.", **LABEL_DESCRIPTIONS},
        output_descriptions={"training_corpus": "Samples to train on.", "test_corpus": "Held-out samples."},
        name="Split a corpus into training and test samples",
        examples={"split_by_child": _examples.split_corpus_example},
        description="A stratified, group-aware train/test split, as sample-classifier's split-table.",
        citations=[citations["zhang2026mgm"]],
    )


def _register_prediction(plugin):
    plugin.methods.register_function(
        function=predict_classification,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier]},
        parameters={"device": DEVICES, "batches": ID_COLUMN},
        outputs=[("predictions", SampleData[ClassifierPredictions]), ("probabilities", SampleData[Probabilities])],
        input_descriptions={**PREDICTION_INPUTS, "model": "A fine-tuned MGM classifier."},
        parameter_descriptions={"device": DEVICE_DESCRIPTION, "batches": PREDICT_BATCHES_DESCRIPTION},
        output_descriptions={"predictions": "The class each sample is called, by the model's decision rule: "
                                            "for two classes a threshold on the second class's probability, for "
                                            "more one weight per class, chosen at training to maximise balanced "
                                            "accuracy on the validation share (training.json's `decision`; the "
                                            "most probable class for a model made before q2-mgm chose one).",
                             "probabilities": "Each class's probability for each sample."},
        name="Predict sample classes with an MGM classifier",
        description="The class of each sample of the corpus, and each class's probability, from a fine-tuned MGM "
                    "classifier (its blended RandomForest and across-study recipe included). Outputs are "
                    "q2-sample-classifier's types: its confusion-matrix visualizer reads them.",
        citations=[citations["zhang2026mgm"]],
        examples={"predict_classes": _examples.predict_example},
    )
    plugin.methods.register_function(
        function=predict_regression,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Regressor]},
        parameters={"device": DEVICES, "batches": ID_COLUMN},
        outputs=[("predictions", SampleData[RegressorPredictions])],
        input_descriptions={**PREDICTION_INPUTS, "model": "A fine-tuned MGM regressor."},
        parameter_descriptions={"device": DEVICE_DESCRIPTION, "batches": PREDICT_BATCHES_DESCRIPTION},
        output_descriptions={"predictions": "The predicted value of each sample."},
        name="Predict sample values with an MGM regressor",
        examples={"predict_values": _examples.predict_regression_example},
        description="The value of each sample of the corpus from a fine-tuned MGM regressor. Outputs are "
                    "q2-sample-classifier's type: its scatterplot visualizer reads them.",
        citations=[citations["zhang2026mgm"]],
    )


def _register_evaluation(plugin):
    plugin.visualizers.register_function(
        function=evaluate_classification,
        inputs={"probabilities": SampleData[Probabilities], "predictions": SampleData[ClassifierPredictions],
                "history": MGMTrainingHistory, "table": TABLE, "training_corpus": SampleData[MGMCorpus]},
        parameters={"truth": MetadataColumn[Categorical], **EVALUATION_PARAMETERS},
        input_descriptions={"probabilities": "Class probabilities of held-out samples (from "
                                             "predict-classification).",
                            "predictions": "The classes predict-classification called for the same samples (its "
                                           "`predictions`): accuracy, balanced accuracy, per-class figures and the "
                                           "confusion matrix are those of these hard predictions, as the model "
                                           "calls them. Left out, the most probable class of each sample is used, "
                                           "and the page says so.", **EVALUATION_INPUTS},
        parameter_descriptions={"truth": "The true class of each sample.", **EVALUATION_DESCRIPTIONS},
        name="Evaluate an MGM classifier beside a RandomForest",
        examples={"evaluate_a_classifier": _examples.evaluate_classification_example},
        description="ROC and precision-recall curves with their AUC, accuracy and balanced accuracy of the hard "
                    "predictions, confusion matrix, per-class metrics and training curves, with a RandomForest "
                    "trained and tested on exactly the same split; the samples left out, and why; TSVs to "
                    "download.",
        citations=[citations["zhang2026mgm"]],
    )
    plugin.visualizers.register_function(
        function=evaluate_regression,
        inputs={"predictions": SampleData[RegressorPredictions], "history": MGMTrainingHistory, "table": TABLE,
                "training_corpus": SampleData[MGMCorpus]},
        parameters={"truth": MetadataColumn[Numeric], **EVALUATION_PARAMETERS},
        input_descriptions={"predictions": "Predictions for held-out samples (from predict-regression).",
                            **EVALUATION_INPUTS},
        parameter_descriptions={"truth": "The true value of each sample.", **EVALUATION_DESCRIPTIONS},
        name="Evaluate an MGM regressor beside a RandomForest",
        description="MAE, R² and a predicted-vs-true scatter plot, with a RandomForest on the same split; the "
                    "samples left out, and why.",
        citations=[citations["zhang2026mgm"]],
        examples={"evaluate_a_regressor": _examples.evaluate_regression_example},
    )


def _register_pipeline(plugin, function, column, kind, outputs, training_parameters, examples):
    """classify-samples or regress-samples: tokenize's, split-corpus's, fine-tune's and the evaluation's
    parameters together."""
    parameters = {"groups": ID_COLUMN, "test_size": TEST_SIZE, "max_length": Int % Range(2, None),
                  "harmonize_names": Bool, **RECIPE_PARAMETERS, **training_parameters, **EVALUATION_PARAMETERS,
                  **LABEL_PARAMETERS}
    descriptions = {"groups": GROUPS_DESCRIPTION, "test_size": "Share of samples (or groups) held out to test.",
                    "max_length": MAX_LENGTH_DESCRIPTION, "harmonize_names": HARMONIZE_DESCRIPTION,
                    **TRAINING_DESCRIPTIONS, **RECIPE_DESCRIPTIONS, **EVALUATION_DESCRIPTIONS, **LABEL_DESCRIPTIONS,
                    "random_state": "Seed of the split, the training and the RandomForest baseline."}
    plugin.pipelines.register_function(
        function=function,
        inputs={"table": TABLE, "taxonomy": FeatureData[Taxonomy]},
        parameters={"metadata": MetadataColumn[column], **parameters},
        outputs=outputs,
        input_descriptions={"table": TABLE_DESCRIPTION, "taxonomy": TAXONOMY_DESCRIPTION},
        parameter_descriptions={"metadata": f"The sample metadata column whose {kind} to learn. Samples with no "
                                            "value are left out and counted; samples the metadata does not hold "
                                            "follow missing_samples.",
                                **{k: descriptions[k] for k in parameters}},
        output_descriptions={"trained_model": TRAINED_DESCRIPTION, "history": HISTORY_DESCRIPTION,
                             "predictions": f"Predicted {kind} of the held-out samples.",
                             **({"probabilities": "Class probabilities of the held-out samples."}
                                if kind == "classes" else {}),
                             "evaluation": "Held-out accuracy beside a plain RandomForest on the same split. The "
                                           "MGM row is the trained model as it predicts: with forest_weight > 0, "
                                           "its own forest blended in. Lists the samples left out, and why."},
        name=f"Predict sample {kind} with MGM: tokenize, split, fine-tune, evaluate",
        description=f"Tokenize the table, hold out a stratified (group-aware) test set, fine-tune MGM on the rest, "
                    f"predict the held-out {kind} and evaluate them beside a RandomForest trained and tested on the "
                    f"same split. Mirrors q2-sample-classifier's {function.__name__.replace('_', '-')}.",
        citations=[citations["zhang2026mgm"]],
        examples=examples,
    )
