"""Generative pretraining in plain Python, on real ECAM sentences: a tiny GPT-2 (2 layers x 2 heads x 32 wide) from
scratch (loss falls, seeds repeat), label tokens and prompts, the general model grown by label tokens and trained a
step, settings errors, and the same `pretrain` under `torchrun` with two processes (DDP, gloo)."""
import copy
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import transformers

from q2_mgm.core.inference import encode, resolve_device
from q2_mgm.core.models import load_model, save_model
from q2_mgm.core.pretraining import (PretrainingError, PretrainingSettings, _KeepBest, add_label_tokens,
                                     label_token, label_vocabulary, new_model, new_model_config, pretrain,
                                     prompt_ids)
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.training import sequence_model
from q2_mgm.core.vocab import BOS_ID, EOS_ID, label_ids, mgm_vocabulary, upstream_resource

from ..helpers import REPO, read_metadata

pytestmark = pytest.mark.one_torch_thread


def tiny_model(vocab_size=None, random_state=0):
    config = new_model_config(vocab_size or len(mgm_vocabulary()), n_layer=2, n_head=2, n_embd=32, n_positions=64)
    return new_model(config, random_state)


def tiny_settings(**changes):
    return PretrainingSettings(**{"epochs": 2, "learning_rate": 3e-3, "batch_size": 16, **changes})


def state_of(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.fixture(scope="module")
def ecam(ecam_counts):
    """Every eighth ECAM sample (110 sentences): token ids and delivery mode."""
    subset = ecam_counts.iloc[::8]
    sentences = tokenize_dataframe(subset).samples.sentence.loc[subset.index]
    return {"ids": encode(sentences, mgm_vocabulary()),
            "delivery": read_metadata("ecam").delivery.reindex(subset.index)}


@pytest.fixture(scope="module")
def from_scratch(ecam):
    """(model, history) of two epochs from scratch with seed 0."""
    return pretrain(tiny_model(), ecam["ids"], tiny_settings(), report=lambda message: None)


class TestFromScratch:
    def test_loss_falls(self, from_scratch):
        _, history = from_scratch
        assert list(history.index) == ["1", "2"]
        assert list(history.columns) == ["train_loss", "validation_loss", "validation_perplexity"]
        assert history.train_loss.iloc[1] < history.train_loss.iloc[0]
        assert history.validation_loss.iloc[1] < history.validation_loss.iloc[0]
        # a uniform guess over 9,669 tokens costs log(9669) = 9.18 nats per token
        assert history.validation_loss.iloc[0] < np.log(len(mgm_vocabulary()))
        np.testing.assert_allclose(history.validation_perplexity, np.exp(history.validation_loss))

    def test_same_seed_same_weights_and_history(self, ecam, from_scratch):
        model, history = pretrain(tiny_model(), ecam["ids"], tiny_settings(), report=lambda message: None)
        first = state_of(from_scratch[0])
        assert all(torch.equal(first[name], tensor) for name, tensor in state_of(model).items())
        assert history.equals(from_scratch[1])

    def test_another_seed_other_weights(self, ecam, from_scratch):
        model, _ = pretrain(tiny_model(random_state=1), ecam["ids"], tiny_settings(epochs=1, random_state=1),
                            report=lambda message: None)
        assert not torch.equal(model.transformer.wte.weight, from_scratch[0].transformer.wte.weight)

    def test_returns_an_eval_model_on_the_cpu_that_saves_and_loads(self, from_scratch, tmp_path):
        model, _ = from_scratch
        assert not model.training and model.device.type == "cpu"
        save_model(model, mgm_vocabulary(), tmp_path)
        loaded, vocabulary, _ = load_model(tmp_path)
        assert vocabulary == mgm_vocabulary()
        assert torch.equal(loaded.transformer.wte.weight, model.transformer.wte.weight)

    def test_progress_is_reported_each_epoch(self, ecam):
        messages = []
        pretrain(tiny_model(), ecam["ids"][:20], tiny_settings(), report=messages.append)
        assert messages[0].startswith("pretraining on 18 sentences, validating on 2")
        assert [m.split(":")[0] for m in messages[1:]] == ["epoch 1/2", "epoch 2/2"]
        assert "perplexity" in messages[-1]

    def test_early_stopping_keeps_the_best_epoch(self):
        model, keep_best = torch.nn.Linear(1, 1, bias=False), _KeepBest(patience=2)
        control = transformers.TrainerControl()
        for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.6], start=1):
            model.weight.data.fill_(epoch)
            keep_best.on_evaluate(None, None, control, metrics={"eval_loss": loss}, model=model)
            assert control.should_training_stop == (epoch == 4)
        assert keep_best.best_loss == 2.0 and keep_best.best_state["weight"].item() == 2.0


