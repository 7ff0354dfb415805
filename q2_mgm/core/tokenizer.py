"""Abundance table -> MGM sentences, token for token as upstream MGM 0.5.8, vectorised over a sparse matrix.

Upstream's rules: genus = first match of `g__[A-Za-z0-9_]+` in the taxonomy string; genera outside the vocabulary
are dropped before normalising; relative abundance is z-scored with MGnify's per-genus mean and std (float64); a genus
enters the sentence when its z exceeds the z of zero; genera are ordered by descending z, exact ties in vocabulary
order; the sentence is `<bos> genera <eos>`, truncated to `max_length` tokens.
"""
import dataclasses
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .memory import check_tokenize_fits
from .taxonomy import (FEATURE_STATUS, NESTED_ABOVE, NESTED_BELOW, NOT_READ, conventions_not_read, nested_rows,
                       read_genera)
from .vocab import SPECIAL_TOKENS, genus_statistics

MAX_LENGTH = 512  # the general model's positions: tokenize's default longest sentence, <bos> and <eos> included
SAMPLES_PER_CHUNK = 20_000
DENSE_CELLS_PER_CHUNK = 250_000  # small enough for a chunk's arrays to stay in cache: 2 M cells ran 1.6x slower


class TokenizationError(ValueError):
    """Input that cannot be tokenized; the message names the problem and the fix."""


@dataclasses.dataclass
class Corpus:
    """Tokenized samples plus what was dropped and why.

    samples: one row per kept sample (index = sample ID): sentence, n_genera, n_tokens, length_before_truncation,
        truncated, vocabulary_coverage, no_genus_share (abundance from which no genus was read: no genus rank, or a
        convention read only with harmonize_names), out_of_vocabulary_share, below_zero_threshold.
    features: one row per input feature: taxonomy, genus_as_written (the genus field as the input wrote it, "" for
        none), genus (the token it was read as), status (one of REPORT_STATUS), n_samples, mean_relative_abundance.
    dropped_samples: one row per dropped sample: reason, total.
    """
    samples: pd.DataFrame
    features: pd.DataFrame
    dropped_samples: pd.DataFrame
    max_length: int
    harmonize_names: bool
    # samples x MGM genera (vocabulary order), CSR float32: each sentence genus's relative abundance among the
    # vocabulary genera, before truncation; the amounts the sentence leaves out. None for generated corpora.
    abundances: Optional[sp.csr_matrix] = None

    def subset(self, sample_ids: Union[pd.Index, Sequence[str]]) -> "Corpus":
        """The corpus of these samples (in this order), with the same reports."""
        positions = self.samples.index.get_indexer(pd.Index(sample_ids))
        return dataclasses.replace(self, samples=self.samples.iloc[positions],
                                   abundances=None if self.abundances is None else self.abundances[positions])

    def abundance_table(self, sample_ids: Optional[Union[pd.Index, Sequence[str]]] = None) -> Optional[pd.DataFrame]:
        """samples x genus tokens (the genera these samples hold), dense float32; None without abundances."""
        if self.abundances is None:
            return None
        ids = self.samples.index if sample_ids is None else pd.Index(sample_ids)
        rows = self.abundances[self.samples.index.get_indexer(ids)]
        present = np.unique(rows.indices)
        return pd.DataFrame(rows[:, present].toarray(), index=ids,
                            columns=genus_statistics().index[present])


def assign_genera(taxonomy: pd.Series, harmonize_names: bool = False) -> Tuple[np.ndarray, pd.Series, pd.Series]:
    """Vocabulary column ((n_features,) int64, 0-based among genera, -1 for none), genus token (NaN for none) and
    status for each feature (see taxonomy.read_genus)."""
    column, read = _read_genera(taxonomy, harmonize_names)
    return column, read["genus"], read["status"]


def _read_genera(taxonomy, harmonize_names):
    genus_index = pd.Series(np.arange(len(genus_statistics())), index=genus_statistics().index)
    read = read_genera(taxonomy, genus_index, harmonize_names)
    column = read["genus"].map(genus_index).where(read["status"].isin(FEATURE_STATUS[:2]))
    return column.fillna(-1).astype(np.int64).to_numpy(), read


def _validate_values(matrix):
    values = matrix.data if sp.issparse(matrix) else matrix
    if not np.isfinite(values).all():
        raise TokenizationError(
            f"The table holds {int((~np.isfinite(values)).sum())} non-finite values (NaN or infinity). "
            "Abundances must be finite: fix or remove those features or samples before tokenizing.")
    if (values < 0).any():
        raise TokenizationError(
            f"The table holds {int((values < 0).sum())} negative values. MGM needs counts or relative "
            "frequencies, not transformed data (CLR, log, z-scores): give it the untransformed table.")


