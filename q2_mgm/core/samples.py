"""Which samples an action can use: those with a value in every metadata column it reads. Samples left out are
counted and reported, never dropped silently; none left is a clear error."""
from typing import Callable, List, Sequence, Tuple, Type

import pandas as pd


def samples_with_values(sample_ids: pd.Index, columns: Sequence[Tuple[str, pd.Series]],
                        error: Type[Exception], report: Callable[[str], None],
                        where: str = "the corpus's") -> Tuple[pd.Index, List[pd.Series]]:
    """(the sample IDs with a value in every column, in `sample_ids`' order; each column's values on them).

    `columns` holds (name, values indexed by sample ID) pairs. Raises `error` naming the first column when no sample
    has values in all of them; reports how many were left out, and for want of which columns."""
    given = [(name, values.reindex(sample_ids)) for name, values in columns]
    missing = pd.Series(False, index=sample_ids)
    for _, values in given:
        missing |= values.isna().to_numpy()
    if missing.all():
        raise error(f"None of {where} {len(sample_ids)} samples has a value in metadata column {given[0][0]!r}. "
                    "Check that the metadata's sample IDs match the table's.")
    if missing.any():
        report(f"left out {int(missing.sum())} of {len(sample_ids)} samples with no "
               + " or ".join(repr(name) for name, _ in given))
    kept = sample_ids[~missing.to_numpy()]
    return kept, [values[kept] for _, values in given]
