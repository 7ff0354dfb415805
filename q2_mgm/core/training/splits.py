"""Train/validation (and split-corpus's train/test) splits: stratified by class, and group-aware, so that no subject
sits on both sides."""
from typing import Optional, Tuple

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedGroupKFold, StratifiedShuffleSplit

TEST_SIZE = 0.2  # split-corpus's and the pipelines' default share of samples (or groups) held out to test


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
    return np.flatnonzero(~validation), np.flatnonzero(validation)


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
            splitter = StratifiedGroupKFold(n_splits=max(2, round(1 / fraction)), shuffle=True,
                                            random_state=random_state)
            return next(splitter.split(index, targets, groups))
        return next(GroupShuffleSplit(1, test_size=fraction, random_state=random_state).split(index, groups=groups))
    if task == "classification":
        return next(StratifiedShuffleSplit(1, test_size=fraction, random_state=random_state).split(index, targets))
    return next(ShuffleSplit(1, test_size=fraction, random_state=random_state).split(index))
