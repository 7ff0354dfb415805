"""Usage examples built from in-memory data: a small gut-like table with Greengenes taxonomy."""
import biom
import numpy as np
import pandas as pd

TAXA = {
    "f1": "k__Bacteria; p__Bacteroidetes; c__Bacteroidia; o__Bacteroidales; f__Bacteroidaceae; g__Bacteroides; s__",
    "f2": "k__Bacteria; p__Bacteroidetes; c__Bacteroidia; o__Bacteroidales; f__Prevotellaceae; g__Prevotella; s__",
    "f3": "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Ruminococcaceae; g__Faecalibacterium; s__",
    "f4": "k__Bacteria; p__Actinobacteria; c__Actinobacteria; o__Bifidobacteriales; f__Bifidobacteriaceae; "
          "g__Bifidobacterium; s__",
    "f5": "k__Bacteria; p__Proteobacteria; c__Gammaproteobacteria; o__Enterobacteriales; f__Enterobacteriaceae; "
          "g__Escherichia; s__coli",
    "f6": "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Lachnospiraceae; g__Roseburia; s__",
    "f7": "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Lachnospiraceae; g__; s__",
    "f8": "k__Bacteria; p__Proteobacteria; c__Gammaproteobacteria; o__Pasteurellales; f__Pasteurellaceae; "
          "g__Haemophilus; s__parainfluenzae",
}


def example_table():
    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2, 0.01, size=(len(TAXA), 6)).astype(float)
    return biom.Table(counts, list(TAXA), [f"infant{i}" for i in range(1, 7)])


def example_taxonomy():
    return pd.Series(TAXA, name="Taxon").rename_axis("Feature ID")


def table_factory():
    from qiime2 import Artifact
    return Artifact.import_data("FeatureTable[Frequency]", example_table())


def taxonomy_factory():
    from qiime2 import Artifact
    return Artifact.import_data("FeatureData[Taxonomy]", example_taxonomy())


