"""Every common taxonomy convention is read or named, on real data: the ECAM and twins genus tables rewritten into
each convention's lineages give the tokens of their `g__` form (by default where upstream reads them, with
harmonize_names where it does not, and otherwise an error naming the convention and harmonize_names); a table with
one row per rank (MetaPhlAn's merged abundance table) keeps its genus-level rows; ordinary tables are untouched."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from q2_mgm.core.taxonomy import (FEATURE_STATUS, NESTED_ABOVE, NESTED_BELOW, NOT_READ, REPORT_STATUS,
                                  features_with_written_genera, nested_rows, read_genus, written_genera)
from q2_mgm.core.tokenizer import TokenizationError, tokenize_dataframe, tokenize_matrix
from q2_mgm.core.vocab import genus_statistics

from ..helpers import parity_case, read_genus_table, reference_sentences

KEPT, HARMONIZED, NO_GENUS, NOT_IN_VOCAB = FEATURE_STATUS
DATASETS = ["ecam", "twins"]
UNCLASSIFIED = "unclassified_at_genus"  # the genus tables' pooled lineages with an empty genus
RANKS = ("k", "p", "c", "o", "f")


def ranks_above_genus(position):
    """A made-up but consistent kingdom ... family for the genus in this column (each family in one order, ...)."""
    family = position % 13
    order = family % 7
    klass = order % 3
    return ("Bacteria", f"Phylum{klass % 2}", f"Class{klass}", f"Order{order}", f"Family{family}")


def lineage(position, column, style):
    """The column's genus (`g__Name`, or UNCLASSIFIED for none) as a lineage in one convention."""
    above = ranks_above_genus(position)
    name = None if column == UNCLASSIFIED else column[3:]
    if style == "greengenes":
        return "; ".join([f"{rank}__{taxon}" for rank, taxon in zip(RANKS, above)] + [f"g__{name or ''}", "s__"])
    if style == "metaphlan":
        fields = [f"{rank}__{taxon}" for rank, taxon in zip(RANKS, above)]
        return "|".join(fields + ([f"g__{name}", f"s__{name}_unclassified"] if name else []))
    if style == "silva132":
        return ";".join(f"D_{level}__{taxon}" for level, taxon in enumerate(above + ((name,) if name else ())))
    if style == "rdp":
        return ";".join(("Root",) + above + ((name,) if name else ()))
    if style == "rdp-ranks":
        labels = ("domain", "phylum", "class", "order", "family", "genus")
        pairs = zip(above + ((name,) if name else ()), labels)
        return ";".join(["Root", "rootrank"] + [part for pair in pairs for part in pair])
    if style == "mothur":
        return "".join(f"{taxon}(100);" for taxon in above + ((name,) if name else ()))
    raise ValueError(style)


def rewritten(table, style):
    return table.set_axis([lineage(i, column, style) for i, column in enumerate(table.columns)], axis=1)


@pytest.fixture(scope="module", params=DATASETS)
def genus_table(request):
    return read_genus_table(request.param)


def same_tokens(a, b):
    assert a.samples.index.tolist() == b.samples.index.tolist()
    assert a.samples.sentence.tolist() == b.samples.sentence.tolist()


@pytest.mark.parametrize("style", ["greengenes", "metaphlan"])
def test_g_prefix_conventions_are_read_by_default_as_upstream_reads_them(genus_table, style):
    """Greengenes/SILVA 138/GTDB `;` lineages and MetaPhlAn/mOTUs `|` lineages: upstream's regex reads them."""
    table = rewritten(genus_table, style)
    corpus = tokenize_dataframe(table)
    same_tokens(corpus, tokenize_dataframe(genus_table))
    expected = reference_sentences(table)
    assert corpus.samples.sentence.tolist() == [sentence for sentence, _ in expected.values()]
    assert not corpus.features.status.isin([NOT_READ, NESTED_BELOW, NESTED_ABOVE]).any()


UNPREFIXED = {"silva132": "D_5__", "rdp": "without rank prefixes", "rdp-ranks": "without rank prefixes",
              "mothur": "without rank prefixes"}


