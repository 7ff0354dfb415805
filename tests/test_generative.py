"""pretrain, pretrain-generator, generate and fit-reconstructor through the Artifact API on real data (ECAM and the
twins), and the torchrun entry point with two CPU processes."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_mgm.core.pretraining import PretrainingError
from q2_mgm.core.schemas import PRETRAINING_RECORD_FILE
from q2_mgm.core.tokenizer import Corpus

from .helpers import REPO, plain_pickle_bytes, subset_corpus

pytestmark = pytest.mark.one_torch_thread
TINY = {"from_scratch": True, "n_layer": 2, "n_head": 2, "n_embd": 32}


def data_dir(artifact):
    return artifact._archiver.data_dir


@pytest.fixture(scope="module")
def small_model(mgm_plugin, ecam_subset_corpus_artifact):
    return mgm_plugin.actions.pretrain(corpora=[ecam_subset_corpus_artifact], epochs=3, learning_rate=3e-3, **TINY)


def test_pretrain_from_scratch(small_model):
    model, history = small_model
    assert str(model.type) == "MGMModel[Pretrained]" and str(history.type) == "MGMTrainingHistory"
    curves = history.view(pd.DataFrame)
    assert list(curves.columns) == ["train_loss", "validation_loss", "validation_perplexity"]
    assert curves.validation_loss.iloc[-1] < curves.validation_loss.iloc[0]
    record = json.loads((data_dir(model) / PRETRAINING_RECORD_FILE).read_text())
    assert record["start"] == "random weights" and record["n_sentences"] == 219
    assert record["settings"]["epochs"] == 3
    config = json.loads((data_dir(model) / "config.json").read_text())
    assert (config["n_layer"], config["n_head"], config["n_embd"]) == (2, 2, 32)


def test_same_seed_same_model(mgm_plugin, ecam_subset_corpus_artifact, small_model):
    again, _ = mgm_plugin.actions.pretrain(corpora=[ecam_subset_corpus_artifact], epochs=3, learning_rate=3e-3,
                                           **TINY)
    same = (data_dir(again) / "model.safetensors").read_bytes() == \
        (data_dir(small_model[0]) / "model.safetensors").read_bytes()
    assert same


def test_several_corpora_and_continuing_from_a_model(mgm_plugin, ecam_subset_corpus_artifact,
                                                      twins_corpus_artifact, small_model):
    model, history = mgm_plugin.actions.pretrain(corpora=[ecam_subset_corpus_artifact, twins_corpus_artifact],
                                                 model=small_model[0], epochs=1)
    record = json.loads((data_dir(model) / PRETRAINING_RECORD_FILE).read_text())
    assert record["start"] == "the given model" and record["n_sentences"] == 219 + 278 and record["n_corpora"] == 2


def test_a_sample_in_two_corpora_is_a_clear_error(mgm_plugin, ecam_subset_corpus_artifact):
    with pytest.raises(PretrainingError, match="is in more than one corpus"):
        mgm_plugin.actions.pretrain(corpora=[ecam_subset_corpus_artifact, ecam_subset_corpus_artifact], **TINY)


@pytest.fixture(scope="module")
def generator(mgm_plugin, ecam_subset_corpus_artifact, ecam_metadata):
    """The general model, grown by the two delivery-mode labels, one epoch on 60 ECAM samples."""
    few = subset_corpus(ecam_subset_corpus_artifact, ecam_subset_corpus_artifact.view(pd.DataFrame).index[:60])
    return mgm_plugin.actions.pretrain_generator(corpora=[few], metadata=ecam_metadata.get_column("delivery"),
                                                 epochs=1, validation_fraction=0.2)


def test_generator(generator, general_model):
    model, history = generator
    assert str(model.type) == "MGMModel[Generator]"
    record = json.loads((data_dir(model) / PRETRAINING_RECORD_FILE).read_text())
    assert record["label_tokens"] == ["<label:Cesarean>", "<label:Vaginal>"]
    assert sum(record["label_counts"].values()) == 60 and record["start"] == "the general model"
    vocabulary = (data_dir(model) / "vocab.txt").read_text().splitlines()
    assert len(vocabulary) == len(general_model[1]) + 2 and vocabulary[-2:] == record["label_tokens"]


def test_unlabelled_samples_are_left_out_and_counted(mgm_plugin, twins_corpus_artifact, twins_metadata, capsys):
    few = subset_corpus(twins_corpus_artifact, twins_corpus_artifact.view(pd.DataFrame).index[:40])
    model, _ = mgm_plugin.actions.pretrain_generator(corpora=[few], metadata=twins_metadata.get_column("bmi_category"),
                                                     epochs=1, validation_fraction=0.2)
    labelled = twins_metadata.get_column("bmi_category").to_series().reindex(few.view(pd.DataFrame).index)
    assert f"left out {int(labelled.isna().sum())} of 40 samples with no 'bmi_category'" in capsys.readouterr().out
    assert labelled.isna().sum() > 0


@pytest.fixture(scope="module")
def generated(mgm_plugin, generator):
    return mgm_plugin.actions.generate(model=generator[0], n_per_label=6, max_length=40, random_state=3)


def test_generate(generated):
    table, corpus, labels = generated
    profiles = table.view(pd.DataFrame)
    assert profiles.shape[0] == 12 and np.allclose(profiles.sum(axis=1), 1) and (profiles.to_numpy() >= 0).all()
    assert profiles.index.tolist() == [f"{label}_{i}" for label in ("Cesarean", "Vaginal") for i in range(1, 7)]
    assert profiles.columns.str.startswith("g__").all()
    sentences = corpus.view(pd.DataFrame).sentence
    assert not sentences.str.contains("<label:").any()
    for sample, sentence in sentences.items():  # the table holds exactly each sentence's genera
        genera = sentence.split()[1:-1] if sentence.endswith("<eos>") else sentence.split()[1:]
        assert len(genera) == len(set(genera)) and set(profiles.loc[sample][lambda v: v > 0].index) == set(genera)
    metadata = labels.view(qiime2.Metadata).to_dataframe()
    assert metadata.label.tolist() == ["Cesarean"] * 6 + ["Vaginal"] * 6


def test_generate_is_seeded(mgm_plugin, generator, generated):
    again, _, _ = mgm_plugin.actions.generate(model=generator[0], n_per_label=6, max_length=40, random_state=3)
    pd.testing.assert_frame_equal(again.view(pd.DataFrame), generated[0].view(pd.DataFrame))
    other, _, _ = mgm_plugin.actions.generate(model=generator[0], n_per_label=6, max_length=40, random_state=4)
    assert not other.view(pd.DataFrame).equals(generated[0].view(pd.DataFrame))


def test_sentences_cut_at_max_length_have_no_eos(mgm_plugin, generator):
    """A labelled sentence cut at max_length holds max_length - 2 genera (<bos> and the label come first): it ends
    without <eos> and counts as truncated, as the tokenizer marks sentences it cuts."""
    _, corpus, _ = mgm_plugin.actions.generate(model=generator[0], n_per_label=8, max_length=6, random_state=1)
    samples = corpus.view(Corpus).samples
    cut = samples.truncated
    assert cut.any()
    assert (~samples.sentence[cut].str.endswith("<eos>")).all() and (samples.n_genera[cut] == 4).all()
    assert samples.sentence[~cut].str.endswith("<eos>").all()


def test_one_label_and_unknown_labels(mgm_plugin, generator):
    table, _, _ = mgm_plugin.actions.generate(model=generator[0], labels=["Vaginal"], n_per_label=2, max_length=20)
    assert table.view(pd.DataFrame).index.tolist() == ["Vaginal_1", "Vaginal_2"]
    with pytest.raises(PretrainingError, match="no label 'Breech'; it knows Cesarean, Vaginal"):
        mgm_plugin.actions.generate(model=generator[0], labels=["Breech"], n_per_label=2)


def test_unconditioned_samples_from_the_general_model(mgm_plugin, model_artifact):
    table, _, labels = mgm_plugin.actions.generate(model=model_artifact, n_per_label=3, max_length=30)
    assert labels.view(pd.Series).tolist() == ["unconditioned"] * 3
    with pytest.raises(PretrainingError, match="pretrained without labels"):
        mgm_plugin.actions.generate(model=model_artifact, labels=["Vaginal"], n_per_label=3)


@pytest.fixture(scope="module")
def reconstructor(mgm_plugin, ecam_subset_table_artifact):
    reconstructor, = mgm_plugin.actions.fit_reconstructor(table=ecam_subset_table_artifact, epochs=20)
    return reconstructor


def test_fitted_reconstructor_gives_the_abundances(mgm_plugin, reconstructor, generator):
    record = json.loads((data_dir(reconstructor) / "reconstructor.json").read_text())
    assert record["kind"] == "neural" and len(record["history"]["epoch"]) >= 1
    table, _, _ = mgm_plugin.actions.generate(model=generator[0], reconstructor=reconstructor, n_per_label=4,
                                              max_length=30)
    default, _, _ = mgm_plugin.actions.generate(model=generator[0], n_per_label=4, max_length=30)
    fitted, mgnify = table.view(pd.DataFrame), default.view(pd.DataFrame)
    assert np.allclose(fitted.sum(axis=1), 1)
    assert ((fitted > 0) == (mgnify > 0)).all().all() and not np.allclose(fitted, mgnify)


def test_rank_median_reconstructor(mgm_plugin, ecam_subset_table_artifact):
    reconstructor, = mgm_plugin.actions.fit_reconstructor(table=ecam_subset_table_artifact, kind="rank-median")
    medians = json.loads((data_dir(reconstructor) / "reconstructor.json").read_text())["medians"]
    assert medians[0] > medians[5] > 0


def test_a_planted_pickle_is_refused(reconstructor, tmp_path):
    directory = tmp_path / "tampered"
    directory.mkdir()
    (directory / "reconstructor.json").write_bytes((data_dir(reconstructor) / "reconstructor.json").read_bytes())
    (directory / "model.safetensors").write_bytes(plain_pickle_bytes("planted"))
    with pytest.raises(qiime2.plugin.ValidationError, match="safetensors"):
        qiime2.Artifact.import_data("MGMReconstructor", str(directory))


def test_torchrun_with_two_cpu_processes(ecam_subset_corpus_artifact, tmp_path):
    """The documented entry point: two gloo processes share the batches, the first saves the artifacts."""
    corpus = ecam_subset_corpus_artifact.save(str(tmp_path / "corpus.qza"))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", "29531", "-m", "q2_mgm.distributed", "pretrain", "--corpus", corpus, "--output-dir", str(tmp_path / "out"),
               "--p-from-scratch", "true", "--p-n-layer", "1", "--p-n-head", "2", "--p-n-embd", "16",
               "--p-epochs", "2", "--p-device", "cpu"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "2 processes" in result.stdout
    model = qiime2.Artifact.load(str(tmp_path / "out" / "pretrained_model.qza"))
    history = qiime2.Artifact.load(str(tmp_path / "out" / "history.qza")).view(pd.DataFrame)
    assert str(model.type) == "MGMModel[Pretrained]" and len(history) == 2
    action = (data_dir(model).parent / "provenance" / "action" / "action.yaml").read_text()
    assert "action: pretrain" in action and "plugin: !ref 'environment:plugins:mgm'" in action
