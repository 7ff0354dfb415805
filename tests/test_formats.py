"""Formats and transformers through the Artifact API: corpora round-trip with awkward sample IDs and view as
DataFrame and Metadata; the general model validates and records its source; embeddings view as DataFrame and
OrdinationResults; tampered or pickled models are refused by format validation, never unpickled."""
import hashlib
import importlib.metadata
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import qiime2
import skbio
from qiime2.plugin import ValidationError

from q2_mgm._formats import CorpusSamplesFormat, MGMCorpusDirFmt, MGMModelDirFmt
from q2_mgm.core.schemas import (CORPUS_ABUNDANCES_FILE, CORPUS_FEATURE_COLUMNS, CORPUS_FEATURES_FILE,
                                 CORPUS_SAMPLES_FILE)
from q2_mgm.core.tokenizer import Corpus, tokenize_dataframe

from .helpers import (TAMPERINGS, assert_refused, copy_model_dir, plain_pickle_bytes, rewrite_qza,
                      torch_pickle_bytes, unpickle_as_an_unsafe_loader_would)

ODD_IDS = ["1001", "007", "1e3", "sample.with.dots", "ünïcödé sämple", "with space", "zero", "NA"]
GENERA = ["g__Bacteroides", "g__Prevotella", "g__Faecalibacterium", "g__Blautia", "g__Akkermansia"]


def odd_table():
    rng = np.random.default_rng(11)
    counts = rng.integers(0, 40, size=(len(ODD_IDS), len(GENERA) + 2)).astype(float)
    counts[:, 0] += 1  # every sample has some vocabulary abundance
    columns = [f"k__Bacteria; {g}; s__" for g in GENERA] + ["k__Bacteria; g__Notagenus; s__", "Unassigned"]
    return pd.DataFrame(counts, index=ODD_IDS, columns=columns)


@pytest.fixture(scope="module")
def odd_corpus():
    return tokenize_dataframe(odd_table(), max_length=5)


@pytest.fixture(scope="module")
def odd_corpus_artifact(odd_corpus):
    return qiime2.Artifact.import_data("SampleData[MGMCorpus]", odd_corpus)


def assert_corpora_equal(a, b):
    pd.testing.assert_frame_equal(a.samples, b.samples)
    pd.testing.assert_frame_equal(a.features, b.features)
    pd.testing.assert_frame_equal(a.dropped_samples, b.dropped_samples, check_dtype=len(a.dropped_samples) > 0,
                                  check_index_type=len(a.dropped_samples) > 0)
    assert (a.max_length, a.harmonize_names) == (b.max_length, b.harmonize_names)
    assert (a.abundances is None) == (b.abundances is None)
    if a.abundances is not None:  # bit for bit: 9 digits hold a float32
        assert (a.abundances != b.abundances).nnz == 0 and a.abundances.shape == b.abundances.shape


def edit_sentence(line, change):
    cells = line.split("\t")
    cells[1] = change(cells[1])
    return "\t".join(cells)


