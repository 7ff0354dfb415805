"""Where each common taxonomy convention writes the genus, how q2-mgm reads it, and tables whose rows nest.

Upstream MGM 0.5.8 reads the genus as the first match of `g__[A-Za-z0-9_]+` (GENUS_PATTERN), which reads
Greengenes, SILVA 138, GTDB and MetaPhlAn/mOTUs (`k__...|g__Genus|s__...`) lineages; q2-mgm keeps that rule by
default. Other conventions are read with harmonize_names, which reads their genus field as its `g__` form would be:
SILVA 132 and older (`D_0__...;D_5__Genus`), RDP and mothur lineages without rank prefixes (`Root;Bacteria;...;Genus`,
`Bacteria(100);...;Genus(98);`), bare genus names. Tables with one row per rank (MetaPhlAn's merged abundance table)
nest: `nested_rows` finds them, and the tokenizer keeps their genus-level rows only.
"""
import dataclasses
import re
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .vocab import genus_statistics

GENUS_PATTERN = r"(g__[A-Za-z0-9_]+)"  # upstream's
KEPT, HARMONIZED, NO_GENUS, NOT_IN_VOCABULARY = FEATURE_STATUS = (
    "kept", "harmonized", "no genus rank", "genus not in MGM vocabulary")
NOT_READ = "genus in a convention read with harmonize_names"  # D_5__Genus, or an unprefixed lineage's genus
NESTED_BELOW = "nested: a deeper row of a genus row"  # a species or strain row whose genus row is in the table
NESTED_ABOVE = "nested: above genus rank"  # a kingdom ... family row of a nested table
REPORT_STATUS = FEATURE_STATUS + (NOT_READ, NESTED_BELOW, NESTED_ABOVE)  # every status a features report holds
GENUS_FIELDS = {"g__": "Greengenes, SILVA 138, GTDB, MetaPhlAn or mOTUs `g__Genus`",
                "D_5__": "SILVA 132 or older `D_5__Genus`",
                "": "RDP or mothur lineages without rank prefixes (`Root;Bacteria;...;Genus`)"}
NESTING_TOLERANCE = 1e-6  # a deeper row may exceed its parent by this share of the sample (rounded percentages)

_UPSTREAM = re.compile(GENUS_PATTERN)
_UPSTREAM_WRITTEN = re.compile(GENUS_PATTERN + r"[^;|]*")  # the field it is found in, to the next rank
_G_FIELD = re.compile(r"g__([^;|]*)")
_SILVA_FIELD = re.compile(r"(?:^|[;|])\s*D_5__([^;|]*)")
_CONFIDENCE = re.compile(r"\s*\(\d+(?:\.\d*)?\)$")  # mothur's `Blautia(98)`


def _strip_genus_decorations(name):
    name = re.sub(r"[\[\]'\"]", "", name).strip().replace(" ", "_")  # SILVA's `[Eubacterium] hallii group` too
    name = re.sub(r"_sensu_stricto(_\d+)?$", "", name)
    return name


def lineage_fields(taxon: str) -> Tuple[str, ...]:
    """The ranks of a lineage, split at `|` (MetaPhlAn, mOTUs) or else at `;`, stripped; trailing empty fields
    (mothur's closing `;`) dropped."""
    fields = [field.strip() for field in taxon.split("|" if "|" in taxon else ";")]
    while fields and not fields[-1]:
        fields.pop()
    return tuple(fields)


def _unprefixed_genus(taxon):
    """The genus field of a lineage without rank prefixes: the last field, or the one before an RDP `genus` rank
    label; mothur's confidences removed."""
    fields = [_CONFIDENCE.sub("", field) for field in lineage_fields(taxon)]
    if "genus" in fields[1:]:
        return fields[fields.index("genus", 1) - 1]
    return fields[-1] if fields else ""


def _canonical_genus(name, vocabulary_index):
    """A genus name read as its `g__` form would be with harmonize_names: upstream's regex, then harmonized_genus."""
    match = _UPSTREAM.search(f"g__{name}")
    if match is not None and match.group(1) in vocabulary_index:
        return match.group(1), match.group(1)
    return harmonized_genus(f"g__{name}", vocabulary_index), match.group(1) if match else None


