"""Usage examples built from in-memory data: a small gut-like table with Greengenes taxonomy.

Each example runs its one action; the inputs that other actions make (corpora, models, predictions) come from
factories that run those actions once per process. Every interface then shows just the action at hand, and
q2galaxy, which turns each example into its tool's test, finds only that tool's parameters and outputs there."""
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


def _actions():
    from qiime2.plugins import mgm
    return mgm.actions


def _column(name):
    return example_metadata().get_column(name)


FINE_TUNE_BUDGET = {"epochs": 1, "freeze_layers": 8, "validation_fraction": 0.5, "learning_rate": 0.001}


@functools.lru_cache(maxsize=None)
def corpus_factory():
    """The example table, tokenized."""
    return _actions().tokenize(table=table_factory(), taxonomy=taxonomy_factory()).corpus


@functools.lru_cache(maxsize=None)
def labelled_corpus_factory():
    """The labelled example table (12 infants, see example_metadata), tokenized."""
    return _actions().tokenize(table=labelled_table_factory(), taxonomy=taxonomy_factory()).corpus


@functools.lru_cache(maxsize=None)
def general_model_factory():
    return _actions().general_model().model


@functools.lru_cache(maxsize=None)
def _split(label):
    return _actions().split_corpus(corpus=labelled_corpus_factory(), metadata=_column(label), groups=_column("child"),
                                   test_size=0.34)


@functools.lru_cache(maxsize=None)
def _fine_tuned(label, task):
    return _actions().fine_tune(corpus=_split(label).training_corpus, metadata=_column(label), task=task,
                                **FINE_TUNE_BUDGET)


def held_out_corpus_factory():
    return _split("delivery").test_corpus


def classifier_factory():
    return _fine_tuned("delivery", "classification").trained_model


def classifier_history_factory():
    return _fine_tuned("delivery", "classification").history


@functools.lru_cache(maxsize=None)
def _predicted_classes():
    return _actions().predict_classification(corpus=held_out_corpus_factory(), model=classifier_factory())


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
    return _actions().predict_regression(corpus=month_held_out_corpus_factory(), model=regressor_factory()).predictions


@functools.lru_cache(maxsize=None)
def embeddings_factory():
    return _actions().embed(corpus=labelled_corpus_factory(), model=general_model_factory()).embeddings


@functools.lru_cache(maxsize=None)
def generator_factory():
    """The delivery-mode generator, pretrained for one epoch on the labelled example corpus."""
    return _actions().pretrain_generator(corpora=[labelled_corpus_factory()], metadata=_column("delivery"), epochs=1,
                                         validation_fraction=0.2).generator


@functools.lru_cache(maxsize=None)
def _generated():
    return _actions().generate(model=generator_factory(), n_per_label=6, max_length=24)


def synthetic_table_factory():
    return _generated().table


def synthetic_labels_factory():
    import qiime2
    return _generated().sample_metadata.view(qiime2.Metadata)