class TestCorpus:
    def test_round_trip_keeps_everything(self, odd_corpus, odd_corpus_artifact, tmp_path):
        assert str(odd_corpus_artifact.type) == "SampleData[MGMCorpus]"
        odd_corpus_artifact.validate(level="max")
        assert_corpora_equal(odd_corpus, odd_corpus_artifact.view(Corpus))
        odd_corpus_artifact.save(str(tmp_path / "corpus.qza"))
        assert_corpora_equal(odd_corpus, qiime2.Artifact.load(str(tmp_path / "corpus.qza")).view(Corpus))

    def test_views_as_dataframe(self, odd_corpus_artifact):
        samples = odd_corpus_artifact.view(pd.DataFrame)
        assert samples.index.tolist() == ODD_IDS
        assert {"sentence", "n_genera"} <= set(samples.columns)
        assert samples.n_genera.dtype == np.int64
        assert samples.sentence.str.startswith("<bos> ").all()
        assert samples.truncated.dtype == bool and samples.truncated.any()

    def test_views_as_metadata_and_tabulates(self, odd_corpus_artifact):
        metadata = odd_corpus_artifact.view(qiime2.Metadata)
        assert list(metadata.ids) == ODD_IDS
        frame = metadata.to_dataframe()
        assert {"sentence", "n_genera", "vocabulary_coverage"} <= set(frame.columns)
        assert set(frame.truncated) <= {"yes", "no"}
        assert isinstance(metadata.get_column("n_genera"), qiime2.NumericMetadataColumn)
        from qiime2.plugins import metadata as metadata_plugin
        visualization, = metadata_plugin.visualizers.tabulate(metadata)
        assert str(visualization.type) == "Visualization"

    def test_dropped_samples_round_trip(self):
        data = odd_table()
        data.loc["empty"] = 0.0
        data.loc["unknown-only"] = [0.0] * len(GENERA) + [5.0, 5.0]
        corpus = tokenize_dataframe(data)
        assert corpus.dropped_samples.index.tolist() == ["empty", "unknown-only"]
        artifact = qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus)
        assert_corpora_equal(corpus, artifact.view(Corpus))

    def test_abundances_are_the_sentence_genera(self, odd_corpus, tmp_path):
        """Each sample's sentence genera (before truncation) with their relative abundance among the vocabulary
        genera; abundances.tsv holds them in long format."""
        table = odd_corpus.abundance_table()
        vocabulary_counts = odd_table().iloc[:, :len(GENERA)]
        expected = vocabulary_counts.div(vocabulary_counts.sum(axis=1), axis=0)
        expected.columns = GENERA
        present = expected.where(expected > 0).stack()
        np.testing.assert_array_equal(table.stack().loc[present.index].to_numpy(), present.to_numpy(np.float32))
        assert (table.sum(axis=1) - 1).abs().max() < 1e-6  # float32, as the forests read them
        directory = tmp_path / "corpus"
        qiime2.Artifact.import_data("SampleData[MGMCorpus]", odd_corpus).export_data(str(directory))
        long = pd.read_csv(directory / CORPUS_ABUNDANCES_FILE, sep="\t", dtype={"sample-id": str})
        assert list(long.columns) == ["sample-id", "genus", "relative_abundance"] and len(long) == len(present)

    def test_a_corpus_without_abundances_round_trips(self, odd_corpus):
        import dataclasses
        ranks_only = dataclasses.replace(odd_corpus, abundances=None)
        artifact = qiime2.Artifact.import_data("SampleData[MGMCorpus]", ranks_only)
        assert artifact.view(Corpus).abundances is None and artifact.view(Corpus).abundance_table() is None

    @pytest.mark.parametrize("line, words", [
        ("007\tg__Blautia\t1.5", "not a number in \\(0, 1\\]"),
        ("007\tg__Blautia\tnan", "not a number"),
        ("007\tBlautia\t0.5", "not a genus token"),
    ], ids=["above 1", "nan", "not a genus"])
    def test_a_broken_abundances_file_fails_validation(self, odd_corpus_artifact, tmp_path, line, words):
        directory = tmp_path / "corpus"
        odd_corpus_artifact.export_data(str(directory))
        with open(directory / CORPUS_ABUNDANCES_FILE, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        with pytest.raises(ValidationError, match=words):
            MGMCorpusDirFmt(str(directory), mode="r").validate()

    def test_abundances_of_an_unknown_sample_are_refused_on_load(self, odd_corpus_artifact, tmp_path):
        directory = tmp_path / "corpus"
        odd_corpus_artifact.export_data(str(directory))
        with open(directory / CORPUS_ABUNDANCES_FILE, "a", encoding="utf-8") as handle:
            handle.write("stranger\tg__Blautia\t0.5\n")
        with pytest.raises(ValueError, match="entries of samples the corpus does not hold.*'stranger'"):
            qiime2.Artifact.import_data("SampleData[MGMCorpus]", str(directory)).view(Corpus)

    def test_a_corpus_written_before_genus_as_written_still_reads(self, odd_corpus_artifact, tmp_path):
        """Corpora from before the features report showed each genus as written validate and read back, the
        column filled from the taxonomy; a features file with a header of neither kind is refused."""
        directory = tmp_path / "corpus"
        odd_corpus_artifact.export_data(str(directory))
        path = directory / CORPUS_FEATURES_FILE
        features = pd.read_csv(path, sep="\t", index_col=0, dtype=str, keep_default_na=False)
        features.drop(columns="genus_as_written").to_csv(path, sep="\t")
        old = qiime2.Artifact.import_data("SampleData[MGMCorpus]", str(directory)).view(Corpus).features
        assert list(old.columns) == list(CORPUS_FEATURE_COLUMNS)
        assert (old.genus_as_written == features.genus_as_written).all()
        features.drop(columns="genus").to_csv(path, sep="\t")
        with pytest.raises(ValidationError, match="Expected the columns"):
            MGMCorpusDirFmt(str(directory), mode="r").validate()

    @pytest.mark.parametrize("edit, words", [
        (lambda lines: ["sample\tsentence"] + lines[1:], "Expected the columns"),
        (lambda lines: lines[:1] + [edit_sentence(lines[1], lambda s: s.replace("<bos>", "<pad>"))] + lines[2:],
         "<bos>"),
        (lambda lines: lines[:1] + [edit_sentence(lines[1], lambda s: s + " <pad>")] + lines[2:], "<pad>"),
        (lambda lines: lines[:1] + [edit_sentence(lines[1], lambda s: s + " g__Blautia")] + lines[2:],
         "n_tokens is"),
        (lambda lines: lines[:1] + [lines[1] + "\textra"] + lines[2:], "fields"),
    ], ids=["header", "no bos", "pad", "n_tokens", "fields"])
    def test_a_broken_samples_file_fails_validation(self, odd_corpus_artifact, tmp_path, edit, words):
        directory = tmp_path / "corpus"
        odd_corpus_artifact.export_data(str(directory))
        path = directory / CORPUS_SAMPLES_FILE
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) > 1
        path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
        with pytest.raises(ValidationError, match=words):
            CorpusSamplesFormat(str(path), mode="r").validate()
        with pytest.raises(ValidationError, match=words):
            MGMCorpusDirFmt(str(directory), mode="r").validate()
        with pytest.raises(ValidationError, match=words):
            qiime2.Artifact.import_data("SampleData[MGMCorpus]", str(directory))


