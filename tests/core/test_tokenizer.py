"""Tokenizer rules on tables built in code: genus extraction, summing, dropping, ordering, truncation, names,
harmonize_names, the per-feature and per-sample reports, and the errors for input that cannot be tokenized."""
import hashlib
import inspect
import itertools

import numpy as np
import pandas as pd
import pytest

from q2_mgm.core.tokenizer import FEATURE_STATUS, NOT_READ, TokenizationError, tokenize_dataframe, tokenize_matrix
from q2_mgm.core.vocab import genus_statistics, mgm_vocabulary

from ..helpers import reference_sentences

KEPT, HARMONIZED, NO_GENUS, NOT_IN_VOCAB = FEATURE_STATUS
GUT = ["g__Bacteroides", "g__Prevotella", "g__Faecalibacterium", "g__Bifidobacterium", "g__Escherichia",
       "g__Roseburia", "g__Akkermansia", "g__Ruminococcus", "g__Blautia", "g__Streptococcus"]


def lineage(genus, species=""):
    return f"k__Bacteria; p__P; c__C; o__O; f__F; {genus}; s__{species}"


def table(rows, columns, index=None):
    index = index if index is not None else [f"s{i}" for i in range(len(rows))]
    return pd.DataFrame(np.asarray(rows, dtype=float), index=index, columns=columns)


def sentence_genera(sentence):
    return [t for t in sentence.split() if t not in ("<bos>", "<eos>")]


@pytest.fixture(scope="module")
def stats():
    return genus_statistics()


def test_gut_genera_are_in_the_vocabulary():
    vocabulary = mgm_vocabulary().index
    assert all(genus in vocabulary for genus in GUT)


class TestGenusRules:
    # taxon: (the token it is read as, status, the genus as written); a genus field upstream's regex cannot read
    # (brackets) is a genus outside the vocabulary, not a missing genus rank
    TAXA = {
        "escherichia_shigella": ("k__B; g__Escherichia-Shigella; s__", "g__Escherichia", KEPT,
                                 "g__Escherichia-Shigella"),
        "bracketed": ("k__B; g__[Ruminococcus]; s__", "", NOT_IN_VOCAB, "g__[Ruminococcus]"),
        "empty_genus": ("g__;s__", "", NO_GENUS, ""),
        "unassigned": ("Unassigned", "", NO_GENUS, ""),
        "candidatus": ("k__B; g__Candidatus Solibacter; s__", "g__Candidatus", NOT_IN_VOCAB,
                       "g__Candidatus Solibacter"),
        "lower_case": ("k__B; g__bacteroides; s__", "g__bacteroides", NOT_IN_VOCAB, "g__bacteroides"),
        "bacteroides": ("k__B; g__Bacteroides; s__fragilis", "g__Bacteroides", KEPT, "g__Bacteroides"),
    }

    @pytest.fixture(scope="class")
    def corpus(self):
        columns = [taxon for taxon, *_ in self.TAXA.values()]
        return tokenize_dataframe(table([[1, 2, 3, 4, 5, 6, 7]], columns))

    @pytest.mark.parametrize("key", list(TAXA))
    def test_genus_and_status(self, corpus, key):
        taxon, genus, status, written = self.TAXA[key]
        row = corpus.features.loc[taxon]
        assert (row.genus, row.status, row.genus_as_written) == (genus, status, written)

    def test_only_vocabulary_genera_reach_the_sentence(self, corpus):
        assert sorted(sentence_genera(corpus.samples.sentence.iloc[0])) == ["g__Bacteroides", "g__Escherichia"]
        assert corpus.samples.n_genera.iloc[0] == 2

    def test_shares_add_up(self, corpus):
        sample = corpus.samples.iloc[0]
        total = 28
        assert sample.vocabulary_coverage == pytest.approx((1 + 7) / total)
        assert sample.no_genus_share == pytest.approx((3 + 4) / total)
        assert sample.out_of_vocabulary_share == pytest.approx((2 + 5 + 6) / total)