def _tokenized(use, factory=None, with_table=False):
    table = use.init_artifact("table", factory or table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    corpus, = use.action(use.UsageAction("mgm", "tokenize"), use.UsageInputs(table=table, taxonomy=taxonomy),
                         use.UsageOutputNames(corpus="corpus"))
    return (corpus, table, taxonomy) if with_table else corpus


def tokenize_example(use):
    _tokenized(use).assert_output_type("SampleData[MGMCorpus]")


def general_model_example(use):
    model, = use.action(use.UsageAction("mgm", "general_model"), use.UsageInputs(),
                        use.UsageOutputNames(model="mgm_general_model"))
    model.assert_output_type("MGMModel[Pretrained]")


def embed_example(use):
    corpus = _tokenized(use)
    model, = use.action(use.UsageAction("mgm", "general_model"), use.UsageInputs(),
                        use.UsageOutputNames(model="mgm_general_model"))
    embeddings, = use.action(use.UsageAction("mgm", "embed"),
                             use.UsageInputs(corpus=corpus, model=model, pooling="mean"),
                             use.UsageOutputNames(embeddings="embeddings"))
    embeddings.assert_output_type("PCoAResults")


def summarize_corpus_example(use):
    corpus = _tokenized(use)
    use.action(use.UsageAction("mgm", "summarize_corpus"), use.UsageInputs(corpus=corpus),
               use.UsageOutputNames(visualization="corpus_summary"))


def example_metadata():
    import qiime2
    rng = np.random.default_rng(1)
    ids = [f"infant{i}" for i in range(1, 13)]
    return qiime2.Metadata(pd.DataFrame({
        "delivery": ["Vaginal", "Cesarean"] * 6,
        "child": [f"c{i // 2}" for i in range(12)],
        "month": rng.integers(0, 24, 12).astype(float),
    }, index=pd.Index(ids, name="sample-id")))


def _labelled_table():
    rng = np.random.default_rng(2)
    counts = rng.negative_binomial(2, 0.01, size=(len(TAXA), 12)).astype(float)
    counts[3, ::2] *= 5  # Bifidobacterium: more in vaginal births
    return biom.Table(counts, list(TAXA), [f"infant{i}" for i in range(1, 13)])


def labelled_table_factory():
    from qiime2 import Artifact
    return Artifact.import_data("FeatureTable[Frequency]", _labelled_table())


def _labelled(use, column):
    """The labelled example corpus, one of its metadata columns, the metadata and the table."""
    corpus, table, _ = _tokenized(use, labelled_table_factory, with_table=True)
    metadata = use.init_metadata("metadata", example_metadata)
    return corpus, use.get_metadata_column(column, column, metadata), metadata, table


def _fine_tune(use, corpus, label, name, task="classification"):
    return use.action(
        use.UsageAction("mgm", "fine_tune"),
        use.UsageInputs(corpus=corpus, metadata=label, task=task, epochs=1, freeze_layers=8, validation_fraction=0.5,
                        learning_rate=0.001),
        use.UsageOutputNames(trained_model=name, history=f"{name}_history"))


def _split(use):
    corpus, label, metadata, table = _labelled(use, "delivery")
    child = use.get_metadata_column("child", "child", metadata)
    training, test = use.action(
        use.UsageAction("mgm", "split_corpus"),
        use.UsageInputs(corpus=corpus, metadata=label, groups=child, test_size=0.34),
        use.UsageOutputNames(training_corpus="training_corpus", test_corpus="test_corpus"))
    return training, test, label, table


def _predicted(use):
    training, test, label, table = _split(use)
    model, history = _fine_tune(use, training, label, "delivery_classifier")
    predictions, probabilities = use.action(
        use.UsageAction("mgm", "predict_classification"), use.UsageInputs(corpus=test, model=model),
        use.UsageOutputNames(predictions="predictions", probabilities="probabilities"))
    return predictions, probabilities, history, label, table


def fine_tune_example(use):
    corpus, label, _, _ = _labelled(use, "delivery")
    model, history = _fine_tune(use, corpus, label, "delivery_classifier")
    model.assert_output_type("MGMModel[Classifier]")
    history.assert_output_type("MGMTrainingHistory")


def train_example(use):
    corpus, label, _, _ = _labelled(use, "delivery")
    model, _ = use.action(use.UsageAction("mgm", "train"),
                          use.UsageInputs(corpus=corpus, metadata=label, task="classification", epochs=1,
                                          validation_fraction=0.5),
                          use.UsageOutputNames(trained_model="delivery_model_from_scratch", history="history"))
    model.assert_output_type("MGMModel[Classifier]")


def split_corpus_example(use):
    _, test, _, _ = _split(use)
    test.assert_output_type("SampleData[MGMCorpus]")


def predict_example(use):
    predictions, probabilities, _, _, _ = _predicted(use)
    predictions.assert_output_type("SampleData[ClassifierPredictions]")
    probabilities.assert_output_type("SampleData[Probabilities]")


def evaluate_classification_example(use):
    _, probabilities, history, label, table = _predicted(use)
    use.action(use.UsageAction("mgm", "evaluate_classification"),
               use.UsageInputs(probabilities=probabilities, truth=label, history=history, table=table,
                               n_estimators=50),
               use.UsageOutputNames(visualization="evaluation"))


def predict_regression_example(use):
    corpus, month, _, _ = _labelled(use, "month")
    model, _ = _fine_tune(use, corpus, month, "month_regressor", "regression")
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
    corpus, delivery, metadata, _ = _labelled(use, "delivery")
    model, = use.action(use.UsageAction("mgm", "general_model"), use.UsageInputs(),
                        use.UsageOutputNames(model="mgm_general_model"))
    embeddings, = use.action(use.UsageAction("mgm", "embed"), use.UsageInputs(corpus=corpus, model=model),
                             use.UsageOutputNames(embeddings="embeddings"))
    use.action(use.UsageAction("mgm", "trajectory"),
               use.UsageInputs(embeddings=embeddings, time=use.get_metadata_column("month", "month", metadata),
                               group=delivery, subject=use.get_metadata_column("child", "child", metadata)),
               use.UsageOutputNames(visualization="trajectories"))


def evaluate_regression_example(use):
    corpus, month, metadata, table = _labelled(use, "month")
    training, test = use.action(
        use.UsageAction("mgm", "split_corpus"),
        use.UsageInputs(corpus=corpus, metadata=month, groups=use.get_metadata_column("child", "child", metadata),
                        test_size=0.34),
        use.UsageOutputNames(training_corpus="training_corpus", test_corpus="test_corpus"))
    model, history = _fine_tune(use, training, month, "month_regressor", "regression")
    predictions, = use.action(use.UsageAction("mgm", "predict_regression"), use.UsageInputs(corpus=test, model=model),
                              use.UsageOutputNames(predictions="predicted_month"))
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
    corpus, delivery, _, _ = _labelled(use, "delivery")
    model, _ = _fine_tune(use, corpus, delivery, "delivery_classifier")
    return corpus, model, delivery


def keystone_genera_example(use):
    corpus, model, delivery = _keystone_inputs(use)
    importance, = use.action(use.UsageAction("mgm", "keystone_genera"),
                             use.UsageInputs(corpus=corpus, model=model, metadata=delivery, min_samples=2),
                             use.UsageOutputNames(importance="keystone_importance"))
    importance.assert_output_type("FeatureData[Importance]")


def keystone_report_example(use):
    corpus, model, delivery = _keystone_inputs(use)
    use.action(use.UsageAction("mgm", "keystone_report"),
               use.UsageInputs(corpus=corpus, model=model, metadata=delivery, min_samples=2, n_bootstrap=200),
               use.UsageOutputNames(visualization="keystone_report"))


def pretrain_example(use):
    corpus = _tokenized(use)
    model, history = use.action(
        use.UsageAction("mgm", "pretrain"),
        use.UsageInputs(corpora=[corpus], from_scratch=True, n_layer=2, n_head=2, n_embd=32, epochs=2,
                        validation_fraction=0.2),
        use.UsageOutputNames(pretrained_model="small_model", history="pretraining_history"))
    model.assert_output_type("MGMModel[Pretrained]")
    history.assert_output_type("MGMTrainingHistory")


def _generator(use):
    """The delivery-mode generator, and the table, taxonomy and labels it learnt from."""
    corpus, table, taxonomy = _tokenized(use, labelled_table_factory, with_table=True)
    delivery = use.get_metadata_column("delivery", "delivery", use.init_metadata("metadata", example_metadata))
    generator, _ = use.action(
        use.UsageAction("mgm", "pretrain_generator"),
        use.UsageInputs(corpora=[corpus], metadata=delivery, epochs=1, validation_fraction=0.2),
        use.UsageOutputNames(generator="delivery_generator", history="generator_history"))
    return generator, table, taxonomy, delivery


def pretrain_generator_example(use):
    generator, _, _, _ = _generator(use)
    generator.assert_output_type("MGMModel[Generator]")


def fit_reconstructor_example(use):
    table = use.init_artifact("table", labelled_table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    reconstructor, = use.action(use.UsageAction("mgm", "fit_reconstructor"),
                                use.UsageInputs(table=table, taxonomy=taxonomy, kind="rank-median"),
                                use.UsageOutputNames(reconstructor="reconstructor"))
    reconstructor.assert_output_type("MGMReconstructor")


def generate_example(use):
    generator, _, _, _ = _generator(use)
    table, corpus, labels = use.action(
        use.UsageAction("mgm", "generate"),
        use.UsageInputs(model=generator, n_per_label=3, max_length=24),
        use.UsageOutputNames(table="synthetic_table", corpus="synthetic_corpus", sample_metadata="synthetic_labels"))
    table.assert_output_type("FeatureTable[RelativeFrequency]")
    labels.assert_output_type("SampleData[MGMLabels]")


def evaluate_generated_example(use):
    generator, table, taxonomy, delivery = _generator(use)
    synthetic, _, labels = use.action(
        use.UsageAction("mgm", "generate"), use.UsageInputs(model=generator, n_per_label=6, max_length=24),
        use.UsageOutputNames(table="synthetic_table", corpus="synthetic_corpus", sample_metadata="synthetic_labels"))
    label = use.get_metadata_column("label", "label", use.view_as_metadata("synthetic_label_metadata", labels))
    use.action(use.UsageAction("mgm", "evaluate_generated"),
               use.UsageInputs(real_table=table, taxonomy=taxonomy, synthetic_table=synthetic, real_labels=delivery,
                               synthetic_labels=label, n_estimators=20),
               use.UsageOutputNames(visualization="realism"))
