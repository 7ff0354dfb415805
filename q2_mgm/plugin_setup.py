"""The `mgm` plugin: registrations only."""
import importlib

from qiime2.plugin import (Bool, Categorical, Choices, Citations, Float, Int, List, MetadataColumn, Numeric, Plugin,
                           Range, Str, TypeMap, Visualization)
from q2_sample_classifier import (Classifier, ClassifierPredictions, Importance, Probabilities, Regressor,
                                  RegressorPredictions)
from q2_types.feature_data import FeatureData, Taxonomy
from q2_types.feature_table import FeatureTable, Frequency, RelativeFrequency
from q2_types.ordination import PCoAResults
from q2_types.sample_data import SampleData

from . import __version__, _examples
from ._formats import (CorpusDroppedSamplesFormat, CorpusFeaturesFormat, CorpusSamplesFormat, JSONFormat,
                       MGMCorpusDirFmt, MGMGeneratorDirFmt, MGMLabelsDirFmt, MGMLabelsFormat, MGMModelDirFmt,
                       MGMReconstructorDirFmt, MGMSupervisedModelDirFmt, SafetensorsFormat, TrainingHistoryDirFmt,
                       TrainingHistoryFormat, VocabularyFormat)
from ._types import Generator, MGMCorpus, MGMLabels, MGMModel, MGMReconstructor, MGMTrainingHistory, Pretrained
from .actions.embed import embed
from .actions.generative import RECONSTRUCTORS, fit_reconstructor, generate, pretrain, pretrain_generator
from .actions.keystone import keystone_genera
from .actions.models import general_model
from .actions.pipelines import classify_samples, regress_samples
from .actions.supervised import fine_tune, predict_classification, predict_regression, split_corpus, train
from .actions.tokenize import tokenize
from .core.inference import POOLINGS
from .core.keystone import METHODS as KEYSTONE_METHODS
from .core.trajectories import PROJECTIONS
from .visualizers.evaluate import evaluate_classification, evaluate_regression
from .visualizers.evaluate_generated import evaluate_generated
from .visualizers.keystone import keystone_report
from .visualizers.summarize_corpus import summarize_corpus
from .visualizers.trajectory import trajectory

citations = Citations.load("citations.bib", package="q2_mgm")

plugin = Plugin(
    name="mgm",
    version=__version__,
    website="https://github.com/q2-mgm/q2-mgm",
    package="q2_mgm",
    description="MGM, the Microbial General Model: a GPT-2 language model pretrained on ~260,000 MGnify samples, "
                "where each sample is a sentence of genus tokens ranked by normalised abundance. Tokenize tables, "
                "embed samples with the pretrained general model, and check how well MGM's vocabulary covers your "
                "data.",
    short_description="MGM, the Microbial General Model, for QIIME 2.",
    citations=[citations["zhang2026mgm"]],
)

plugin.register_semantic_types(MGMModel, Pretrained, Generator, MGMCorpus, MGMLabels, MGMReconstructor,
                               MGMTrainingHistory)
plugin.register_formats(MGMModelDirFmt, MGMSupervisedModelDirFmt, MGMGeneratorDirFmt, MGMCorpusDirFmt,
                        CorpusSamplesFormat, CorpusFeaturesFormat, CorpusDroppedSamplesFormat, JSONFormat,
                        SafetensorsFormat, VocabularyFormat, TrainingHistoryFormat, TrainingHistoryDirFmt,
                        MGMLabelsFormat, MGMLabelsDirFmt, MGMReconstructorDirFmt)
plugin.register_artifact_class(MGMModel[Pretrained], directory_format=MGMModelDirFmt,
                               description="An MGM GPT-2 language model over genus tokens: config.json, weights as "
                                           "model.safetensors, vocab.txt and versions.json.")
for variant, task in ((Classifier, "classifier"), (Regressor, "regressor")):
    plugin.register_artifact_class(MGMModel[variant], directory_format=MGMSupervisedModelDirFmt,
                                   description=f"A fine-tuned MGM {task}: the model files plus training.json "
                                               "(label set, sample counts, settings, training curves).")
plugin.register_artifact_class(MGMModel[Generator], directory_format=MGMGeneratorDirFmt,
                               description="An MGM language model pretrained with label prompts (<bos> <label> "
                                           "genera <eos>): the model files plus pretraining.json (labels, corpus "
                                           "size, settings, training curves).")
plugin.register_artifact_class(SampleData[MGMLabels], directory_format=MGMLabelsDirFmt,
                               description="The label each generated sample was prompted with; views as metadata.")
plugin.register_artifact_class(MGMReconstructor, directory_format=MGMReconstructorDirFmt,
                               description="Maps a ranked sentence to relative abundances: reconstructor.json, plus "
                                           "model.safetensors for a neural reconstructor.")
plugin.register_artifact_class(MGMTrainingHistory, directory_format=TrainingHistoryDirFmt,
                               description="Loss and validation metrics per training epoch.")
