"""Models, vocabularies, tokenization and inference (issue 19 item 3): each error a user meets through an action or
an import, provoked as the user meets it, then the fix its message names applied, and the action (or the import)
succeeding. tests/advice/models.py maps each raise to its test here."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import qiime2
from qiime2.plugin import ValidationError

from .helpers import corpus_of, frequency_table


def _table(frame):
    return frequency_table(frame)


def _sentences(corpus):
    return corpus.view(pd.DataFrame).sentence


@pytest.fixture(scope="module")
def small_corpus(genera):
    """12 samples of the first 12 genera of MGM's vocabulary: short sentences for the tiny model."""
    return corpus_of(genera, [f"s{i:02d}" for i in range(12)], seed=0)


@pytest.fixture(scope="module")
def exported_tiny_model(tiny_model, tmp_path_factory):
    """The tiny model's files as q2-mgm wrote them: what `qiime tools export` gives a user."""
    directory = tmp_path_factory.mktemp("tiny-model") / "model"
    tiny_model.export_data(str(directory))
    return directory


# --- a model's files damaged (hand-edited, cut short); the advice: restore the named files as q2-mgm wrote them ---

def _edit_config(**changes):
    def edit(directory):
        record = json.loads((directory / "config.json").read_text())
        record.update(changes)
        (directory / "config.json").write_text(json.dumps(record))
    return edit


def _write(name, text):
    def write(directory):
        (directory / name).write_text(text)
    return write