@pytest.mark.parametrize("style", list(UNPREFIXED))
class TestConventionsReadWithHarmonizeNames:
    def test_default_error_names_the_convention_and_harmonize_names(self, genus_table, style):
        with pytest.raises(TokenizationError) as error:
            tokenize_dataframe(rewritten(genus_table, style))
        message = str(error.value)
        for words in (UNPREFIXED[style], "harmonize_names=True", "--p-harmonize-names"):
            assert words in message, (words, message)

    def test_harmonize_names_reads_them_as_their_g_form(self, genus_table, style):
        table = rewritten(genus_table, style)
        corpus = tokenize_dataframe(table, harmonize_names=True)
        same_tokens(corpus, tokenize_dataframe(rewritten(genus_table, "greengenes"), harmonize_names=True))
        np.testing.assert_allclose(corpus.samples.vocabulary_coverage,
                                   tokenize_dataframe(genus_table, harmonize_names=True).samples.vocabulary_coverage)

    def test_genera_upstream_reads_give_upstreams_tokens(self, genus_table, style):
        """Where the `g__` form's genus is one upstream reads, the convention read with harmonize_names gives the
        very tokens upstream gives the `g__` form."""
        in_vocabulary = [c for c in genus_table.columns if c in genus_statistics().index]
        plain = genus_table[in_vocabulary]
        corpus = tokenize_dataframe(rewritten(plain, style), harmonize_names=True)
        same_tokens(corpus, tokenize_dataframe(plain))
        assert (corpus.features.status == HARMONIZED).all()

    def test_statuses_and_genus_as_written(self, genus_table, style):
        table = rewritten(genus_table, style)
        default = tokenize_dataframe(table.assign(**{lineage(0, "g__Bacteroides", "greengenes"): 1.0}))
        harmonized = tokenize_dataframe(table, harmonize_names=True).features
        named = [i for i, column in enumerate(genus_table.columns) if column != UNCLASSIFIED]
        unclassified = [i for i, column in enumerate(genus_table.columns) if column == UNCLASSIFIED]
        assert harmonized.status.iloc[unclassified].eq(NO_GENUS).all()
        assert harmonized.genus_as_written.iloc[unclassified].eq("").all()
        assert harmonized.status.iloc[named].isin([HARMONIZED, NOT_IN_VOCAB, NO_GENUS]).all()
        read = harmonized.iloc[named][harmonized.status.iloc[named] == HARMONIZED]
        names = pd.Series(genus_table.columns[named], index=harmonized.index[named]).str[3:]
        prefix = "D_5__" if style == "silva132" else ""
        assert (read.genus_as_written == prefix + names[read.index]).all()
        statuses = default.features.status.iloc[:len(table.columns)]
        assert statuses.iloc[read.index.map(harmonized.index.get_loc)].eq(NOT_READ).all()
        assert default.features.status.iloc[-1] == KEPT


def test_nothing_read_names_the_convention_even_beside_ordinary_names():
    """A SILVA 132 table whose only other features have no genus still gets the convention's error."""
    table = pd.DataFrame({"D_0__Bacteria;D_1__Firmicutes;D_5__Blautia": [3.0], "Unassigned": [1.0]})
    with pytest.raises(TokenizationError, match=r"1 are written in SILVA 132.*D_5__.*harmonize_names"):
        tokenize_dataframe(table)


