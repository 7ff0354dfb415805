"""The general model, q2-mgm's model directory (config.json, model.safetensors, vocab.txt, versions.json), and
validation that refuses incomplete, inconsistent or pickled models without ever unpickling anything."""
import hashlib
import importlib.metadata

import pytest
import torch

from q2_mgm.core.models import MODEL_FILES, ModelFormatError, load_model, validate_model_dir
from q2_mgm.core.vocab import mgm_vocabulary

from ..helpers import (TAMPERINGS, copy_model_dir, plain_pickle_bytes, torch_pickle_bytes,
                       unpickle_as_an_unsafe_loader_would)


def upstream_weights():
    return importlib.metadata.distribution("microformer-mgm").locate_file(
        "mgm/resources/general_model/pytorch_model.bin")


def test_general_model(general_model):
    model, vocabulary, provenance = general_model
    config = model.config
    assert (config.n_layer, config.n_head, config.n_embd, config.n_positions, config.vocab_size) == \
        (8, 8, 256, 512, 9669)
    assert not model.training
    assert vocabulary == mgm_vocabulary() and len(vocabulary) == config.vocab_size
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # tied, as upstream
    assert provenance["source"].startswith("microformer-mgm==0.5.8:")
    assert provenance["source_sha256"] == hashlib.sha256(open(upstream_weights(), "rb").read()).hexdigest()


def test_saved_model_is_safetensors_and_loads_back_identically(general_model, saved_model_dir):
    model, vocabulary, provenance = general_model
    assert sorted(p.name for p in saved_model_dir.iterdir()) == sorted(MODEL_FILES)
    header = (saved_model_dir / "model.safetensors").read_bytes()[:9]
    assert int.from_bytes(header[:8], "little") > 0 and header[8:9] == b"{"
    config, stored_vocabulary = validate_model_dir(saved_model_dir)
    assert config.vocab_size == 9669 and stored_vocabulary == vocabulary
    loaded, loaded_vocabulary, versions = load_model(saved_model_dir)
    assert loaded_vocabulary == vocabulary and not loaded.training
    original, reloaded = model.state_dict(), loaded.state_dict()
    assert original.keys() == reloaded.keys()
    for name in original:
        assert torch.equal(original[name], reloaded[name]), name
    assert versions["source_sha256"] == provenance["source_sha256"]
    assert {"q2-mgm", "torch", "transformers"} <= set(versions)


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampered_model_is_refused(name, saved_model_dir, tmp_path):
    tamper, words, _ = TAMPERINGS[name]
    directory = copy_model_dir(saved_model_dir, tmp_path / "model")
    tamper(directory)
    for attempt in (validate_model_dir, load_model):
        with pytest.raises(ModelFormatError) as error:
            attempt(directory)
        for word in words:
            assert word in str(error.value), (word, str(error.value))


@pytest.mark.parametrize("make_payload", [plain_pickle_bytes, torch_pickle_bytes], ids=["pickle", "torch.save"])
def test_a_pickle_planted_as_weights_is_never_unpickled(make_payload, saved_model_dir, tmp_path):
    marker = tmp_path / "UNPICKLED"
    payload = make_payload(marker)
    directory = copy_model_dir(saved_model_dir, tmp_path / "model")
    (directory / "model.safetensors").write_bytes(payload)
    for attempt in (validate_model_dir, load_model):
        with pytest.raises(ModelFormatError, match="not a valid safetensors file.*never unpickles"):
            attempt(directory)
        assert not marker.exists(), f"{attempt.__name__} unpickled the planted file"
    # the control: the payload is live, so its absence above means nothing unpickled it
    unpickle_as_an_unsafe_loader_would(payload)
    assert marker.exists()


def test_input_gradients_switches_the_kernel_and_freezes_the_weights_then_restores_both(general_model):
    """Inside input_gradients the general model's input gradients are those of its eager kernel up to float32
    rounding (8 layers of width 256: relative differences of order 1e-6; 1e-4 holds them with room), no weight
    gradient is computed, and afterwards (also after an error) the weights train and attention is eager again."""
    from q2_mgm.core.models import input_gradients
    model = general_model[0]
    ids = torch.tensor([[2] + list(range(10, 50))])

    def gradient():
        point = model.transformer.wte(ids).detach().requires_grad_(True)
        model(inputs_embeds=point).logits[0, -1].logsumexp(0).backward()
        return point.grad

    eager = gradient()
    model.zero_grad(set_to_none=True)
    with input_gradients(model):
        switched = gradient()
        assert not any(p.requires_grad for p in model.parameters())
        assert all(p.grad is None for p in model.parameters())
        if hasattr(model, "set_attn_implementation"):
            assert model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(switched, eager, rtol=1e-4, atol=1e-4 * eager.abs().max().item())
    with pytest.raises(RuntimeError, match="inside"):
        with input_gradients(model):
            raise RuntimeError("an error inside")
    assert all(p.requires_grad for p in model.parameters())
    assert model.config._attn_implementation == "eager"
    model.zero_grad(set_to_none=True)
