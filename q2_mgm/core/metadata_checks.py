"""Degenerate metadata, caught before any work (before a model runs): a target that never varies, a groups column
with one group or with a class that lives in one group only, batches that each hold one class or are too small to
standardise within, a batch-corrected model given too few new samples, and classes too small for a keystone
report's `min_samples`. Each check raises the error class its caller passes (the area's ValueError subclass) with
a message that names the column, an offending value, and a fix that works for that action's parameters.

Plain pandas in (sample ID -> value Series, or arrays in sample order); no QIIME 2."""
from typing import Optional, Sequence, Type

import numpy as np
import pandas as pd

from .samples import filter_out_advice, listed
from .transfer import MIN_BATCH_SAMPLES

SPECIAL_TOKENS = ("<bos>", "<eos>", "<pad>")


def _values(values) -> pd.Series:
    return pd.Series(np.asarray(values)) if not isinstance(values, pd.Series) else values.reset_index(drop=True)


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else repr(str(value))


def id_names(values: pd.Series) -> pd.Series:
    """IDs (of studies, batches, subjects) as text. QIIME 2 reads a column of IDs written as numbers (1, 2, 3) as
    Numeric, and its values as floats: they are named as written (1, not 1.0). A missing value stays missing."""
    if not pd.api.types.is_numeric_dtype(values):
        return values.astype(str).where(values.notna(), values)
    return values.map(lambda v: v if pd.isna(v) else (str(int(v)) if float(v).is_integer() else f"{v:g}"))


def check_target_varies(values, column: str, task: str, error: Type[Exception]) -> None:
    """The target (labels or numbers of the samples used) must take two values at least. Raises `error` naming the
    column and its one value: one class leaves nothing to tell apart, one number nothing to predict (every method
    would score perfectly)."""
    distinct = pd.unique(_values(values).dropna())
    if len(distinct) != 1:
        return
    value = distinct[0]
    if task == "classification":
        raise error(f"Metadata column {column!r} holds one class, {_shown(value)}, in every sample used: there is "
                    "nothing to tell apart. Give a column with at least two classes (or add samples of another "
                    "class to the table and the metadata).")
    raise error(f"Metadata column {column!r} holds one value, {_shown(value)}, in every sample used: there is "
                "nothing to predict (every method would be exact). Regress a column whose values vary among the "
                "samples.")


def groups_of_one_class(groups, labels) -> bool:
    """Whether every group (groups, labels: arrays or Series of the same samples, in order) holds one class."""
    return bool((_values(labels).astype(str).groupby(_values(groups).astype(str).to_numpy()).nunique() == 1).all())


def check_groups(groups, column: str, error: Type[Exception], strategy: Optional[str] = "k-fold",
                 labels=None, label_column: str = "") -> None:
    """A groups column (study, subject) that decides the folds (strategy: the cv_strategy; None for the validation
    split of fine-tune and train): one group leaves nothing to hold out; and, where a classification's `labels` of
    the same samples are given, a class held by one group only leaves no sample of that class to train on while
    that group is held out; and, under leave-one-group-out, groups that each hold one class leave no fold that can
    be scored. Raises `error` naming the column, the group (and class) and fixes that work: without groups
    (stratified, with cv_strategy 'k-fold'), or a column with several groups."""
    groups = _values(groups).astype(str)
    without = {"k-fold": "leave groups out (the folds are then stratified k-fold over the samples)",
               "leave-one-group-out": "leave groups out and use cv_strategy 'k-fold' (stratified k-fold over the "
                                      "samples)",
               None: "leave groups out (the validation split is then stratified over the samples)"}[strategy]
    distinct = pd.unique(groups)
    if len(distinct) == 1:
        raise error(f"Groups column {column!r} holds one group, {distinct[0]!r}, for every sample used: with one "
                    f"group there is nothing to hold out across groups. Either {without}, or give a groups column "
                    "with several groups (e.g. studies or subjects).")
    if labels is None:
        return
    labels = _values(labels).astype(str)
    if strategy == "leave-one-group-out" and groups_of_one_class(groups, labels):
        group = sorted(pd.unique(groups))[0]
        raise error(f"Every group of {column!r} holds one class of {label_column!r} (group {group!r}: "
                    f"{labels[groups == group].iloc[0]!r}): leaving one group out holds out one class only, so no "
                    "fold can be scored (ROC AUC needs two classes) and the groups cannot be told from the classes. "
                    f"Either {without}, or give a groups column whose groups each hold several classes (e.g. "
                    "studies with cases and controls).")
    per_class = groups.groupby(labels.to_numpy()).nunique()
    lone = per_class[per_class < 2]
    if len(lone):
        name = lone.index[0]
        group = groups[labels == name].iloc[0]
        raise error(f"Class {name!r} of {label_column!r} is held by one group of {column!r} only, {group!r}: "
                    f"holding out {group!r} leaves no sample of {name!r} to train on, so no model can predict it. "
                    f"Either {without}, or give a groups column in which every class spans two groups or more.")


