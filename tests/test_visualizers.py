"""The visualizers on real data through the Artifact API, their downloads, and their pages in a real browser:
summarize_corpus; evaluate_classification and evaluate_regression, from the classify-samples (twins) and
regress-samples (ECAM) pipelines and on their own (three classes, no history, no table)."""
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_mgm.core.baselines import random_forest_baseline
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.training import validation_split

from .helpers import read_metadata

pytestmark = pytest.mark.one_torch_thread  # the evaluations' fixtures train models (see conftest.py)

CHROMIUM = "/usr/bin/chromium"
EXPECTED_FILES = {"index.html", "coverage.png", "coverage.pdf", "lengths.png", "samples.tsv", "features.tsv",
                  "dropped_genera.tsv", "dropped_samples.tsv"}


def export(visualization, directory):
    visualization.export_data(str(directory))
    return pathlib.Path(directory)


@pytest.fixture(scope="module")
def twins_summary(mgm_plugin, twins_corpus_artifact, tmp_path_factory):
    visualization, = mgm_plugin.actions.summarize_corpus(corpus=twins_corpus_artifact)
    assert str(visualization.type) == "Visualization"
    return export(visualization, tmp_path_factory.mktemp("twins-summary"))


def local_references(html):
    links = re.findall(r'(?:src|href)="([^"#]+)"', html)
    return [link for link in links if not re.match(r"^(https?:|mailto:|data:|//)", link)]


def test_twins_summary_files(twins_summary):
    assert EXPECTED_FILES | {"dropped.png"} <= {p.name for p in twins_summary.iterdir()}
    for name in ("coverage.png", "lengths.png", "dropped.png"):
        assert (twins_summary / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = pd.read_csv(twins_summary / "samples.tsv", sep="\t", index_col=0)
    assert len(samples) == 278
    dropped = pd.read_csv(twins_summary / "dropped_genera.tsv", sep="\t", index_col=0)
    assert set(dropped.index) == {"g__Anaerobacter", "g__Xylanibacter", "g__Zymophilus",
                                  "(no genus) unclassified_at_genus"}
    assert dropped.mean_relative_abundance.is_monotonic_decreasing
    assert dropped.index[0] == "(no genus) unclassified_at_genus"  # the biggest loss: a third of the reads
    html = (twins_summary / "index.html").read_text()
    for text in ("MGM corpus summary", "Vocabulary coverage", "samples tokenized", "g__Xylanibacter"):
        assert text in html
    for link in local_references(html):
        assert (twins_summary / link).exists(), f"index.html links {link}, which the visualization lacks"


def test_ecam_summary_warns_and_lists_truncation(mgm_plugin, ecam_counts, tmp_path):
    corpus = tokenize_dataframe(ecam_counts, max_length=16)
    visualization, = mgm_plugin.actions.summarize_corpus(
        corpus=qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus))
    directory = export(visualization, tmp_path / "summary")
    assert EXPECTED_FILES <= {p.name for p in directory.iterdir()}
    html = (directory / "index.html").read_text()
    assert "samples truncated to max_length = 16" in html
    dropped = pd.read_csv(directory / "dropped_genera.tsv", sep="\t", index_col=0)
    # a bracketed genus has a genus rank: it is not read (not in the vocabulary as written), not "no genus"
    assert "(not read) g__[Ruminococcus]" in dropped.index and "g__Candidatus" in dropped.index


def test_summary_of_a_corpus_without_losses_or_drops(mgm_plugin, tmp_path):
    corpus = tokenize_dataframe(pd.DataFrame({"k__B; g__Bacteroides; s__": [1.0, 2.0],
                                              "k__B; g__Blautia; s__": [3.0, 0.0]}, index=["a", "b"]))
    visualization, = mgm_plugin.actions.summarize_corpus(
        corpus=qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus))
    directory = export(visualization, tmp_path / "summary")
    assert EXPECTED_FILES <= {p.name for p in directory.iterdir()}
    assert not (directory / "dropped.png").exists()
    assert "Less than half" not in (directory / "index.html").read_text()


def test_low_coverage_warning(mgm_plugin, tmp_path):
    corpus = tokenize_dataframe(pd.DataFrame({"k__B; g__Bacteroides; s__": [1.0, 2.0],
                                              "Unassigned": [9.0, 9.0]}, index=["a", "b"]))
    visualization, = mgm_plugin.actions.summarize_corpus(
        corpus=qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus))
    assert "Less than half" in (export(visualization, tmp_path / "summary") / "index.html").read_text()