plugin.register_artifact_class(SampleData[MGMCorpus], directory_format=MGMCorpusDirFmt,
                               description="Samples tokenized as MGM sentences, with the tokenization report.")

CORPUS_DESCRIPTION = ("Samples as MGM sentences (<bos> genera by descending normalised abundance <eos>), with the "
                      "per-sample and per-feature tokenization report.")
MODEL_DESCRIPTION = "An MGM model. `qiime mgm general-model` gives the pretrained general model."
DEVICE_DESCRIPTION = "Where to run the model: 'auto' picks a CUDA GPU when torch sees one, else the CPU."
DEVICES = Str % Choices("auto", "cpu", "cuda")

plugin.methods.register_function(
    function=tokenize,
    inputs={"table": FeatureTable[Frequency | RelativeFrequency], "taxonomy": FeatureData[Taxonomy]},
    parameters={"max_length": Int % Range(2, None), "harmonize_names": Bool},
    outputs=[("corpus", SampleData[MGMCorpus])],
    input_descriptions={
        "table": "Feature table of counts or relative frequencies, at any taxonomic level.",
        "taxonomy": "Taxonomy of the table's features. Leave it out when the feature IDs are taxonomy strings "
                    "(a table from `qiime taxa collapse`).",
    },
    parameter_descriptions={
        "max_length": "Longest sentence in tokens, <bos> and <eos> included; longer sentences keep their first "
                      "tokens (the general model reads at most 512).",
        "harmonize_names": "Recover genus names that upstream MGM misses: Greengenes brackets ([Ruminococcus]), "
                           "SILVA suffixes (_sensu_stricto_1), GTDB suffixes (_A), spaces and bare genus names. "
                           "Off by default, for token-for-token parity with upstream MGM 0.5.8.",
    },
    output_descriptions={"corpus": CORPUS_DESCRIPTION},
    name="Tokenize samples as MGM sentences",
    description="Collapse features to genera (the first `g__Name` of each taxonomy string), keep the genera in "
                "MGM's vocabulary, z-score their relative abundances with MGnify's per-genus statistics and order "
                "them by descending z, exactly as upstream MGM 0.5.8. Samples with no abundance in the vocabulary "
                "are dropped and reported.",
    citations=[citations["zhang2026mgm"]],
    examples={"tokenize_a_table": _examples.tokenize_example},
)

plugin.methods.register_function(
    function=general_model,
    inputs={}, parameters={},
    outputs=[("model", MGMModel[Pretrained])],
    output_descriptions={"model": "The pretrained MGM general model (8 layers, 8 heads, 256 wide, 512 positions, "
                                  "9,669 tokens), with the sha256 of its source weights in versions.json."},
    name="The pretrained MGM general model",
    description="MGM's general model, pretrained on ~260,000 MGnify samples, taken from the installed "
                "microformer-mgm 0.5.8 package (no download) and stored as safetensors.",
    citations=[citations["zhang2026mgm"], citations["radford2019gpt2"]],
    examples={"get_the_general_model": _examples.general_model_example},
)

plugin.methods.register_function(
    function=embed,
    inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Pretrained | Generator | Classifier | Regressor]},
    parameters={"pooling": Str % Choices(*POOLINGS), "device": DEVICES},
    outputs=[("embeddings", PCoAResults)],
    input_descriptions={"corpus": CORPUS_DESCRIPTION,
                        "model": MODEL_DESCRIPTION + " A fine-tuned model embeds with its fine-tuned encoder."},
    parameter_descriptions={
        "pooling": "How a sample's token states become one vector: 'mean' over all its tokens, or the state at "
                   "its 'last' token (what upstream's classifier reads).",
        "device": DEVICE_DESCRIPTION,
    },
    output_descriptions={"embeddings": "One 256-dimensional vector per sample (the model's final hidden states), "
                                       "as ordination axes that Emperor can plot; views as a samples x 256 "
                                       "DataFrame."},
    name="Embed samples with an MGM model",
    description="Run the model over each sentence (batched by length, no gradients) and pool its final hidden "
                "states into one vector per sample.",
    citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
    examples={"embed_samples": _examples.embed_example},
)

plugin.visualizers.register_function(
    function=summarize_corpus,
    inputs={"corpus": SampleData[MGMCorpus]},
    parameters={},
    input_descriptions={"corpus": CORPUS_DESCRIPTION},
    name="Summarize MGM vocabulary coverage",
    description="How much of each sample MGM sees: vocabulary coverage, the genera and taxa dropped and why (no "
                "genus rank, not in the vocabulary), sentence lengths and truncation, dropped samples; plots and "
                "TSVs to download. Use it to judge whether MGM suits your data.",
    citations=[citations["zhang2026mgm"]],
    examples={"summarize_a_corpus": _examples.summarize_corpus_example},
)

# keyed on `task`, not on the column's type: q2cli 2022.11 cannot offer a TypeMap'd metadata column as --m-* options
Task, TrainedModel = TypeMap({Str % Choices("classification"): MGMModel[Classifier],
                              Str % Choices("regression"): MGMModel[Regressor]})
