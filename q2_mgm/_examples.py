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


def _tokenized(use, factory=None):
    table = use.init_artifact("table", factory or table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    corpus, = use.action(use.UsageAction("mgm", "tokenize"), use.UsageInputs(table=table, taxonomy=taxonomy),
                         use.UsageOutputNames(corpus="corpus"))
    return corpus


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


def _fine_tuned(use):
    corpus = _tokenized(use, labelled_table_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    delivery = use.get_metadata_column("delivery", "delivery", metadata)
    model, history = use.action(
        use.UsageAction("mgm", "fine_tune"),
        use.UsageInputs(corpus=corpus, metadata=delivery, epochs=1, freeze_layers=8, validation_fraction=0.5,
                        learning_rate=0.001),
        use.UsageOutputNames(trained_model="delivery_classifier", history="training_history"))
    return corpus, model, history


def fine_tune_example(use):
    _, model, history = _fine_tuned(use)
    model.assert_output_type("MGMModel[Classifier]")
    history.assert_output_type("MGMTrainingHistory")


def predict_example(use):
    corpus, model, _ = _fine_tuned(use)
    predictions, probabilities = use.action(
        use.UsageAction("mgm", "predict_classification"), use.UsageInputs(corpus=corpus, model=model),
        use.UsageOutputNames(predictions="predictions", probabilities="probabilities"))
    predictions.assert_output_type("SampleData[ClassifierPredictions]")
    probabilities.assert_output_type("SampleData[Probabilities]")
