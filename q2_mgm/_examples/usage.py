"""Usage examples of the actions on one study: corpus, supervised, keystone, generative and trajectories."""
import pandas as pd

from .data import (FINE_TUNE_BUDGET, batch_classifier_factory, classifier_factory, classifier_history_factory,
                   corpus_factory, embeddings_factory, example_metadata, general_model_factory, generator_factory,
                   held_out_corpus_factory, labelled, labelled_corpus_factory, labelled_table_factory,
                   month_held_out_corpus_factory, month_predictions_factory, predictions_factory,
                   probabilities_factory, regressor_factory, regressor_history_factory, synthetic_labels_factory,
                   synthetic_table_factory, table_and_label, taxonomy_factory, tokenized)


def tokenize_example(use):
    tokenized(use).assert_output_type("SampleData[MGMCorpus]")


def general_model_example(use):
    model, = use.action(use.UsageAction("mgm", "general_model"), use.UsageInputs(),
                        use.UsageOutputNames(model="mgm_general_model"))
    model.assert_output_type("MGMModel[Pretrained]")


def embed_example(use):
    corpus = use.init_artifact("corpus", corpus_factory)
    model = use.init_artifact("mgm_general_model", general_model_factory)
    embeddings, = use.action(use.UsageAction("mgm", "embed"),
                             use.UsageInputs(corpus=corpus, model=model, pooling="mean"),
                             use.UsageOutputNames(embeddings="embeddings"))
    embeddings.assert_output_type("PCoAResults")


def summarize_corpus_example(use):
    corpus = use.init_artifact("corpus", corpus_factory)
    use.action(use.UsageAction("mgm", "summarize_corpus"), use.UsageInputs(corpus=corpus),
               use.UsageOutputNames(visualization="corpus_summary"))


def fine_tune_example(use):
    corpus, label = labelled(use, "delivery")
    model, history = use.action(
        use.UsageAction("mgm", "fine_tune"),
        use.UsageInputs(corpus=corpus, metadata=label, task="classification", **FINE_TUNE_BUDGET),
        use.UsageOutputNames(trained_model="delivery_classifier", history="delivery_classifier_history"))
    model.assert_output_type("MGMModel[Classifier]")
    history.assert_output_type("MGMTrainingHistory")


def train_example(use):
    corpus, label = labelled(use, "delivery")
    model, _ = use.action(use.UsageAction("mgm", "train"),
                          use.UsageInputs(corpus=corpus, metadata=label, task="classification", epochs=1,
                                          validation_fraction=0.5),
                          use.UsageOutputNames(trained_model="delivery_model_from_scratch", history="history"))
    model.assert_output_type("MGMModel[Classifier]")