LabelColumn = MetadataColumn[Categorical | Numeric]
TRAINING_PARAMETERS = {
    "epochs": Int % Range(1, 10_000), "learning_rate": Float % Range(0, 1, inclusive_start=False),
    "batch_size": Int % Range(1, 4096), "validation_fraction": Float % Range(0.05, 0.5, inclusive_end=True),
    "patience": Int % Range(1, 1000), "class_weighting": Bool, "random_state": Int % Range(0, 2**32 - 1),
    "device": DEVICES,
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
    "freeze_layers": "Keep the embeddings and the first N transformer layers fixed. 0 trains every layer "
                     "(upstream's fine-tuning, epoch by epoch). N at or above the model's depth (8 for the general "
                     "model) freezes the whole encoder: the linear head is then fit exactly, in one pass with no "
                     "epochs (L2 logistic regression, or ridge for numbers, on the final hidden state at the last "
                     "token, validated on the held-out share, then refit on every sample). Fastest, and the most "
                     "accurate on the accuracy benchmark's CPU budget.",
    "forest_weight": "Share of each prediction taken from a RandomForest on the corpus's genus abundances (the "
                     "amounts the sentence leaves out), fit on the same samples and stored in the model as arrays. "
                     "0 predicts with MGM alone. With the default 0.7 the blend beat MGM alone on 19 of 20 "
                     "cohorts of the accuracy benchmark (see the README).",
    "forest_trees": "Trees in that RandomForest.",
}
FOREST_PARAMETERS = {"forest_weight": Float % Range(0, 1, inclusive_end=True), "forest_trees": Int % Range(10, 10_000)}
LABEL_DESCRIPTION = ("The sample metadata column to learn. Samples without a value are left out and counted.")
TASK_DESCRIPTION = ("'classification' learns the column's values as classes (a numeric column's values become "
                    "class names) and gives an MGMModel[Classifier]; 'regression' learns a numeric column and gives "
                    "an MGMModel[Regressor].")
GROUPS_DESCRIPTION = ("Optional grouping (e.g. subject or child ID): samples of one group never sit on both sides of "
                      "a split, so repeated samples of a subject cannot leak into validation.")
HISTORY_DESCRIPTION = "Loss and validation metrics per epoch (view with `qiime metadata tabulate`)."
TRAINED_DESCRIPTION = ("The fine-tuned model, with its label set, training sample count, settings and versions "
                       "in training.json.")

plugin.methods.register_function(
    function=fine_tune,
    inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Pretrained]},
    parameters={"metadata": LabelColumn, "task": Task, "groups": MetadataColumn[Categorical],
                "freeze_layers": Int % Range(0, 1000), **FOREST_PARAMETERS, **TRAINING_PARAMETERS},
    outputs=[("trained_model", TrainedModel), ("history", MGMTrainingHistory)],
    input_descriptions={"corpus": CORPUS_DESCRIPTION,
                        "model": "The pretrained model to start from; the general model when left out."},
    parameter_descriptions={"metadata": LABEL_DESCRIPTION, "task": TASK_DESCRIPTION, "groups": GROUPS_DESCRIPTION,
                            **TRAINING_DESCRIPTIONS},
    output_descriptions={"trained_model": TRAINED_DESCRIPTION, "history": HISTORY_DESCRIPTION},
    name="Fine-tune MGM to classify or regress samples",
    description="A linear head on the final hidden state at each sentence's last token, as upstream MGM. By "
                "default the general model's encoder stays frozen, the head is fit exactly, and a RandomForest on "
                "the genus abundances supplies 70% of each prediction: on 20 real cohorts this beat upstream's "
                "fine-tuning on 19 and was level with a RandomForest alone (see the README). freeze_layers 0 and "
                "forest_weight 0 give "
                "upstream's recipe: every layer trained with the transformers Trainer, early stopping on a "
                "validation split, the best epoch kept.",
    citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
    examples={"fine_tune_a_classifier": _examples.fine_tune_example},
)

NOT_IN_TRAIN = ("freeze_layers", "forest_weight", "forest_trees")  # train shows the network alone, from scratch
plugin.methods.register_function(
    function=train,
    inputs={"corpus": SampleData[MGMCorpus]},
    parameters={"metadata": LabelColumn, "task": Task, "groups": MetadataColumn[Categorical],
                **TRAINING_PARAMETERS},
    outputs=[("trained_model", TrainedModel), ("history", MGMTrainingHistory)],
    input_descriptions={"corpus": CORPUS_DESCRIPTION},
    parameter_descriptions={"metadata": LABEL_DESCRIPTION, "task": TASK_DESCRIPTION, "groups": GROUPS_DESCRIPTION,
                            **{k: v for k, v in TRAINING_DESCRIPTIONS.items() if k not in NOT_IN_TRAIN}},
    output_descriptions={"trained_model": TRAINED_DESCRIPTION, "history": HISTORY_DESCRIPTION},
    name="Train MGM from random weights",
    examples={"train_from_scratch": _examples.train_example},
    description="The general model's architecture and vocabulary, randomly initialised and trained on your "
                "labels alone (upstream's `train` mode): compare with fine-tune to see what pretraining buys.",
    citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
)

