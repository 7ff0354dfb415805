"""classify-samples-cv / regress-samples-cv and their parts, on real cohorts: leave-one-study-out on a three-study
case/control cohort of ../shared/data/disease-benchmark, grouped k-fold regression of infant age on ECAM."""
import html as html_module
import json
import os
import pathlib
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import qiime2
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from q2_mgm.core import schemas
from q2_mgm.core.cross_validation import make_folds
from q2_mgm.core.cross_validation_store import (CrossValidation, CrossValidationFormatError, FoldResult,
                                          load_cross_validation)
from q2_mgm.core.transfer import SampleFeatures, TransferError, standardise_within_batches
from tests.helpers import read_genus_table, read_metadata, subset_corpus

COHORT = "disease-benchmark/CD_Amplicon"  # 226 samples from three studies (pair_rank)


@pytest.fixture(scope="module")
def cohort():
    table = read_genus_table(COHORT, "genus_relative.tsv")
    metadata = read_metadata(COHORT)
    metadata["study"] = "study " + metadata["pair_rank"].astype(str)
    return table, qiime2.Metadata(metadata[["Group", "study"]])


@pytest.fixture(scope="module")
def loso(cohort):
    from qiime2.plugins import mgm
    table, metadata = cohort
    table = table.copy()  # the module's cohort stays as read: later tests count its samples
    table.iloc[0] = 0.0  # a sample with no reads: tokenization drops it, and the evaluation must list it
    artifact = qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table)
    study = metadata.get_column("study")
    return mgm.actions.classify_samples_cv(table=artifact, metadata=metadata.get_column("Group"), groups=study,
                                           batches=study, cv_strategy="leave-one-group-out", n_estimators=100,
                                           transfer_matrix=True, mgm_markers=False), table


def test_leave_one_study_out_predicts_every_sample_once_from_models_that_never_saw_its_study(loso, cohort, tmp_path):
    results, table = loso
    cohort_labels = cohort[1].get_column("Group").to_series().reindex
    predictions = results.predictions.view(pd.Series)
    probabilities = results.probabilities.view(pd.DataFrame)
    assert len(predictions) == len(table) - 1 and table.index[0] not in predictions.index
    assert set(predictions) <= {"Case", "Control"}
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    results.evaluation.export_data(tmp_path)
    per_fold = pd.read_csv(tmp_path / "per_fold.tsv", sep="\t")
    assert sorted(per_fold["fold"].unique()) == ["study 1", "study 2", "study 3"]
    assert set(per_fold["method"]) == {"mgm-transfer", "random-forest", "batch-clr-logistic"}
    mgm_scores = per_fold.loc[per_fold["method"] == "mgm-transfer", "ROC AUC"]
    assert mgm_scores.between(0.5, 1.0).all() and mgm_scores.mean() > 0.65  # real signal in every held-out study
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t", index_col=0)  # of the classes called, pooled
    truth = cohort_labels(predictions.index)
    assert summary.at["mgm-transfer", "accuracy"] == pytest.approx((predictions == truth).mean())
    assert 0.5 < summary.at["mgm-transfer", "balanced accuracy"] <= 1
    left_out = pd.read_csv(tmp_path / "left_out_samples.tsv", sep="\t")
    assert list(left_out["sample_id"]) == [table.index[0]] and "tokenization" in left_out["reason"][0]
    page = (tmp_path / "index.html").read_text()
    for part in ("Per held-out fold", "dot_plot.png", "roc_pr.png", "transfer_matrix.png", "Samples left out",
                 "95% interval"):
        assert part in page
    transfer = pd.read_csv(tmp_path / "transfer_matrix.tsv", sep="\t")
    assert len(transfer) == 3 * 2 * 3  # methods x trained-on study x each other study