def harmonized_genus(taxon: str, vocabulary_index: Union[pd.Series, Mapping[str, int]]) -> Optional[str]:
    """A vocabulary genus for names upstream's regex misses: Greengenes brackets, SILVA `_sensu_stricto_1` and
    SILVA 132 `D_5__` genera, GTDB `_A` suffixes, spaces, bare genus names and unprefixed (RDP, mothur) lineages.
    None where nothing in the vocabulary fits."""
    field = _G_FIELD.search(taxon)
    if field is not None:
        raw = field.group(1)
    elif (silva := _SILVA_FIELD.search(taxon)) is not None:
        return _canonical_genus(silva.group(1), vocabulary_index)[0] if silva.group(1).strip() else None
    elif "__" not in taxon:
        raw = _unprefixed_genus(taxon)  # a bare genus name or an unprefixed lineage
    else:
        return None
    name = _strip_genus_decorations(raw)
    candidates = [name, re.sub(r"_[A-Z]+$", "", name), name.split("_")[0], re.split(r"[-/]", name)[0]]
    for candidate in candidates:
        token = f"g__{candidate}"
        if candidate and token in vocabulary_index:
            return token
    return None


def read_genus(taxon: str, vocabulary_index: Union[pd.Series, Mapping[str, int]],
               harmonize_names: bool = False) -> Tuple[Optional[str], str, str]:
    """(genus token or None, status, the genus field as the input wrote it or "") for one taxonomy string.

    The token is upstream's (GENUS_PATTERN) unless harmonize_names reads what upstream misses; the status is one of
    FEATURE_STATUS or NOT_READ, true to the input: a genus field written with brackets or other characters that
    upstream's regex cannot read is a genus outside the vocabulary, not a missing genus rank."""
    match = _UPSTREAM.search(taxon)
    if match is not None:
        written = re.split(r"[;|]", taxon[match.start():], maxsplit=1)[0].strip()
        if match.group(1) in vocabulary_index:
            return match.group(1), KEPT, written
        recovered = harmonized_genus(taxon, vocabulary_index) if harmonize_names else None
        return (recovered, HARMONIZED, written) if recovered else (match.group(1), NOT_IN_VOCABULARY, written)
    field = _G_FIELD.search(taxon)
    if field is not None and field.group(1).strip():  # g__[Ruminococcus], g__ Name: a genus rank upstream misses
        recovered = harmonized_genus(taxon, vocabulary_index) if harmonize_names else None
        written = f"g__{field.group(1).strip()}"
        return (recovered, HARMONIZED, written) if recovered else (None, NOT_IN_VOCABULARY, written)
    silva = _SILVA_FIELD.search(taxon)
    if silva is not None and silva.group(1).strip():
        written = f"D_5__{silva.group(1).strip()}"
        if not harmonize_names:
            return None, NOT_READ, written
        recovered, read = _canonical_genus(silva.group(1).strip(), vocabulary_index)
        return (recovered, HARMONIZED, written) if recovered else (read, NOT_IN_VOCABULARY, written)
    if "__" not in taxon and taxon.strip():
        name = _unprefixed_genus(taxon)
        recovered = _canonical_genus(name, vocabulary_index)[0] if name else None
        if recovered is None:  # no field of it names a vocabulary genus: nothing says it is a genus
            return None, NO_GENUS, ""
        return (recovered, HARMONIZED, name) if harmonize_names else (None, NOT_READ, name)
    return None, NO_GENUS, ""


def read_genera(taxonomy: pd.Series, vocabulary_index: Union[pd.Series, Mapping[str, int]],
                harmonize_names: bool = False) -> pd.DataFrame:
    """read_genus for each feature: a frame indexed as taxonomy with columns genus (token, NaN for none), status
    and genus_as_written ("" for none). Each distinct taxonomy string is read once."""
    strings = taxonomy.astype(str)
    unique = pd.Series(pd.unique(strings.to_numpy()), dtype=object)
    # the common case first, for all at once: upstream's regex finds a vocabulary genus
    matches = [_UPSTREAM_WRITTEN.search(taxon) for taxon in unique]
    genus = pd.Series([match.group(1) if match else None for match in matches], dtype=object)
    tokens = vocabulary_index.index if isinstance(vocabulary_index, pd.Series) else list(vocabulary_index)
    kept = genus.isin(tokens).to_numpy()
    read = pd.DataFrame({"genus": genus.where(kept), "status": KEPT,
                         "genus_as_written": [match.group(0).strip() if match else "" for match in matches]})
    if not kept.all():
        read.loc[~kept] = pd.DataFrame([read_genus(taxon, vocabulary_index, harmonize_names)
                                        for taxon in unique[~kept]], index=read.index[~kept], columns=read.columns)
    read.index = unique.to_numpy()
    result = read.reindex(strings.to_numpy())
    result.index = taxonomy.index
    result["genus"] = result["genus"].astype(object).where(result["genus"].notna(), np.nan)
    return result


