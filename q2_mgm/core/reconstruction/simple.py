"""Reconstructors with no network: each genus' MGnify mean (no training at all), and each rank's median abundance in a
real table."""
import math
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ..vocab import PathLike, genus_statistics
from .base import (MGM_SENTENCES, RECORD, REFIT, ReconstructionError, ReconstructorFormatError, Sentences,
                   aligned_profiles, genera_to_predict, load_kind, reconstructor_kind, write_record)


# --- MGnify means: no training ---

@reconstructor_kind
class MGnifyMeanReconstructor:
    """Each genus gets its mean relative abundance over MGnify (MGM's own per-genus statistics), renormalised over
    the sentence: needs no training data, so `generate` can give abundances without a fitted reconstructor."""

    kind = "mgnify-mean"

    def fit(self, relative: Optional[pd.DataFrame] = None,
            sentences: Optional[pd.Series] = None) -> "MGnifyMeanReconstructor":
        return self

    def predict(self, genera: Sentences) -> List[np.ndarray]:
        """One array per sentence (genus lists or sentence text): relative abundances along its genera."""
        genera = genera_to_predict(genera)
        means = genus_statistics()["mean"]
        unknown = {g for names in genera for g in names} - set(means.index)
        if unknown:
            raise ReconstructionError(f"{len(unknown)} genera are not MGM genera (for example "
                                      f"{sorted(unknown)[0]}); give sentences made with MGM's vocabulary: "
                                      f"{MGM_SENTENCES}.")
        return [(values := means.loc[names].to_numpy(float)) / values.sum() for names in genera]

    def save(self, directory: PathLike) -> None:
        write_record(directory, {"kind": self.kind})

    @classmethod
    def from_record(cls, record: Dict[str, Any], directory: PathLike) -> "MGnifyMeanReconstructor":
        return cls()


# --- rank medians ---

@reconstructor_kind
class RankMedianReconstructor:
    """Each rank gets the median relative abundance of that rank in the training corpus; ranks beyond the longest
    training sentence get the last rank's median."""

    kind = "rank-median"

    def __init__(self, medians: Optional[Union[np.ndarray, Sequence[float]]] = None) -> None:
        self.medians = None if medians is None else np.asarray(medians, dtype=float)

    def fit(self, relative: pd.DataFrame, sentences: pd.Series) -> "RankMedianReconstructor":
        """Fit on real relative abundance (samples x genera, e.g. genus_relative_abundance) and the samples'
        sentences (Series indexed by sample ID)."""
        _, _, profiles = aligned_profiles(relative, sentences)
        longest = max(len(profile) for profile in profiles)
        padded = np.full((len(profiles), longest), np.nan)
        for row, profile in enumerate(profiles):
            padded[row, :len(profile)] = profile
        self.medians = np.nanmedian(padded, axis=0)
        return self

    def predict(self, genera: Sentences) -> List[np.ndarray]:
        """One array per sentence (genus lists or sentence text): relative abundances along its genera."""
        genera = genera_to_predict(genera, fitted=self.medians is not None)
        out = []
        for names in genera:
            values = self.medians[np.minimum(np.arange(len(names)), len(self.medians) - 1)]
            out.append(values / values.sum())
        return out

    def save(self, directory: PathLike) -> None:
        """Write reconstructor.json (the medians) into directory."""
        if self.medians is None:
            raise ReconstructionError("The reconstructor is not fitted; call fit first.")
        write_record(directory, {"kind": self.kind, "medians": self.medians.tolist()})

    @classmethod
    def load(cls, directory: PathLike) -> "RankMedianReconstructor":
        """The rank-median reconstructor saved in directory, validated."""
        return load_kind(cls, directory)

    @classmethod
    def from_record(cls, record: Dict[str, Any], directory: PathLike) -> "RankMedianReconstructor":
        medians = record.get("medians")
        if not isinstance(medians, list) or not medians or \
                not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in medians):
            raise ReconstructorFormatError(f"{RECORD} lists no valid medians: it needs a non-empty list of "
                                           f"positive numbers; {REFIT}.")
        return cls(medians)


