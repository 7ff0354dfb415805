"""Which samples an action can use: those with a value in every metadata column it reads. Samples the metadata does
not hold at all are an error by default, as in q2-sample-classifier (`missing_samples`); samples left out are
counted and reported, never dropped silently; none left is a clear error."""
from typing import Callable, List, Optional, Sequence, Tuple, Type

import pandas as pd

MISSING_SAMPLES_MODES = ("error", "ignore")  # as q2-sample-classifier's missing_samples
MISSING_SAMPLES = "error"  # the default of every action's missing_samples
NOT_IN_METADATA = "not in the metadata"
LISTED_IN_ERRORS = 10  # sample IDs an error lists before it counts the rest


def no_value_in(name: str) -> str:
    """The reason a sample the metadata holds is left out: it has no value in column `name`."""
    return f"no value in metadata column {name!r}"


def reasons_left_out(sample_ids: pd.Index, columns: Sequence[Tuple[str, pd.Series]]) -> pd.Series:
    """The samples of `sample_ids` without a value in every column, with the reason (NOT_IN_METADATA where a
    column's index lacks the ID, else `no_value_in` the first column without a value), in `sample_ids`' order."""
    sample_ids = pd.Index(sample_ids)
    reasons = pd.Series(None, index=sample_ids, dtype=object)
    for name, values in columns:  # absent from a column's metadata first: that is the reason to fix first
        absent = ~sample_ids.isin(values.index)
        reasons[absent & reasons.isna().to_numpy()] = NOT_IN_METADATA
    for name, values in columns:
        empty = values.reindex(sample_ids).isna().to_numpy()
        reasons[empty & reasons.isna().to_numpy()] = no_value_in(name)
    return reasons.dropna().rename("reason")


def listed(sample_ids: Sequence[str], first: int = LISTED_IN_ERRORS) -> str:
    """The first `first` IDs, then how many more: 'P01, P02, ... and 6 more'."""
    ids = [str(i) for i in sample_ids]
    more = f" and {len(ids) - first} more" if len(ids) > first else ""
    return ", ".join(ids[:first]) + more


def samples_with_values(sample_ids: pd.Index, columns: Sequence[Tuple[str, pd.Series]],
                        error: Type[Exception], report: Callable[[str], None], where: str = "the corpus's",
                        missing_samples: str = MISSING_SAMPLES) -> Tuple[pd.Index, List[pd.Series]]:
    """(the sample IDs with a value in every column, in `sample_ids`' order; each column's values on them).

    `columns` holds (name, values indexed by the metadata's sample IDs) pairs: an ID absent from a column's index is
    not in the metadata, an ID with NaN has no value. With missing_samples 'error' (the default, as
    q2-sample-classifier), samples not in the metadata raise `error` listing them; with 'ignore' they are left out.
    Samples with no value are left out either way. Raises `error` naming the first column when no sample has values
    in all of them; reports how many were left out, and why."""
    if missing_samples not in MISSING_SAMPLES_MODES:
        raise ValueError(f"missing_samples is {missing_samples!r}; use one of {', '.join(MISSING_SAMPLES_MODES)}.")
    sample_ids = pd.Index(sample_ids)
    reasons = reasons_left_out(sample_ids, columns)
    missing = reasons.index[reasons == NOT_IN_METADATA]
    if len(missing) and missing_samples == "error":
        raise error(f"{len(missing)} of {where} {len(sample_ids)} samples are not in the metadata: "
                    f"{listed(missing)}. Correct the metadata's sample IDs to match the table's (they must "
                    "match exactly, case and punctuation included), or leave these samples out with "
                    "missing_samples='ignore' (--p-missing-samples ignore).")
    if len(reasons) == len(sample_ids):
        raise error(f"None of {where} {len(sample_ids)} samples has a value in metadata column {columns[0][0]!r}. "
                    "Check that the metadata's sample IDs match the table's.")
    if len(missing):
        report(f"left out {len(missing)} of {len(sample_ids)} samples {NOT_IN_METADATA} (missing_samples='ignore'): "
               f"{listed(missing)}")
    for name, _ in columns:
        count = int((reasons == no_value_in(name)).sum())
        if count:
            report(f"left out {count} of {len(sample_ids)} samples with no {name!r}")
    kept = sample_ids[~sample_ids.isin(reasons.index)]
    return kept, [values.reindex(kept) for _, values in columns]


def samples_left_out(sample_ids: pd.Index, used: pd.Index, columns: Sequence[Tuple[str, pd.Series]],
                     dropped_samples: Optional[pd.DataFrame] = None,
                     otherwise: str = "not among the training samples") -> pd.DataFrame:
    """Every sample of `sample_ids` (and of `dropped_samples`) outside `used`, with why, in that order: a table of
    sample_id and reason. Tokenization dropped it (`dropped_samples`' reason, as a Corpus records it), or the
    metadata left it out (`reasons_left_out` over `columns`), or else `otherwise`."""
    dropped = pd.Series(dtype=object) if dropped_samples is None else dropped_samples["reason"]
    candidates = pd.Index(sample_ids).append(dropped.index).unique()
    candidates = candidates[~candidates.isin(used)]
    reasons = pd.Series(otherwise, index=candidates, dtype=object)
    by_metadata = reasons_left_out(candidates, columns)
    reasons[by_metadata.index] = by_metadata
    in_dropped = candidates.isin(dropped.index)
    reasons[in_dropped] = [f"dropped by tokenization: {r}" for r in dropped.reindex(candidates[in_dropped])]
    return pd.DataFrame({"sample_id": candidates.astype(str), "reason": reasons.to_numpy()})


def filter_out_advice(column: str, value) -> str:
    """The filter that leaves a value's samples out of the table (a corpus is then tokenized from it again)."""
    return (f"qiime feature-table filter-samples --p-where \"[{column}]!='{value}'\" on the table, then tokenize "
            "it again")