def assert_renders_in_a_browser(page, tmp_path):
    """Chromium, headless, opens the page from disk: it must draw (a screenshot) and log no page errors."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is absent: the browser check of the visualization needs Chromium "
                    "(apt-get install chromium)")
    screenshot = tmp_path / "page.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'ud'}",
               "--enable-logging=stderr", "--v=0", f"--screenshot={screenshot}", "--window-size=1280,2000",
               page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page_errors = [line for line in result.stderr.splitlines()
                   if ("Uncaught" in line or "ERROR:CONSOLE" in line or "CONSOLE" in line and "rror" in line)
                   and "file://" in line]
    assert not page_errors, "\n".join(page_errors)
    shutil.rmtree(tmp_path / "ud", ignore_errors=True)


def test_page_renders_in_a_browser(twins_summary, tmp_path):
    assert_renders_in_a_browser(twins_summary / "index.html", tmp_path)


# --- evaluate-classification and evaluate-regression ---

PNG = b"\x89PNG\r\n\x1a\n"


def assert_page_is_complete(directory, texts):
    html = (directory / "index.html").read_text()
    for text in texts:
        assert text in html, text
    for link in local_references(html):
        assert (directory / link).exists(), f"index.html links {link}, which the visualization lacks"
    for png in directory.glob("*.png"):
        assert png.read_bytes()[:8] == PNG, png.name
    return html


def read_tsv(directory, name):
    return pd.read_csv(directory / name, sep="\t", index_col=0)


@pytest.fixture(scope="module")
def twins_evaluation(twins_classify_samples, tmp_path_factory):
    return export(twins_classify_samples.evaluation, tmp_path_factory.mktemp("twins-evaluation"))


@pytest.fixture(scope="module")
def ecam_evaluation(ecam_regress_samples, tmp_path_factory):
    return export(ecam_regress_samples.evaluation, tmp_path_factory.mktemp("ecam-evaluation"))


def test_classification_evaluation(twins_evaluation, twins_classify_samples):
    assert {"index.html", "roc_pr.png", "confusion_matrix.png", "summary.tsv",
            "predictions.tsv", "per_class_metrics.tsv", "confusion_matrix.tsv", "training_history.tsv"} <= \
        {p.name for p in twins_evaluation.iterdir()}
    html = assert_page_is_complete(twins_evaluation, ["MGM classifier evaluation", "ROC AUC",
                                                      "a 100-tree RandomForest"])  # n_estimators=100
    for download in ("summary.tsv", "predictions.tsv", "training_history.tsv"):
        assert download in html
    summary = read_tsv(twins_evaluation, "summary.tsv")
    assert summary.index.tolist() == ["MGM", "RandomForest"] and summary["ROC AUC"].between(0, 1).all()
    predictions = read_tsv(twins_evaluation, "predictions.tsv")
    probabilities = twins_classify_samples.probabilities.view(pd.DataFrame)
    assert predictions.index.tolist() == probabilities.index.tolist()
    assert set(predictions.truth) == {"Lean", "Obese"}
    for method in ("MGM", "RandomForest"):
        np.testing.assert_allclose(predictions[[f"{method}_probability_Lean", f"{method}_probability_Obese"]]
                                   .sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(predictions.MGM_probability_Obese, probabilities.Obese, rtol=1e-6)
    per_class = read_tsv(twins_evaluation, "per_class_metrics.tsv")
    assert {"Lean", "Obese"} <= set(per_class.index) and set(per_class.method) == {"MGM", "RandomForest"}
    history = read_tsv(twins_evaluation, "training_history.tsv")
    assert history.index.tolist() == [1]  # the default recipe's exactly fit head: one pass
    # one pass is no curve: its scores are a table on the page, not a plot of single points
    assert "training_curves.png" not in {p.name for p in twins_evaluation.iterdir()}
    assert "Validation scores" in html and "Training curves" not in html


def test_regression_evaluation(ecam_evaluation, ecam_regress_samples):
    assert {"index.html", "scatter.png", "summary.tsv", "predictions.tsv",
            "training_history.tsv"} <= {p.name for p in ecam_evaluation.iterdir()}
    assert_page_is_complete(ecam_evaluation, ["MGM regressor evaluation", "a 100-tree RandomForest", "MAE"])
    summary = read_tsv(ecam_evaluation, "summary.tsv")
    assert summary.index.tolist() == ["MGM", "RandomForest"] and {"MAE", "R2"} <= set(summary.columns)
    predictions = read_tsv(ecam_evaluation, "predictions.tsv")
    mgm = ecam_regress_samples.predictions.view(pd.Series)
    np.testing.assert_allclose(predictions.MGM_prediction.loc[mgm.index], mgm, rtol=1e-6)
    assert summary.at["MGM", "MAE"] == pytest.approx((predictions.truth - predictions.MGM_prediction).abs().mean())


def test_a_history_of_several_epochs_is_plotted(mgm_plugin, twins_classify_samples, twins_metadata, tmp_path):
    """Upstream's recipe trains epoch by epoch: its history is drawn as training curves (here three epochs of
    made-up losses beside the twins classifier's real probabilities)."""
    history = pd.DataFrame({"train_loss": [0.7, 0.6, 0.55], "validation_loss": [0.69, 0.65, 0.66],
                            "validation_auc": [0.6, 0.7, 0.68]}, index=pd.Index(["1", "2", "3"], name="epoch"))
    visualization, = mgm_plugin.actions.evaluate_classification(
        probabilities=twins_classify_samples.probabilities, truth=twins_metadata.get_column("bmi_category"),
        history=qiime2.Artifact.import_data("MGMTrainingHistory", history))
    directory = export(visualization, tmp_path / "evaluation")
    assert "training_curves.png" in {p.name for p in directory.iterdir()}
    html = assert_page_is_complete(directory, ["Training curves"])
    assert "Validation scores" not in html