def conventions_not_read(taxonomy: pd.Series, status: pd.Series) -> str:
    """A sentence naming the conventions whose genera were not read (status NOT_READ) and the parameter that reads
    them; "" where there are none."""
    unread = taxonomy[status.to_numpy() == NOT_READ].astype(str)
    if unread.empty:
        return ""
    silva = unread.map(lambda taxon: _SILVA_FIELD.search(taxon) is not None).astype(bool)
    parts = []
    if silva.any():
        parts.append(f"{int(silva.sum())} are written in SILVA 132's (and older releases') convention, genus as "
                     f"`D_5__Genus` (for example {unread[silva].iloc[0]!r})")
    if (~silva).any():
        parts.append(f"{int((~silva).sum())} are RDP/mothur-style lineages or bare names without rank prefixes "
                     f"(for example {unread[~silva].iloc[0]!r})")
    return (f"Of the table's features, {' and '.join(parts)}. Upstream MGM reads only `g__Genus`: pass "
            "harmonize_names=True (--p-harmonize-names) to read these genera as their `g__` form would be "
            "(collapsing to level 6 does not change the convention).")


@dataclasses.dataclass
class Nesting:
    """Rows of a table whose lineages nest (one row per rank, as MetaPhlAn's merged abundance table).

    below: rows deeper than a genus row of the table (species, strains), already counted in that row.
    above: rows without a genus rank that hold or are held by other rows (kingdom ... family).
    roots: rows with no ancestor row in the table; per sample they sum to its total."""
    below: np.ndarray
    above: np.ndarray
    roots: np.ndarray


def _genus_depth(fields):
    for depth, field in enumerate(fields):
        if (field.startswith("g__") or field.startswith("D_5__")) and field.split("__", 1)[1].strip():
            return depth
    return None


def nested_rows(lineages: Sequence[str], matrix: Union[np.ndarray, sp.spmatrix]) -> Optional[Nesting]:
    """The nesting of a (n_samples, n_features) table whose features are these lineages, or None for a table of
    separate features.

    A table nests when its lineages are distinct, some lineage is another's ancestor (a proper prefix at a rank
    boundary: `k__Bacteria|p__Firmicutes` of `k__Bacteria|p__Firmicutes|c__Clostridia`), every row with an
    ancestor row has a row for each of its ancestors (every rank up to the first), and no row holds more than its
    parent row in any sample (within NESTING_TOLERANCE of the sample's total). Separate features (ASVs classified
    to different depths) may nest by name, but not with every rank present and not by amount."""
    fields = [lineage_fields(str(lineage)) for lineage in lineages]
    position = {key: i for i, key in enumerate(fields)}
    if len(position) < len(fields):
        return None
    # a merged table has a row for every rank above each of its rows: a row with an ancestor row has its parent
    parent = np.array([position.get(key[:-1], -1) if len(key) > 1 else -1 for key in fields])
    children = np.flatnonzero(parent >= 0)
    if not len(children):
        return None
    for i, key in enumerate(fields):
        ancestors = [position.get(key[:depth]) for depth in range(len(key) - 1, 0, -1)]
        if any(found is None for found in ancestors) and any(found is not None for found in ancestors):
            return None
    roots = parent < 0
    columns = sp.csc_matrix(matrix) if sp.issparse(matrix) else np.asarray(matrix)
    totals = np.asarray(columns[:, np.flatnonzero(roots)].sum(axis=1)).ravel()
    excess = columns[:, children] - columns[:, parent[children]]
    excess = excess.toarray() if sp.issparse(excess) else excess
    if (excess > NESTING_TOLERANCE * totals[:, None]).any():
        return None
    depth = [_genus_depth(key) for key in fields]
    below = np.array([parent[i] >= 0 and depth[i] is not None and len(fields[parent[i]]) > depth[i]
                      for i in range(len(fields))], dtype=bool)
    related = (parent >= 0) | np.isin(np.arange(len(fields)), parent)
    above = related & np.array([d is None for d in depth])
    return Nesting(below=below, above=above, roots=roots)


def written_genera(taxonomy: pd.Series) -> pd.Series:
    """The genus field of each taxonomy string as written ("" for none), for features reports written before
    q2-mgm reported it (genus_as_written)."""
    vocabulary_index = genus_statistics().index
    return pd.Series([read_genus(str(taxon), vocabulary_index)[2] for taxon in taxonomy], index=taxonomy.index,
                     dtype=object)


def features_with_written_genera(features: pd.DataFrame) -> pd.DataFrame:
    """A features report (Corpus.features) with genus_as_written, filled from the taxonomy column (written_genera)
    where a corpus written before q2-mgm reported it lacks the column; reports that have it are returned as they are."""
    if "genus_as_written" in features:
        return features
    features = features.copy()
    features.insert(int(features.columns.get_loc("taxonomy")) + 1, "genus_as_written",
                    written_genera(features["taxonomy"]))
    return features
