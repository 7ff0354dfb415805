"""The small statistics several tables share: Student's t confidence interval of a mean over a few units (folds,
held-out groups: the cross-validation page and the markers table) and Benjamini-Hochberg q-values (keystone genera,
the meta-analysis). The interval is written out rather than taken from scipy.stats.t.interval, which neither
leaves NaN figures out nor clips to a figure's range; the q-values are statsmodels' multipletests ("fdr_bh";
scipy 1.10 in the Debian lane has no false_discovery_control)."""
from typing import Sequence, Tuple

import numpy as np
import scipy.stats


def t_interval(values: Sequence[float], minimum: int = 2, bounds: Tuple[float, float] = (-np.inf, np.inf),
               confidence: float = 0.95) -> Tuple[float, Tuple[float, float]]:
    """(mean, (low, high)) of the finite-or-inf values (NaN left out): mean +- t(confidence, n - 1) * SD / sqrt(n),
    clipped to `bounds` (e.g. (0, 1) for a ROC AUC); (NaN, NaN) bounds below `minimum` values, and a NaN mean
    with none."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    mean = float(values.mean()) if len(values) else np.nan
    if len(values) < max(minimum, 2):
        return mean, (np.nan, np.nan)
    half = scipy.stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, (max(mean - half, bounds[0]), min(mean + half, bounds[1]))


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """(n,) Benjamini-Hochberg q-values of (n,) p-values; NaN (untested) p-values stay NaN and do not count among
    the tests."""
    from statsmodels.stats.multitest import multipletests  # statsmodels loads when a table is made, not at start
    p_values = np.asarray(p_values, dtype=float)
    q = np.full(len(p_values), np.nan)
    tested = ~np.isnan(p_values)
    if tested.any():
        q[tested] = multipletests(p_values[tested], method="fdr_bh")[1]
    return q