def test_the_random_forest_baseline_is_fit_on_exactly_the_samples_mgm_was(loso, cohort, tmp_path):
    """The held-out study's forest is an ordinary RandomForest on the other studies' samples that MGM read."""
    results, table = loso
    _, metadata = cohort
    results.evaluation.export_data(tmp_path)
    frame = pd.read_csv(tmp_path / "out_of_fold_predictions.tsv", sep="\t", dtype={"sample_id": str, "fold": str})
    forest = frame[frame["method"] == "random-forest"].set_index("sample_id")
    labels = metadata.get_column("Group").to_series()
    relative = table.loc[forest.index].div(table.loc[forest.index].sum(axis=1), axis=0)
    held_out = forest.index[forest["fold"] == "study 1"]
    training = forest.index[forest["fold"] != "study 1"]
    genera = relative.columns[(relative.loc[forest.index] > 0).any()]
    baseline = RandomForestClassifier(100, random_state=0, n_jobs=1).fit(relative.loc[training, genera],
                                                                       labels[training])
    # the corpus keeps the genera of MGM's vocabulary (97-99% of these cohorts' abundance): compare the rankings
    expected = baseline.predict_proba(relative.loc[held_out, genera])[:, list(baseline.classes_).index("Case")]
    got = forest.loc[held_out, schemas.CV_PROBABILITY_PREFIX + "Case"]
    truth = labels[held_out] == "Case"
    assert abs(roc_auc_score(truth, expected) - roc_auc_score(truth, got)) < 0.05


def test_the_same_seed_gives_the_same_predictions(cohort):
    from qiime2.plugins import mgm
    table, metadata = cohort
    corpus, = mgm.actions.tokenize(table=qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table))
    runs = [mgm.actions.cross_validate_classification(corpus=corpus, metadata=metadata.get_column("Group"),
                                                      groups=metadata.get_column("study"), cv=3, n_estimators=50,
                                                      random_state=7, mgm_markers=False)
            for _ in range(2)]
    first, second = (r.cross_validation.view(CrossValidation) for r in runs)
    pd.testing.assert_frame_equal(first.predictions, second.predictions)


def test_regression_across_children_on_ecam():
    from qiime2.plugins import mgm
    table = read_genus_table("ecam", "genus_relative.tsv")
    metadata = read_metadata("ecam").loc[table.index]
    infants = metadata.index[metadata["month"] <= 12]
    frame = metadata.loc[infants, ["month", "studyid"]].astype({"studyid": str}).rename_axis("sample-id")
    columns = qiime2.Metadata(frame)
    corpus, = mgm.actions.tokenize(table=qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]",
                                                                     table.loc[infants]))
    predictions, result = mgm.actions.cross_validate_regression(
        corpus=corpus, metadata=columns.get_column("month"), groups=columns.get_column("studyid"), cv=4,
        n_estimators=50, mgm_markers=False)
    values = predictions.view(pd.Series)
    truth = frame.loc[values.index, "month"]
    assert np.corrcoef(values, truth)[0, 1] > 0.6  # age is learnt across children none of whose samples trained it
    visualization, = mgm.actions.evaluate_cross_validation(cross_validation=result)
    assert visualization.type == qiime2.sdk.util.parse_type("Visualization")


def test_folds():
    targets = np.array([0, 1] * 10)
    groups = np.repeat(["a", "b", "c", "d", "e"], 4)
    logo = make_folds(targets, groups, 5, "leave-one-group-out", "classification", 0)
    assert [f.name for f in logo] == ["a", "b", "c", "d", "e"]
    kfold = make_folds(targets, groups, 5, "k-fold", "classification", 0)
    held = np.concatenate([f.test for f in kfold])
    assert sorted(held) == list(range(20))  # each sample held out exactly once
    for fold in kfold:
        assert not set(groups[fold.train]) & set(groups[fold.test])
    with pytest.raises(TransferError, match="needs a groups column"):
        make_folds(targets, None, 5, "leave-one-group-out", "classification", 0)
    with pytest.raises(TransferError, match="lower cv to 5"):
        make_folds(targets, groups, 6, "k-fold", "classification", 0)
    with warnings.catch_warnings():  # a class in fewer groups than folds: no console warning (the page shows it)
        warnings.simplefilter("error")
        rare = make_folds(np.array([0] * 40 + [1] * 4), np.array([f"g{i // 2}" for i in range(44)]), 5, "k-fold",
                          "classification", 0)
    assert sorted(np.concatenate([f.test for f in rare])) == list(range(44))
    with pytest.raises(TransferError, match="A class has 2 samples"):
        make_folds(np.array([0] * 10 + [1] * 2), None, 5, "k-fold", "classification", 0)
    with pytest.raises(TransferError, match="Class 'Rare' of 'diagnosis' has 2 samples, fewer than the cv=5"):
        make_folds(np.array([0] * 10 + [1] * 2), None, 5, "k-fold", "classification", 0, ["CD", "Rare"],
                   "diagnosis")