class TestGeneralModel:
    def test_validates_and_records_its_source(self, model_artifact, tmp_path):
        assert str(model_artifact.type) == "MGMModel[Pretrained]"
        model_artifact.validate(level="max")
        directory = tmp_path / "model"
        model_artifact.export_data(str(directory))
        assert sorted(p.name for p in directory.iterdir()) == \
            ["config.json", "model.safetensors", "versions.json", "vocab.txt"]
        MGMModelDirFmt(str(directory), mode="r").validate(level="max")
        versions = json.loads((directory / "versions.json").read_text())
        source = importlib.metadata.distribution("microformer-mgm").locate_file(
            "mgm/resources/general_model/pytorch_model.bin")
        assert versions["source_sha256"] == hashlib.sha256(open(source, "rb").read()).hexdigest()
        assert versions["source"].startswith("microformer-mgm==0.5.8")
        config = json.loads((directory / "config.json").read_text())
        assert (config["n_layer"], config["n_embd"], config["vocab_size"]) == (8, 256, 9669)

    @pytest.mark.parametrize("name", list(TAMPERINGS))
    def test_a_tampered_model_fails_validation(self, name, saved_model_dir, tmp_path):
        tamper, _, words = TAMPERINGS[name]
        directory = copy_model_dir(saved_model_dir, tmp_path / "model")
        tamper(directory)
        assert_refused(MGMModelDirFmt, "MGMModel[Pretrained]", directory, words)

    @pytest.mark.parametrize("make_payload", [plain_pickle_bytes, torch_pickle_bytes], ids=["pickle", "torch.save"])
    def test_a_pickled_model_artifact_is_never_unpickled(self, make_payload, model_artifact, saved_model_dir,
                                                         odd_corpus_artifact, mgm_plugin, tmp_path):
        marker = tmp_path / "UNPICKLED"
        payload = make_payload(marker)
        # as a directory: format validation and import
        directory = copy_model_dir(saved_model_dir, tmp_path / "model")
        (directory / "model.safetensors").write_bytes(payload)
        with pytest.raises(ValidationError, match="safetensors"):
            MGMModelDirFmt(str(directory), mode="r").validate(level="min")
        with pytest.raises(ValidationError, match="safetensors"):
            qiime2.Artifact.import_data("MGMModel[Pretrained]", str(directory))
        # as a .qza someone sent: checksums agree, so only q2-mgm's validation stands between it and torch
        model_artifact.save(str(tmp_path / "model.qza"))
        planted = rewrite_qza(tmp_path / "model.qza", tmp_path / "planted.qza", {"model.safetensors": payload})
        with zipfile.ZipFile(planted) as archive:
            assert any(name.endswith("data/model.safetensors") for name in archive.namelist())
        artifact = qiime2.Artifact.load(str(planted))
        assert artifact.uuid != model_artifact.uuid
        with pytest.raises(ValidationError, match="safetensors"):
            artifact.validate(level="min")
        with pytest.raises((ValidationError, ValueError), match="safetensors"):  # QIIME 2 validates the input
            mgm_plugin.actions.embed(corpus=odd_corpus_artifact, model=artifact)
        assert not marker.exists(), "the planted pickle was unpickled"
        unpickle_as_an_unsafe_loader_would(payload)  # the control: the payload is live
        assert marker.exists()


