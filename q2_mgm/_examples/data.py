"""The usage examples' data: a small gut-like table with Greengenes taxonomy, its metadata, and factories that
run the actions whose outputs other examples start from (once per process)."""
import functools

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


def example_metadata():
    import qiime2
    rng = np.random.default_rng(1)
    ids = [f"infant{i}" for i in range(1, 13)]
    return qiime2.Metadata(pd.DataFrame({
        "delivery": ["Vaginal", "Cesarean"] * 6,
        "child": [f"c{i // 2}" for i in range(12)],
        "month": rng.integers(0, 24, 12).astype(float),
        "study": [f"study{i // 4 + 1}" for i in range(12)],
    }, index=pd.Index(ids, name="sample-id")))


def _labelled_table():
    rng = np.random.default_rng(2)
    counts = rng.negative_binomial(2, 0.01, size=(len(TAXA), 12)).astype(float)
    counts[3, ::2] *= 5  # Bifidobacterium: more in vaginal births
    return biom.Table(counts, list(TAXA), [f"infant{i}" for i in range(1, 13)])


def labelled_table_factory():
    from qiime2 import Artifact
    return Artifact.import_data("FeatureTable[Frequency]", _labelled_table())


def actions():
    from qiime2.plugins import mgm
    return mgm.actions


def metadata_column(name):
    return example_metadata().get_column(name)


FINE_TUNE_BUDGET = {"epochs": 1, "freeze_layers": 8, "validation_fraction": 0.5, "learning_rate": 0.001}


@functools.lru_cache(maxsize=None)
def corpus_factory():
    """The example table, tokenized."""
    return actions().tokenize(table=table_factory(), taxonomy=taxonomy_factory()).corpus


@functools.lru_cache(maxsize=None)
def labelled_corpus_factory():
    """The labelled example table (12 infants, see example_metadata), tokenized."""
    return actions().tokenize(table=labelled_table_factory(), taxonomy=taxonomy_factory()).corpus


@functools.lru_cache(maxsize=None)
def general_model_factory():
    return actions().general_model().model


@functools.lru_cache(maxsize=None)
def _split(label):
    return actions().split_corpus(corpus=labelled_corpus_factory(), metadata=metadata_column(label),
                                  groups=metadata_column("child"), test_size=0.34)


@functools.lru_cache(maxsize=None)
def _fine_tuned(label, task):
    return actions().fine_tune(corpus=_split(label).training_corpus, metadata=metadata_column(label), task=task,
                               **FINE_TUNE_BUDGET)


def held_out_corpus_factory():
    return _split("delivery").test_corpus


def classifier_factory():
    return _fine_tuned("delivery", "classification").trained_model


@functools.lru_cache(maxsize=None)
def batch_classifier_factory():
    """Delivery mode fine-tuned with batches (the three studies of example_metadata): the across-study recipe."""
    return actions().fine_tune(corpus=labelled_corpus_factory(), metadata=metadata_column("delivery"),
                               task="classification", batches=metadata_column("study")).trained_model


def classifier_history_factory():
    return _fine_tuned("delivery", "classification").history


@functools.lru_cache(maxsize=None)
def _predicted_classes():
    return actions().predict_classification(corpus=held_out_corpus_factory(), model=classifier_factory())


def probabilities_factory():
    return _predicted_classes().probabilities


def predictions_factory():
    return _predicted_classes().predictions


def month_held_out_corpus_factory():
    return _split("month").test_corpus


def regressor_factory():
    return _fine_tuned("month", "regression").trained_model


def regressor_history_factory():
    return _fine_tuned("month", "regression").history


@functools.lru_cache(maxsize=None)
def month_predictions_factory():
    return actions().predict_regression(corpus=month_held_out_corpus_factory(), model=regressor_factory()).predictions


@functools.lru_cache(maxsize=None)
def embeddings_factory():
    return actions().embed(corpus=labelled_corpus_factory(), model=general_model_factory()).embeddings


@functools.lru_cache(maxsize=None)
def generator_factory():
    """The delivery-mode generator, pretrained for one epoch on the labelled example corpus."""
    return actions().pretrain_generator(corpora=[labelled_corpus_factory()], metadata=metadata_column("delivery"),
                                        epochs=1, validation_fraction=0.2).generator


@functools.lru_cache(maxsize=None)
def _generated():
    return actions().generate(model=generator_factory(), n_per_label=6, max_length=24)


def synthetic_table_factory():
    return _generated().table


def synthetic_labels_factory():
    import qiime2
    return _generated().sample_metadata.view(qiime2.Metadata)


def tokenized(use):
    table = use.init_artifact("table", table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    corpus, = use.action(use.UsageAction("mgm", "tokenize"), use.UsageInputs(table=table, taxonomy=taxonomy),
                         use.UsageOutputNames(corpus="corpus"))
    return corpus


def labelled(use, column):
    """The labelled example corpus, and one column of its metadata."""
    corpus = use.init_artifact("corpus", labelled_corpus_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    return corpus, use.get_metadata_column(column, column, metadata)


def table_and_label(use, column):
    """The labelled example table, and one column of its metadata."""
    table = use.init_artifact("table", labelled_table_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    return table, use.get_metadata_column(column, column, metadata)
