"""Which genera carry across held-out groups: each genus's effect on a model's decision in one group of samples
(the mean contribution in one class's samples minus in the others, from core.contributions), and how consistently
it points one way across the held-out groups (studies) of a cross-validation, as the cross-study meta-analyses of
SIAMCAT (Wirbel et al. 2021, Genome Biol.) and MMUPHin (Ma et al. 2022, Genome Biol.) report markers.

Effects are in the decision score's units: log-odds for a classifier, the target's units for a regressor. With two
classes the score is the log-odds of the second class, so a positive effect points to the second class; with more,
each class's effect is on its own logit (that class against the rest); for numbers, an effect is the mean
contribution in the samples above the group's median minus in the others, and points to `higher` or `lower`.
"""
from typing import Sequence

import numpy as np
import pandas as pd

HIGHER, LOWER = "higher", "lower"


def effect_targets(task: str, classes: Sequence[str]) -> list:
    """What each output's effect is measured for: the second class (two classes: the log-odds of it), each class
    (more: each logit), or `higher` (regression)."""
    if task == "regression":
        return [HIGHER]
    return [classes[1]] if len(classes) == 2 else list(classes)


def group_effects(totals: Sequence[pd.DataFrame], truth: pd.Series, task: str,
                  classes: Sequence[str]) -> pd.DataFrame:
    """genera x effect_targets: each genus's effect in one group of samples.

    totals: one samples x genera DataFrame per output (core.contributions' Contributions.total, in output order);
    truth: each sample's class (or number), indexed as the totals. A class's effect is the mean contribution to its
    output in its samples minus in the others; NaN where the group lacks the class or holds nothing else (for
    numbers: where every value is the same)."""
    columns = {}
    for target, total in zip(effect_targets(task, classes), totals):
        values = truth.reindex(total.index)
        inside = (values == target) if task == "classification" else values.astype(float) > values.astype(float).median()
        if inside.all() or not inside.any():
            columns[target] = pd.Series(np.nan, index=total.columns)
        else:
            columns[target] = total[inside.to_numpy()].mean() - total[~inside.to_numpy()].mean()
    return pd.DataFrame(columns).rename_axis(index="genus", columns="points_to")