def _check_taxonomy_covers(feature_ids, taxonomy):
    missing = pd.Index(feature_ids).difference(taxonomy.index)
    if len(missing):
        raise TokenizationError(
            f"The taxonomy does not cover {len(missing)} of the table's {len(feature_ids)} features "
            f"(for example {', '.join(map(str, missing[:3]))}). Use the taxonomy made for this table's features, "
            "or filter the table to the classified features (qiime feature-table filter-features).")


def _sentences_for_chunk(genus_matrix, rows, totals, stats_mean, stats_std):
    """Per-row genus columns ordered by descending z (ties: vocabulary order), their counts, per-row dropped
    counts, and the kept cells' columns and relative abundances in row-major order, for `rows` of a CSR samples x
    genera matrix of abundances summing to `totals`."""
    rel = genus_matrix[rows]  # a copy
    rel.data /= np.repeat(totals, np.diff(rel.indptr))  # divide, as upstream does (see _tokenize_rows)
    all_rows = np.repeat(np.arange(rel.shape[0]), np.diff(rel.indptr))
    mean, std = stats_mean[rel.indices], stats_std[rel.indices]
    z = (rel.data - mean) / std
    keep = z > (0.0 - mean) / std
    rows, cols, z = all_rows[keep], rel.indices[keep], z[keep]
    counts = np.bincount(rows, minlength=rel.shape[0])
    below = np.bincount(all_rows[~keep], minlength=rel.shape[0])
    return cols[_descending_within_rows(z, counts)], counts, below, cols, rel.data[keep]


