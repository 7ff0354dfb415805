"""What every reconstructor shares: the errors, genus profiles aligned with sentences, Bray-Curtis evaluation, and
reconstructor.json (each class registers its kind, so that load_reconstructor reads any of them)."""
import importlib
import json
import pathlib
from typing import Any, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple, Type, TypeVar, Union

import numpy as np
import pandas as pd

from ..schemas import strict_json
from ..tokenizer import assign_genera
from ..vocab import SPECIAL_TOKENS, PathLike, is_label_token, versions

RECORD, WEIGHTS = "reconstructor.json", "model.safetensors"
# the fix every error of a saved reconstructor names: its files as saved together, or a new fit
REFIT = (f"restore the reconstructor's files ({RECORD}, and {WEIGHTS} for a neural one) as fit-reconstructor saved "
         "them together, or fit the reconstructor again with fit-reconstructor")
# where sentences of MGM's genera come from, for an error that finds others
MGM_SENTENCES = ("tokenize's, or generate's from a model whose vocab.txt is MGM's (general-model, or pretrain and "
                 "pretrain-generator from it)")
MAX_RANK = 512
PREDICT_BATCH = 256

# sentences as text (`<bos> g__A ... <eos>`) or as token lists, e.g. a corpus's sentence column
Sentences = Iterable[Union[str, Sequence[str]]]
Profile = Union[np.ndarray, pd.Series, Sequence[float]]  # one sample's abundances, (n_genera,)


class Reconstructor(Protocol):
    """What every reconstructor class offers (each also has fit and from_record, and registers its kind)."""
    kind: str

    def predict(self, genera: Sentences) -> List[np.ndarray]:
        ...

    def save(self, directory: PathLike) -> None:
        ...


ReconstructorT = TypeVar("ReconstructorT")  # a reconstructor class, as registered or loaded


class ReconstructionError(ValueError):
    """Inputs that cannot fit or apply a reconstructor; the message names the problem and the fix."""


class ReconstructorFormatError(ValueError):
    """A saved reconstructor that is incomplete or inconsistent; the message names the file."""


# --- data ---

def genus_relative_abundance(table: pd.DataFrame, taxonomy: Optional[pd.Series] = None,
                             harmonize_names: bool = False) -> pd.DataFrame:
    """Samples x MGM genera relative abundance, as the tokenizer normalises (give it the tokenizer's taxonomy and
    harmonize_names): features summed per vocabulary genus, divided by the sample's total in the vocabulary.
    Features the taxonomy lacks and samples without any vocabulary genus are left out."""
    taxa = pd.Series(table.columns.astype(str), index=table.columns) if taxonomy is None else \
        taxonomy.reindex(table.columns).astype(str)
    column, genus, _ = assign_genera(taxa, harmonize_names)
    in_vocabulary = column >= 0
    summed = table.loc[:, in_vocabulary].T.groupby(genus[in_vocabulary].to_numpy()).sum().T.astype(float)
    totals = summed.sum(axis=1)
    return summed[totals > 0].div(totals[totals > 0], axis=0)


def sentence_genera(sentences: Sentences) -> List[List[str]]:
    """Genus tokens of each sentence (text `<bos> g__A ... <eos>` or a token list), in rank order."""
    return [[token for token in (sentence.split() if isinstance(sentence, str) else sentence)
             if token not in SPECIAL_TOKENS and not is_label_token(token)] for sentence in sentences]