@pytest.mark.parametrize("taxon, default, harmonized", [
    ("Root;Bacteria;Firmicutes;Clostridia;Clostridiales;Lachnospiraceae;Blautia", (None, NOT_READ, "Blautia"),
     ("g__Blautia", HARMONIZED, "Blautia")),
    ("Root;rootrank;Bacteria;domain;Firmicutes;phylum;Blautia;genus", (None, NOT_READ, "Blautia"),
     ("g__Blautia", HARMONIZED, "Blautia")),
    ("Bacteria(100);Firmicutes(100);Lachnospiraceae(100);Lachnospiraceae_unclassified(100);", (None, NO_GENUS, ""),
     (None, NO_GENUS, "")),
    ("Root;Bacteria;Firmicutes;Clostridia;Clostridiales;Lachnospiraceae", (None, NO_GENUS, ""), (None, NO_GENUS, "")),
    ("D_0__Bacteria;D_4__Prevotellaceae;D_5__Prevotella 9", (None, NOT_READ, "D_5__Prevotella 9"),
     ("g__Prevotella", HARMONIZED, "D_5__Prevotella 9")),
    ("D_0__Bacteria;D_4__Lachnospiraceae;D_5__Notagenus", (None, NOT_READ, "D_5__Notagenus"),
     ("g__Notagenus", NOT_IN_VOCAB, "D_5__Notagenus")),
    ("D_0__Bacteria;D_4__Lachnospiraceae", (None, NO_GENUS, ""), (None, NO_GENUS, "")),
    ("D_0__Bacteria;D_4__Lachnospiraceae;D_5__[Eubacterium] hallii group",
     (None, NOT_READ, "D_5__[Eubacterium] hallii group"),
     ("g__Eubacterium", HARMONIZED, "D_5__[Eubacterium] hallii group")),
    ("d__Bacteria;f__Lachnospiraceae;g__[Eubacterium]_hallii_group",
     (None, NOT_IN_VOCAB, "g__[Eubacterium]_hallii_group"),
     ("g__Eubacterium", HARMONIZED, "g__[Eubacterium]_hallii_group")),
    ("k__Bacteria|p__Firmicutes|g__Blautia|s__Blautia_obeum", ("g__Blautia", KEPT, "g__Blautia"),
     ("g__Blautia", KEPT, "g__Blautia")),
    ("k__Bacteria|p__Firmicutes|c__Clostridia|o__Clostridiales|f__Lachnospiraceae|g__Blautia|"
     "s__Blautia obeum [ref_mOTU_v3_02563]", ("g__Blautia", KEPT, "g__Blautia"), ("g__Blautia", KEPT, "g__Blautia")),
    ("d__Bacteria;p__Bacteroidota;c__Bacteroidia;o__Bacteroidales;f__Bacteroidaceae;g__Prevotella;s__Prevotella copri",
     ("g__Prevotella", KEPT, "g__Prevotella"), ("g__Prevotella", KEPT, "g__Prevotella")),
    ("k__Bacteria; g__[Ruminococcus]; s__", (None, NOT_IN_VOCAB, "g__[Ruminococcus]"),
     ("g__Ruminococcus", HARMONIZED, "g__[Ruminococcus]")),
    ("Unassigned", (None, NO_GENUS, ""), (None, NO_GENUS, "")),
    ("4b5eeb300368260019c1fbc7a3c718fc", (None, NO_GENUS, ""), (None, NO_GENUS, "")),
])
def test_read_genus(taxon, default, harmonized):
    vocabulary = genus_statistics().index
    assert read_genus(taxon, vocabulary) == default
    assert read_genus(taxon, vocabulary, harmonize_names=True) == harmonized


def test_written_genera_fill_old_reports():
    taxonomy = pd.Series(["k__B; g__Escherichia-Shigella; s__", "D_5__Prevotella 9", "Unassigned"], index=list("abc"))
    assert written_genera(taxonomy).tolist() == ["g__Escherichia-Shigella", "D_5__Prevotella 9", ""]
    corpus = tokenize_dataframe(pd.DataFrame({"k__B; g__Escherichia-Shigella; s__": [1.0], "Unassigned": [2.0]}))
    old = corpus.features.drop(columns="genus_as_written")  # a features report written before the column
    pd.testing.assert_frame_equal(features_with_written_genera(old), corpus.features)
    assert features_with_written_genera(corpus.features) is corpus.features


# --- tables with one row per rank ---

def merged_table(genus_table):
    """The genus table as MetaPhlAn's merged_abundance_table writes one: a row for every rank from kingdom to
    strain, each row the sum of the rows below it; every genus split into two species, the first with a strain.
    The unclassified lineages stay at family rank, as in MetaPhlAn."""
    rows = {}

    def add(fields, values):
        key = "|".join(fields)
        rows[key] = rows.get(key, 0) + values

    for position, column in enumerate(genus_table.columns):
        values = genus_table[column].to_numpy(dtype=float)
        above = [f"{rank}__{taxon}" for rank, taxon in zip(RANKS, ranks_above_genus(position))]
        for depth in range(1, len(above) + 1):
            add(above[:depth], values)
        if column == UNCLASSIFIED:
            continue
        genus = above + [column.replace(" ", "_")]
        first = np.floor(values / 3)
        add(genus, values)
        add(genus + [f"s__{column[3:]}_first"], first)
        add(genus + [f"s__{column[3:]}_first", f"t__SGB{position}"], first)
        add(genus + [f"s__{column[3:]}_second"], values - first)
    return pd.DataFrame(rows, index=genus_table.index)