def _truncate_weights(directory):
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[:len(data) // 2])


def _append_token(directory):
    with open(directory / "vocab.txt", "a") as fh:
        fh.write("g__Notagenus\n")


def _token_twice(directory):
    lines = (directory / "vocab.txt").read_text().splitlines()
    lines[10] = lines[11]
    (directory / "vocab.txt").write_text("\n".join(lines) + "\n")


# name: (damage, what the message says, the files it advises to restore)
MODEL_DAMAGES = {
    "architecture renamed": (_edit_config(architectures=["GPT2Model"]),
                             r"config.json names architecture 'GPT2Model'.*Restore config.json", ["config.json"]),
    "config.json not an object": (_write("config.json", "[]"),
                                  r"config.json is not a readable GPT-2 configuration.*Restore config.json",
                                  ["config.json"]),
    "config.json size not a number": (_edit_config(n_embd="wide"),
                                      r"not a readable GPT-2 configuration: n_embd is 'wide'.*Restore config.json",
                                      ["config.json"]),
    "config.json n_head does not divide n_embd": (_edit_config(n_head=3), r"not a readable GPT-2 configuration: "
                                                  r"n_embd 16 is not a multiple of n_head 3.*Restore config.json",
                                                  ["config.json"]),
    "weights cut short": (_truncate_weights, r"not a valid safetensors file.*Restore model.safetensors",
                          ["model.safetensors"]),
    "vocab.txt one token longer": (_append_token, r"vocab.txt lists 9670 tokens but config.json's vocab_size is "
                                   r"9669.*Restore the vocab.txt saved with these weights", ["vocab.txt"]),
    "vocab.txt lists a token twice": (_token_twice, r"vocab.txt is not a valid vocabulary: The vocabulary lists a "
                                      r"token twice.*Restore vocab.txt", ["vocab.txt"]),
    "config.json n_embd differs": (_edit_config(n_embd=32), r"model.safetensors does not match config.json.*"
                                   r"Restore config.json and model.safetensors",
                                   ["config.json", "model.safetensors"]),
}


@pytest.mark.parametrize("name", list(MODEL_DAMAGES))
def test_a_damaged_model_file_is_refused_and_restored_as_advised_the_model_embeds(
        name, exported_tiny_model, small_corpus, mgm_plugin, tmp_path):
    damage, message, restore = MODEL_DAMAGES[name]
    directory = tmp_path / "model"
    shutil.copytree(exported_tiny_model, directory)
    damage(directory)
    with pytest.raises(ValidationError, match=message):
        qiime2.Artifact.import_data("MGMModel[Pretrained]", str(directory))
    for file in restore:  # the advice: the files as q2-mgm wrote them (the model's .qza exported again)
        shutil.copyfile(exported_tiny_model / file, directory / file)
    model = qiime2.Artifact.import_data("MGMModel[Pretrained]", str(directory))
    embeddings, = mgm_plugin.actions.embed(corpus=small_corpus, model=model)
    assert embeddings.view(pd.DataFrame).shape[0] == 12


# --- values the registrations refuse first ---

def test_guarded_values_are_outside_the_registrations_choices_and_ranges(mgm_plugin, small_corpus, tiny_model):
    """device, pooling and max_length outside their Choices/Range never reach resolve_device, _forward_pass or
    tokenize_matrix: every action that has the parameter refuses them (and the action refuses them before it
    runs)."""
    from q2_mgm.core.settings import DEVICES, POOLINGS
    refused = {"device": "gpu", "pooling": "max", "max_length": 1}
    assert "gpu" not in DEVICES and "max" not in POOLINGS
    checked = set()
    for action in mgm_plugin.actions.__dict__.values():
        signature = getattr(action, "signature", None)
        if signature is None:
            continue
        for parameter, value in refused.items():
            if parameter in signature.parameters:
                assert value not in signature.parameters[parameter].qiime_type, (action.id, parameter)
                checked.add(parameter)
    assert checked == set(refused)
    with pytest.raises(TypeError, match="pooling"):
        mgm_plugin.actions.embed(corpus=small_corpus, model=tiny_model, pooling="max")
    with pytest.raises(TypeError, match="device"):
        mgm_plugin.actions.embed(corpus=small_corpus, model=tiny_model, device="gpu")


# --- inference ---

def test_cuda_without_a_gpu_then_cpu_as_advised_embeds(mgm_plugin, small_corpus, tiny_model):
    import torch
    if torch.cuda.is_available():
        pytest.skip("torch sees a CUDA GPU here: device cuda runs, so the error cannot be provoked")
    with pytest.raises(ValueError, match="device is cuda but torch sees no CUDA GPU here; use device cpu or auto"):
        mgm_plugin.actions.embed(corpus=small_corpus, model=tiny_model, device="cuda")
    for advised in ("cpu", "auto"):
        embeddings, = mgm_plugin.actions.embed(corpus=small_corpus, model=tiny_model, device=advised)
        assert embeddings.view(pd.DataFrame).shape[0] == 12


def test_a_model_with_another_vocabulary_then_the_general_model_as_advised_embeds(
        mgm_plugin, small_corpus, model_artifact):
    import transformers
    from q2_mgm._formats import MGMModelDirFmt
    from q2_mgm.core.inference import VocabularyMismatch
    from q2_mgm.core.models import save_model
    from q2_mgm.core.vocab import Vocabulary
    vocabulary = Vocabulary(["<pad>", "<mask>", "<bos>", "<eos>", "g__Bacteroides", "g__Prevotella"])
    config = transformers.GPT2Config(vocab_size=len(vocabulary), n_positions=64, n_embd=16, n_layer=1, n_head=2)
    directory = MGMModelDirFmt()
    save_model(transformers.GPT2LMHeadModel(config), vocabulary, directory.path, source="a test")
    foreign = qiime2.Artifact.import_data("MGMModel[Pretrained]", directory)
    with pytest.raises(VocabularyMismatch, match="different vocabularies. Use a model on MGM's vocabulary.*"
                                                 "general-model"):
        mgm_plugin.actions.embed(corpus=small_corpus, model=foreign)
    embeddings, = mgm_plugin.actions.embed(corpus=small_corpus, model=model_artifact)
    assert embeddings.view(pd.DataFrame).shape == (12, 256)


def test_sentences_longer_than_the_model_reads_then_tokenized_with_its_max_length_as_advised(
        mgm_plugin, tiny_model):
    from q2_mgm.core.vocab import mgm_vocabulary
    genera = [t for t in mgm_vocabulary().tokens if t.startswith("g__")][:100]
    counts = np.random.default_rng(1).integers(1, 50, size=(3, 100)).astype(float)
    table = _table(pd.DataFrame(counts, index=["a", "b", "c"], columns=genera))
    long, = mgm_plugin.actions.tokenize(table=table)
    with pytest.raises(ValueError, match="A sentence has 102 tokens but the model reads at most 64; tokenize with "
                                         "max_length <= 64"):
        mgm_plugin.actions.embed(corpus=long, model=tiny_model)
    short, = mgm_plugin.actions.tokenize(table=table, max_length=64)
    embeddings, = mgm_plugin.actions.embed(corpus=short, model=tiny_model)
    assert embeddings.view(pd.DataFrame).shape == (3, 16)


# --- memory ---

def test_a_table_too_big_for_the_memory_then_split_into_parts_as_advised_tokenizes(
        mgm_plugin, twins_counts, twins_table_artifact, twins_corpus_artifact, monkeypatch):
    from qiime2.plugins import feature_table
    from q2_mgm.core import memory
    from q2_mgm.core.memory import InsufficientMemory
    whole = memory.tokenize_needs(len(twins_counts), int((twins_counts.to_numpy() != 0).sum()))
    monkeypatch.setattr(memory, "available_bytes", lambda: whole - 1)
    with pytest.raises(InsufficientMemory, match=r"Tokenizing 278 samples .* needs about .* GB of memory.*split its "
                                                 r"samples into parts \(qiime feature-table filter-samples\)"):
        mgm_plugin.actions.tokenize(table=twins_table_artifact)
    ids = twins_counts.index
    parts = []
    for half in (ids[:139], ids[139:]):  # the advice: qiime feature-table filter-samples, then tokenize each part
        keep = qiime2.Metadata(pd.DataFrame(index=pd.Index(half, name="id")))
        part, = feature_table.actions.filter_samples(table=twins_table_artifact, metadata=keep)
        parts.append(_sentences(mgm_plugin.actions.tokenize(table=part).corpus))
    monkeypatch.undo()
    pd.testing.assert_series_equal(pd.concat(parts).sort_index(), _sentences(twins_corpus_artifact).sort_index())


# --- tokenize's inputs ---

def test_non_finite_values_then_the_sample_removed_as_advised_tokenizes(mgm_plugin, twins_counts):
    from qiime2.plugins import feature_table
    from q2_mgm.core.tokenizer import TokenizationError
    frame = twins_counts.iloc[:6].copy()
    frame.iloc[2, 3] = np.nan
    table = _table(frame)
    with pytest.raises(TokenizationError, match="The table holds 1 non-finite values.*remove those features or "
                                                "samples before tokenizing"):
        mgm_plugin.actions.tokenize(table=table)
    keep = qiime2.Metadata(pd.DataFrame(index=pd.Index(frame.index.delete(2), name="id")))
    filtered, = feature_table.actions.filter_samples(table=table, metadata=keep)
    corpus, = mgm_plugin.actions.tokenize(table=filtered)
    assert _sentences(corpus).index.tolist() == frame.index.delete(2).tolist()


def test_a_clr_transformed_table_then_the_untransformed_one_as_advised_tokenizes(mgm_plugin, twins_counts):
    from q2_mgm.core.tokenizer import TokenizationError
    counts = twins_counts.iloc[:6]
    logs = np.log(counts + 1.0)
    clr = logs.sub(logs.mean(axis=1), axis=0)
    with pytest.raises(TokenizationError, match="negative values. MGM needs counts.*give it the untransformed table"):
        mgm_plugin.actions.tokenize(table=_table(clr))
    corpus, = mgm_plugin.actions.tokenize(table=_table(counts))
    assert len(_sentences(corpus)) == 6


def _hashed(frame):
    """The table with feature IDs as a denoiser writes them (no names), and the taxonomy that goes with it."""
    ids = [f"asv{i:03d}" for i in range(frame.shape[1])]
    taxonomy = pd.DataFrame({"Taxon": [f"k__Bacteria; {name}" for name in frame.columns]},
                            index=pd.Index(ids, name="Feature ID"))
    return frame.set_axis(ids, axis=1), taxonomy


def test_a_taxonomy_short_of_features_then_the_table_filtered_to_it_as_advised_tokenizes(mgm_plugin, twins_counts):
    from qiime2.plugins import feature_table
    from q2_mgm.core.tokenizer import TokenizationError
    frame, taxonomy = _hashed(twins_counts.iloc[:20])
    partial = qiime2.Artifact.import_data("FeatureData[Taxonomy]", taxonomy.iloc[3:])
    table = _table(frame)
    with pytest.raises(TokenizationError, match=r"The taxonomy does not cover 3 of the table's .* features.*filter "
                                                r"the table to the classified features \(qiime feature-table "
                                                r"filter-features\)"):
        mgm_plugin.actions.tokenize(table=table, taxonomy=partial)
    classified, = feature_table.actions.filter_features(table=table, metadata=partial.view(qiime2.Metadata))
    corpus, = mgm_plugin.actions.tokenize(table=classified, taxonomy=partial)
    assert len(_sentences(corpus)) > 0 and set(corpus.view(pd.DataFrame).index) <= set(frame.index)


def test_a_table_emptied_by_a_filter_then_a_lower_threshold_as_advised_tokenizes(mgm_plugin, twins_table_artifact):
    from qiime2.plugins import feature_table
    from q2_mgm.core.tokenizer import TokenizationError
    # what QIIME 2 2022.11's filter-samples returns here (2024.10's refuses to write an empty table)
    import biom
    features = twins_table_artifact.view(pd.DataFrame).columns
    emptied = qiime2.Artifact.import_data("FeatureTable[Frequency]",
                                          biom.Table(np.zeros((len(features), 0)), list(features), []))
    with pytest.raises(TokenizationError, match="The table is empty.*rerun that filter with a lower threshold"):
        mgm_plugin.actions.tokenize(table=emptied)
    filtered, = feature_table.actions.filter_samples(table=twins_table_artifact, min_frequency=1000)
    corpus, = mgm_plugin.actions.tokenize(table=filtered)
    assert 0 < len(_sentences(corpus)) <= 278


def _silva(frame):
    """The table's genus columns written in SILVA 132's convention (D_5__Genus)."""
    return frame.set_axis([f"D_0__Bacteria;D_5__{name[3:]}" if name.startswith("g__") else name
                           for name in frame.columns], axis=1)


def test_features_without_readable_genera_then_the_taxonomy_or_harmonize_names_as_advised_tokenize(
        mgm_plugin, twins_counts):
    from q2_mgm.core.tokenizer import TokenizationError
    frame, taxonomy = _hashed(twins_counts.iloc[:6])
    with pytest.raises(TokenizationError, match=r"None of the table's features has a genus in MGM's vocabulary.*"
                                                r"pass the FeatureData\[Taxonomy\] that goes with the table"):
        mgm_plugin.actions.tokenize(table=_table(frame))
    corpus, = mgm_plugin.actions.tokenize(
        table=_table(frame), taxonomy=qiime2.Artifact.import_data("FeatureData[Taxonomy]", taxonomy))
    expected = mgm_plugin.actions.tokenize(table=_table(twins_counts.iloc[:6])).corpus
    pd.testing.assert_series_equal(_sentences(corpus), _sentences(expected))
    silva = _table(_silva(twins_counts.iloc[:6]))
    with pytest.raises(TokenizationError, match=r"None of the table's features has a genus that upstream MGM reads.*"
                                                r"SILVA 132.*pass harmonize_names=True"):
        mgm_plugin.actions.tokenize(table=silva)
    corpus, = mgm_plugin.actions.tokenize(table=silva, harmonize_names=True)
    pd.testing.assert_series_equal(_sentences(corpus), _sentences(expected))


def test_samples_without_abundance_in_the_vocabulary_then_harmonize_names_as_advised_tokenizes(
        mgm_plugin, twins_counts):
    """A table whose `g__` features are zero in these samples (merged with SILVA-named ones): no sample holds a genus
    upstream MGM reads; read the SILVA names too and every sample tokenizes."""
    from q2_mgm.core.tokenizer import TokenizationError
    counts = twins_counts.iloc[:6]
    frame = pd.concat([_silva(counts), pd.DataFrame({"g__Akkermansia": 0.0}, index=counts.index)], axis=1)
    with pytest.raises(TokenizationError, match=r"All 6 samples have zero abundance in MGM's vocabulary: the 1 "
                                                r"features read as MGM genera are zero.*pass harmonize_names=True"):
        mgm_plugin.actions.tokenize(table=_table(frame))
    corpus, = mgm_plugin.actions.tokenize(table=_table(frame), harmonize_names=True)
    expected = mgm_plugin.actions.tokenize(table=_table(counts)).corpus
    pd.testing.assert_series_equal(_sentences(corpus), _sentences(expected))


# --- pretraining under torchrun (q2_mgm.distributed) ---

def test_an_unknown_parameter_of_distributed_pretraining_then_the_one_it_names_as_advised_runs(
        small_corpus, tiny_model, tmp_path):
    from q2_mgm import distributed
    corpus, model = small_corpus.save(str(tmp_path / "corpus.qza")), tiny_model.save(str(tmp_path / "model.qza"))
    arguments = ["pretrain", "--corpus", corpus, "--model", model, "--output-dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="pretrain has no parameter 'epoch'; it has .*epochs"):
        distributed.main(arguments + ["--p-epoch", "1", "--p-device", "cpu"])
    distributed.main(arguments + ["--p-epochs", "1", "--p-device", "cpu"])
    pretrained = qiime2.Artifact.load(str(tmp_path / "out" / "pretrained_model.qza"))
    assert str(pretrained.type) == "MGMModel[Pretrained]"
    assert len(qiime2.Artifact.load(str(tmp_path / "out" / "history.qza")).view(pd.DataFrame)) == 1
