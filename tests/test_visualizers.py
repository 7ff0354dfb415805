"""summarize_corpus on real data through the Artifact API, its downloads, and the page in a real browser."""
import os
import pathlib
import re
import shutil
import subprocess

import pandas as pd
import pytest
import qiime2

from q2_mgm.core.tokenizer import tokenize_dataframe

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
    assert "(no genus) g__[Ruminococcus]" in dropped.index and "g__Candidatus" in dropped.index


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


def test_page_renders_in_a_browser(twins_summary, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is absent: the browser check of the visualization needs Chromium "
                    "(apt-get install chromium)")
    screenshot = tmp_path / "page.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'ud'}",
               "--enable-logging=stderr", "--v=0", f"--screenshot={screenshot}", "--window-size=1280,2000",
               (twins_summary / "index.html").as_uri()]
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