def test_a_class_too_small_for_stratified_k_fold_stops_the_pipeline_before_tokenizing(cohort, monkeypatch):
    """A new user who followed 'leave groups out and use k-fold' met the class-size error only after tokenizing;
    the pipeline now checks the metadata's classes first, and the advised cv runs."""
    from qiime2.plugins import mgm
    from q2_mgm.actions import corpus
    table, metadata = cohort
    frame = metadata.to_dataframe()
    frame.loc[frame.index[:2], "Group"] = "Rare"  # two samples of a third class
    artifact = qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table)
    group = qiime2.Metadata(frame).get_column("Group")
    with monkeypatch.context() as patched:
        patched.setattr(corpus, "tokenize_matrix", lambda *a, **k: pytest.fail("tokenized before the check"))
        with pytest.raises(TransferError, match="Class 'Rare' of 'Group' has 2 samples, fewer than the cv=5 folds.*"
                                                "--p-cv 2"):
            mgm.actions.classify_samples_cv(table=artifact, metadata=group)
    predictions, *_ = mgm.actions.classify_samples_cv(table=artifact, metadata=group, cv=2, n_estimators=20,
                                                      mgm_markers=False)
    assert set(predictions.view(pd.Series)) <= {"Case", "Control", "Rare"}


def test_a_class_absent_from_the_training_side_of_a_fold_is_a_clear_error(cohort):
    from qiime2.plugins import mgm
    table, metadata = cohort
    frame = metadata.to_dataframe()
    frame.loc[frame["study"] == "study 1", "Group"] = "Rare"  # a class found in one study only
    corpus, = mgm.actions.tokenize(table=qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table))
    columns = qiime2.Metadata(frame)
    with pytest.raises(TransferError, match="Class 'Rare' of 'Group' is held by one group of 'study' only, "
                                            "'study 1': holding out 'study 1' leaves no sample of 'Rare'.*leave "
                                            "groups out and use cv_strategy 'k-fold'"):
        mgm.actions.cross_validate_classification(corpus=corpus, metadata=columns.get_column("Group"),
                                                  groups=columns.get_column("study"),
                                                  cv_strategy="leave-one-group-out")
    # the fix it names: no groups, stratified k-fold
    predictions, _, _ = mgm.actions.cross_validate_classification(
        corpus=corpus, metadata=columns.get_column("Group"), cv_strategy="k-fold", n_estimators=20, device="cpu",
        mgm_markers=False)
    assert len(predictions.view(pd.Series)) == len(corpus.view(pd.DataFrame))