def check_batches(batches, column: str, labels, label_column: str, task: str, minimum: int,
                  error: Type[Exception]) -> None:
    """A batches column (study, run) whose every batch is standardised on its own samples: each batch needs
    `minimum` samples, and the batches must not each hold one class (or one value): standardising within such
    batches erases the very difference to learn. One batch of one class among mixed ones is no error (it is left
    out of the leave-one-batch-out validation, which then names it). Raises `error` naming the column, the batch
    and fixes that work: merging or filtering out the batch, or leaving batches out."""
    batches = _values(batches).astype(str)
    counts = batches.value_counts().sort_values(kind="stable")
    if counts.iloc[0] < minimum:
        name, count = counts.index[0], int(counts.iloc[0])
        raise error(f"Batch {name!r} of {column!r} holds {count} sample(s); standardising within each batch needs "
                    f"at least {minimum} samples of every batch (a few dozen for stable figures). Merge the batch "
                    f"with a related one (give their samples one value in {column!r}), filter its samples out "
                    f"({filter_out_advice(column, name)}), or leave batches out.")
    labels = _values(labels)
    per_batch = labels.groupby(batches.to_numpy()).nunique()
    if len(per_batch) > 1 and (per_batch == 1).all():
        first = per_batch.index[0]
        kind, kinds = ("class", "classes") if task == "classification" else ("value", "values")
        raise error(f"Every batch of {column!r} holds one {kind} of {label_column!r} (batch {first!r}: "
                    f"{_shown(labels[batches == first].iloc[0])}): standardising each batch on its own samples "
                    f"would erase the differences to learn. Leave batches out, or give a batches column whose "
                    f"batches each hold several {kinds}.")


def check_columns(labels, label_column: str, task: str, error: Type[Exception], groups=None,
                  groups_column: Optional[str] = None, batches=None, batches_column: Optional[str] = None,
                  strategy: Optional[str] = "k-fold") -> None:
    """Every check of a supervised action's columns on the samples it keeps, before any work: the target
    (check_target_varies), the groups (check_groups; strategy as there) and the batches (check_batches, at least
    core.transfer.MIN_BATCH_SAMPLES per batch), each an array or Series in the samples' order, or None."""
    check_target_varies(labels, label_column, task, error)
    if groups is not None:
        check_groups(groups, groups_column, error, strategy,
                     labels if task == "classification" else None, label_column)
    if batches is not None:
        check_batches(batches, batches_column, labels, label_column, task, MIN_BATCH_SAMPLES, error)


def check_new_cohort(batches: Optional[pd.Series], n_samples: int, minimum: int, error: Type[Exception],
                     work: str = "predict") -> None:
    """Samples that a batch-corrected model predicts (or explains: `work`) are standardised on their own cohort
    (batch): `batches` (sample ID -> batch of the samples, None where no batches were given: the samples are one
    cohort) must give each cohort `minimum` samples. Raises `error` saying so and naming what the user can do."""
    what = (f"A batch-corrected model (fine-tuned with batches) standardises {'new ' if work == 'predict' else ''}"
            f"samples on their own cohort, so it needs at least {minimum} samples of each cohort")
    if batches is None:
        if n_samples < minimum:
            raise error(f"{what}; no batches were given, so the {n_samples} sample(s) to {work} are one cohort. "
                        f"{work.capitalize()} them together with other samples of their cohort (at least "
                        f"{minimum}, tokenized in one table), or {work} with a model fine-tuned without batches.")
        return
    counts = _values(batches).astype(str).value_counts().sort_values(kind="stable")
    if counts.iloc[0] < minimum:
        name, count = counts.index[0], int(counts.iloc[0])
        if work == "predict":
            alone = f", or leave batches out (all {n_samples} samples are then one cohort)" if n_samples >= minimum \
                else ""
            fixes = (f"merge it with a related batch (one value in {batches.name!r}){alone}, or predict with a model "
                     "fine-tuned without batches")
        else:  # keystone-genera needs the batches of a model fit with them (and refuses a regressor fit without)
            fixes = f"or merge it with a related batch (one value in {batches.name!r})"
        raise error(f"{what}; batch {name!r} of {batches.name!r} holds {count}. {work.capitalize()} it together "
                    f"with more samples of its cohort, {fixes}.")


