"""Usage examples of the cross-validation actions and pipelines, and the fold artifacts they start from."""
import functools

from .data import (actions, example_metadata, labelled_corpus_factory, labelled_table_factory,
                   metadata_column, taxonomy_factory)


def _cross_validated(task):
    column = "delivery" if task == "classification" else "month"
    return getattr(actions(), f"cross_validate_{task}")(
        corpus=labelled_corpus_factory(), metadata=metadata_column(column), groups=metadata_column("study"),
        batches=metadata_column("study"), cv_strategy="leave-one-group-out", n_estimators=50)


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
    return actions().prepare_cross_validation(
        corpus=labelled_corpus_factory(), metadata=metadata_column(column), task=task, groups=metadata_column("study"),
        batches=metadata_column("study"), cv_strategy="leave-one-group-out", n_estimators=50).folds


@functools.lru_cache(maxsize=None)
def fold_predictions_factory(task, number):
    return actions().cross_validate_fold(folds=folds_factory(task), fold=number).fold_predictions


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
               use.UsageOutputNames(**outputs, evaluation="evaluation", markers="markers"))


def classify_samples_cv_example(use):
    _samples_cv_example(use, "classify_samples_cv", "delivery",
                        {"predictions": "predictions", "probabilities": "probabilities"})


def regress_samples_cv_example(use):
    _samples_cv_example(use, "regress_samples_cv", "month", {"predictions": "predictions"})


def evaluate_cross_validation_example(use):
    result = use.init_artifact("cross_validation", cross_validation_factory)
    use.action(use.UsageAction("mgm", "evaluate_cross_validation"), use.UsageInputs(cross_validation=result),
               use.UsageOutputNames(visualization="evaluation"))


def cross_validation_markers_example(use):
    result = use.init_artifact("cross_validation", cross_validation_factory)
    use.action(use.UsageAction("mgm", "cross_validation_markers"), use.UsageInputs(cross_validation=result),
               use.UsageOutputNames(markers="markers"))