def _sentences_for_dense_chunk(genus_matrix, rows, totals, stats_mean, stats_std):
    """_sentences_for_chunk for a dense C-ordered matrix: z for every cell, in place in one copy (flat indices below
    are row-major), then one row-wise sort of the kept cells only."""
    z = genus_matrix.take(rows, axis=0)
    z /= totals[:, None]  # divide, as upstream does (see _tokenize_rows)
    present = np.count_nonzero(z > 0, axis=1)
    z -= stats_mean
    z /= stats_std
    keep = z > (0.0 - stats_mean) / stats_std  # a zero is never above the z of zero
    counts = np.count_nonzero(keep, axis=1)
    kept = np.flatnonzero(keep)  # then take: a boolean mask index is several times slower
    width = z.shape[1]
    cols = kept % width
    # the kept cells' relative abundances, divided again as above so they are the very values z was made from
    relative = genus_matrix.ravel().take(rows[kept // width] * width + cols) / np.repeat(totals, counts)
    return cols[_descending_packed(z.take(kept), counts)], counts, present - counts, cols, relative


def _descending_within_rows(values, counts):
    """Permutation of a flat array grouped by row (in column order) that sorts each row by descending value, ties
    kept in column order. Rows of similar length are sorted together (_descending_packed), which is several times
    faster than one global sort by (row, value) and pads little."""
    starts = np.cumsum(counts) - counts
    order = np.empty(len(values), dtype=np.int64)
    size_class = np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)
    for size in np.unique(size_class):
        rows = np.flatnonzero(size_class == size)
        lengths = counts[rows]
        positions = np.repeat(starts[rows] - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
        order[positions] = positions[_descending_packed(values[positions], lengths)]
    return order


def _descending_packed(values, counts):
    """_descending_within_rows in one 2-D sort: rows left-aligned in a matrix as wide as the longest, padded with
    keys that sort last.

    The sort is two stable ones: a radix sort on the keys' top 16 bits, whose runs numpy's stable sort of the full
    keys (timsort) then merges cheaply; ties keep their order through both. Faster than one sort of the keys."""
    width = max(int(counts.max()), 1)
    valid = np.arange(width) < counts[:, None]
    keys = np.full(valid.shape, np.iinfo(np.int64).max)
    keys[valid] = _descending_keys(values)
    offsets = np.arange(0, keys.size, width)[:, None]
    order = np.argsort((keys >> 48).astype(np.int16), axis=1, kind="stable")
    order += offsets
    refined = np.argsort(keys.take(order), axis=1, kind="stable")
    refined += offsets
    order = order.take(refined)
    order += (np.cumsum(counts) - counts)[:, None] - offsets  # padded -> flat positions
    return order[valid]


def _descending_keys(values):
    """int64 keys ordered as the float64 -values, equal where they are equal: numpy sorts int64 faster than float64.
    0.0 - v negates and makes -0.0 and 0.0 one key; negative floats get their magnitude bits flipped."""
    keys = np.subtract(0.0, values).view(np.int64)
    np.bitwise_xor(keys, np.iinfo(np.int64).max, out=keys, where=keys < 0)
    return keys


def _sentence_pieces(genus_tokens):
    """What _join_sentences joins: ` g__A` for each genus column, then `<bos>` and ` <eos>`."""
    return np.array([f" {token}" for token in genus_tokens] + [SPECIAL_TOKENS[2], f" {SPECIAL_TOKENS[3]}"],
                    dtype=object)


def _join_sentences(pieces, cols, counts, max_length):
    """Strings `<bos> g__A ... <eos>`, with the first `max_length` tokens kept: each joins a slice of one list of
    pieces (_sentence_pieces) made for all rows at once, faster than a list per row."""
    kept = np.minimum(counts, max_length - 1)
    if (kept < counts).any():
        cols = cols[np.arange(len(cols)) - np.repeat(np.cumsum(counts) - counts, counts) < np.repeat(kept, counts)]
    with_eos = counts + 2 <= max_length
    ends = np.cumsum(kept + 1 + with_eos)
    starts = ends - kept - 1 - with_eos
    bos, eos = len(pieces) - 2, len(pieces) - 1
    sequence = np.full(ends[-1], eos)
    sequence[starts] = bos
    is_genus = sequence == eos
    is_genus[ends[with_eos] - 1] = False
    sequence[is_genus] = cols
    names = pieces[sequence].tolist()
    return ["".join(names[start:end]) for start, end in zip(starts.tolist(), ends.tolist())]


def tokenize_matrix(matrix: Union[np.ndarray, sp.spmatrix], sample_ids: Union[pd.Index, Sequence[str]],
                    feature_ids: Union[pd.Index, Sequence[str]], taxonomy: Optional[pd.Series] = None,
                    max_length: int = MAX_LENGTH, harmonize_names: bool = False) -> Corpus:
    """Tokenize a (n_samples, n_features) matrix (scipy sparse or dense) of counts or relative frequencies.

    taxonomy: pd.Series feature ID -> taxonomy string; None reads the feature IDs as taxonomy strings.
    A table with one row per rank (taxonomy.nested_rows: MetaPhlAn's merged abundance table) keeps its genus-level
    rows only, and its samples' totals are their root rows'; every other table is read as upstream reads it.
    Raises TokenizationError (naming the problem and the fix) for input that cannot be tokenized.
    """
    if max_length < 2:
        raise TokenizationError("max_length must be at least 2 (<bos> and one genus).")
    matrix = sp.csr_matrix(matrix, dtype=np.float64) if sp.issparse(matrix) else np.asarray(matrix, np.float64)
    n_samples, n_features = matrix.shape
    if n_samples == 0 or n_features == 0:
        raise TokenizationError(
            f"The table is empty ({n_samples} samples x {n_features} features): nothing to tokenize. "
            "Check the filtering steps that made it: tokenize the table from before the filter that emptied it, "
            "or rerun that filter with a lower threshold (for example qiime feature-table filter-samples "
            "--p-min-frequency).")
    _validate_values(matrix)
    n_present = (np.bincount(matrix.indices[matrix.data > 0], minlength=n_features) if sp.issparse(matrix)
                 else np.count_nonzero(matrix, axis=0))  # samples per feature; values are checked >= 0
    check_tokenize_fits(n_samples, matrix.nnz if sp.issparse(matrix) else int(n_present.sum()))
    feature_ids = pd.Index(feature_ids)
    sample_ids = pd.Index(sample_ids)
    for what, ids in (("sample", sample_ids), ("feature", feature_ids)):
        if ids.has_duplicates:
            raise TokenizationError(
                f"The table has {int(ids.duplicated().sum())} duplicated {what} IDs (for example "
                f"{ids[ids.duplicated()][0]!r}); IDs must be unique. Rename or merge them first.")
    if taxonomy is None:
        taxonomy = pd.Series(feature_ids.astype(str), index=feature_ids)
    else:
        _check_taxonomy_covers(feature_ids, taxonomy)
        taxonomy = taxonomy.reindex(feature_ids)
    column, read = _read_genera(taxonomy, harmonize_names)
    nesting = nested_rows(taxonomy.astype(str).to_numpy(), matrix)
    if nesting is not None:  # one row per rank: keep the genus-level rows (q2-mgm's one departure from upstream)
        read.loc[nesting.below, "status"] = NESTED_BELOW
        read.loc[nesting.above, "status"] = NESTED_ABOVE
        column[nesting.below | nesting.above] = -1
    status = read["status"]
    if not (column >= 0).any():
        raise TokenizationError(_nothing_read_message(taxonomy, status))

    stats = genus_statistics()
    genus_matrix, vocab_totals, used = _per_genus(matrix, column)
    if nesting is None:
        totals = np.asarray(matrix.sum(axis=1)).ravel()
        no_genus = matrix @ status.isin([FEATURE_STATUS[2], NOT_READ]).to_numpy(np.float64)
    else:  # the root rows hold the whole sample; what no genus-level row holds has no genus
        totals = matrix @ nesting.roots.astype(np.float64)
        with_genus = status.isin([FEATURE_STATUS[0], FEATURE_STATUS[1], FEATURE_STATUS[3]]).to_numpy(np.float64)
        no_genus = np.maximum(totals - matrix @ with_genus, 0.0)
    keep_rows = vocab_totals > 0
    dropped = totals[~keep_rows]
    dropped_samples = pd.DataFrame(
        {"reason": np.where(dropped == 0, "all-zero sample", "no abundance in MGM's vocabulary"), "total": dropped},
        index=pd.Index(sample_ids[~keep_rows], name="sample-id"))
    if not keep_rows.any():
        raise TokenizationError(_no_abundance_message(n_samples, int((column >= 0).sum()), taxonomy, status))

    features = _feature_report(matrix, n_present, totals, taxonomy, read)
    columns, abundances = _tokenize_rows(genus_matrix, np.flatnonzero(keep_rows), vocab_totals, stats.iloc[used],
                                         used, max_length)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = vocab_totals[keep_rows] / totals[keep_rows]
        no_genus_share = no_genus[keep_rows] / totals[keep_rows]
    out_of_vocabulary = 1 - coverage - no_genus_share
    samples = pd.DataFrame({
        **columns,
        "vocabulary_coverage": coverage,
        "no_genus_share": no_genus_share,
        "out_of_vocabulary_share": np.where(out_of_vocabulary < 0, 0.0, out_of_vocabulary),  # NaN stays, as clip
    }, index=pd.Index(sample_ids[keep_rows], name="sample-id"))
    return Corpus(samples, features, dropped_samples, int(max_length), bool(harmonize_names), abundances)


def _per_genus(matrix, column):
    """Features summed per genus, in the compact space of the genera present, kept in vocabulary order (dense:
    C-ordered); each sample's total over those genera; and the genera's vocabulary columns."""
    in_vocab = np.flatnonzero(column >= 0)
    used, first = np.unique(column[in_vocab], return_index=True)
    if not sp.issparse(matrix) and len(used) == len(in_vocab):
        genus_matrix = matrix.take(in_vocab[first], axis=1)  # one feature per genus: the product's very values
        return genus_matrix, _row_sums_column_by_column(genus_matrix), used
    to_genus = sp.csr_matrix((np.ones(len(in_vocab)), (in_vocab, np.searchsorted(used, column[in_vocab]))),
                             shape=(matrix.shape[1], len(used)))
    if not sp.issparse(matrix):
        genus_matrix = np.ascontiguousarray(matrix @ to_genus)
        return genus_matrix, _row_sums_column_by_column(genus_matrix), used
    genus_matrix = (matrix @ to_genus).tocsr()
    genus_matrix.eliminate_zeros()
    genus_matrix.sort_indices()  # ties are broken by column (vocabulary) order
    return genus_matrix, np.asarray(genus_matrix.sum(axis=1)).ravel(), used


def _row_sums_column_by_column(matrix):
    """Row sums of a dense matrix as numpy takes them in F order, adding column after column (in C order it adds
    pairwise, which can differ in the last bit): the per-genus totals were always summed so, and relative abundances,
    so the order of near-ties, rest on them. F-ordered copies of blocks of rows small enough for the cache, never of
    one row alone unless the matrix has one (a single row is contiguous either way, and summed pairwise)."""
    blocks = np.array_split(matrix, -(-len(matrix) // 512))
    return np.concatenate([np.asfortranarray(block).sum(axis=1) for block in blocks])


def _tokenize_rows(genus_matrix, rows, vocab_totals, stats, used, max_length):
    """Sentences and their report columns (a dict of arrays) for `rows` of a samples x genera matrix (dense or CSR)
    whose columns are `stats`' genera (vocabulary columns `used`) and whose rows sum to `vocab_totals`; and the
    sentence genera's relative abundances as a CSR matrix over the whole vocabulary (float32, as the forests that
    read them compare; filled in place, so 260,000 MGnify-sized samples add 0.4 GB, not twice that).

    Relative abundances are divided, as upstream does: multiplying by 1/total can differ in the last bit and reorder
    near-ties."""
    mean, std = stats["mean"].to_numpy(), stats["std"].to_numpy()
    pieces = _sentence_pieces(stats.index)
    sentences, counts, below = [], [], []
    dense = not sp.issparse(genus_matrix)
    capacity = int(np.count_nonzero(genus_matrix) if dense else np.diff(genus_matrix.indptr)[rows].sum())
    indices, data, filled = np.empty(capacity, np.int32), np.empty(capacity, np.float32), 0
    sentences_for = _sentences_for_dense_chunk if dense else _sentences_for_chunk
    rows_per_chunk = max(1, DENSE_CELLS_PER_CHUNK // genus_matrix.shape[1]) if dense else SAMPLES_PER_CHUNK
    for start in range(0, len(rows), rows_per_chunk):
        chunk = rows[start:start + rows_per_chunk]
        cols, n, dropped, kept, values = sentences_for(genus_matrix, chunk, vocab_totals[chunk], mean, std)
        sentences += _join_sentences(pieces, cols, n, max_length)
        counts.append(n)
        below.append(dropped)
        indices[filled:filled + len(kept)] = used[kept]
        data[filled:filled + len(kept)] = values
        filled += len(kept)
    counts, below = np.concatenate(counts), np.concatenate(below)
    abundances = sp.csr_matrix((data[:filled], indices[:filled], np.concatenate([[0], np.cumsum(counts)])),
                               shape=(len(counts), len(genus_statistics())))
    return {
        "sentence": sentences,
        "n_genera": np.minimum(counts, max_length - 1),
        "n_tokens": np.minimum(counts + 2, max_length),
        "length_before_truncation": counts + 2,
        "truncated": counts + 2 > max_length,
        "below_zero_threshold": below,
    }, abundances


def _feature_report(matrix, n_present, totals, taxonomy, read):
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(totals > 0, 1.0 / totals, 0.0)
    return pd.DataFrame({
        "taxonomy": taxonomy.astype(str).to_numpy(),
        "genus_as_written": read["genus_as_written"].to_numpy(),
        "genus": read["genus"].fillna("").to_numpy(),
        "status": read["status"].to_numpy(),
        "n_samples": n_present,
        "mean_relative_abundance": (matrix.T @ scale) / max(len(totals), 1),
    }, index=pd.Index(taxonomy.index.astype(str), name="feature-id"))


def _nothing_read_message(taxonomy, status):
    conventions = conventions_not_read(taxonomy, status)
    if conventions:
        return f"None of the table's features has a genus that upstream MGM reads. {conventions}"
    return ("None of the table's features has a genus in MGM's vocabulary of "
            f"{len(genus_statistics())} genera (for example {', '.join(map(str, taxonomy.iloc[:3]))}). MGM reads "
            "genus names as `g__Genus` in the taxonomy: pass the FeatureData[Taxonomy] that goes with the table, "
            "collapse the table to genus level (qiime taxa collapse --p-level 6), or try harmonize_names for "
            "bracketed, SILVA or GTDB names.")


def _no_abundance_message(n_samples, n_read, taxonomy, status):
    conventions = conventions_not_read(taxonomy, status)
    fix = conventions or ("Pass the FeatureData[Taxonomy] made for this table's features, or collapse the table "
                          "to genus level (qiime taxa collapse --p-level 6).")
    return (f"All {n_samples} samples have zero abundance in MGM's vocabulary: the {n_read} features read as MGM "
            "genera are zero in every sample, and their abundance lies in features read as no genus or a genus "
            f"outside the vocabulary. {fix}")


def tokenize_dataframe(table: pd.DataFrame, taxonomy: Optional[pd.Series] = None, max_length: int = MAX_LENGTH,
                       harmonize_names: bool = False) -> Corpus:
    """Samples x features DataFrame (columns = feature IDs or taxonomy strings) -> Corpus."""
    return tokenize_matrix(table.to_numpy(dtype=np.float64), table.index, table.columns, taxonomy,
                           max_length, harmonize_names)