def test_standardising_within_batches_reads_each_batch_alone():
    rng = np.random.default_rng(0)
    features = np.vstack([rng.normal(5, 2, (30, 4)), rng.normal(-3, 0.5, (20, 4))])
    batches = np.array(["x"] * 30 + ["y"] * 20)
    out = standardise_within_batches(features, batches)
    for batch in ("x", "y"):
        np.testing.assert_allclose(out[batches == batch].mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(out[batches == batch].std(0), 1)
    # a batch's correction does not depend on the other batches' samples
    np.testing.assert_allclose(standardise_within_batches(features[30:], batches[30:]), out[30:])
    with pytest.raises(TransferError, match="Batch 'z' holds 1 sample"):
        SampleFeatures(np.zeros((3, 8)), np.zeros((3, 2)), pd.DataFrame(np.ones((3, 2))), np.array(["y", "y", "z"]))


def test_a_tampered_cross_validation_is_refused(tmp_path):
    from q2_mgm._examples.cross_validation import cross_validation_factory
    result = cross_validation_factory()
    folder = tmp_path / "cv"
    result.export_data(folder)
    load_cross_validation(folder)
    record = json.loads((folder / schemas.CV_RECORD_FILE).read_text())
    record["methods"] = record["methods"][:1]
    (folder / schemas.CV_RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(CrossValidationFormatError, match="methods the record does not list"):
        load_cross_validation(folder)


def test_a_model_fit_with_batches_corrects_a_new_study_on_itself(cohort, tmp_path):
    """fine-tune with batches on two studies, predict the third given as its own batch, or as the whole corpus (the
    same predictions); clear errors where batches do not fit the model."""
    from qiime2.plugins import mgm
    table, metadata = cohort
    frame = metadata.to_dataframe()
    corpus, = mgm.actions.tokenize(table=qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table))
    corpus_view = corpus.view(__import__("q2_mgm.core.tokenizer", fromlist=["Corpus"]).Corpus)
    held = frame.index[frame["study"] == "study 3"].intersection(corpus_view.samples.index)
    training_ids = corpus_view.samples.index.difference(held)
    training_corpus = qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus_view.subset(training_ids))
    test_corpus = qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus_view.subset(held))
    model, history = mgm.actions.fine_tune(corpus=training_corpus, metadata=metadata.get_column("Group"),
                                           task="classification", batches=metadata.get_column("study"))
    assert "validation_auc" in history.view(pd.DataFrame).columns  # left one of the two batches out
    with_batches = mgm.actions.predict_classification(corpus=test_corpus, model=model,
                                                      batches=metadata.get_column("study"))
    alone = mgm.actions.predict_classification(corpus=test_corpus, model=model)  # the corpus as one batch
    first, second = (r.probabilities.view(pd.DataFrame) for r in (with_batches, alone))
    pd.testing.assert_frame_equal(first, second)
    truth = frame.loc[first.index, "Group"] == "Case"
    assert roc_auc_score(truth, first["Case"]) > 0.65
    # the classes called: a threshold chosen on the held-out batches' probabilities (leave one batch out)
    model.export_data(str(tmp_path))
    decision = json.loads((tmp_path / "training.json").read_text())["decision"]
    assert decision["rule"] == "threshold" and decision["positive_class"] == "Control"
    assert decision["validation_samples"] == len(training_ids)
    called = with_batches.predictions.view(pd.Series)
    assert (called == np.where(first["Control"] >= decision["threshold"], "Control", "Case")).all()
    plain, _ = mgm.actions.fine_tune(corpus=training_corpus, metadata=metadata.get_column("Group"),
                                     task="classification", forest_weight=0.0)
    with pytest.raises(ValueError, match="not fit with batches"):
        mgm.actions.predict_classification(corpus=test_corpus, model=plain, batches=metadata.get_column("study"))
    with pytest.raises(ValueError, match="fit with batches"):
        mgm.actions.keystone_genera(corpus=test_corpus, model=model, metadata=metadata.get_column("Group"))


def _same_outputs(first, second):
    """Two cv runs' outputs hold the same predictions, probabilities and cross-validation bit for bit, wall seconds
    aside: every fit of a fold runs on one BLAS/OpenMP thread whichever path or process runs it
    (core.cross_validation.ONE_THREAD; on all threads the solvers' sums come in another order, ~1e-16 apart)."""
    pd.testing.assert_series_equal(first.predictions.view(pd.Series), second.predictions.view(pd.Series),
                                   check_exact=True)
    pd.testing.assert_frame_equal(first.probabilities.view(pd.DataFrame), second.probabilities.view(pd.DataFrame),
                                  check_exact=True)
    if not hasattr(first, "cross_validation"):  # the pipelines: every method's predictions, from the evaluation
        import tempfile
        frames = []
        for result in (first, second):
            with tempfile.TemporaryDirectory() as folder:
                result.evaluation.export_data(folder)
                frames.append([pd.read_csv(f"{folder}/{name}", sep="\t", float_precision="round_trip")
                               for name in ("out_of_fold_predictions.tsv", "transfer_matrix.tsv")])
        for a, b in zip(*frames):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        return
    a, b = (r.cross_validation.view(CrossValidation) for r in (first, second))
    pd.testing.assert_frame_equal(a.predictions, b.predictions, check_exact=True)
    pd.testing.assert_frame_equal(a.transfer, b.transfer, check_exact=True)
    timing = {"seconds", "features_seconds", "markers"}
    assert {k: v for k, v in a.record.items() if k not in timing} == \
        {k: v for k, v in b.record.items() if k not in timing}
    assert {k: v for k, v in a.record["markers"].items() if k != "explain_seconds"} == \
        {k: v for k, v in b.record["markers"].items() if k != "explain_seconds"}
    # the markers: float64 sums over samples held in memory apart (numpy's SIMD sums depend on alignment)
    pd.testing.assert_frame_equal(a.effects, b.effects, check_exact=False, rtol=1e-10, atol=1e-14)
    pd.testing.assert_frame_equal(a.meta, b.meta, check_exact=False, rtol=1e-10, atol=1e-14)