def _tokenized(use):
    table = use.init_artifact("table", table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    corpus, = use.action(use.UsageAction("mgm", "tokenize"), use.UsageInputs(table=table, taxonomy=taxonomy),
                         use.UsageOutputNames(corpus="corpus"))
    return corpus


def _labelled(use, column):
    """The labelled example corpus, and one column of its metadata."""
    corpus = use.init_artifact("corpus", labelled_corpus_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    return corpus, use.get_metadata_column(column, column, metadata)


def _table_and_label(use, column):
    """The labelled example table, and one column of its metadata."""
    table = use.init_artifact("table", labelled_table_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    return table, use.get_metadata_column(column, column, metadata)


def tokenize_example(use):
    _tokenized(use).assert_output_type("SampleData[MGMCorpus]")


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
    corpus, label = _labelled(use, "delivery")
    model, history = use.action(
        use.UsageAction("mgm", "fine_tune"),
        use.UsageInputs(corpus=corpus, metadata=label, task="classification", **FINE_TUNE_BUDGET),
        use.UsageOutputNames(trained_model="delivery_classifier", history="delivery_classifier_history"))
    model.assert_output_type("MGMModel[Classifier]")
    history.assert_output_type("MGMTrainingHistory")


def train_example(use):
    corpus, label = _labelled(use, "delivery")
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
    table, label = _table_and_label(use, "delivery")
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
    table, month = _table_and_label(use, "month")
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
    corpus, delivery = _labelled(use, "delivery")
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
    corpus, delivery = _labelled(use, "delivery")
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
    table, delivery = _table_and_label(use, "delivery")
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    synthetic = use.init_artifact("synthetic_table", synthetic_table_factory)
    labels = use.init_metadata("synthetic_labels", synthetic_labels_factory)
    use.action(use.UsageAction("mgm", "evaluate_generated"),
               use.UsageInputs(real_table=table, taxonomy=taxonomy, synthetic_table=synthetic, real_labels=delivery,
                               synthetic_labels=use.get_metadata_column("label", "label", labels), n_estimators=20),
               use.UsageOutputNames(visualization="realism"))


def _cross_validated(task):
    column = "delivery" if task == "classification" else "month"
    return getattr(_actions(), f"cross_validate_{task}")(
        corpus=labelled_corpus_factory(), metadata=_column(column), groups=_column("study"),
        batches=_column("study"), cv_strategy="leave-one-group-out", n_estimators=50)


@functools.lru_cache(maxsize=None)
def cross_validation_factory():
    """Leave-one-study-out on the labelled example corpus: its cross-validation artifact."""
    return _cross_validated("classification").cross_validation


def _cross_validate_example(use, task, column, outputs):
    corpus = use.init_artifact("corpus", labelled_corpus_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    label = use.get_metadata_column(column, column, metadata)
    study = use.get_metadata_column("study", "study", metadata)
    use.action(use.UsageAction("mgm", f"cross_validate_{task}"),
               use.UsageInputs(corpus=corpus, metadata=label, groups=study, batches=study,
                               cv_strategy="leave-one-group-out", n_estimators=50),
               use.UsageOutputNames(**outputs, cross_validation="cross_validation"))


def cross_validate_classification_example(use):
    _cross_validate_example(use, "classification", "delivery",
                            {"predictions": "predictions", "probabilities": "probabilities"})


def cross_validate_regression_example(use):
    _cross_validate_example(use, "regression", "month", {"predictions": "predictions"})


@functools.lru_cache(maxsize=None)
def folds_factory(task):
    """Leave-one-study-out on the labelled example corpus, prepared to run fold by fold (three studies, three
    folds)."""
    column = "delivery" if task == "classification" else "month"
    return _actions().prepare_cross_validation(
        corpus=labelled_corpus_factory(), metadata=_column(column), task=task, groups=_column("study"),
        batches=_column("study"), cv_strategy="leave-one-group-out", n_estimators=50).folds


@functools.lru_cache(maxsize=None)
def fold_predictions_factory(task, number):
    return _actions().cross_validate_fold(folds=folds_factory(task), fold=number).fold_predictions


def prepare_cross_validation_example(use):
    corpus = use.init_artifact("corpus", labelled_corpus_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    study = use.get_metadata_column("study", "study", metadata)
    use.action(use.UsageAction("mgm", "prepare_cross_validation"),
               use.UsageInputs(corpus=corpus, metadata=use.get_metadata_column("delivery", "delivery", metadata),
                               task="classification", groups=study, batches=study,
                               cv_strategy="leave-one-group-out", n_estimators=50),
               use.UsageOutputNames(folds="folds"))


def cross_validate_fold_example(use):
    folds = use.init_artifact("folds", functools.partial(folds_factory, "classification"))
    use.action(use.UsageAction("mgm", "cross_validate_fold"), use.UsageInputs(folds=folds, fold=1),
               use.UsageOutputNames(fold_predictions="fold_1_predictions"))


def _collate_example(use, task, outputs):
    folds = use.init_artifact("folds", functools.partial(folds_factory, task))
    results = [use.init_artifact(f"fold_{number}_predictions", functools.partial(fold_predictions_factory, task,
                                                                                 number))
               for number in (1, 2, 3)]
    use.action(use.UsageAction("mgm", f"collate_{task}_folds"), use.UsageInputs(folds=folds, fold_predictions=results),
               use.UsageOutputNames(**outputs, cross_validation="cross_validation"))


def collate_classification_folds_example(use):
    _collate_example(use, "classification", {"predictions": "predictions", "probabilities": "probabilities"})


def collate_regression_folds_example(use):
    _collate_example(use, "regression", {"predictions": "predictions"})


def _samples_cv_example(use, action, column, outputs):
    table = use.init_artifact("table", labelled_table_factory)
    taxonomy = use.init_artifact("taxonomy", taxonomy_factory)
    metadata = use.init_metadata("metadata", example_metadata)
    study = use.get_metadata_column("study", "study", metadata)
    use.action(use.UsageAction("mgm", action),
               use.UsageInputs(table=table, taxonomy=taxonomy,
                               metadata=use.get_metadata_column(column, column, metadata), groups=study,
                               batches=study, cv_strategy="leave-one-group-out", n_estimators=50),
               use.UsageOutputNames(**outputs, evaluation="evaluation"))


def classify_samples_cv_example(use):
    _samples_cv_example(use, "classify_samples_cv", "delivery",
                        {"predictions": "predictions", "probabilities": "probabilities"})


def regress_samples_cv_example(use):
    _samples_cv_example(use, "regress_samples_cv", "month", {"predictions": "predictions"})


def evaluate_cross_validation_example(use):
    result = use.init_artifact("cross_validation", cross_validation_factory)
    use.action(use.UsageAction("mgm", "evaluate_cross_validation"), use.UsageInputs(cross_validation=result),
               use.UsageOutputNames(visualization="evaluation"))