PREDICTION_INPUTS = {"corpus": "Samples to predict, tokenized as the model's training samples were."}
plugin.methods.register_function(
    function=predict_classification,
    inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier]},
    parameters={"device": DEVICES},
    outputs=[("predictions", SampleData[ClassifierPredictions]), ("probabilities", SampleData[Probabilities])],
    input_descriptions={**PREDICTION_INPUTS, "model": "A fine-tuned MGM classifier."},
    parameter_descriptions={"device": DEVICE_DESCRIPTION},
    output_descriptions={"predictions": "The most probable class of each sample.",
                         "probabilities": "Each class's probability for each sample."},
    name="Predict sample classes with an MGM classifier",
    description="Outputs are q2-sample-classifier's types: `qiime sample-classifier confusion-matrix` reads them.",
    citations=[citations["zhang2026mgm"]],
    examples={"predict_classes": _examples.predict_example},
)

plugin.methods.register_function(
    function=predict_regression,
    inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Regressor]},
    parameters={"device": DEVICES},
    outputs=[("predictions", SampleData[RegressorPredictions])],
    input_descriptions={**PREDICTION_INPUTS, "model": "A fine-tuned MGM regressor."},
    parameter_descriptions={"device": DEVICE_DESCRIPTION},
    output_descriptions={"predictions": "The predicted value of each sample."},
    name="Predict sample values with an MGM regressor",
    examples={"predict_values": _examples.predict_regression_example},
    description="Outputs are q2-sample-classifier's type: `qiime sample-classifier scatterplot` reads them.",
    citations=[citations["zhang2026mgm"]],
)

plugin.methods.register_function(
    function=split_corpus,
    inputs={"corpus": SampleData[MGMCorpus]},
    parameters={"metadata": MetadataColumn[Categorical | Numeric], "groups": MetadataColumn[Categorical],
                "test_size": Float % Range(0.05, 0.95), "random_state": Int % Range(0, 2**32 - 1)},
    outputs=[("training_corpus", SampleData[MGMCorpus]), ("test_corpus", SampleData[MGMCorpus])],
    input_descriptions={"corpus": CORPUS_DESCRIPTION},
    parameter_descriptions={"metadata": "The label column; the split is stratified by it when it is categorical. "
                                        "Samples without a value are left out and counted.",
                            "groups": GROUPS_DESCRIPTION, "test_size": "Share of samples (or groups) to test on.",
                            "random_state": "Seed of the split."},
    output_descriptions={"training_corpus": "Samples to train on.", "test_corpus": "Held-out samples."},
    name="Split a corpus into training and test samples",
    examples={"split_by_child": _examples.split_corpus_example},
    description="A stratified, group-aware train/test split, as sample-classifier's split-table.",
    citations=[citations["zhang2026mgm"]],
)

EVALUATION_INPUTS = {"history": "The training history of the model, to show its training curves.",
                     "table": "The feature table the model was trained from: a RandomForest baseline is trained "
                              "on its labelled samples outside the test set and tested on the same samples."}
EVALUATION_PARAMETERS = {"n_estimators": Int % Range(1, 100_000), "random_state": Int % Range(0, 2**32 - 1)}
EVALUATION_DESCRIPTIONS = {"n_estimators": "Trees in the RandomForest baseline.",
                           "random_state": "Seed of the RandomForest baseline."}
plugin.visualizers.register_function(
    function=evaluate_classification,
    inputs={"probabilities": SampleData[Probabilities], "history": MGMTrainingHistory,
            "table": FeatureTable[Frequency | RelativeFrequency]},
    parameters={"truth": MetadataColumn[Categorical], **EVALUATION_PARAMETERS},
    input_descriptions={"probabilities": "Class probabilities of held-out samples (from predict-classification).",
                        **EVALUATION_INPUTS},
    parameter_descriptions={"truth": "The true class of each sample.", **EVALUATION_DESCRIPTIONS},
    name="Evaluate an MGM classifier beside a RandomForest",
    examples={"evaluate_a_classifier": _examples.evaluate_classification_example},
    description="ROC and precision-recall curves with their AUC, confusion matrix, per-class metrics and training "
                "curves, with a RandomForest trained and tested on exactly the same split; TSVs to download.",
    citations=[citations["zhang2026mgm"]],
)

plugin.visualizers.register_function(
    function=evaluate_regression,
    inputs={"predictions": SampleData[RegressorPredictions], "history": MGMTrainingHistory,
            "table": FeatureTable[Frequency | RelativeFrequency]},
    parameters={"truth": MetadataColumn[Numeric], **EVALUATION_PARAMETERS},
    input_descriptions={"predictions": "Predictions for held-out samples (from predict-regression).",
                        **EVALUATION_INPUTS},
    parameter_descriptions={"truth": "The true value of each sample.", **EVALUATION_DESCRIPTIONS},
    name="Evaluate an MGM regressor beside a RandomForest",
    description="MAE, R² and a predicted-vs-true scatter plot, with a RandomForest on the same split.",
    citations=[citations["zhang2026mgm"]],
    examples={"evaluate_a_regressor": _examples.evaluate_regression_example},
)