@pytest.fixture(scope="module")
def cohort_corpus(cohort):
    from qiime2.plugins import mgm
    table, _ = cohort
    return mgm.actions.tokenize(table=qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table)).corpus


def test_fold_by_fold_gives_exactly_the_single_method_predictions(cohort, cohort_corpus, tmp_path):
    """prepare-cross-validation, cross-validate-fold per fold (in any order) and collate-classification-folds give
    what cross-validate-classification gives, bit for bit; the fold plan and each fold's result refuse tampering."""
    from qiime2.plugins import mgm
    from q2_mgm.core.cross_validation_store import FoldPlan, FoldsFormatError, load_fold_plan
    _, metadata = cohort
    settings = dict(metadata=metadata.get_column("Group"), groups=metadata.get_column("study"),
                    batches=metadata.get_column("study"), cv_strategy="leave-one-group-out", n_estimators=50,
                    transfer_matrix=True, mgm_markers=False)
    single = mgm.actions.cross_validate_classification(corpus=cohort_corpus, **settings)
    folds, = mgm.actions.prepare_cross_validation(corpus=cohort_corpus, task="classification", **settings)
    plan = folds.view(FoldPlan)
    assert plan.fold_names == ["study 1", "study 2", "study 3"]
    results = [mgm.actions.cross_validate_fold(folds=folds, fold=number).fold_predictions for number in (3, 1, 2)]
    _same_outputs(mgm.actions.collate_classification_folds(folds=folds, fold_predictions=results), single)
    with pytest.raises(ValueError, match="folds 1-3 once each"):
        mgm.actions.collate_classification_folds(folds=folds, fold_predictions=results[:2])
    with pytest.raises(ValueError, match="prepared for classification"):
        mgm.actions.collate_regression_folds(folds=folds, fold_predictions=results)
    with pytest.raises(ValueError, match="between 1 and 3"):
        mgm.actions.cross_validate_fold(folds=folds, fold=4)
    copy = tmp_path / "folds"
    folds.export_data(copy)
    load_fold_plan(copy)
    samples = pd.read_csv(copy / schemas.FOLDS_SAMPLES_FILE, sep="\t", keep_default_na=False)
    samples.iloc[:-1].to_csv(copy / schemas.FOLDS_SAMPLES_FILE, sep="\t", index=False)
    with pytest.raises(FoldsFormatError, match="do not match"):
        load_fold_plan(copy)


def test_regress_samples_cv_runs_fold_by_fold_as_the_single_method_does():
    """The pipeline (prepare, one action per fold, collate) and cross-validate-regression agree bit for bit."""
    from qiime2.plugins import mgm
    table = read_genus_table("ecam", "genus_relative.tsv")
    metadata = read_metadata("ecam").loc[table.index]
    infants = metadata.index[metadata["month"] <= 12][:120]
    frame = metadata.loc[infants, ["month", "studyid"]].astype({"studyid": str}).rename_axis("sample-id")
    columns = qiime2.Metadata(frame)
    artifact = qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table.loc[infants])
    settings = dict(metadata=columns.get_column("month"), groups=columns.get_column("studyid"), cv=3,
                    n_estimators=30, mgm_markers=False)
    piped = mgm.actions.regress_samples_cv(table=artifact, **settings)
    corpus, = mgm.actions.tokenize(table=artifact)
    single = mgm.actions.cross_validate_regression(corpus=corpus, **settings)
    pd.testing.assert_series_equal(piped.predictions.view(pd.Series), single.predictions.view(pd.Series),
                                   check_exact=True)


PARALLEL = tuple(int(part) for part in qiime2.__version__.split(".")[:2]) >= (2023, 5)


@pytest.mark.skipif(not PARALLEL, reason=f"QIIME 2 {qiime2.__version__} has no parallel pipelines (parsl came with "
                                         "2023.5): the QIIME 2 2024.10 lane runs this test")
