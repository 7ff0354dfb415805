"""Train/validation (and split-corpus's train/test) splits: stratified by class, and group-aware, so that no subject
sits on both sides."""
import math
from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedGroupKFold, StratifiedShuffleSplit

from ..samples import filter_out_advice
from .settings import TrainingError

TEST_SIZE = 0.2  # split-corpus's and the pipelines' default share of samples (or groups) held out to test


def check_class_sizes(labels: pd.Series, sides: Sequence[str], column: str,
                      groups: Optional[Sequence[str]] = None) -> None:
    """Before any work: every class of `labels` (one per sample) needs a sample on each side of every split it
    crosses (`sides`, e.g. training, validation, test), so at least len(sides) samples, or len(sides) groups where
    `groups` keeps a group on one side. TrainingError names the class, its count, the column and the fix."""
    labels = pd.Series(np.asarray(labels).astype(str))
    counts = (labels.value_counts() if groups is None else
              pd.Series(np.asarray(groups)).groupby(labels.to_numpy()).nunique()).sort_values(kind="stable")
    rare = counts[counts < len(sides)]
    if len(rare):
        name, count = rare.index[0], int(rare.iloc[0])
        unit = "sample" if groups is None else "group"
        others = f" ({len(rare) - 1} more classes are as rare)" if len(rare) > 1 else ""
        raise TrainingError(
            f"Class {name!r} of metadata column {column!r} has {count} {unit}{'' if count == 1 else 's'}; each "
            f"class needs at least {len(sides)}, one for each of {', '.join(sides)}{others}. Filter those samples "
            f"out ({filter_out_advice(column, name)}) or merge the class with a related one, then run again.")


def _hold_out_every_class(targets, groups, train_idx, held_idx, random_state):
    """Move one sample of each class that the held-out side lacks (and the training side holds twice or more)
    there, or the whole group of that sample where each group holds one class: a stratified split of a few samples
    can round a rare class away, and an evaluation of it then says nothing about that class."""
    targets = np.asarray(targets)
    missing = [name for name in np.unique(targets) if not (targets[held_idx] == name).any()]
    if not missing:
        return train_idx, held_idx  # the split as the library made it, in its order
    rng = np.random.default_rng(random_state)
    train, held = list(train_idx), list(held_idx)
    for name in missing:
        candidates = [i for i in train if targets[i] == name]
        if len(candidates) < 2:
            continue
        chosen = candidates[rng.integers(len(candidates))]
        moved = [chosen] if groups is None else [i for i in train if groups[i] == groups[chosen]]
        if len(moved) < len(candidates):
            train, held = [i for i in train if i not in moved], held + moved
    return np.asarray(train, dtype=int), np.asarray(held, dtype=int)


def _split_groups_by_their_class(targets, groups, fraction, random_state):
    """Where every group holds one class (a child's delivery mode), hold out a stratified share of the groups:
    StratifiedGroupKFold balances samples, not groups, and on ECAM left one caesarean child of nine in validation.
    None where a group mixes classes or a class has fewer than two groups."""
    names, first, inverse = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    group_classes = np.asarray(targets)[first]
    classes, groups_per_class = np.unique(group_classes, return_counts=True)  # labels may be strings (split-corpus)
    if not (np.asarray(targets) == group_classes[inverse]).all() or groups_per_class.min() < 2:
        return None
    n_validation = min(max(round(fraction * len(names)), len(classes)), len(names) - len(classes))
    _, held_out = next(StratifiedShuffleSplit(1, test_size=n_validation, random_state=random_state)
                       .split(names, group_classes))
    validation = np.isin(inverse, held_out)
    return _hold_out_every_class(targets, np.asarray(groups), np.flatnonzero(~validation),
                                 np.flatnonzero(validation), random_state)


def validation_split(targets: np.ndarray, groups: Optional[np.ndarray], fraction: float, task: str,
                     random_state: int) -> Tuple[np.ndarray, np.ndarray]:
    """Train/validation indices (int arrays) of (n_samples,) targets; with groups ((n_samples,) group names), no
    group is on both sides; classification is stratified."""
    index = np.arange(len(targets))
    if groups is not None:
        if task == "classification":
            by_group = _split_groups_by_their_class(targets, groups, fraction, random_state)
            if by_group is not None:
                return by_group
            # one fold of round(1 / fraction) held out; no more folds than groups, nor than the largest class has
            # samples (StratifiedGroupKFold refuses that): a small cohort then holds out a larger share
            largest = np.unique(targets, return_counts=True)[1].max()
            n_splits = max(2, min(round(1 / fraction), len(np.unique(groups)), largest))
            splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
            return next(splitter.split(index, targets, groups))
        return next(GroupShuffleSplit(1, test_size=fraction, random_state=random_state).split(index, groups=groups))
    if task == "classification":
        n_classes = len(np.unique(targets))  # at least one of each class held out, where the split can hold them
        n_held = min(max(math.ceil(fraction * len(index)), n_classes), len(index) - n_classes)
        train_idx, held_idx = next(StratifiedShuffleSplit(1, test_size=n_held, random_state=random_state)
                                   .split(index, targets))
        return _hold_out_every_class(targets, None, train_idx, held_idx, random_state)
    return next(ShuffleSplit(1, test_size=fraction, random_state=random_state).split(index))