def test_features_of_one_genus_are_summed():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 50, size=(12, 6)).astype(float)
    split = table(counts, [lineage("g__Bacteroides", "a"), lineage("g__Bacteroides", "b"),
                           lineage("g__Prevotella"), lineage("g__Faecalibacterium", "a"),
                           lineage("g__Faecalibacterium", "b"), lineage("g__Blautia")])
    merged = pd.DataFrame({"g__Bacteroides": counts[:, 0] + counts[:, 1], "g__Prevotella": counts[:, 2],
                           "g__Faecalibacterium": counts[:, 3] + counts[:, 4], "g__Blautia": counts[:, 5]},
                          index=split.index)
    a, b = tokenize_dataframe(split), tokenize_dataframe(merged)
    pd.testing.assert_frame_equal(a.samples, b.samples)
    assert (a.features.genus.value_counts()[["g__Bacteroides", "g__Faecalibacterium"]] == 2).all()


def _order(counts, total, stats):
    z = {g: (c / total - stats.at[g, "mean"]) / stats.at[g, "std"] for g, c in counts.items()}
    return sorted(z, key=lambda g: (-z[g], stats.index.get_loc(g)))


def test_out_of_vocabulary_abundance_is_dropped_before_normalising(stats):
    # find a real case where normalising by the full total (wrong) would order two genera differently from
    # normalising by the in-vocabulary total (upstream's rule), so the test can tell the two apart
    found = None
    for (a, b), extra in itertools.product(itertools.permutations(GUT, 2), (1, 10, 100, 1000, 10000)):
        counts = {a: 1.0, b: 1.0}
        if _order(counts, 2.0, stats) != _order(counts, 2.0 + extra, stats):
            found = counts, extra
            break
    assert found is not None
    counts, extra = found
    wide = pd.DataFrame({lineage(g): [c] for g, c in counts.items()} |
                        {lineage("g__Notagenus"): [extra / 2], "Unassigned": [extra / 2]})
    narrow = pd.DataFrame({lineage(g): [c] for g, c in counts.items()})
    wide_corpus, narrow_corpus = tokenize_dataframe(wide), tokenize_dataframe(narrow)
    assert sentence_genera(wide_corpus.samples.sentence.iloc[0]) == _order(counts, 2.0, stats)
    assert wide_corpus.samples.sentence.tolist() == narrow_corpus.samples.sentence.tolist()
    assert wide_corpus.samples.vocabulary_coverage.iloc[0] == pytest.approx(2 / (2 + extra))


def test_order_is_by_z_score_not_abundance(stats):
    rare = stats["std"].idxmin()  # a genus MGnify almost never sees: any abundance is a huge z
    common = "g__Bacteroides"
    assert stats.at[rare, "std"] < 1e-6 < 0.1 < stats.at[common, "std"]
    corpus = tokenize_dataframe(pd.DataFrame({lineage(common): [3.0], lineage(rare): [1.0]}))
    z_rare = (0.25 - stats.at[rare, "mean"]) / stats.at[rare, "std"]
    z_common = (0.75 - stats.at[common, "mean"]) / stats.at[common, "std"]
    assert z_rare > z_common
    assert corpus.samples.sentence.iloc[0] == f"<bos> {rare} {common} <eos>"  # the rarer one first


def test_exact_ties_follow_vocabulary_order(stats):
    twins = stats[stats.duplicated(keep=False)]
    first = twins.index[0]
    second = twins.index[(twins == twins.loc[first]).all(axis=1).to_numpy()][1]
    assert stats.index.get_loc(first) < stats.index.get_loc(second)
    for columns in ([first, second], [second, first]):
        corpus = tokenize_dataframe(pd.DataFrame({lineage(g): [5.0] for g in columns}))
        assert corpus.samples.sentence.iloc[0] == f"<bos> {first} {second} <eos>"


