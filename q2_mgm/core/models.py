"""Load and save MGM models: config.json, model.safetensors, vocab.txt, versions.json. Nothing is ever unpickled
from an artifact; upstream's `.bin` weights are read once with torch's tensors-only loader."""
import contextlib
import json
import pathlib
from typing import Any, Dict, Iterator, Tuple, Union

import safetensors
import safetensors.torch
import torch
import transformers

from .vocab import (PathLike, Vocabulary, mgm_vocabulary, sha256_of, upstream_resource, versions, UPSTREAM_DIST,
                    UPSTREAM_VERSION)

MODEL_FILES = ("config.json", "model.safetensors", "vocab.txt", "versions.json")
ARCHITECTURES = {
    "GPT2LMHeadModel": transformers.GPT2LMHeadModel,
    "GPT2ForSequenceClassification": transformers.GPT2ForSequenceClassification,
}
# either architecture q2-mgm builds: the language model or the supervised (classifier, regressor) one
MGMNetwork = Union[transformers.GPT2LMHeadModel, transformers.GPT2ForSequenceClassification]


class ModelFormatError(ValueError):
    """A model directory that is incomplete, inconsistent or not safetensors; the message says which file, and how
    to get a valid one back."""


def _restore(files: str, them: bool = False) -> str:
    """The fix for a damaged model file: the file q2-mgm wrote, or the model made again."""
    return (f"Restore {files} as q2-mgm wrote {'them' if them else 'it'} (export the model's .qza again), or rerun "
            "the action that made the model.")


def build_model(config: transformers.GPT2Config) -> MGMNetwork:
    architecture = (config.architectures or ["GPT2LMHeadModel"])[0]
    if architecture not in ARCHITECTURES:
        raise ModelFormatError(f"config.json names architecture {architecture!r}; q2-mgm knows "
                               f"{', '.join(ARCHITECTURES)}. {_restore('config.json')}")
    config._attn_implementation = "eager"  # attention weights are only returned by the eager kernel
    model = ARCHITECTURES[architecture](config)
    if isinstance(model, transformers.GPT2LMHeadModel):
        # transformers finds a loss by class name, and `GPT2LMHeadModel` names none: it would warn "loss_type=None
        # ... unrecognized" at the first loss and fall back to this one, the causal LM loss
        model.loss_type = "ForCausalLM"
    if getattr(config, "score_bias", False):  # an exactly fit head (q2-mgm's frozen-encoder recipe) has a bias
        model.score = torch.nn.Linear(config.n_embd, config.num_labels, bias=True)
    if config.activation_function == "gelu_new":
        # the same tanh formula as one fused kernel: gelu_new's Python version costs more than the matmuls on CPU
        for block in model.transformer.h:
            block.mlp.act = transformers.activations.ACT2FN["gelu_pytorch_tanh"]
    return model


@contextlib.contextmanager
def input_gradients(model: MGMNetwork) -> Iterator[MGMNetwork]:
    """The model set, until the block ends, for gradients with respect to its inputs only (integrated gradients):
    its parameters frozen, so that the backward pass computes no weight gradients, and attention computed by torch's
    fused kernel (`sdpa`) where the installed transformers switches kernels at run time (set_attn_implementation,
    4.54+; otherwise the eager kernel stays). Both change only the last float32 bits: the eager kernel is q2-mgm's
    default because it alone returns attention weights. Measured on 40 CRC sentences at 32 steps on 2 CPU cores:
    1.06x faster than the model as loaded (benchmarks/results/markers.md)."""
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    kernel = model.config._attn_implementation
    switch = getattr(model, "set_attn_implementation", None)
    try:
        for parameter in trainable:
            parameter.requires_grad_(False)
        if switch is not None:
            switch("sdpa")
        yield model
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)
        if switch is not None:
            switch(kernel)


def general_model_config() -> transformers.GPT2Config:
    """The general model's architecture (GPT2LMHeadModel), without reading its weights."""
    config = transformers.GPT2Config.from_json_file(upstream_resource("general_model/config.json"))
    config.architectures = ["GPT2LMHeadModel"]
    return config


def load_general_model() -> Tuple[transformers.GPT2LMHeadModel, Vocabulary, Dict[str, str]]:
    """Upstream's pretrained general model, its vocabulary and the sha256 of its source weights."""
    source = upstream_resource("general_model/pytorch_model.bin")
    model = build_model(general_model_config())
    state = torch.load(source, map_location="cpu", weights_only=True)  # tensors only: no code runs
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    model.eval()
    return model, mgm_vocabulary(), {"source": f"{UPSTREAM_DIST}=={UPSTREAM_VERSION}:"
                                               "mgm/resources/general_model/pytorch_model.bin",
                                     "source_sha256": sha256_of(source)}


def save_model(model: MGMNetwork, vocabulary: Vocabulary, directory: PathLike, **provenance: Any) -> None:
    directory = pathlib.Path(directory)
    model.config.architectures = [type(model).__name__]
    model.config.to_json_file(directory / "config.json")
    safetensors.torch.save_model(model, str(directory / "model.safetensors"))
    vocabulary.to_file(directory / "vocab.txt")
    (directory / "versions.json").write_text(json.dumps(versions(**provenance), indent=2) + "\n")