class TestNestedTables:
    @pytest.fixture(scope="class")
    def merged(self, genus_table):
        return merged_table(genus_table)

    @pytest.fixture(scope="class")
    def corpus(self, merged):
        return tokenize_dataframe(merged)

    def test_genus_level_rows_give_the_genus_tables_tokens(self, genus_table, merged, corpus):
        flat = genus_table.rename(columns=lambda c: c.replace(" ", "_"))
        same_tokens(corpus, tokenize_dataframe(flat))
        expected = tokenize_dataframe(flat).samples
        for share in ("vocabulary_coverage", "no_genus_share", "out_of_vocabulary_share"):
            np.testing.assert_allclose(corpus.samples[share], expected[share], atol=1e-12)

    def test_upstreams_arithmetic_would_differ(self, merged, corpus):
        """Upstream adds each genus' species and strain rows to its genus row: the departure matters."""
        upstream = reference_sentences(merged)
        assert sum(upstream[s][0] != sentence for s, sentence in corpus.samples.sentence.items()) > 10

    def test_the_report_says_which_rows_nest(self, merged, corpus):
        features = corpus.features
        depth = pd.Series([key.count("|") + 1 for key in merged.columns], index=features.index)
        assert features.status[depth < 6].eq(NESTED_ABOVE).all()
        assert features.status[depth > 6].eq(NESTED_BELOW).all()
        assert features.status[depth == 6].isin([KEPT, NOT_IN_VOCAB]).all()
        assert (features.genus_as_written[depth == 6] == [c.split("|")[-1] for c in merged.columns[depth == 6]]).all()
        assert set(features.status) <= set(REPORT_STATUS)
        # each row's share of its sample: the root rows (kingdoms) hold it all
        np.testing.assert_allclose(features.mean_relative_abundance[depth == 1].sum(), 1.0)

    def test_sparse_and_taxonomy_given_separately_agree(self, merged, corpus):
        ids = [f"row{i}" for i in range(merged.shape[1])]
        by_id = tokenize_matrix(sp.csr_matrix(merged.to_numpy()), merged.index, ids,
                                taxonomy=pd.Series(merged.columns, index=ids))
        same_tokens(by_id, corpus)
        assert by_id.features.status.tolist() == corpus.features.status.tolist()

    def test_harmonize_names_reads_nested_tables_too(self, genus_table, merged):
        flat = genus_table.rename(columns=lambda c: c.replace(" ", "_"))
        same_tokens(tokenize_dataframe(merged, harmonize_names=True), tokenize_dataframe(flat, harmonize_names=True))


class TestOrdinaryTablesAreUntouched:
    def test_the_parity_table_does_not_nest(self):
        table = parity_case("t4_ecam_real_L7")["table"]
        assert nested_rows(table.columns, table.to_numpy()) is None

    def test_separate_features_that_nest_by_name_but_not_by_amount(self):
        """ASVs classified to different depths: a phylum-only ASV is its own sequence, not its genera's sum."""
        taxonomy = pd.Series({"asv1": "k__Bacteria; p__Firmicutes",
                              "asv2": "k__Bacteria; p__Firmicutes; c__C; o__O; f__F; g__Blautia",
                              "asv3": "k__Bacteria; p__Firmicutes; c__C; o__O; f__F; g__Blautia; s__obeum",
                              "asv4": "k__Bacteria; p__Bacteroidetes; c__C; o__O; f__F; g__Bacteroides"})
        table = pd.DataFrame([[5.0, 1.0, 9.0, 4.0], [1.0, 7.0, 2.0, 3.0]], index=["a", "b"], columns=taxonomy.index)
        assert nested_rows(taxonomy.to_numpy(), table.to_numpy()) is None
        corpus = tokenize_dataframe(table, taxonomy=taxonomy)
        expected = reference_sentences(table, taxonomy)
        assert corpus.samples.sentence.tolist() == [expected[s][0] for s in ["a", "b"]]
        assert not corpus.features.status.isin([NESTED_ABOVE, NESTED_BELOW]).any()

    def test_repeated_lineages_are_separate_features(self):
        lineages = ["k__B; g__Blautia", "k__B; g__Blautia", "k__B"]
        assert nested_rows(lineages, np.array([[1.0, 1.0, 5.0]])) is None

    def test_a_coarser_row_beside_genus_rows_is_not_a_merged_table(self):
        """A family-level row beside its genera, without the ranks above it: lineages at different depths, each its
        own feature (the ranks of a merged table are all there)."""
        lineages = ["k__B|p__P|c__C|o__O|f__F", "k__B|p__P|c__C|o__O|f__F|g__Blautia|s__Blautia_obeum"]
        assert nested_rows(lineages, np.array([[9.0, 1.0], [8.0, 2.0]])) is None

    def test_a_row_holding_more_than_its_parent_is_not_nested(self):
        lineages = ["k__B", "k__B|g__Blautia", "k__B|g__Blautia|s__Blautia_obeum"]
        assert nested_rows(lineages, np.array([[4.0, 3.0, 2.0]])) is not None
        assert nested_rows(lineages, np.array([[4.0, 3.0, 2.0], [4.0, 1.0, 2.0]])) is None
