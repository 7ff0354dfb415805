"""The cross-study area's errors (issue 19 item 3): each test meets an error the way a user does (an action, or an
artifact edited by hand), then applies exactly the fix the message names and checks that the action then succeeds.
tests/advice/cross_study.py lists them. Real data (36 samples of a three-study Crohn's disease cohort) and the tiny
model, so that each runs in seconds."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_mgm.core import schemas
from q2_mgm.core.transfer import TransferError
from tests.helpers import assert_refused, read_genus_table, read_metadata, subset_corpus

COHORT = "disease-benchmark/CD_Amplicon"
LOGO = "leave-one-group-out"


@pytest.fixture(scope="module")
def cohort(mgm_plugin):
    """(table, corpus, metadata) of 6 samples of each class in each of the cohort's 3 studies: Group (Case or
    Control), study, subject (two samples of one class each: subjects), sample (each sample its own group) and
    score (a number to regress)."""
    table = read_genus_table(COHORT, "genus_relative.tsv")
    metadata = read_metadata(COHORT)
    metadata["study"] = "study " + metadata["pair_rank"].astype(str)
    metadata = metadata.sort_values(["study", "Group"], kind="stable").groupby(["study", "Group"]).head(6)
    metadata["subject"] = [f"subject {i // 2}" for i in range(len(metadata))]
    metadata["sample"] = metadata.index
    metadata["score"] = np.linspace(0.0, 10.0, len(metadata))
    artifact = qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table.loc[metadata.index])
    corpus, = mgm_plugin.actions.tokenize(table=artifact, max_length=64)
    return artifact, corpus, qiime2.Metadata(metadata[["Group", "study", "subject", "sample", "score"]])


def _cv(tiny_model, **settings):
    return dict(model=tiny_model, n_estimators=10, mgm_markers=False, device="cpu", **settings)


@pytest.fixture(scope="module")
def class_folds(mgm_plugin, cohort, tiny_model):
    """prepare-cross-validation of Group, 3-fold, the study as batches."""
    _, corpus, metadata = cohort
    folds, = mgm_plugin.actions.prepare_cross_validation(
        corpus=corpus, metadata=metadata.get_column("Group"), task="classification",
        batches=metadata.get_column("study"), **_cv(tiny_model, cv=3))
    return folds


@pytest.fixture(scope="module")
def batch_classifier(mgm_plugin, cohort, tiny_model):
    """The tiny model fine-tuned on Group with the study as batches (an across-study recipe: transfer.safetensors)."""
    _, corpus, metadata = cohort
    model, _ = mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model, metadata=metadata.get_column("Group"),
                                            task="classification", batches=metadata.get_column("study"),
                                            device="cpu")
    return model


@pytest.fixture(scope="module")
def predicted(mgm_plugin, cohort, batch_classifier):
    """(predictions, probabilities) of every sample, from one predict-classification run."""
    _, corpus, metadata = cohort
    return mgm_plugin.actions.predict_classification(corpus=corpus, model=batch_classifier, device="cpu",
                                                     batches=metadata.get_column("study"))


# --- actions/cross_validation.py ---

def test_a_corpus_without_abundances_is_refused_and_the_table_tokenized_again_cross_validates(mgm_plugin, cohort,
                                                                                              tiny_model):
    """A generated corpus (or one from an older q2-mgm) holds no abundances: refused before the model runs; the
    table tokenized again cross-validates."""
    from q2_mgm.core.tokenizer import Corpus
    table, corpus, metadata = cohort
    bare = qiime2.Artifact.import_data("SampleData[MGMCorpus]",
                                       dataclasses.replace(corpus.view(Corpus), abundances=None))
    settings = _cv(tiny_model, metadata=metadata.get_column("Group"), cv=3)
    with pytest.raises(TransferError, match="This corpus holds no genus abundances.*Tokenize the table again"):
        mgm_plugin.actions.cross_validate_classification(corpus=bare, **settings)
    again, = mgm_plugin.actions.tokenize(table=table, max_length=64)
    predictions, _, _ = mgm_plugin.actions.cross_validate_classification(corpus=again, **settings)
    assert set(predictions.view(pd.Series).index) == set(corpus.view(Corpus).samples.index)


def test_regression_of_a_categorical_column_is_refused_and_both_fixes_prepare(mgm_plugin, cohort, tiny_model):
    from q2_mgm._formats import MGMCrossValidationFoldsDirFmt
    from q2_mgm.core.cross_validation_store import fold_count
    _, corpus, metadata = cohort
    with pytest.raises(TransferError, match="task is 'regression' but 'Group' is categorical; regress a numeric "
                                            "column, or use task 'classification'"):
        mgm_plugin.actions.prepare_cross_validation(corpus=corpus, metadata=metadata.get_column("Group"),
                                                    task="regression", **_cv(tiny_model, cv=3))
    for column, task in (("Group", "classification"), ("score", "regression")):
        folds, = mgm_plugin.actions.prepare_cross_validation(corpus=corpus, metadata=metadata.get_column(column),
                                                             task=task, **_cv(tiny_model, cv=3))
        assert fold_count(folds.view(MGMCrossValidationFoldsDirFmt).path) == 3


def test_folds_collated_by_the_other_tasks_action_are_refused_and_the_named_action_collates(mgm_plugin, cohort,
                                                                                           class_folds):
    _, corpus, _ = cohort
    results = [mgm_plugin.actions.cross_validate_fold(folds=class_folds, fold=number).fold_predictions
               for number in (1, 2, 3)]
    with pytest.raises(TransferError, match="These folds were prepared for classification; collate them with "
                                            "collate-classification-folds"):
        mgm_plugin.actions.collate_regression_folds(folds=class_folds, fold_predictions=results)
    predictions, probabilities, _ = mgm_plugin.actions.collate_classification_folds(folds=class_folds,
                                                                                    fold_predictions=results)
    assert len(predictions.view(pd.Series)) == len(corpus.view(pd.DataFrame))
    assert list(probabilities.view(pd.DataFrame).columns) == ["Case", "Control"]


def test_held_out_groups_of_one_sample_score_no_marker_and_the_advised_folds_rank_the_genera(mgm_plugin, cohort,
                                                                                             tiny_model):
    """Leaving out one sample at a time scores no genus: cross-validation-markers says so, and the pipeline refuses
    before any work; k-fold, or groups of several samples, as advised, give the markers."""
    table, corpus, metadata = cohort
    settings = _cv(tiny_model, metadata=metadata.get_column("score"))
    _, result = mgm_plugin.actions.cross_validate_regression(corpus=corpus, groups=metadata.get_column("sample"),
                                                             cv_strategy=LOGO, **settings)
    with pytest.raises(TransferError, match="No genus was scored in any held-out group.*cv_strategy 'k-fold', or a "
                                            "groups column whose groups each hold several samples"):
        mgm_plugin.actions.cross_validation_markers(cross_validation=result)
    with pytest.raises(TransferError, match="Every group of 'sample' holds one sample.*Use cv_strategy 'k-fold', "
                                            "or a groups column whose groups each hold several samples"):
        mgm_plugin.actions.regress_samples_cv(table=table, metadata=metadata.get_column("score"),
                                              groups=metadata.get_column("sample"), cv_strategy=LOGO,
                                              n_estimators=10, mgm_markers=False, device="cpu")
    for fix in (dict(cv_strategy="k-fold", cv=3), dict(groups=metadata.get_column("subject"), cv_strategy=LOGO)):
        _, result = mgm_plugin.actions.cross_validate_regression(corpus=corpus, **settings, **fix)
        markers, = mgm_plugin.actions.cross_validation_markers(cross_validation=result)
        importance = markers.view(pd.DataFrame)
        assert len(importance) > 5 and importance.index.str.startswith("g__").all()


# --- core/meta_analysis.py, as a cross-validation's evaluation shows it ---

def test_a_meta_analysis_over_groups_of_one_class_is_not_run_and_batches_of_both_classes_as_advised_run_it(
        mgm_plugin, cohort, tiny_model):
    """k-fold over subjects (each of one class) with no batches: the meta-analysis would compare the classes within
    each subject, and says it cannot; with the studies (each holding both classes) as batches, as advised, it runs."""
    from q2_mgm.core.cross_validation_store import CrossValidation
    _, corpus, metadata = cohort
    settings = _cv(tiny_model, metadata=metadata.get_column("Group"), groups=metadata.get_column("subject"),
                   cv=3)
    *_, result = mgm_plugin.actions.cross_validate_classification(corpus=corpus, **settings)
    said = result.view(CrossValidation).record["markers"]["meta_analysis"]
    assert said.startswith("not run: No batch holds at least 2 samples of each class ('Case' and 'Control')")
    assert "Give batches that each hold both classes, such as studies" in said
    *_, result = mgm_plugin.actions.cross_validate_classification(corpus=corpus, batches=metadata.get_column("study"),
                                                                  **settings)
    cross_validation = result.view(CrossValidation)
    assert cross_validation.record["markers"]["meta_analysis"]["over"] == "batches"
    assert cross_validation.record["markers"]["meta_analysis"]["batches_compared"] == ["study 1", "study 2", "study 3"]
    assert cross_validation.meta["hedges_g"].notna().sum() > 5


# --- core/transfer.py: what a batch-fit model and a fold plan store, edited by hand ---

def _drop_array(name):
    def edit(directory):
        import safetensors.numpy
        path = directory / schemas.TRANSFER_FILE
        arrays = safetensors.numpy.load_file(str(path))
        arrays.pop(name)
        safetensors.numpy.save_file(arrays, str(path))
    return edit


def _rename_recipe(directory):
    path = directory / schemas.TRAINING_RECORD_FILE
    record = json.loads(path.read_text())
    record["transfer"]["recipe"] = "random-forest"
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("edit, words", [
    (_rename_recipe, "The stored recipe 'random-forest' is not one q2-mgm stores as arrays"),
    (_drop_array("part0.coef"), "The stored mgm-transfer lacks part0.coef; re-create the model"),
    (None, None),
], ids=["recipe renamed", "array removed", "as fine-tune made it"])
def test_a_batch_fit_models_recipe_edited_by_hand_is_refused_and_the_model_as_made_predicts(
        mgm_plugin, cohort, batch_classifier, edit, words, tmp_path):
    """The fix, re-create the model (fine-tune with batches): the model as fine-tune made it validates and
    predicts."""
    from q2_mgm._formats import MGMSupervisedModelDirFmt
    _, corpus, metadata = cohort
    directory = tmp_path / "model"
    batch_classifier.export_data(str(directory))
    if edit is not None:
        edit(directory)
        assert_refused(MGMSupervisedModelDirFmt, "MGMModel[Classifier]", directory,
                       [schemas.TRANSFER_FILE, words, "re-create the model with q2-mgm"])
        return
    MGMSupervisedModelDirFmt(str(directory), mode="r").validate(level="max")
    model = qiime2.Artifact.import_data("MGMModel[Classifier]", str(directory))
    predictions, _ = mgm_plugin.actions.predict_classification(corpus=corpus, model=model, device="cpu",
                                                               batches=metadata.get_column("study"))
    assert set(predictions.view(pd.Series)) <= {"Case", "Control"}


def test_a_fold_plan_with_a_batch_of_one_sample_is_refused_and_the_plan_without_batches_runs(
        mgm_plugin, cohort, tiny_model, class_folds, tmp_path):
    """A batch of the plan's samples.tsv edited to hold one sample: refused on import, as standardising within it
    is impossible; the fix, leave batches out (prepare-cross-validation without them), gives folds that run."""
    from q2_mgm._formats import MGMCrossValidationFoldsDirFmt
    _, corpus, metadata = cohort
    directory = tmp_path / "folds"
    class_folds.export_data(str(directory))
    samples = pd.read_csv(directory / schemas.FOLDS_SAMPLES_FILE, sep="\t", keep_default_na=False, dtype=str)
    samples.loc[0, "batch"] = "study 9"
    samples.to_csv(directory / schemas.FOLDS_SAMPLES_FILE, sep="\t", index=False)
    assert_refused(MGMCrossValidationFoldsDirFmt, "MGMCrossValidationFolds", directory,
                   ["Batch 'study 9' holds 1 sample(s)", "Merge small batches with related ones, or leave batches "
                                                          "out"])
    folds, = mgm_plugin.actions.prepare_cross_validation(corpus=corpus, metadata=metadata.get_column("Group"),
                                                         task="classification", **_cv(tiny_model, cv=3))
    result, = mgm_plugin.actions.cross_validate_fold(folds=folds, fold=1)
    from q2_mgm.core.cross_validation_store import FoldResult
    assert len(result.view(FoldResult).predictions) > 0


def test_an_unknown_recipe_is_refused_by_the_registration_and_by_the_fold_plan(class_folds, tmp_path):
    """What NotInput claims for make_recipe: no recipe outside RECIPES reaches it, as the registration's Choices
    refuse it and the fold plan's validation refuses any method outside RECIPES."""
    from q2_mgm._formats import MGMCrossValidationFoldsDirFmt
    from q2_mgm.actions.cross_validation import PARAMETERS
    from q2_mgm.core.transfer import RECIPES
    assert "no-such-recipe" not in PARAMETERS["recipe"] and all(name in PARAMETERS["recipe"] for name in RECIPES)
    directory = tmp_path / "folds"
    class_folds.export_data(str(directory))
    path = directory / schemas.FOLDS_RECORD_FILE
    record = json.loads(path.read_text())
    record["methods"] = [*record["methods"], "no-such-recipe"]
    path.write_text(json.dumps(record))
    assert_refused(MGMCrossValidationFoldsDirFmt, "MGMCrossValidationFolds", directory, ["known recipes"])