def test_config_matches_upstream_general_model():
    upstream = json.loads(upstream_resource("general_model/config.json").read_text())
    config = new_model_config(upstream["vocab_size"]).to_dict()
    for key in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "activation_function", "resid_pdrop",
                "embd_pdrop", "attn_pdrop", "layer_norm_epsilon", "initializer_range", "bos_token_id",
                "eos_token_id", "pad_token_id", "n_inner"):
        assert config[key] == upstream[key], key


class TestLabels:
    def test_tokens_are_appended_sorted(self):
        vocabulary = label_vocabulary(mgm_vocabulary(), ["Vaginal", "Cesarean", "Vaginal"])
        assert len(vocabulary) == len(mgm_vocabulary()) + 2
        assert list(vocabulary.tokens[-2:]) == ["<label:Cesarean>", "<label:Vaginal>"]
        assert label_ids(vocabulary) == [len(mgm_vocabulary()), len(mgm_vocabulary()) + 1]

    def test_labels_already_there_are_reused(self):
        once = label_vocabulary(mgm_vocabulary(), ["Vaginal"])
        again = label_vocabulary(once, ["Vaginal", "Cesarean"])
        assert list(again.tokens[-2:]) == ["<label:Vaginal>", "<label:Cesarean>"]

    def test_whitespace_becomes_underscore_and_numbers_are_text(self):
        assert label_token("C section") == "<label:C_section>"
        assert label_token(3) == "<label:3>"

    def test_labels_that_clash_are_an_error(self):
        with pytest.raises(PretrainingError, match="'C section' and 'C_section'.*rename"):
            label_vocabulary(mgm_vocabulary(), ["C section", "C_section"])

    @pytest.mark.parametrize("label", [None, float("nan"), " "])
    def test_an_empty_label_is_an_error(self, label):
        with pytest.raises(PretrainingError, match="empty label"):
            label_vocabulary(mgm_vocabulary(), ["Vaginal", label])

    def test_prompts_put_the_label_after_bos(self, ecam):
        vocabulary = label_vocabulary(mgm_vocabulary(), ecam["delivery"])
        prompted = prompt_ids(ecam["ids"], ecam["delivery"], vocabulary)
        for ids, original, label in zip(prompted, ecam["ids"], ecam["delivery"]):
            assert ids[0] == BOS_ID and vocabulary.tokens[ids[1]] == f"<label:{label}>"
            np.testing.assert_array_equal(ids[2:], original[1:])
            assert ids[-1] == EOS_ID

    def test_prompts_are_cut_to_max_length(self, ecam):
        vocabulary = label_vocabulary(mgm_vocabulary(), ["Vaginal"])
        longest = max(ecam["ids"], key=len)
        prompted, = prompt_ids([longest], ["Vaginal"], vocabulary, max_length=len(longest))
        assert len(prompted) == len(longest)
        np.testing.assert_array_equal(prompted[2:], longest[1:-1])  # the last token (<eos>) made room

    def test_prompt_errors(self, ecam):
        vocabulary = label_vocabulary(mgm_vocabulary(), ["Vaginal"])
        with pytest.raises(PretrainingError, match="2 sentences but 1 labels"):
            prompt_ids(ecam["ids"][:2], ["Vaginal"], vocabulary)
        with pytest.raises(PretrainingError, match="no token '<label:Cesarean>'.*label_vocabulary"):
            prompt_ids(ecam["ids"][:1], ["Cesarean"], vocabulary)
        with pytest.raises(PretrainingError, match="does not start with <bos>"):
            prompt_ids([ecam["ids"][0][1:]], ["Vaginal"], vocabulary)