PIPELINE_INPUTS = {"table": "Feature table of counts or relative frequencies.",
                   "taxonomy": "Taxonomy of the table's features; leave out when feature IDs are taxonomy strings."}
PIPELINE_PARAMETERS = {"groups": MetadataColumn[Categorical], "test_size": Float % Range(0.05, 0.95),
                       "max_length": Int % Range(2, None), "harmonize_names": Bool,
                       "freeze_layers": Int % Range(0, 1000), **FOREST_PARAMETERS, **TRAINING_PARAMETERS,
                       **EVALUATION_PARAMETERS}
PIPELINE_DESCRIPTIONS = {"groups": GROUPS_DESCRIPTION, "test_size": "Share of samples (or groups) held out to test.",
                         "max_length": "Longest sentence in tokens (see tokenize).",
                         "harmonize_names": "Recover bracketed, SILVA and GTDB genus names (see tokenize).",
                         **TRAINING_DESCRIPTIONS, **EVALUATION_DESCRIPTIONS,
                         "random_state": "Seed of the split, the training and the RandomForest baseline."}
for function, column, model_type, outputs, kind in (
        (classify_samples, Categorical, Classifier,
         [("predictions", SampleData[ClassifierPredictions]), ("probabilities", SampleData[Probabilities])],
         "classes"),
        (regress_samples, Numeric, Regressor, [("predictions", SampleData[RegressorPredictions])], "values")):
    parameters = dict(PIPELINE_PARAMETERS)
    if function is regress_samples:
        del parameters["class_weighting"]
    plugin.pipelines.register_function(
        function=function,
        inputs={"table": FeatureTable[Frequency | RelativeFrequency], "taxonomy": FeatureData[Taxonomy]},
        parameters={"metadata": MetadataColumn[column], **parameters},
        outputs=[("trained_model", MGMModel[model_type]), ("history", MGMTrainingHistory), *outputs,
                 ("evaluation", Visualization)],
        input_descriptions=PIPELINE_INPUTS,
        parameter_descriptions={"metadata": f"The sample metadata column whose {kind} to learn.",
                                **{k: PIPELINE_DESCRIPTIONS[k] for k in parameters}},
        output_descriptions={"trained_model": TRAINED_DESCRIPTION, "history": HISTORY_DESCRIPTION,
                             "predictions": f"Predicted {kind} of the held-out samples.",
                             **({"probabilities": "Class probabilities of the held-out samples."}
                                if len(outputs) == 2 else {}),
                             "evaluation": "Held-out accuracy beside a plain RandomForest on the same split. The "
                                           "MGM row is the trained model as it predicts: with forest_weight > 0, "
                                           "its own forest blended in."},
        name=f"Predict sample {kind} with MGM: tokenize, split, fine-tune, evaluate",
        description=f"Tokenize the table, hold out a stratified (group-aware) test set, fine-tune MGM on the rest, "
                    f"predict the held-out {kind} and evaluate them beside a RandomForest trained and tested on the "
                    f"same split. Mirrors `qiime sample-classifier {function.__name__.replace('_', '-')}`.",
        citations=[citations["zhang2026mgm"]],
        examples=({"classify_delivery_mode": _examples.classify_samples_example} if function is classify_samples
                  else {"regress_infant_age": _examples.regress_samples_example}),
    )

plugin.visualizers.register_function(
    function=trajectory,
    inputs={"embeddings": PCoAResults},
    parameters={"time": MetadataColumn[Numeric], "group": MetadataColumn[Categorical],
                "subject": MetadataColumn[Categorical], "projection": Str % Choices(*PROJECTIONS),
                "max_time_points": Int % Range(2, 1000), "random_state": Int % Range(0, 2**32 - 1)},
    input_descriptions={"embeddings": "Sample embeddings from `qiime mgm embed`."},
    parameter_descriptions={
        "time": "Each sample's time (e.g. month of life). Samples without a value are left out and counted.",
        "group": "The groups that get their own colour and mean path (e.g. delivery mode). Samples without a value "
                 "are left out and counted.",
        "subject": "Optional: each sample's subject (e.g. child ID), to show a subject's path.",
        "projection": "How the embeddings become two axes: 'pca' (linear, axes comparable across runs) or 'tsne'.",
        "max_time_points": "Most points on a mean path: with more distinct times, times are pooled into this many "
                           "equal-width bins.",
        "random_state": "Seed of the projection (t-SNE).",
    },
    name="Trajectories of groups through the embedding space",
    description="The paper's delivery-mode-specific trajectories: samples in a 2-D projection of their MGM "
                "embeddings, coloured by group, with each group's mean path over time and any subject's path on "
                "demand; plus each sample's distance to its group's centroid and the distance between the groups' "
                "centroids over time, computed in the full embedding space. TSVs and PDFs to download.",
    citations=[citations["zhang2026mgm"]],
    examples={"delivery_mode_trajectories": _examples.trajectory_example},
)