# the sizes the architecture is built from: a hand-edited config.json must hold each as a positive whole number
CONFIG_SIZES = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")


def _read_config(directory):
    try:
        config = transformers.GPT2Config.from_json_file(directory / "config.json")
    except (OSError, ValueError, TypeError) as error:  # TypeError: valid JSON that is not an object
        problem = str(error)
    else:
        bad = [name for name in CONFIG_SIZES if type(getattr(config, name)) is not int or getattr(config, name) < 1]
        if bad:
            problem = f"{bad[0]} is {getattr(config, bad[0])!r}, not a positive whole number"
        elif config.n_embd % config.n_head:
            problem = f"n_embd {config.n_embd} is not a multiple of n_head {config.n_head}"
        else:
            return config
    raise ModelFormatError(f"config.json is not a readable GPT-2 configuration: {problem}. "
                           f"{_restore('config.json')}") from None


_SHAPES: Dict[str, Tuple[Dict[str, Tuple[int, ...]], Dict[str, set]]] = {}  # config.json's text -> its shapes


def _expected_shapes(config):
    """The shape of each tensor config.json calls for, and the names that share each tensor (tied weights). Worked
    out once per configuration in a process: QIIME 2 validates a model each time it passes between actions (four
    times in classify-samples), and loading checks it once more."""
    key = config.to_json_string()
    if key not in _SHAPES:
        with torch.device("meta"):
            model = build_model(config)
        state = model.state_dict(keep_vars=True)
        tied = {name: {other for other, shared in state.items() if shared is tensor} for name, tensor in state.items()}
        _SHAPES[key] = {name: tuple(tensor.shape) for name, tensor in state.items()}, tied
    return _SHAPES[key]


def _stored_shapes(path):
    try:
        with safetensors.safe_open(str(path), framework="pt") as weights:
            return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except Exception as error:  # safetensors raises its own error types for any malformed header
        raise ModelFormatError(
            f"model.safetensors is not a valid safetensors file ({error}). q2-mgm stores and loads weights only as "
            f"safetensors and never unpickles a file. {_restore('model.safetensors')}") from None


def validate_model_dir(directory: PathLike) -> Tuple[transformers.GPT2Config, Vocabulary]:
    """Raise ModelFormatError unless the directory holds a complete, consistent MGM model."""
    directory = pathlib.Path(directory)
    missing = [name for name in MODEL_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelFormatError(f"The model is missing {', '.join(missing)}; it needs {', '.join(MODEL_FILES)}.")
    config = _read_config(directory)
    try:
        vocabulary = Vocabulary.from_file(directory / "vocab.txt")
    except ValueError as error:
        raise ModelFormatError(f"vocab.txt is not a valid vocabulary: {error} {_restore('vocab.txt')}") from None
    if len(vocabulary) != config.vocab_size:
        raise ModelFormatError(f"vocab.txt lists {len(vocabulary)} tokens but config.json's vocab_size is "
                               f"{config.vocab_size}: the vocabulary does not belong to these weights. "
                               f"{_restore('the vocab.txt saved with these weights')}")
    (expected, tied), stored = _expected_shapes(config), _stored_shapes(directory / "model.safetensors")
    unknown = sorted(set(stored) - set(expected))
    wrong = sorted(name for name in stored.keys() & expected.keys() if stored[name] != expected[name])
    absent = sorted(name for name in expected.keys() - stored.keys() if not tied[name] & stored.keys())
    if unknown or wrong or absent:
        detail = ", ".join(f"{n} {stored[n]} (config wants {expected[n]})" for n in wrong[:3]) or \
            ", ".join(unknown[:3]) or "no weights for " + ", ".join(absent[:3])
        raise ModelFormatError(f"model.safetensors does not match config.json: {detail}. "
                               f"{_restore('config.json and model.safetensors', them=True)}")
    try:
        json.loads((directory / "versions.json").read_text())
    except ValueError as error:
        raise ModelFormatError(f"versions.json is not valid JSON: {error}") from None
    return config, vocabulary


def load_model(directory: PathLike) -> Tuple[MGMNetwork, Vocabulary, Dict[str, Any]]:
    """(model in eval mode, vocabulary, versions) from a validated model directory."""
    directory = pathlib.Path(directory)
    config, vocabulary = validate_model_dir(directory)
    model = build_model(config)
    missing, unexpected = safetensors.torch.load_model(model, str(directory / "model.safetensors"), strict=False)
    model.tie_weights()
    untied = [name for name in missing if name != "lm_head.weight"]
    if untied or unexpected:
        raise ModelFormatError(f"model.safetensors lacks weights for {', '.join(untied[:3])}.")
    model.eval()
    return model, vocabulary, json.loads((directory / "versions.json").read_text())


def model_fingerprint(network: MGMNetwork) -> str:
    """16 hex digits of the sha256 of the token embeddings' bytes: which frozen model made a cross-validation's
    features, so that its markers are explained by the same one."""
    import hashlib
    return hashlib.sha256(network.transformer.wte.weight.detach().cpu().float().numpy().tobytes()).hexdigest()[:16]