def test_classify_samples_cv_in_parallel_predicts_as_the_serial_run(cohort, loso, monkeypatch, tmp_path):
    """classify-samples-cv with QIIME 2's parsl executor, two worker processes (one fold each at a time), gives the
    serial run's predictions, probabilities and cross-validation, bit for bit. parsl's logs go under tmp_path, not
    into the working directory (its default run_dir is ./runinfo)."""
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider
    from qiime2.plugins import mgm
    from qiime2.sdk.parallel_config import ParallelConfig
    serial, table = loso
    _, metadata = cohort
    # parsl starts its interchange and worker pool as commands of the venv running the tests: the interchange from
    # this process's PATH, the workers from the environment parsl's LocalChannel copied when parsl was first imported
    # (its default argument), so they are given the PATH in worker_init too
    venv_bin = pathlib.Path(sys.executable).parent
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    artifact = qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table)
    study = metadata.get_column("study")
    provider = LocalProvider(worker_init=f'export PATH="{venv_bin}:$PATH"')
    config = Config(executors=[HighThroughputExecutor(label="default", max_workers_per_node=2,
                                                      provider=provider)], strategy="none",
                    run_dir=str(tmp_path / "runinfo"))
    with ParallelConfig(config):
        future = mgm.actions.classify_samples_cv.parallel(
            table=artifact, metadata=metadata.get_column("Group"), groups=study, batches=study,
            cv_strategy="leave-one-group-out", n_estimators=100, transfer_matrix=True, mgm_markers=False)
        parallel = future._result()
    _same_outputs(parallel, serial)