class TestGeneralModelWithLabels:
    @pytest.fixture(scope="class")
    def grown(self, general_model):
        model, vocabulary, _ = general_model
        original = model.transformer.wte.weight.detach().clone()
        grown_model, grown_vocabulary = add_label_tokens(copy.deepcopy(model), vocabulary, ["Vaginal", "Cesarean"])
        return grown_model, grown_vocabulary, original

    def test_embeddings_grow_tied_with_mean_rows(self, grown):
        model, vocabulary, original = grown
        assert len(vocabulary) == 9669 + 2 == model.config.vocab_size
        weights = model.transformer.wte.weight
        assert weights.shape == (9671, 256)
        assert model.lm_head.weight.data_ptr() == weights.data_ptr()  # still tied
        assert torch.equal(weights[:9669], original)
        torch.testing.assert_close(weights[9669:], original[4:].mean(0).expand(2, -1))

    def test_growing_again_with_the_same_labels_changes_nothing(self, grown):
        model, vocabulary, _ = grown
        same_model, same_vocabulary = add_label_tokens(model, vocabulary, ["Cesarean"])
        assert same_vocabulary is vocabulary and same_model.config.vocab_size == 9671

    def test_a_model_and_vocabulary_that_differ_are_an_error(self, general_model):
        with pytest.raises(PretrainingError, match="9669 token embeddings but the vocabulary 9671"):
            add_label_tokens(general_model[0], label_vocabulary(mgm_vocabulary(), ["a", "b"]), ["c"])

    def test_one_epoch_of_prompted_sentences_trains_and_saves(self, grown, ecam, tmp_path):
        model, vocabulary, _ = grown
        ids = prompt_ids(ecam["ids"][:12], ecam["delivery"][:12], vocabulary)
        before = model.transformer.wte.weight[9669:].detach().clone()
        model, history = pretrain(model, ids, tiny_settings(epochs=1, batch_size=4, learning_rate=1e-4,
                                                            validation_fraction=0.2), report=lambda message: None)
        assert len(history) == 1 and np.isfinite(history.validation_loss.iloc[0])
        assert not torch.equal(model.transformer.wte.weight[9669:], before)  # the label rows learnt
        save_model(model, vocabulary, tmp_path)
        loaded, loaded_vocabulary, _ = load_model(tmp_path)
        assert loaded_vocabulary == vocabulary and loaded.config.vocab_size == 9671


