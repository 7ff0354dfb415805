"""The metadata area's errors with their advice applied (issue 19 item 3; tests/advice/metadata.py lists them):
each test provokes the error as a user meets it, applies the fix the message names, and the action then succeeds.
Also class columns written as numbers (issue 19): keystone-genera, keystone-report and trajectory read a numeric
class column as labels, named as written (1, not 1.0). Tiny models, and real data (ECAM) where the result is read."""
import re

import numpy as np
import pandas as pd
import pytest
import qiime2

from .helpers import corpus_of

pytestmark = pytest.mark.one_torch_thread


def _column(frame, name):
    return qiime2.Metadata(frame.rename_axis("id")).get_column(name)


def _frame(n=16):
    ids = [f"s{i:02d}" for i in range(n)]
    return pd.DataFrame({"status": ["a", "b"] * (n // 2), "age": np.arange(n, dtype=float),
                         "run": [f"run {i // (n // 2)}" for i in range(n)]}, index=ids)


# --- values the registration refuses before the core's own check (NotInput entries name the registration) ---

def test_a_recipe_or_projection_outside_the_choices_is_refused_by_the_registration(mgm_plugin, tiny_model,
                                                                                    genera):
    from q2_mgm.actions.cross_validation import PARAMETERS
    from q2_mgm.core.transfer import RECIPES
    from q2_mgm.core.trajectories import PROJECTIONS
    assert "bogus" not in PARAMETERS["recipe"] and all(name in PARAMETERS["recipe"] for name in RECIPES)
    for action in ("cross_validate_classification", "prepare_cross_validation"):
        assert "bogus" not in getattr(mgm_plugin.actions, action).signature.parameters["recipe"].qiime_type
    trajectory = mgm_plugin.actions.trajectory.signature.parameters["projection"].qiime_type
    assert "umap" not in trajectory and all(name in trajectory for name in PROJECTIONS)
    frame = _frame()
    with pytest.raises(TypeError, match="recipe"):
        mgm_plugin.actions.cross_validate_classification(corpus=corpus_of(genera, list(frame.index), 10),
                                                         model=tiny_model, metadata=_column(frame, "status"),
                                                         recipe="bogus")


# --- cross-validation fold by fold: a fold number outside the plan, a fold missing, a fold of other folds ---

def test_fold_numbers_and_fold_results_as_advised_collate(mgm_plugin, tiny_model, genera):
    from q2_mgm.core.transfer import TransferError
    frame = _frame()
    corpus = corpus_of(genera, list(frame.index), 11)
    settings = dict(corpus=corpus, model=tiny_model, metadata=_column(frame, "status"), task="classification",
                    cv=2, n_estimators=5, mgm_markers=False, device="cpu")
    folds, = mgm_plugin.actions.prepare_cross_validation(**settings)
    with pytest.raises(TransferError, match=r"fold must be between 1 and 2 .*not 3: run cross-validate-fold with "
                                            r"--p-fold 1 to 2"):
        mgm_plugin.actions.cross_validate_fold(folds=folds, fold=3)
    results = [mgm_plugin.actions.cross_validate_fold(folds=folds, fold=n).fold_predictions for n in (1, 2)]
    with pytest.raises(TransferError, match=r"Expected the results of folds 1-2 once each; got folds 1\. Run "
                                            "cross-validate-fold on these folds for each fold missing"):
        mgm_plugin.actions.collate_classification_folds(folds=folds, fold_predictions=results[:1])
    other, = mgm_plugin.actions.prepare_cross_validation(**settings, recipe="transfer-without-mgm")
    foreign = mgm_plugin.actions.cross_validate_fold(folds=other, fold=2).fold_predictions
    with pytest.raises(TransferError, match=r"The result of fold 2 was not made from these folds .*run "
                                            "cross-validate-fold on these folds"):
        mgm_plugin.actions.collate_classification_folds(folds=folds, fold_predictions=[results[0], foreign])
    predictions, probabilities, _ = mgm_plugin.actions.collate_classification_folds(folds=folds,
                                                                                    fold_predictions=results)
    assert sorted(predictions.view(pd.Series).index) == list(frame.index)
    assert np.allclose(probabilities.view(pd.DataFrame).sum(axis=1), 1)


# --- keystone-genera: a regressor's files imported as a classifier, a corpus without abundances, no metadata ---

def _as_classifier(model, tmp_path):
    """The model's files imported as MGMModel[Classifier], as a user may import a regressor's directory."""
    from q2_mgm._formats import MGMSupervisedModelDirFmt
    directory = tmp_path / "as-classifier"
    model.export_data(str(directory))
    return qiime2.Artifact.import_data("MGMModel[Classifier]", str(directory), MGMSupervisedModelDirFmt)


def test_a_regressor_fit_without_batches_refused_and_one_fit_with_them_as_advised_explained(mgm_plugin, tiny_model,
                                                                                            genera, tmp_path):
    """Imported as MGMModel[Regressor] or, as a user may import a regressor's directory, as MGMModel[Classifier]:
    keystone-genera reads the task from training.json either way."""
    from q2_mgm.core.keystone import KeystoneError
    frame = _frame()
    corpus = corpus_of(genera, list(frame.index), 12)
    fit = dict(corpus=corpus, model=tiny_model, epochs=1, device="cpu", metadata=_column(frame, "age"),
               task="regression")
    regressor, _ = mgm_plugin.actions.fine_tune(**fit)
    for model in (regressor, _as_classifier(regressor, tmp_path / "r")):
        with pytest.raises(KeystoneError, match="This regressor was fit without batches.*Fine-tune the regressor "
                                                "with batches"):
            mgm_plugin.actions.keystone_genera(corpus=corpus, model=model, metadata=_column(frame, "age"),
                                               device="cpu")
    batch_regressor, _ = mgm_plugin.actions.fine_tune(**fit, batches=_column(frame, "run"))
    for model in (batch_regressor, _as_classifier(batch_regressor, tmp_path / "b")):
        importance, = mgm_plugin.actions.keystone_genera(corpus=corpus, model=model, metadata=_column(frame, "age"),
                                                         batches=_column(frame, "run"), method="gradient",
                                                         min_samples=1, device="cpu")
        assert list(importance.view(pd.DataFrame).columns) == ["lower", "higher"]


def test_a_corpus_without_abundances_tokenized_again_as_advised_is_explained(mgm_plugin, tiny_model, genera):
    import dataclasses
    from q2_mgm.core.keystone import KeystoneError
    from q2_mgm.core.tokenizer import Corpus
    from .test_metadata_shapes import forward_calls
    frame = _frame()
    corpus = corpus_of(genera, list(frame.index), 13)
    model, _ = mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model, metadata=_column(frame, "status"),
                                            task="classification", batches=_column(frame, "run"), device="cpu")
    older = qiime2.Artifact.import_data("SampleData[MGMCorpus]",
                                        dataclasses.replace(corpus.view(Corpus), abundances=None))
    parameters = dict(model=model, metadata=_column(frame, "status"), batches=_column(frame, "run"),
                      method="gradient", min_samples=1, device="cpu")
    with forward_calls() as calls, pytest.raises(KeystoneError, match="this corpus holds none .* Tokenize the table "
                                                                      "again"):
        mgm_plugin.actions.keystone_genera(corpus=older, **parameters)
    assert calls == []
    # tokenize the table again: the corpus tokenize makes of the same counts
    from tests.helpers import frequency_table
    counts = pd.DataFrame(np.random.default_rng(13).integers(1, 50, size=(16, len(genera))).astype(float),
                          index=frame.index, columns=genera)
    again, = mgm_plugin.actions.tokenize(table=frequency_table(counts))
    importance, = mgm_plugin.actions.keystone_genera(corpus=again, **parameters)
    assert list(importance.view(pd.DataFrame).columns) == ["a", "b"]