def bray_curtis(a: Profile, b: Profile) -> float:
    """Bray-Curtis dissimilarity of two aligned non-negative profiles: sum|a - b| / sum(a + b)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    total = (a + b).sum()
    if total == 0:
        raise ReconstructionError("Bray-Curtis is undefined for two empty profiles.")
    return float(np.abs(a - b).sum() / total)


def aligned_profiles(relative: pd.DataFrame,
                     sentences: pd.Series) -> Tuple[pd.Index, List[List[str]], List[np.ndarray]]:
    """The IDs of the samples in both, their genus lists and their real profiles (one float64 array along each
    sentence)."""
    if not isinstance(sentences, pd.Series):
        raise ReconstructionError("Give the sentences as a pandas Series indexed by sample ID (e.g. "
                                  "corpus.samples.sentence), so that they can be matched to the profiles.")
    shared = sentences.index.intersection(relative.index)
    if len(shared) == 0:
        raise ReconstructionError("No sample ID is both among the sentences and in the abundance table; they must "
                                  "come from the same samples.")
    genera = sentence_genera(sentences.loc[shared])
    rows = relative.loc[shared]
    profiles = [rows.loc[sample].reindex(names, fill_value=0.0).to_numpy(float)
                for sample, names in zip(shared, genera)]
    for sample, names, profile in zip(shared, genera, profiles):
        if not (profile > 0).all():
            raise ReconstructionError(
                f"Sample {sample}'s sentence names {names[int(np.argmin(profile > 0))]}, which has no abundance in "
                "the table: the sentences were not made from this table. Use genus_relative_abundance on the table "
                "that was tokenized, with the same taxonomy and harmonize_names.")
    return shared, genera, profiles


def check_predictable(genera: Sequence[Sequence[str]]) -> None:
    empty = sum(1 for names in genera if not names)
    if empty:
        raise ReconstructionError(f"{empty} sentences hold no genus; a sentence needs at least one to reconstruct.")


def genera_to_predict(genera: Sentences, fitted: bool = True) -> List[List[str]]:
    """Each sentence's genera, checked for what predict needs: a fitted reconstructor (ReconstructionError
    otherwise) and at least one genus per sentence."""
    if not fitted:
        raise ReconstructionError("The reconstructor is not fitted; call fit first.")
    genera = sentence_genera(genera)
    check_predictable(genera)
    return genera


# --- evaluation ---

def per_sample_bray_curtis(reconstructor: Reconstructor, relative: pd.DataFrame, sentences: pd.Series) -> pd.Series:
    """Bray-Curtis between each sample's real profile (all its genera) and the reconstruction from its sentence."""
    shared, genera, _ = aligned_profiles(relative, sentences)
    predicted = reconstructor.predict(genera)
    rows = relative.loc[shared]
    scores = []
    for sample, names, values in zip(shared, genera, predicted):
        real, reconstructed = rows.loc[sample], pd.Series(values, index=names)
        genera_of_both = real.index.union(reconstructed.index)
        scores.append(bray_curtis(real.reindex(genera_of_both, fill_value=0.0),
                                  reconstructed.reindex(genera_of_both, fill_value=0.0)))
    return pd.Series(scores, index=shared, name="bray_curtis")


def evaluate(reconstructor: Reconstructor, relative: pd.DataFrame, sentences: pd.Series) -> float:
    """Mean Bray-Curtis between real profiles and their reconstructions (0: perfect, 1: nothing shared)."""
    return float(per_sample_bray_curtis(reconstructor, relative, sentences).mean())


# --- saving and loading ---

KINDS: Dict[str, type] = {}  # kind -> reconstructor class; each class registers itself with @reconstructor_kind


def reconstructor_kind(cls: Type[ReconstructorT]) -> Type[ReconstructorT]:
    """Register a reconstructor class under its `kind`, so that load_reconstructor can read what it saves."""
    KINDS[cls.kind] = cls
    return cls


def write_record(directory: PathLike, record: Dict[str, Any]) -> None:
    """reconstructor.json: the record with the format's name and the versions that wrote it."""
    record = {"format": "q2-mgm reconstructor", **record, "versions": versions()}
    (pathlib.Path(directory) / RECORD).write_text(
        json.dumps(strict_json(record), indent=2, allow_nan=False, default=float) + "\n")


def load_reconstructor(directory: PathLike) -> Reconstructor:
    """A reconstructor saved with .save(directory), validated; ReconstructorFormatError names what is wrong."""
    path = pathlib.Path(directory) / RECORD
    if not path.is_file():
        raise ReconstructorFormatError(f"The reconstructor is missing {RECORD}; save it with .save(directory).")
    try:
        record = json.loads(path.read_text())
    except ValueError as error:
        raise ReconstructorFormatError(f"{RECORD} is not valid JSON: {error}") from None
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind == "neural":  # its class registers itself when its module, which imports torch, is first imported
        importlib.import_module(f"{__package__}.neural")
    if kind not in KINDS:
        raise ReconstructorFormatError(f"{RECORD} names reconstructor kind {kind!r}; q2-mgm knows "
                                       f"{', '.join(sorted({*KINDS, 'neural'}))}. {REFIT[0].upper()}{REFIT[1:]}.")
    return KINDS[kind].from_record(record, directory)


def load_kind(cls: Type[ReconstructorT], directory: PathLike) -> ReconstructorT:
    """The reconstructor saved in directory, which must be of class cls."""
    reconstructor = load_reconstructor(directory)
    if not isinstance(reconstructor, cls):
        raise ReconstructorFormatError(f"The reconstructor in {directory} is {reconstructor.kind}, not {cls.kind}; "
                                       "load it with load_reconstructor.")
    return reconstructor