class TestEmbeddings:
    @pytest.fixture(scope="class")
    def embeddings(self, mgm_plugin, odd_corpus_artifact, model_artifact):
        embeddings, = mgm_plugin.actions.embed(corpus=odd_corpus_artifact, model=model_artifact)
        return embeddings

    def test_views_as_dataframe(self, embeddings):
        assert str(embeddings.type) == "PCoAResults"
        frame = embeddings.view(pd.DataFrame)
        assert frame.shape == (len(ODD_IDS), 256)
        assert frame.index.tolist() == ODD_IDS
        assert np.isfinite(frame.to_numpy()).all()

    def test_views_as_ordination_results(self, embeddings, tmp_path):
        embeddings.save(str(tmp_path / "embeddings.qza"))
        ordination = qiime2.Artifact.load(str(tmp_path / "embeddings.qza")).view(skbio.OrdinationResults)
        assert ordination.samples.shape == (len(ODD_IDS), 256)
        assert ordination.samples.index.tolist() == ODD_IDS
        assert len(ordination.eigvals) == 256 and (ordination.eigvals >= 0).all()
        assert ordination.proportion_explained.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(ordination.eigvals, ordination.samples.var(axis=0, ddof=0), rtol=1e-5)

    def test_one_sample(self, mgm_plugin, model_artifact):
        corpus = tokenize_dataframe(pd.DataFrame({"k__B; g__Bacteroides; s__": [5.0]}, index=["alone"]))
        embeddings, = mgm_plugin.actions.embed(
            corpus=qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus), model=model_artifact)
        ordination = embeddings.view(skbio.OrdinationResults)
        assert ordination.samples.shape == (1, 256)
        assert np.isfinite(ordination.proportion_explained).all()
        assert np.isfinite(ordination.eigvals).all()