class TestTruncation:
    @pytest.fixture(scope="class")
    def wide(self):
        genera = mgm_vocabulary().tokens[4:34]
        return pd.DataFrame([np.arange(1, 31, dtype=float)], columns=[lineage(g) for g in genera], index=["deep"])

    def test_long_sentence_keeps_its_first_tokens_and_loses_eos(self, wide):
        full = tokenize_dataframe(wide).samples.iloc[0]
        cut = tokenize_dataframe(wide, max_length=10).samples.iloc[0]
        assert full.n_tokens == full.length_before_truncation == 32 and not full.truncated
        tokens = cut.sentence.split()
        assert tokens == full.sentence.split()[:10]
        assert tokens[0] == "<bos>" and "<eos>" not in tokens
        assert (cut.n_tokens, cut.n_genera, cut.length_before_truncation, cut.truncated) == (10, 9, 32, True)

    @pytest.mark.parametrize("max_length, eos", [(32, True), (31, False), (2, False)])
    def test_boundaries(self, wide, max_length, eos):
        sample = tokenize_dataframe(wide, max_length=max_length).samples.iloc[0]
        tokens = sample.sentence.split()
        assert len(tokens) == sample.n_tokens == max_length
        assert (tokens[-1] == "<eos>") is eos
        assert bool(sample.truncated) is (not eos)


def test_a_sample_named_zero_survives():
    # upstream computes the z of zero from an extra sample it calls 'zero'; a real sample of that name must stay
    data = table([[4, 1, 0], [0, 2, 9], [1, 1, 1]], [lineage(g) for g in GUT[:3]], index=["a", "zero", "b"])
    corpus = tokenize_dataframe(data)
    assert corpus.samples.index.tolist() == ["a", "zero", "b"]
    expected = reference_sentences(data)
    assert corpus.samples.sentence.tolist() == [expected[s][0] for s in ["a", "zero", "b"]]


def test_a_one_taxon_table():
    corpus = tokenize_dataframe(table([[3], [0], [1]], [lineage("g__Bacteroides")]))
    assert corpus.samples.sentence.tolist() == ["<bos> g__Bacteroides <eos>"] * 2
    assert corpus.samples.index.tolist() == ["s0", "s2"]
    assert corpus.dropped_samples.reason.tolist() == ["all-zero sample"]


def test_taxonomy_given_separately_equals_feature_ids_as_taxonomy():
    rng = np.random.default_rng(7)
    taxa = [lineage(g) for g in GUT] + [lineage("g__Notagenus"), "Unassigned"]
    by_taxonomy = table(rng.integers(0, 30, size=(15, len(taxa))), taxa)
    hashes = [hashlib.md5(t.encode()).hexdigest() for t in taxa]
    by_hash = by_taxonomy.set_axis(hashes, axis=1)
    taxonomy = pd.Series(taxa, index=hashes)
    taxonomy = pd.concat([taxonomy, pd.Series([lineage("g__Blautia")], index=["not-in-the-table"])])
    taxonomy = taxonomy.sample(frac=1, random_state=0)  # order and extra entries must not matter
    a, b = tokenize_dataframe(by_taxonomy), tokenize_dataframe(by_hash, taxonomy=taxonomy)
    pd.testing.assert_frame_equal(a.samples, b.samples)
    assert b.features.index.tolist() == hashes
    assert b.features.taxonomy.tolist() == taxa
    pd.testing.assert_frame_equal(a.features.reset_index(drop=True), b.features.reset_index(drop=True))