def batch_of_each_sample(sample_ids: pd.Index, batches: pd.Series, minimum: int, error: Type[Exception],
                         work: str = "predict") -> pd.Series:
    """Each sample's batch as text (IDs written as numbers named as written, named as `batches`), as a model fit
    with batches reads them to predict or explain (`work`) the samples of `sample_ids`: every sample needs a batch
    and every batch `minimum` samples (check_new_cohort). Raises `error` naming the samples or the batch and the
    fix."""
    values = batches.reindex(sample_ids)
    if values.isna().any():
        missing = values.index[values.isna()]
        raise error(f"{len(missing)} sample(s) have no batch in {batches.name!r} ({listed(missing, 5)}); this model "
                    "standardises each batch on its own samples, so every sample needs one. Fill them in, or leave "
                    "those samples out: qiime feature-table filter-samples on the table, then tokenize it again.")
    values = id_names(values).rename(batches.name)
    check_new_cohort(values, len(values), minimum, error, work)
    return values


def genus_presence(sentences: pd.Series) -> pd.DataFrame:
    """samples x genus tokens, True where a sample's sentence holds the genus (special tokens aside)."""
    tokens = sentences.str.split().explode()
    tokens = tokens[~tokens.isin(SPECIAL_TOKENS)].dropna()
    if tokens.empty:
        return pd.DataFrame(index=sentences.index, dtype=bool)
    return pd.crosstab(tokens.index, tokens.to_numpy()).reindex(sentences.index, fill_value=0).gt(0)


def check_min_samples(sentences: pd.Series, groups: pd.Series, min_samples: int, column: str,
                      error: Type[Exception], subjects: Optional[pd.Series] = None) -> None:
    """keystone-report ranks a class's genera held by `min_samples` samples (subjects, where `subjects` maps sample
    ID -> subject) of the class at least. sentences: sample ID -> sentence; groups: sample ID -> class of the
    samples scored. Raises `error` when some class would rank no genus, naming the class, how many samples its
    most common genus reaches, and the min_samples (within its Range, 1 or more) that ranks a genus in every class."""
    present = genus_presence(sentences.loc[groups.index])
    if subjects is not None:
        units = subjects.reindex(groups.index).astype(str)
        present = present.groupby(units.to_numpy()).any()
        groups = groups.groupby(units.to_numpy()).first()
    reach = present.groupby(groups.reindex(present.index).astype(str).to_numpy()).sum().max(axis=1)
    short = reach[reach < min_samples].sort_values(kind="stable")
    if short.empty:
        return
    unit = "samples" if subjects is None else "subjects"
    lowest = max(int(reach.min()), 1)
    summary = ", ".join(f"{c} {int(n)}" for c, n in reach.items())
    every = len(short) == len(reach)
    where = f"any class of {column!r}" if every else f"class {short.index[0]!r} of {column!r}"
    raise error(f"No genus reaches min_samples={min_samples} {unit} in {where} (the most any one genus reaches "
                f"per class: {summary}), so {'no class would rank a genus' if every else 'that class would rank none'}"
                f". Lower min_samples to {lowest} (--p-min-samples {lowest}) to rank genera in every class, or add "
                f"{unit} of the class.")


def unvalidated_batches(batches: Sequence[str], labels: Sequence[str]) -> list:
    """The batches that leaving one batch out cannot validate: holding each out leaves some class of it without
    a training sample (every sample of that class is in the batch)."""
    batches, labels = np.asarray(batches).astype(str), np.asarray(labels).astype(str)
    return [str(b) for b in pd.unique(batches)
            if any(not ((labels == c) & (batches != b)).any() for c in np.unique(labels[batches == b]))]