class TestErrors:
    @pytest.mark.parametrize("changes, words", [
        ({"validation_fraction": 0.0}, "strictly between 0 and 1"),
        ({"validation_fraction": 1.0}, "strictly between 0 and 1"),
        ({"epochs": 0}, "at least 1"),
        ({"device": "gpu"}, "one of auto, cpu, cuda"),
    ])
    def test_settings(self, ecam, changes, words):
        with pytest.raises(ValueError, match=words):  # PretrainingError, or resolve_device's ValueError
            pretrain(tiny_model(), ecam["ids"][:10], tiny_settings(**changes), report=lambda message: None)

    def test_a_classifier_is_not_a_language_model(self, ecam):
        classifier = sequence_model("classification", 2, config=tiny_model().config)
        with pytest.raises(PretrainingError, match=r"GPT2LMHeadModel\), not a GPT2ForSequenceClassification"):
            pretrain(classifier, ecam["ids"], tiny_settings())

    def test_a_single_sentence(self, ecam):
        with pytest.raises(PretrainingError, match="at least two sentences"):
            pretrain(tiny_model(), ecam["ids"][:1], tiny_settings())

    def test_sentences_longer_than_the_model(self, ecam):
        too_long = [np.concatenate([ids, ids]) for ids in ecam["ids"]]
        with pytest.raises(PretrainingError, match="reads at most 64; tokenize with max_length <= 64"):
            pretrain(tiny_model(), too_long, tiny_settings())

    def test_label_tokens_the_model_lacks(self, ecam):
        vocabulary = label_vocabulary(mgm_vocabulary(), ecam["delivery"])
        with pytest.raises(PretrainingError, match="add_label_tokens"):
            pretrain(tiny_model(), prompt_ids(ecam["ids"], ecam["delivery"], vocabulary), tiny_settings())

    def test_cuda_without_a_gpu(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.raises(ValueError, match="no CUDA GPU.*cpu or auto"):
            resolve_device("cuda")
        assert resolve_device("auto") == "cpu"


DDP_SCRIPT = """
import json, os, sys
import torch
from q2_mgm.core.inference import encode
from q2_mgm.core.models import save_model
from q2_mgm.core.pretraining import PretrainingSettings, new_model, new_model_config, pretrain
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.training import sequence_model
from q2_mgm.core.vocab import mgm_vocabulary
from tests.helpers import read_genus_table

vocabulary = mgm_vocabulary()
ids = encode(tokenize_dataframe(read_genus_table("ecam").iloc[:64]).samples.sentence, vocabulary)
model = new_model(new_model_config(len(vocabulary), n_layer=2, n_head=2, n_embd=32, n_positions=64), 0)
model, history = pretrain(model, ids, PretrainingSettings(epochs=2, learning_rate=3e-3, batch_size=8))
rank, out = os.environ["RANK"], sys.argv[1]
record = {"distributed": torch.distributed.is_initialized(), "world_size": torch.distributed.get_world_size(),
          "history": history.to_dict(), "wte_sum": float(model.transformer.wte.weight.sum())}
with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
    json.dump(record, fh)
if rank == "0":
    os.makedirs(os.path.join(out, "model"))
    save_model(model, vocabulary, os.path.join(out, "model"))
"""


def test_pretrain_under_torchrun_with_two_processes(tmp_path):
    script = tmp_path / "pretrain_ddp.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # a fixed loopback rendezvous: --standalone resolves the host name, which a fresh chroot may not (it hung there)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", "29541", str(script), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert all(record["distributed"] and record["world_size"] == 2 for record in ranks)
    assert list(ranks[0]["history"]["train_loss"]) == ["1", "2"]
    assert ranks[0]["history"] == ranks[1]["history"]  # losses are gathered over both processes
    assert ranks[0]["wte_sum"] == ranks[1]["wte_sum"]  # DDP keeps the replicas identical
    model, vocabulary, _ = load_model(tmp_path / "model")
    assert vocabulary == mgm_vocabulary() and model.config.n_layer == 2
    assert done.stdout.count("epoch 2/2") == 1  # only the first process reports


def test_pretraining_prints_no_transformers_loss_warning(ecam, capfd):
    """transformers finds no loss for the class name GPT2LMHeadModel and would warn that `loss_type=None` is
    unrecognized at the first loss; q2-mgm names the causal LM loss, so nothing of that reaches the user."""
    import transformers
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    transformers.utils.logging.warning_once.cache_clear()  # warned once already in this process, it would be quiet
    try:
        pretrain(tiny_model(), ecam["ids"][:40], tiny_settings(epochs=1), report=lambda message: None)
    finally:
        transformers.logging.set_verbosity(verbosity)
    captured = capfd.readouterr()
    assert "loss_type" not in captured.err + captured.out
