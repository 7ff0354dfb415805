"""A generator without a model, to judge MGM's generated samples against (core.realism scores both alike):
real profiles bootstrapped per label, each redrawn from a Dirichlet centred on it."""
from typing import Optional, Tuple

import numpy as np
import pandas as pd

from .realism import REAL, RealismError, labelled_profiles


def bootstrap_baseline(real: pd.DataFrame, labels: pd.Series, n_per_label: Optional[int] = None,
                       concentration: float = 100.0, random_state: int = 0) -> Tuple[pd.DataFrame, pd.Series]:
    """Synthetic samples without a model: per label, real profiles drawn with replacement, each redrawn from a
    Dirichlet centred on it (concentration x its relative abundances; larger concentration, less noise; genera
    absent from the profile stay absent). n_per_label: samples per label (default: as many as the real label has).
    Returns (relative abundance, samples x the real table's features; labels), IDs bootstrap-0, bootstrap-1, ..."""
    if not concentration > 0:
        raise RealismError(f"concentration must be positive (got {concentration}); around 100 adds moderate noise.")
    if n_per_label is not None and n_per_label < 1:
        raise RealismError(f"n_per_label must be at least 1 (got {n_per_label}), or None for as many as real.")
    relative, labels, _ = labelled_profiles(REAL, real, labels)
    rng = np.random.default_rng(random_state)
    drawn = np.concatenate([rng.choice(np.flatnonzero(labels == label),
                                       (labels == label).sum() if n_per_label is None else n_per_label)
                            for label in sorted(labels.unique())])
    centres = relative.to_numpy()[drawn]
    noisy = rng.gamma(concentration * centres)  # a Dirichlet draw, before normalising; shape 0 gives 0
    totals = noisy.sum(axis=1, keepdims=True)
    profiles = np.where(totals > 0, noisy / np.where(totals > 0, totals, 1), centres)  # all underflowed: keep centre
    ids = pd.Index([f"bootstrap-{i}" for i in range(len(drawn))], name="sample_id")
    return (pd.DataFrame(profiles, index=ids, columns=relative.columns),
            pd.Series(labels.to_numpy()[drawn], index=ids, name=labels.name))