KEYSTONE_INPUTS = {"corpus": CORPUS_DESCRIPTION,
                   "model": "A fine-tuned MGM classifier (the paper's view), or a pretrained model together with a "
                            "metadata column."}
KEYSTONE_PARAMETERS = {"metadata": MetadataColumn[Categorical], "subjects": MetadataColumn[Categorical],
                       "method": Str % Choices(*KEYSTONE_METHODS),
                       "min_samples": Int % Range(1, None), "device": DEVICES}
KEYSTONE_DESCRIPTIONS = {
    "metadata": "The groups to score genera for (e.g. delivery mode). Optional with a classifier: its predicted "
                "classes are the groups then. Samples without a value are left out and counted.",
    "subjects": "Optional: each sample's subject (e.g. child ID). A subject's samples are averaged first, so that "
                "confidence intervals and tests count subjects, not repeated samples of one subject.",
    "method": "'attention': the last layer's attention from the token the classifier reads, averaged over heads "
              "(the paper's view); 'rollout': attention rolled out across all layers; 'gradient': integrated "
              "gradients of the class logit on the genus embeddings, a check that does not rely on attention. "
              "Attention scores are relative to an even share over the sample's genera (1 = even).",
    "min_samples": "Genera held by fewer samples (or subjects) of a group are scored but not ranked, so a genus "
                   "seen in a handful of samples cannot top the list.",
    "device": DEVICE_DESCRIPTION,
}
plugin.methods.register_function(
    function=keystone_genera,
    inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier | Pretrained]},
    parameters=KEYSTONE_PARAMETERS,
    outputs=[("importance", FeatureData[Importance])],
    input_descriptions=KEYSTONE_INPUTS,
    parameter_descriptions=KEYSTONE_DESCRIPTIONS,
    output_descriptions={"importance": "One column per group: each genus' mean score over the group's samples, "
                                       "absence counted as 0 (so rare genera weigh by how often they occur). "
                                       "q2-sample-classifier's heatmap and `qiime metadata tabulate` read it."},
    name="Keystone genera from attention",
    description="Score every genus of every sample by the attention (or attribution) the model gives it, and "
                "summarise the scores per group, as MGM's paper did to find delivery-mode keystone genera. "
                "`keystone-report` shows the ranking with confidence intervals.",
    citations=[citations["zhang2026mgm"]],
    examples={"keystone_genera_of_delivery_modes": _examples.keystone_genera_example},
)

plugin.visualizers.register_function(
    function=keystone_report,
    inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier | Pretrained]},
    parameters={**KEYSTONE_PARAMETERS, "top_genera": Int % Range(1, 200), "n_bootstrap": Int % Range(1, 100_000),
                "confidence": Float % Range(0.5, 1, inclusive_end=False), "sample_ids": List[Str],
                "random_state": Int % Range(0, 2**32 - 1)},
    input_descriptions=KEYSTONE_INPUTS,
    parameter_descriptions={
        **KEYSTONE_DESCRIPTIONS,
        "top_genera": "Genera shown per group.",
        "n_bootstrap": "Bootstrap resamples of each group's samples for the confidence intervals.",
        "confidence": "Level of the bootstrap confidence intervals.",
        "sample_ids": "Samples whose attention maps to show (default: the first sample of each group).",
        "random_state": "Seed of the bootstrap.",
    },
    name="Keystone genera: ranking, confidence intervals and group differences",
    description="For each group, the top genera with bootstrap confidence intervals over samples; a genus x group "
                "heatmap; per-genus tests of the difference between groups (Mann-Whitney U or Kruskal-Wallis, "
                "Benjamini-Hochberg q-values); attention maps of chosen samples; TSVs and PDFs to download.",
    citations=[citations["zhang2026mgm"]],
    examples={"keystone_report": _examples.keystone_report_example},
)

PRETRAINING_PARAMETERS = {
    "epochs": Int % Range(1, 10_000), "learning_rate": Float % Range(0, 1, inclusive_start=False),
    "batch_size": Int % Range(1, 4096), "validation_fraction": Float % Range(0.01, 0.5, inclusive_end=True),
    "patience": Int % Range(1, 1000), "random_state": Int % Range(0, 2**32 - 1), "device": DEVICES,
}
PRETRAINING_DESCRIPTIONS = {
    "epochs": "Most passes over the sentences; training stops earlier when the validation loss stops improving.",
    "learning_rate": "Peak learning rate of AdamW (linear warm-up over the first 10% of steps, then linear decay); "
                     "upstream MGM pretrains at 1e-3.",
    "batch_size": "Sentences per step and process (under torchrun, per GPU or CPU process).",
    "validation_fraction": "Share of the sentences held out to measure the validation loss each epoch.",
    "patience": "Epochs without a lower validation loss before stopping; the best epoch's weights are kept.",
    "random_state": "Seed of the split, the initial weights and the batch order: the same seed gives the same model.",
    "device": DEVICE_DESCRIPTION,
}
CORPORA_DESCRIPTION = "One or more corpora (from `tokenize`) to learn from; a sample may appear in only one."
PRETRAINED_HISTORY = "Training and validation loss and perplexity per epoch (view with `qiime metadata tabulate`)."