# --- visualizers/evaluate.py ---

def test_predicted_samples_without_a_true_class_are_refused_and_the_advised_fixes_evaluate(
        mgm_plugin, cohort, batch_classifier, predicted, tmp_path):
    """Three predicted samples lack a Group: refused; a truth column holding every one, or predictions of the
    table filtered to the samples with a value (filter-samples --p-where), as advised, evaluate."""
    from qiime2.plugins import feature_table
    table, _, metadata = cohort
    frame = metadata.to_dataframe()
    frame.loc[frame.index[:3], "Group"] = np.nan
    partial = qiime2.Metadata(frame)
    _, probabilities = predicted
    with pytest.raises(ValueError, match=r"3 predicted samples have no value in 'Group' \(for example "
                                         f"{frame.index[0]}.*filter-samples --p-where"):
        mgm_plugin.actions.evaluate_classification(probabilities=probabilities, truth=partial.get_column("Group"))
    mgm_plugin.actions.evaluate_classification(probabilities=probabilities, truth=metadata.get_column("Group"))
    labelled, = feature_table.actions.filter_samples(table=table, metadata=partial, where="[Group] IS NOT NULL")
    corpus, = mgm_plugin.actions.tokenize(table=labelled, max_length=64)
    _, probabilities = mgm_plugin.actions.predict_classification(corpus=corpus, model=batch_classifier,
                                                                 device="cpu", batches=partial.get_column("study"))
    visualization, = mgm_plugin.actions.evaluate_classification(probabilities=probabilities,
                                                                truth=partial.get_column("Group"))
    visualization.export_data(str(tmp_path / "page"))
    summary = pd.read_csv(tmp_path / "page" / "summary.tsv", sep="\t", index_col=0)
    assert summary.at["MGM", "test samples"] == len(frame) - 3