class TestHarmonizeNames:
    CASES = {
        # taxon: (status with upstream's regex, genus harmonize_names recovers)
        "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Ruminococcaceae; g__[Ruminococcus]; s__":
            (NOT_IN_VOCAB, "g__Ruminococcus"),
        "d__Bacteria;p__Firmicutes;c__Clostridia;o__Clostridiales;f__Clostridiaceae;g__Clostridium_sensu_stricto_1":
            (NOT_IN_VOCAB, "g__Clostridium"),
        "d__Bacteria;p__Bacteroidota;c__Bacteroidia;o__Bacteroidales;f__Bacteroidaceae;g__Prevotella_A;s__":
            (NOT_IN_VOCAB, "g__Prevotella"),
        "Bacteroides": (NOT_READ, "g__Bacteroides"),
        "k__Bacteria; p__Acidobacteria; c__Solibacteres; g__Candidatus Solibacter; s__":
            (NOT_IN_VOCAB, "g__Candidatus_Solibacter"),
    }
    HOPELESS = ["g__;s__", "Unassigned", "k__Bacteria; g__Notagenus_B; s__"]

    def test_names_checked_against_the_vocabulary(self):
        vocabulary = mgm_vocabulary().index
        for taxon, (_, genus) in self.CASES.items():
            assert genus in vocabulary, genus
        for missing in ("g__[Ruminococcus]", "g__Clostridium_sensu_stricto_1", "g__Prevotella_A", "g__Candidatus",
                        "g__Notagenus", "g__Unassigned"):
            assert missing not in vocabulary, missing

    @pytest.fixture(scope="class")
    def data(self):
        taxa = list(self.CASES) + self.HOPELESS + [lineage("g__Blautia")]
        return table([np.arange(1, len(taxa) + 1)], taxa)

    def test_off_by_default_everywhere(self):
        assert inspect.signature(tokenize_matrix).parameters["harmonize_names"].default is False
        assert inspect.signature(tokenize_dataframe).parameters["harmonize_names"].default is False

    def test_default_follows_upstream(self, data):
        corpus = tokenize_dataframe(data)
        assert not corpus.harmonize_names
        for taxon, (status, _) in self.CASES.items():
            assert corpus.features.at[taxon, "status"] == status
        assert sentence_genera(corpus.samples.sentence.iloc[0]) == ["g__Blautia"]

    def test_recovers_names(self, data):
        corpus = tokenize_dataframe(data, harmonize_names=True)
        assert corpus.harmonize_names
        for taxon, (_, genus) in self.CASES.items():
            assert (corpus.features.at[taxon, "genus"], corpus.features.at[taxon, "status"]) == (genus, HARMONIZED)
        for taxon in self.HOPELESS:
            assert corpus.features.at[taxon, "status"] in (NO_GENUS, NOT_IN_VOCAB)
        assert corpus.features.at[lineage("g__Blautia"), "status"] == KEPT
        expected = {genus for _, genus in self.CASES.values()} | {"g__Blautia"}
        assert set(sentence_genera(corpus.samples.sentence.iloc[0])) == expected

    def test_recovered_features_sum_with_kept_ones(self):
        data = pd.DataFrame({lineage("g__[Ruminococcus]"): [2.0], lineage("g__Ruminococcus"): [3.0],
                             lineage("g__Blautia"): [5.0]})
        merged = pd.DataFrame({lineage("g__Ruminococcus"): [5.0], lineage("g__Blautia"): [5.0]})
        assert (tokenize_dataframe(data, harmonize_names=True).samples.sentence.tolist()
                == tokenize_dataframe(merged).samples.sentence.tolist())