plugin.methods.register_function(
    function=pretrain,
    inputs={"corpora": List[SampleData[MGMCorpus]], "model": MGMModel[Pretrained]},
    parameters={"from_scratch": Bool, "n_layer": Int % Range(1, 64), "n_head": Int % Range(1, 64),
                "n_embd": Int % Range(8, 4096), "n_positions": Int % Range(8, 4096), **PRETRAINING_PARAMETERS},
    outputs=[("pretrained_model", MGMModel[Pretrained]), ("history", MGMTrainingHistory)],
    input_descriptions={"corpora": CORPORA_DESCRIPTION,
                        "model": "The model to continue pretraining; the general model when left out."},
    parameter_descriptions={
        "from_scratch": "Start from random weights of the size below instead of from a model.",
        "n_layer": "Transformer layers of a model from scratch (upstream: 8).",
        "n_head": "Attention heads per layer of a model from scratch (upstream: 8); must divide n_embd.",
        "n_embd": "Width of a model from scratch (upstream: 256).",
        "n_positions": "Longest sentence a model from scratch reads, in tokens (upstream: 512).",
        **PRETRAINING_DESCRIPTIONS},
    output_descriptions={"pretrained_model": "The pretrained language model, with its corpus size, settings and "
                                             "training curves in pretraining.json.",
                         "history": PRETRAINED_HISTORY},
    name="Pretrain MGM on your own corpora",
    description="Causal language modelling over genus sentences, as MGM's general model was trained: continue "
                "from a model (domain adaptation) or start from scratch. The transformers Trainer runs it, so the "
                "same action scales out under torchrun (see the README: `python -m q2_mgm.distributed`).",
    citations=[citations["zhang2026mgm"], citations["radford2019gpt2"], citations["wolf2020transformers"]],
    examples={"pretrain_from_scratch": _examples.pretrain_example},
)

plugin.methods.register_function(
    function=pretrain_generator,
    inputs={"corpora": List[SampleData[MGMCorpus]], "model": MGMModel[Pretrained | Generator]},
    parameters={"metadata": MetadataColumn[Categorical], **PRETRAINING_PARAMETERS},
    outputs=[("generator", MGMModel[Generator]), ("history", MGMTrainingHistory)],
    input_descriptions={"corpora": CORPORA_DESCRIPTION,
                        "model": "The model to start from (the general model when left out); a generator's labels "
                                 "are kept and new labels added."},
    parameter_descriptions={"metadata": "The labels to prompt with (e.g. delivery mode or disease state): each "
                                        "sentence becomes <bos> <label> genera <eos>. Samples without a value are "
                                        "left out and counted.",
                            **PRETRAINING_DESCRIPTIONS},
    output_descriptions={"generator": "A label-prompted language model for `generate`.",
                         "history": PRETRAINED_HISTORY},
    name="Pretrain a label-prompted MGM generator",
    description="Upstream's `pretrain --with-label`: the vocabulary grows by one token per label, and the model "
                "learns sentences that follow their label, so that `generate` can be prompted with one.",
    citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
    examples={"pretrain_a_delivery_mode_generator": _examples.pretrain_generator_example},
)

plugin.methods.register_function(
    function=generate,
    inputs={"model": MGMModel[Generator | Pretrained], "reconstructor": MGMReconstructor},
    parameters={"labels": List[Str], "n_per_label": Int % Range(1, 1_000_000),
                "temperature": Float % Range(0, None, inclusive_start=False), "top_k": Int % Range(0, None),
                "top_p": Float % Range(0, 1, inclusive_start=False, inclusive_end=True),
                "max_length": Int % Range(3, 4096), "random_state": Int % Range(0, 2**32 - 1), "device": DEVICES},
    outputs=[("table", FeatureTable[RelativeFrequency]), ("corpus", SampleData[MGMCorpus]),
             ("sample_metadata", SampleData[MGMLabels])],
    input_descriptions={"model": "A generator (from pretrain-generator), or a pretrained model for unconditioned "
                                 "samples.",
                        "reconstructor": "Gives the generated genera abundances (from fit-reconstructor). Left out, "
                                         "each genus gets its MGnify mean abundance, renormalised: no training, "
                                         "but far less realistic (benchmarks/results/generation.md); fit one on "
                                         "your real table."},
    parameter_descriptions={
        "labels": "Labels to prompt with (default: all of the generator's); not for a model without labels.",
        "n_per_label": "Samples to generate per label.",
        "temperature": "Softmax temperature: below 1 sharpens towards likely genera, above 1 flattens.",
        "top_k": "Sample among the k most likely next tokens only (0: no limit).",
        "top_p": "Sample among the most likely tokens that make up this probability (1: no limit).",
        "max_length": "Longest sentence in tokens (capped at the model's positions).",
        "random_state": "Seed of the sampling: the same seed gives the same samples.",
        "device": DEVICE_DESCRIPTION},
    output_descriptions={"table": "Synthetic profiles (relative abundance of genus tokens), samples named "
                                  "LABEL_INDEX.",
                         "corpus": "The synthetic sentences, without label tokens, for embed or predict.",
                         "sample_metadata": "The label each sample was prompted with (column `label`); use it as "
                                            "metadata."},
    name="Generate synthetic microbial profiles",
    description="Sample sentences from the model (a label token after <bos> prompts each one; label tokens are "
                "never generated after it, nor is a genus repeated), then give their genera abundances with a "
                "reconstructor. Evaluate them with evaluate-generated.",
    citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
    examples={"generate_profiles": _examples.generate_example},
)