@pytest.fixture(scope="module")
def three_class_probabilities(twins_counts):
    """Lean, Obese and Overwt: a RandomForest's probabilities for held-out twins subjects (real data, no MGM
    training), to evaluate the one-vs-rest path that binary MGM runs do not reach."""
    metadata = read_metadata("twins").reindex(twins_counts.index)
    labels = metadata.bmi_category.to_numpy()
    _, test = validation_split(labels, metadata.subject.to_numpy(), 0.25, "classification", 0)
    frame = random_forest_baseline(twins_counts, metadata.bmi_category, metadata.index[test], "classification",
                                   n_estimators=50)
    return qiime2.Artifact.import_data("SampleData[Probabilities]", frame.rename_axis("SampleID"))


def test_three_classes_without_history_or_table(mgm_plugin, three_class_probabilities, tmp_path):
    truth = qiime2.Metadata(read_metadata("twins")).get_column("bmi_category")
    visualization, = mgm_plugin.actions.evaluate_classification(probabilities=three_class_probabilities,
                                                                truth=truth)
    directory = export(visualization, tmp_path / "evaluation")
    files = {p.name for p in directory.iterdir()}
    assert {"roc_pr.png", "confusion_matrix.png", "summary.tsv"} <= files
    assert "training_curves.png" not in files and "training_history.tsv" not in files
    assert_page_is_complete(directory, ["MGM classifier evaluation", "Overwt"])
    summary = read_tsv(directory, "summary.tsv")
    assert summary.index.tolist() == ["MGM"] and 0 <= summary.at["MGM", "ROC AUC"] <= 1
    confusion = read_tsv(directory, "confusion_matrix.tsv")
    n_test = len(three_class_probabilities.view(pd.DataFrame))
    assert confusion.shape == (3, 3) and confusion.to_numpy().sum() == n_test


def test_three_classes_beside_a_random_forest(mgm_plugin, three_class_probabilities, twins_table_artifact, tmp_path):
    truth = qiime2.Metadata(read_metadata("twins")).get_column("bmi_category")
    visualization, = mgm_plugin.actions.evaluate_classification(
        probabilities=three_class_probabilities, truth=truth, table=twins_table_artifact, n_estimators=50)
    directory = export(visualization, tmp_path / "evaluation")
    summary = read_tsv(directory, "summary.tsv")
    assert summary.index.tolist() == ["MGM", "RandomForest"] and summary["ROC AUC"].between(0, 1).all()
    # both are 50-tree forests on the same training samples and seed: the same probabilities, the same AUC
    assert summary.at["MGM", "ROC AUC"] == pytest.approx(summary.at["RandomForest", "ROC AUC"])


def test_predicted_samples_need_a_truth(mgm_plugin, three_class_probabilities, twins_metadata):
    """twins_metadata leaves Overwt empty; the held-out samples include Overwt ones."""
    with pytest.raises(ValueError, match="predicted samples have no value in 'bmi_category'"):
        mgm_plugin.actions.evaluate_classification(probabilities=three_class_probabilities,
                                                   truth=twins_metadata.get_column("bmi_category"))


def test_regression_without_history_or_table(mgm_plugin, ecam_regress_samples, ecam_metadata, tmp_path):
    visualization, = mgm_plugin.actions.evaluate_regression(predictions=ecam_regress_samples.predictions,
                                                            truth=ecam_metadata.get_column("month"))
    directory = export(visualization, tmp_path / "evaluation")
    files = {p.name for p in directory.iterdir()}
    assert "scatter.png" in files and "training_curves.png" not in files
    assert_page_is_complete(directory, ["MGM regressor evaluation"])
    assert read_tsv(directory, "summary.tsv").index.tolist() == ["MGM"]


@pytest.mark.parametrize("page", ["twins_evaluation", "ecam_evaluation"])
def test_evaluation_renders_in_a_browser(page, request, tmp_path):
    assert_renders_in_a_browser(request.getfixturevalue(page) / "index.html", tmp_path)