def test_a_pretrained_model_without_metadata_and_with_it_as_advised(mgm_plugin, tiny_model, genera):
    from q2_mgm.core.keystone import KeystoneError
    from .test_metadata_shapes import forward_calls
    frame = _frame()
    corpus = corpus_of(genera, list(frame.index), 14)
    with forward_calls() as calls, pytest.raises(KeystoneError, match=r"needs a categorical metadata column .*pass "
                                                                      "it as `metadata`"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=tiny_model, device="cpu")
    assert calls == []
    importance, = mgm_plugin.actions.keystone_genera(corpus=corpus, model=tiny_model, metadata=_column(frame, "status"),
                                                     min_samples=1, device="cpu")
    assert list(importance.view(pd.DataFrame).columns) == ["a", "b"]


# --- class columns written as numbers: read as labels, named as written (1, not 1.0) ---

@pytest.fixture(scope="module")
def ecam_numbered(ecam_metadata, ecam_subset_corpus_artifact):
    """ECAM's delivery mode written as numbers (1 Cesarean, 2 Vaginal): the numeric column QIIME 2 reads, and the
    same labels as a categorical column."""
    frame = ecam_metadata.to_dataframe()
    ids = ecam_subset_corpus_artifact.view(pd.DataFrame).index
    frame = frame.loc[frame.index.isin(ids), ["delivery", "month"]].copy()
    frame["delivery_code"] = frame.delivery.map({"Cesarean": 1.0, "Vaginal": 2.0})
    numeric = qiime2.Metadata(frame[["delivery_code", "month"]])
    categorical = qiime2.Metadata(frame[["delivery_code"]].astype(int).astype(str))
    assert isinstance(numeric.get_column("delivery_code"), qiime2.NumericMetadataColumn)
    assert isinstance(categorical.get_column("delivery_code"), qiime2.CategoricalMetadataColumn)
    return numeric, categorical