def split_corpus_example(use):
    corpus = use.init_artifact("corpus", labelled_corpus_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    _, test = use.action(
        use.UsageAction("mgm", "split_corpus"),
        use.UsageInputs(corpus=corpus, metadata=use.get_metadata_column("delivery", "delivery", metadata),
                        groups=use.get_metadata_column("child", "child", metadata), test_size=0.34),
        use.UsageOutputNames(training_corpus="training_corpus", test_corpus="test_corpus"))
    test.assert_output_type("SampleData[MGMCorpus]")


def predict_example(use):
    corpus = use.init_artifact("test_corpus", held_out_corpus_factory)
    model = use.init_artifact("delivery_classifier", classifier_factory)
    predictions, probabilities = use.action(
        use.UsageAction("mgm", "predict_classification"), use.UsageInputs(corpus=corpus, model=model),
        use.UsageOutputNames(predictions="predictions", probabilities="probabilities"))
    predictions.assert_output_type("SampleData[ClassifierPredictions]")
    probabilities.assert_output_type("SampleData[Probabilities]")


def evaluate_classification_example(use):
    table, label = table_and_label(use, "delivery")
    probabilities = use.init_artifact("probabilities", probabilities_factory)
    predictions = use.init_artifact("predictions", predictions_factory)
    history = use.init_artifact("delivery_classifier_history", classifier_history_factory)
    use.action(use.UsageAction("mgm", "evaluate_classification"),
               use.UsageInputs(probabilities=probabilities, predictions=predictions, truth=label, history=history,
                               table=table, n_estimators=50),
               use.UsageOutputNames(visualization="evaluation"))


def predict_regression_example(use):
    corpus = use.init_artifact("test_corpus", month_held_out_corpus_factory)
    model = use.init_artifact("month_regressor", regressor_factory)
    predictions, = use.action(use.UsageAction("mgm", "predict_regression"), use.UsageInputs(corpus=corpus, model=model),
                              use.UsageOutputNames(predictions="predicted_month"))
    predictions.assert_output_type("SampleData[RegressorPredictions]")


def classify_samples_example(use):
    table = use.init_artifact("table", labelled_table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    delivery = use.get_metadata_column("delivery", "delivery", metadata)
    child = use.get_metadata_column("child", "child", metadata)
    use.action(use.UsageAction("mgm", "classify_samples"),
               use.UsageInputs(table=table, taxonomy=taxonomy, metadata=delivery, groups=child, test_size=0.34,
                               epochs=1, freeze_layers=8, validation_fraction=0.5, n_estimators=50),
               use.UsageOutputNames(trained_model="classifier", history="history", predictions="predictions",
                                    probabilities="probabilities", evaluation="evaluation"))


def trajectory_example(use):
    embeddings = use.init_artifact("embeddings", embeddings_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    use.action(use.UsageAction("mgm", "trajectory"),
               use.UsageInputs(embeddings=embeddings, time=use.get_metadata_column("month", "month", metadata),
                               group=use.get_metadata_column("delivery", "delivery", metadata),
                               subject=use.get_metadata_column("child", "child", metadata)),
               use.UsageOutputNames(visualization="trajectories"))


def evaluate_regression_example(use):
    table, month = table_and_label(use, "month")
    predictions = use.init_artifact("predicted_month", month_predictions_factory)
    history = use.init_artifact("month_regressor_history", regressor_history_factory)
    use.action(use.UsageAction("mgm", "evaluate_regression"),
               use.UsageInputs(predictions=predictions, truth=month, history=history, table=table, n_estimators=50),
               use.UsageOutputNames(visualization="evaluation"))


def regress_samples_example(use):
    table = use.init_artifact("table", labelled_table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    use.action(use.UsageAction("mgm", "regress_samples"),
               use.UsageInputs(table=table, taxonomy=taxonomy,
                               metadata=use.get_metadata_column("month", "month", metadata),
                               groups=use.get_metadata_column("child", "child", metadata), test_size=0.34,
                               epochs=1, freeze_layers=8, validation_fraction=0.5, n_estimators=50),
               use.UsageOutputNames(trained_model="regressor", history="history", predictions="predictions",
                                    evaluation="evaluation"))


def _keystone_inputs(use):
    corpus, delivery = labelled(use, "delivery")
    model = use.init_artifact("delivery_classifier", classifier_factory)
    return corpus, model, delivery


def keystone_genera_example(use):
    corpus, model, delivery = _keystone_inputs(use)
    importance, = use.action(use.UsageAction("mgm", "keystone_genera"),
                             use.UsageInputs(corpus=corpus, model=model, metadata=delivery, min_samples=2),
                             use.UsageOutputNames(importance="keystone_importance"))
    importance.assert_output_type("FeatureData[Importance]")


def attention_samples_factory():
    """The samples whose attention maps keystone-report shows: metadata of their IDs alone."""
    import qiime2
    return qiime2.Metadata(pd.DataFrame(index=pd.Index(["infant2", "infant5"], name="sample-id")))


def keystone_report_example(use):
    corpus, model, delivery = _keystone_inputs(use)
    picked = use.init_metadata("attention_samples", attention_samples_factory)
    use.action(use.UsageAction("mgm", "keystone_report"),
               use.UsageInputs(corpus=corpus, model=model, metadata=delivery, min_samples=2, n_bootstrap=200,
                               attention_samples=picked),
               use.UsageOutputNames(visualization="keystone_report"))


def _batch_keystone_inputs(use):
    corpus = use.init_artifact("corpus", labelled_corpus_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    model = use.init_artifact("delivery_classifier_fit_with_batches", batch_classifier_factory)
    return (corpus, model, use.get_metadata_column("delivery", "delivery", metadata),
            use.get_metadata_column("study", "study", metadata))


def keystone_genera_batches_example(use):
    """A classifier fine-tuned with batches: each genus's effect on its decision, per class."""
    corpus, model, delivery, study = _batch_keystone_inputs(use)
    importance, = use.action(use.UsageAction("mgm", "keystone_genera"),
                             use.UsageInputs(corpus=corpus, model=model, metadata=delivery, batches=study,
                                             method="gradient", min_samples=2),
                             use.UsageOutputNames(importance="keystone_effects"))
    importance.assert_output_type("FeatureData[Importance]")


def keystone_report_batches_example(use):
    corpus, model, delivery, study = _batch_keystone_inputs(use)
    use.action(use.UsageAction("mgm", "keystone_report"),
               use.UsageInputs(corpus=corpus, model=model, metadata=delivery, batches=study, method="gradient",
                               min_samples=2, n_bootstrap=200),
               use.UsageOutputNames(visualization="keystone_report_of_batches"))


def pretrain_example(use):
    corpus = use.init_artifact("corpus", corpus_factory)
    model, history = use.action(
        use.UsageAction("mgm", "pretrain"),
        use.UsageInputs(corpora=[corpus], from_scratch=True, n_layer=2, n_head=2, n_embd=32, epochs=2,
                        validation_fraction=0.2),
        use.UsageOutputNames(pretrained_model="small_model", history="pretraining_history"))
    model.assert_output_type("MGMModel[Pretrained]")
    history.assert_output_type("MGMTrainingHistory")


def pretrain_generator_example(use):
    corpus, delivery = labelled(use, "delivery")
    generator, _ = use.action(
        use.UsageAction("mgm", "pretrain_generator"),
        use.UsageInputs(corpora=[corpus], metadata=delivery, epochs=1, validation_fraction=0.2),
        use.UsageOutputNames(generator="delivery_generator", history="generator_history"))
    generator.assert_output_type("MGMModel[Generator]")


def fit_reconstructor_example(use):
    table = use.init_artifact("table", labelled_table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    reconstructor, = use.action(use.UsageAction("mgm", "fit_reconstructor"),
                                use.UsageInputs(table=table, taxonomy=taxonomy, kind="rank-median"),
                                use.UsageOutputNames(reconstructor="reconstructor"))
    reconstructor.assert_output_type("MGMReconstructor")


def generate_example(use):
    generator = use.init_artifact("delivery_generator", generator_factory)
    table, corpus, labels = use.action(
        use.UsageAction("mgm", "generate"),
        use.UsageInputs(model=generator, n_per_label=3, max_length=24),
        use.UsageOutputNames(table="synthetic_table", corpus="synthetic_corpus", sample_metadata="synthetic_labels"))
    table.assert_output_type("FeatureTable[RelativeFrequency]")
    labels.assert_output_type("SampleData[MGMLabels]")


def evaluate_generated_example(use):
    table, delivery = table_and_label(use, "delivery")
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    synthetic = use.init_artifact("synthetic_table", synthetic_table_factory)
    labels = use.init_metadata("synthetic_labels", synthetic_labels_factory)
    use.action(use.UsageAction("mgm", "evaluate_generated"),
               use.UsageInputs(real_table=table, taxonomy=taxonomy, synthetic_table=synthetic, real_labels=delivery,
                               synthetic_labels=use.get_metadata_column("label", "label", labels), n_estimators=20),
               use.UsageOutputNames(visualization="realism"))