def test_a_cross_validation_over_24_one_class_groups_prints_no_warnings(tmp_path):
    """24 held-out subjects, each of one class: scikit-learn warned once per fold ("y_pred contains classes not
    in y_true"); the page says what such a fold's balanced accuracy is instead, and nothing reaches the console."""
    import warnings
    from q2_mgm.core.cross_validation import cross_validate
    from q2_mgm.core.training.targets import encode_targets
    from q2_mgm.visualizers.cross_validation import evaluate_cross_validation
    rng = np.random.default_rng(0)
    groups = np.repeat([f"subject {i}" for i in range(24)], 4)
    labels = pd.Series(np.where(np.arange(96) // 4 % 2, "a", "b"), index=[f"s{i}" for i in range(96)])
    abundances = pd.DataFrame(rng.random((96, 10)), columns=[f"g__G{i}" for i in range(10)])
    features = SampleFeatures(rng.normal(size=(96, 16)).astype(np.float32), rng.normal(size=(96, 2)),
                              abundances.div(abundances.sum(axis=1), axis=0))
    encoded, *_ = encode_targets(labels, "classification")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cross_validate(features, labels, "classification",
                                make_folds(encoded, groups, 0, "leave-one-group-out", "classification", 0),
                                n_estimators=10, report=lambda message: None, label_column="status",
                                groups_column="subject", batches_column=None, cv_strategy="leave-one-group-out",
                                cv=24, left_out=[], features_seconds=0.0)
        evaluate_cross_validation(str(tmp_path), result)
    # what a console shows: Python's default filters hide DeprecationWarnings raised outside __main__ (in the
    # 2024.10 lane, scipy's about an option scikit-learn passes to its solver), so they reach no user
    shown = [w for w in caught if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    assert [str(w.message) for w in shown] == []
    assert "is that class's\n    recall" in (tmp_path / "index.html").read_text()


def test_the_pipeline_gives_the_markers_as_feature_importances(loso, tmp_path):
    """classify-samples-cv's markers output is q2-sample-classifier's FeatureData[Importance]: one column per class
    the genera point to, each genus's consistent effect (the CLR baseline's here, run with mgm_markers off) in its
    class's column and 0 in the other, strongest first, as markers.tsv ranks and directs them."""
    results, _ = loso
    assert results.markers.type == qiime2.sdk.util.parse_type("FeatureData[Importance]")
    importance = results.markers.view(pd.DataFrame)
    assert sorted(importance.columns) == ["Case", "Control"] and len(importance) > 20
    assert importance.index.str.startswith("g__").all()
    assert importance.sum(1).is_monotonic_decreasing and ((importance > 0).sum(1) == 1).all()
    results.evaluation.export_data(tmp_path)
    markers = pd.read_csv(tmp_path / "markers.tsv", sep="\t", dtype={"points_to": str})
    assert list(importance.index) == list(markers["genus"])
    assert list(importance.idxmax(1)) == list(markers["points_to"])


def test_without_mgm_markers_the_markers_output_holds_the_clr_baselines(cohort, cohort_corpus, tmp_path):
    """The MGM recipe's integrated gradients are skipped with mgm_markers off: the markers output is then the CLR
    baseline's, exactly; a cross-validation made before markers existed says to run it again, which works."""
    from qiime2.plugins import mgm
    from q2_mgm.core.markers import marker_table
    _, metadata = cohort
    settings = dict(metadata=metadata.get_column("Group"), groups=metadata.get_column("study"),
                    batches=metadata.get_column("study"), cv_strategy="leave-one-group-out", n_estimators=20)
    *_, result = mgm.actions.cross_validate_classification(corpus=cohort_corpus, mgm_markers=False, **settings)
    cross_validation = result.view(CrossValidation)
    assert set(cross_validation.effects["method"]) == {"random-forest", "batch-clr-logistic"}
    importance, = mgm.actions.cross_validation_markers(cross_validation=result)
    clr_markers, _ = marker_table(cross_validation, "batch-clr-logistic")
    np.testing.assert_allclose(importance.view(pd.DataFrame).sum(1),
                               clr_markers.set_index("genus")["consistent_effect"])
    older = tmp_path / "older"
    result.export_data(older)
    (older / schemas.CV_EFFECTS_FILE).unlink()
    record = json.loads((older / schemas.CV_RECORD_FILE).read_text())
    record.pop("markers")
    (older / schemas.CV_RECORD_FILE).write_text(json.dumps(record))
    made_before = qiime2.Artifact.import_data("MGMCrossValidation", older)
    with pytest.raises(TransferError, match="holds no markers .* run it again"):
        mgm.actions.cross_validation_markers(cross_validation=made_before)
    visualization, = mgm.actions.evaluate_cross_validation(cross_validation=made_before)
    visualization.export_data(tmp_path / "page")
    assert "Run it again for them" in (tmp_path / "page" / "index.html").read_text()


def test_a_fold_explained_with_another_model_than_its_features_is_refused(cohort, cohort_corpus, tiny_model):
    """The markers explain the MGM recipe with the model that made the features: a different one is refused before
    any work, and the fix (the same model: left out for the general model) runs."""
    from qiime2.plugins import mgm
    _, metadata = cohort
    studies = metadata.get_column("study").to_series()
    few = subset_corpus(cohort_corpus, studies.groupby(studies).head(8).index)  # 8 per study: seconds to explain
    folds, = mgm.actions.prepare_cross_validation(
        corpus=few, metadata=metadata.get_column("Group"), task="classification",
        groups=metadata.get_column("study"), batches=metadata.get_column("study"),
        cv_strategy="leave-one-group-out", n_estimators=20, recipe="batch-mgm-logistic")
    with pytest.raises(TransferError, match="made with the general model, and the model here differs.*leave "
                                            "--i-model out"):
        mgm.actions.cross_validate_fold(folds=folds, fold=1, model=tiny_model)
    result, = mgm.actions.cross_validate_fold(folds=folds, fold=1)
    effects = result.view(FoldResult).effects
    assert set(effects["method"]) == {"batch-mgm-logistic", "random-forest", "batch-clr-logistic"}


# --- evaluate-cross-validation's "Genera across held-out groups" (markers) ---
# recipe batch-clr-logistic: its contributions are exact, so no integrated gradients run (the MGM recipe's take
# minutes); the page is the same but for the MGM part's sentence and share


@pytest.fixture(scope="module")
def marker_pages(cohort, cohort_corpus, tmp_path_factory):
    """{name: exported evaluation}: leave-one-study-out with markers; 3-fold with markers within one study, and
    without within another (one study each: a third of the encoder's work)."""
    from qiime2.plugins import mgm
    _, metadata = cohort
    study = metadata.get_column("study")
    studies = study.to_series()
    runs = {"loso": (cohort_corpus, dict(groups=study, batches=study, cv_strategy="leave-one-group-out")),
            "k-fold": (subset_corpus(cohort_corpus, studies.index[studies == "study 2"]), dict(cv=3)),
            "no markers": (subset_corpus(cohort_corpus, studies.index[studies == "study 1"]),
                           dict(cv=3, mgm_markers=False, recipe="mgm-transfer"))}
    pages = {}
    for name, (corpus, settings) in runs.items():
        result = mgm.actions.cross_validate_classification(
            corpus=corpus, metadata=metadata.get_column("Group"), n_estimators=50,
            **{"recipe": "batch-clr-logistic", **settings}).cross_validation
        visualization, = mgm.actions.evaluate_cross_validation(cross_validation=result)
        pages[name] = tmp_path_factory.mktemp(name.replace(" ", "-"))
        visualization.export_data(str(pages[name]))
    return pages


def _section(page):
    html = html_module.unescape((page / "index.html").read_text())
    start = html.index("<h2>Genera across held-out groups</h2>")
    return html, html[start:html.index("<h2>", start + 4)]


def test_the_markers_page_ranks_the_genera_across_held_out_studies(marker_pages, cohort):
    import re
    page = marker_pages["loso"]
    html, section = _section(page)
    for text in ("cross-study marker list", "log-odds of Control per standard deviation", "are left out",
                 "The 20 most consistent genera of batch-clr-logistic", "groups agreeing", "Hedges' g",
                 "markers_heatmap.png", "the field's meta-analysis", "between-study variance",
                 "No covariates are adjusted for", "Spearman correlation", "impurity importances"):
        assert text in section, text
    assert "not computed" not in section
    # the rare genera are counted over every genus of the held-out samples, not only those the CLR recipe read
    below, given = map(int, re.search(r"(\d+) of the (\d+) genera of the held-out samples", section).groups())
    assert 0 < below < given
    for link in re.findall(r'(?:src|href)="([^"#:]+)"', html):  # every file the page links is in the visualization
        assert (page / link).exists(), link
    for name in ("markers.tsv", "markers-random-forest.tsv", "meta_analysis.tsv"):
        assert f'href="{name}"' in html, name  # in the downloads list
    assert (page / "markers_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (page / "markers_heatmap.pdf").exists()
    # markers.tsv: one plain TSV (one header line, no index column, no comments), its first columns fixed
    lines = (page / "markers.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["genus", "points_to", "rank"]
    assert not [c for c in header[3:] if "rank" in c or "points" in c]
    assert all(len(line.split("\t")) == len(header) for line in lines[1:]) and not lines[1].startswith("#")
    markers = pd.read_csv(page / "markers.tsv", sep="\t")
    assert list(markers["rank"]) == list(range(1, len(markers) + 1)) and markers["rank"].dtype.kind == "i"
    assert set(markers["points_to"]) <= set(cohort[1].get_column("Group").to_series())
    assert markers["genus"].str.startswith("g__").all() and markers["genus"].is_unique
    forest = pd.read_csv(page / "markers-random-forest.tsv", sep="\t")
    assert list(forest.columns[:3]) == ["genus", "points_to", "rank"] and len(forest) == len(markers)
    meta = pd.read_csv(page / "meta_analysis.tsv", sep="\t", index_col="genus")
    assert set(markers["genus"]) <= set(meta.index)


def test_the_markers_page_of_k_fold_is_a_stability_check_and_without_markers_says_so(marker_pages):
    html, section = _section(marker_pages["k-fold"])
    assert "stability" in section and "cross-study marker list" not in section
    assert "folds agreeing" in section and (marker_pages["k-fold"] / "markers.tsv").exists()
    assert "one study's test" in section  # no batches nor groups: the meta-analysis over one batch
    html, section = _section(marker_pages["no markers"])
    assert "mgm-transfer was not explained: it was run with --p-no-mgm-markers" in section
    assert "The 20 most consistent genera of batch-clr-logistic" in section and "<img" in section
    markers = pd.read_csv(marker_pages["no markers"] / "markers.tsv", sep="\t")  # the CLR baseline's, as the output
    assert markers["mgm_share"].isna().all() and len(markers)