plugin.methods.register_function(
    function=fit_reconstructor,
    inputs={"table": FeatureTable[Frequency | RelativeFrequency], "taxonomy": FeatureData[Taxonomy]},
    parameters={"kind": Str % Choices(*RECONSTRUCTORS), "harmonize_names": Bool,
                "epochs": Int % Range(1, 100_000), "learning_rate": Float % Range(0, 1, inclusive_start=False),
                "batch_size": Int % Range(1, 4096), "validation_fraction": Float % Range(0.01, 0.5),
                "patience": Int % Range(1, 1000), "random_state": Int % Range(0, 2**32 - 1)},
    outputs=[("reconstructor", MGMReconstructor)],
    input_descriptions={"table": "Real profiles to learn abundances from (counts or relative frequencies).",
                        "taxonomy": "Taxonomy of the table's features; leave out when feature IDs are taxonomy "
                                    "strings."},
    parameter_descriptions={
        "kind": "'neural': a small network from each genus, its rank and MGnify statistics to its abundance, "
                "trained on Bray-Curtis loss (upstream's reconstructor idea); 'rank-median': each rank's median "
                "abundance in the table.",
        "harmonize_names": "Recover bracketed, SILVA and GTDB genus names (see tokenize).",
        "epochs": "Most epochs of the neural reconstructor (it stops early on its validation loss).",
        "learning_rate": "Adam learning rate of the neural reconstructor.",
        "batch_size": "Samples per step of the neural reconstructor.",
        "validation_fraction": "Share of samples held out for early stopping (neural).",
        "patience": "Epochs without a better validation Bray-Curtis before stopping (neural).",
        "random_state": "Seed of the split and the weights (neural)."},
    output_descriptions={"reconstructor": "The fitted reconstructor, with its training curve (neural), for "
                                          "generate."},
    name="Fit a ranks-to-abundances reconstructor",
    description="A sentence orders genera but holds no amounts: learn, from real tables, the relative abundances "
                "that go with a sentence's genera, so that generated sentences become profiles.",
    citations=[citations["zhang2026mgm"]],
    examples={"fit_a_reconstructor": _examples.fit_reconstructor_example},
)

plugin.visualizers.register_function(
    function=evaluate_generated,
    inputs={"real_table": FeatureTable[Frequency | RelativeFrequency],
            "synthetic_table": FeatureTable[Frequency | RelativeFrequency], "taxonomy": FeatureData[Taxonomy]},
    parameters={"real_labels": MetadataColumn[Categorical], "synthetic_labels": MetadataColumn[Categorical],
                **EVALUATION_PARAMETERS},
    input_descriptions={
        "real_table": "Real samples, counts or relative frequencies, at any taxonomic level; collapsed to MGM's "
                      "genera as tokenize does.",
        "synthetic_table": "Synthetic samples whose feature IDs are MGM genus tokens (g__Name), e.g. from generate.",
        "taxonomy": "Taxonomy of the real table's features; leave out when its feature IDs are taxonomy strings."},
    parameter_descriptions={
        "real_labels": "The label of each real sample.",
        "synthetic_labels": "The label each synthetic sample was generated for (generate's sample_metadata). Only "
                            "labels on both sides are compared; each needs at least 5 real and 5 synthetic samples.",
        "n_estimators": "Trees in each RandomForest (two-sample test, train-on-synthetic and train-on-real).",
        "random_state": "Seed of the subsampling, folds, forests and PERMANOVA permutations."},
    name="How realistic are generated samples?",
    description="Real and synthetic samples side by side, per label: genus prevalence and mean abundance, alpha "
                "diversity, a Bray-Curtis PCoA of both together (with PERMANOVA), a RandomForest two-sample test "
                "(ROC AUC of telling real from synthetic; 0.5 is perfect realism), and whether a classifier trained "
                "on synthetic samples predicts the real labels (train-on-synthetic, test-on-real AUC, beside "
                "train-on-real). Compare generators at matched sample counts: near-copies of real samples also "
                "raise the two-sample AUC.",
    citations=[citations["zhang2026mgm"]],
    examples={"evaluate_generated_profiles": _examples.evaluate_generated_example},
)

importlib.import_module("q2_mgm._transformers")
