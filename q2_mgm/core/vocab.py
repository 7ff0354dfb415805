"""MGM's vocabulary and per-genus statistics, read from microformer-mgm's installed files."""
import functools
import hashlib
import importlib.metadata
import os
import pathlib
from typing import Any, Dict, List, Sequence, Union

import numpy as np
import pandas as pd

UPSTREAM_DIST = "microformer-mgm"
UPSTREAM_VERSION = "0.5.8"
SPECIAL_TOKENS = ("<pad>", "<mask>", "<bos>", "<eos>")
PAD_ID, MASK_ID, BOS_ID, EOS_ID = range(4)
LABEL_PREFIX, LABEL_SUFFIX = "<label:", ">"  # a label token, `<label:Cesarean>` (core.pretraining.label_token)

PathLike = Union[str, os.PathLike]  # a file or directory, as text or a path object


class MGMResourcesMissing(RuntimeError):
    pass


def upstream_resource(relative: str) -> pathlib.Path:
    """Path of a file shipped by microformer-mgm, found without importing `mgm` (its imports pull old pins)."""
    try:
        dist = importlib.metadata.distribution(UPSTREAM_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise MGMResourcesMissing(
            f"The MGM general model and vocabulary come from the PyPI package {UPSTREAM_DIST}=="
            f"{UPSTREAM_VERSION}, which is not installed. Install it with "
            f"`pip install --no-deps {UPSTREAM_DIST}=={UPSTREAM_VERSION}` (or run `make demo`).") from None
    path = pathlib.Path(dist.locate_file(f"mgm/resources/{relative}"))
    if not path.exists():
        raise MGMResourcesMissing(
            f"{UPSTREAM_DIST} is installed but {path} is missing; reinstall it with "
            f"`pip install --no-deps --force-reinstall {UPSTREAM_DIST}=={UPSTREAM_VERSION}`.")
    return path


def versions(**extra: Any) -> Dict[str, Any]:
    """The versions of q2-mgm, torch and transformers (as installed: read without importing them), and `extra`."""
    from .. import __version__
    return {"q2-mgm": __version__, "torch": importlib.metadata.version("torch"),
            "transformers": importlib.metadata.version("transformers"), **extra}


def sha256_of(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Vocabulary:
    """Token <-> id mapping: the four special tokens, then genera in phylogeny.csv order.

    tokens: (n_tokens,) object array of token strings; index: token -> id."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens: np.ndarray = np.asarray(tokens, dtype=object)
        if tuple(self.tokens[:4]) != SPECIAL_TOKENS:
            raise ValueError(f"A vocabulary must start with {', '.join(SPECIAL_TOKENS)}; "
                             f"this one starts with {', '.join(map(str, self.tokens[:4]))}.")
        self.index: Dict[str, int] = {tok: i for i, tok in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("The vocabulary lists a token twice; each token must appear once.")

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self.tokens, other.tokens)

    @classmethod
    def from_file(cls, path: PathLike) -> "Vocabulary":
        return cls(pathlib.Path(path).read_text(encoding="utf-8").splitlines())

    def to_file(self, path: PathLike) -> None:
        pathlib.Path(path).write_text("\n".join(self.tokens) + "\n", encoding="utf-8")


@functools.lru_cache(maxsize=1)
def genus_statistics() -> pd.DataFrame:
    """Per-genus mean and std of relative abundance over MGnify (float64, phylogeny.csv order)."""
    return _read_statistics(upstream_resource("phylogeny.csv"))


def _read_statistics(path):
    """phylogeny.csv (`#SampleID,mean,std`, unquoted) split by hand in well under half pd.read_csv's time, which
    counts as each tokenization reads it afresh. float() rounds correctly; on MGM 0.5.8's file its values are
    pd.read_csv's, bit for bit."""
    lines = path.read_text(encoding="utf-8").split()
    header = lines[0].split(",")
    fields = ",".join(lines[1:]).split(",")
    width = len(header)
    if len(fields) != width * (len(lines) - 1):
        raise ValueError(f"{path} is not a plain CSV table of {width} columns.")
    columns = {name: np.array(fields[header.index(name)::width], dtype=np.float64) for name in ("mean", "std")}
    return pd.DataFrame(columns, index=pd.Index(fields[::width], name=header[0]))


@functools.lru_cache(maxsize=1)
def mgm_vocabulary() -> Vocabulary:
    return Vocabulary(list(SPECIAL_TOKENS) + genus_statistics().index.tolist())


def is_label_token(token: str) -> bool:
    """Whether the token is a label token (pretrain-generator's prompts), not a genus or a special token."""
    return token.startswith(LABEL_PREFIX) and token.endswith(LABEL_SUFFIX)


def label_ids(vocabulary: Vocabulary) -> List[int]:
    """Ids of the vocabulary's label tokens."""
    return [i for i, token in enumerate(vocabulary.tokens) if is_label_token(token)]