class TestReports:
    @staticmethod
    def data():
        columns = [lineage("g__Bacteroides"), lineage("g__Prevotella"), lineage("g__Notagenus"), "Unassigned"]
        rows = [[6, 2, 1, 1], [0, 0, 0, 0], [0, 0, 5, 5], [1, 0, 0, 3]]
        return table(rows, columns, index=["ok", "empty", "unknown-only", "thin"])

    @pytest.fixture(scope="class")
    def corpus(self):
        return tokenize_dataframe(self.data())

    def test_feature_report(self, corpus):
        features = corpus.features
        assert list(features.columns) == ["taxonomy", "genus_as_written", "genus", "status", "n_samples",
                                          "mean_relative_abundance"]
        assert features.genus_as_written.tolist() == ["g__Bacteroides", "g__Prevotella", "g__Notagenus", ""]
        assert features.status.tolist() == [KEPT, KEPT, NOT_IN_VOCAB, NO_GENUS]
        assert features.genus.tolist() == ["g__Bacteroides", "g__Prevotella", "g__Notagenus", ""]
        assert features.n_samples.tolist() == [2, 1, 2, 3]
        # mean over all four samples of each feature's share of its sample
        expected = np.array([0.6 + 0.25, 0.2, 0.1 + 0.5, 0.1 + 0.5 + 0.75]) / 4
        np.testing.assert_allclose(features.mean_relative_abundance, expected)

    def test_dropped_samples_and_reasons(self, corpus):
        dropped = corpus.dropped_samples
        assert dropped.index.tolist() == ["empty", "unknown-only"]
        assert dropped.reason.tolist() == ["all-zero sample", "no abundance in MGM's vocabulary"]
        assert dropped.total.tolist() == [0, 10]

    def test_sample_report(self, corpus):
        samples = corpus.samples
        assert samples.index.tolist() == ["ok", "thin"]
        assert samples.vocabulary_coverage.tolist() == pytest.approx([0.8, 0.25])
        assert samples.no_genus_share.tolist() == pytest.approx([0.1, 0.75])
        assert samples.out_of_vocabulary_share.tolist() == pytest.approx([0.1, 0.0])
        assert samples.sentence.tolist() == [reference_sentences(self.data())[s][0] for s in ["ok", "thin"]]
        assert samples.below_zero_threshold.tolist() == [0, 0]


class TestErrors:
    """Each problem raises TokenizationError (a ValueError) whose message names it."""

    def check(self, data, words, **kwargs):
        with pytest.raises(TokenizationError) as error:
            tokenize_dataframe(data, **kwargs)
        assert isinstance(error.value, ValueError)
        for word in words:
            assert word.lower() in str(error.value).lower(), (word, str(error.value))

    def test_no_overlap_with_the_vocabulary(self):
        self.check(table([[1, 2]], [lineage("g__Notagenus"), "Unassigned"]),
                   ["None of the table's features", "vocabulary", "taxa collapse", "harmonize_names"])

    def test_all_samples_outside_the_vocabulary(self):
        self.check(table([[0, 2], [0, 3]], [lineage("g__Bacteroides"), "Unassigned"]),
                   ["All 2 samples", "zero abundance"])

    @pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
    def test_empty_table(self, shape):
        data = pd.DataFrame(np.zeros(shape), columns=[lineage(g) for g in GUT[:shape[1]]])
        self.check(data, ["empty", f"{shape[0]} samples x {shape[1]} features"])

    def test_negative_values(self):
        self.check(table([[1, -2]], [lineage("g__Bacteroides"), lineage("g__Blautia")]),
                   ["1 negative", "CLR", "untransformed"])

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_values(self, bad):
        self.check(table([[1, bad], [2, 3]], [lineage("g__Bacteroides"), lineage("g__Blautia")]),
                   ["non-finite", "NaN or infinity"])

    def test_taxonomy_does_not_cover_the_features(self):
        data = table([[1, 2, 3]], ["f1", "f2", "f3"])
        taxonomy = pd.Series({"f1": lineage("g__Bacteroides")})
        self.check(data, ["does not cover 2 of the table's 3 features", "f2"], taxonomy=taxonomy)

    def test_duplicated_sample_ids(self):
        self.check(table([[1, 2], [3, 4]], [lineage("g__Bacteroides"), lineage("g__Blautia")], index=["a", "a"]),
                   ["duplicated sample IDs", "'a'"])

    def test_duplicated_feature_ids(self):
        self.check(table([[1, 2]], [lineage("g__Bacteroides")] * 2), ["duplicated feature IDs", "unique"])

    def test_max_length_below_two(self):
        self.check(table([[1]], [lineage("g__Bacteroides")]), ["max_length", "at least 2"], max_length=1)