def test_a_numeric_class_column_gives_what_the_same_labels_give_as_categories(
        mgm_plugin, tiny_model, ecam_subset_corpus_artifact, ecam_numbered, tmp_path):
    numeric, categorical = ecam_numbered
    corpus = ecam_subset_corpus_artifact
    tables = [mgm_plugin.actions.keystone_genera(corpus=corpus, model=tiny_model, metadata=m.get_column(
        "delivery_code"), device="cpu").importance.view(pd.DataFrame) for m in (numeric, categorical)]
    assert list(tables[0].columns) == ["1", "2"]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    pages = []
    for name, m in (("numeric", numeric), ("categorical", categorical)):
        report, = mgm_plugin.actions.keystone_report(corpus=corpus, model=tiny_model,
                                                     metadata=m.get_column("delivery_code"), n_bootstrap=20,
                                                     device="cpu")
        report.export_data(str(tmp_path / name))
        pages.append(pd.read_csv(tmp_path / name / "keystone_genera.tsv", sep="\t", dtype={"group": str}))
    assert set(pages[0].group) == {"1", "2"}
    pd.testing.assert_frame_equal(pages[0], pages[1])
    page, same = ((tmp_path / name / "index.html").read_text() for name in ("numeric", "categorical"))
    assert page == same and re.search(r"[>' ]1\.0[<' ]", page) is None
    embeddings = mgm_plugin.actions.embed(corpus=corpus, model=tiny_model).embeddings
    placed = []
    for name, m in (("numeric", numeric), ("categorical", categorical)):
        paths, = mgm_plugin.actions.trajectory(embeddings=embeddings, time=numeric.get_column("month"),
                                               group=m.get_column("delivery_code"))
        paths.export_data(str(tmp_path / f"trajectory-{name}"))
        placed.append(pd.read_csv(tmp_path / f"trajectory-{name}" / "samples.tsv", sep="\t", index_col=0,
                                  dtype={"group": str}))
    assert set(placed[0].group) == {"1", "2"}
    pd.testing.assert_frame_equal(placed[0], placed[1])


def test_class_columns_take_numbers_and_say_how_they_are_read(mgm_plugin):
    for action, parameter in (("keystone_genera", "metadata"), ("keystone_report", "metadata"),
                              ("trajectory", "group")):
        signature = getattr(mgm_plugin.actions, action).signature
        assert "Numeric" in str(signature.parameters[parameter].qiime_type)
        assert "read as labels" in signature.parameters[parameter].description