def test_predictions_and_probabilities_of_different_runs_are_refused_and_one_runs_outputs_evaluate(
        mgm_plugin, cohort, tiny_model, batch_classifier, predicted):
    """Predictions of other samples, or of a model with other classes: refused; both outputs of the same
    predict-classification run, as advised, evaluate."""
    _, corpus, metadata = cohort
    studies = metadata.get_column("study").to_series()
    predictions, probabilities = predicted
    others, _ = mgm_plugin.actions.predict_classification(
        corpus=subset_corpus(corpus, studies.index[studies != "study 1"]), model=batch_classifier, device="cpu",
        batches=metadata.get_column("study"))
    study_model, _ = mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model,
                                                  metadata=metadata.get_column("study"), task="classification",
                                                  epochs=1, forest_trees=10, device="cpu")
    of_studies, _ = mgm_plugin.actions.predict_classification(corpus=corpus, model=study_model, device="cpu")
    truth = metadata.get_column("Group")
    counts = f"{len(others.view(pd.Series))} and {len(probabilities.view(pd.DataFrame))}"
    with pytest.raises(ValueError, match=f"predictions and probabilities hold different samples \\({counts}\\); pass "
                                         "both outputs of the same predict-classification run"):
        mgm_plugin.actions.evaluate_classification(probabilities=probabilities, predictions=others, truth=truth)
    with pytest.raises(ValueError, match="predictions name classes the probabilities do not \\(study .*\\); pass "
                                         "both outputs of the same predict-classification run"):
        mgm_plugin.actions.evaluate_classification(probabilities=probabilities, predictions=of_studies, truth=truth)
    visualization, = mgm_plugin.actions.evaluate_classification(probabilities=probabilities, predictions=predictions,
                                                                truth=truth)
    assert visualization.type == qiime2.sdk.util.parse_type("Visualization")


def test_a_truth_column_of_other_classes_is_refused_and_the_trained_column_evaluates(mgm_plugin, cohort, predicted):
    _, _, metadata = cohort
    _, probabilities = predicted
    with pytest.raises(ValueError, match="'study' holds classes the model does not know \\(study 1, study 2, "
                                         "study 3\\); the model predicts Case, Control. Evaluate with the column the "
                                         "model was trained on"):
        mgm_plugin.actions.evaluate_classification(probabilities=probabilities, truth=metadata.get_column("study"))
    visualization, = mgm_plugin.actions.evaluate_classification(probabilities=probabilities,
                                                                truth=metadata.get_column("Group"))
    assert visualization.type == qiime2.sdk.util.parse_type("Visualization")
