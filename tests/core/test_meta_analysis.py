"""The field's meta-analysis on real data, CRC_Metagenomics of ../shared/data/disease-benchmark (766 samples, 7
studies): the genera that the cross-study CRC meta-analyses found enriched in CRC (Wirbel et al. 2019, Thomas et al.
2019) come out on top and point to the cases; Hedges' g against a hand computation; the random effects against
statsmodels' combine_effects; Benjamini-Hochberg, Mann-Whitney and Stouffer against independent computations; and
every edge case (a batch of one class, one batch, a few batches, a constant or absent genus, the prevalence
filter) and error."""
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from q2_mgm.core.meta_analysis import (ABSENT, CLASS_MISSING, CONSTANT, FEW_BATCHES, GENUS_COLUMNS,
                                       MetaAnalysisError, genus_meta_analysis)
from q2_mgm.core.training.targets import encode_targets
from q2_mgm.core.transfer import CLR_PREVALENCE, clr

from ..helpers import read_genus_table, read_metadata

COHORT = "disease-benchmark/CRC_Metagenomics"
# enriched in CRC across studies in both meta-analyses (Wirbel et al. 2019 Nat Med 25:679; Thomas et al. 2019 Nat
# Med 25:667), as the species F. nucleatum, P. micra, P. stomatis, P. asaccharolytica and G. morbillorum
CRC_MARKERS = ["g__Fusobacterium", "g__Parvimonas", "g__Peptostreptococcus", "g__Porphyromonas", "g__Gemella"]


@pytest.fixture(scope="module")
def crc():
    """(abundances, labels, batches) of CRC_Metagenomics."""
    table = read_genus_table(COHORT, "genus_relative.tsv")
    metadata = read_metadata(COHORT).reindex(table.index)
    return table, metadata.Group, metadata.pair_rank.astype(str)


@pytest.fixture(scope="module")
def result(crc):
    return genus_meta_analysis(*crc)


def test_crc_markers_point_to_the_cases_and_lead_the_ranking(result):
    genera = result.genera
    assert list(genera.columns) == GENUS_COLUMNS
    assert result.record["classes"] == ["Case", "Control"]
    markers = genera.loc[CRC_MARKERS]
    assert (markers.direction == "Case").all() and (markers.hedges_g < 0).all()
    assert (markers.q_value < 1e-4).all() and (markers.ci_high < 0).all()
    assert set(CRC_MARKERS) <= set(genera.nsmallest(10, "q_value").index)
    assert (markers.batches == 7).all() and not markers.few_batches.any()


def test_classes_are_ordered_as_the_classifiers_order_them(crc, result):
    """The second class, the one a positive g points to, is the one encode_targets numbers 1."""
    _, classes, _, _ = encode_targets(crc[1], "classification")
    assert result.record["classes"] == classes
    genera = result.genera.dropna(subset=["hedges_g"])
    assert ((genera.hedges_g > 0) == (genera.direction == classes[1])).all()
    assert ((genera.hedges_g < 0) == (genera.direction == classes[0])).all()


def test_hedges_g_of_one_batch_by_hand(crc, result):
    """Pooled-sd standardised mean difference, Control minus Case, times J = 1 - 3 / (4 N - 9)."""
    table, labels, batches = crc
    values = clr(table)["g__Fusobacterium"][(batches == "1").to_numpy()]
    case, control = values[labels[batches == "1"] == "Case"], values[labels[batches == "1"] == "Control"]
    n1, n2 = len(case), len(control)
    pooled = np.sqrt(((n1 - 1) * case.var(ddof=1) + (n2 - 1) * control.var(ddof=1)) / (n1 + n2 - 2))
    g = (1 - 3 / (4 * (n1 + n2) - 9)) * (control.mean() - case.mean()) / pooled
    row = result.per_batch.set_index(["genus", "batch"]).loc[("g__Fusobacterium", "1")]
    assert row.hedges_g == pytest.approx(g, rel=1e-12) and g < 0
    assert row.variance == pytest.approx((n1 + n2) / (n1 * n2) + g ** 2 / (2 * (n1 + n2 - 3.94)), rel=1e-12)
    assert (row.n_Case, row.n_Control) == (n1, n2) and row.mean_Case == pytest.approx(case.mean())
    assert row.p_value == pytest.approx(scipy.stats.mannwhitneyu(control, case).pvalue, rel=1e-12)


def test_random_effects_match_statsmodels_where_tau2_is_positive_and_truncate_it_where_not(result):
    """combine_effects(method_re="chi2") is DerSimonian-Laird; it does not truncate tau2 at 0, so where it comes out
    negative the truncated random effects are its fixed-effect figures."""
    from statsmodels.stats.meta_analysis import combine_effects
    per_batch = result.per_batch.dropna(subset=["hedges_g"])
    for genus in ("g__Fusobacterium", "g__Gemella"):
        rows = per_batch[per_batch.genus == genus]
        reference = combine_effects(rows.hedges_g.to_numpy(), rows.variance.to_numpy(), method_re="chi2")
        frame = reference.summary_frame()
        ours = result.genera.loc[genus]
        if reference.tau2 > 0:
            assert ours.tau2 == pytest.approx(reference.tau2, rel=1e-10)
            assert ours.i2 == pytest.approx(reference.i2, rel=1e-10)
            expected = frame.loc["random effect"]
        else:
            assert ours.tau2 == 0 and ours.i2 == 0
            expected = frame.loc["fixed effect"]
        assert ours.hedges_g == pytest.approx(expected.eff, rel=1e-10)
        assert (ours.ci_low, ours.ci_high) == pytest.approx((expected.ci_low, expected.ci_upp), rel=1e-10)
        assert ours.p_value == pytest.approx(2 * scipy.stats.norm.sf(abs(expected.eff / expected.sd_eff)), rel=1e-8)
    assert result.genera.loc["g__Fusobacterium"].tau2 > 0 and result.genera.loc["g__Gemella"].tau2 == 0


def test_q_values_and_the_combined_rank_test(crc, result):
    genera = result.genera.dropna(subset=["p_value"])
    p = genera.p_value.to_numpy()
    order = np.argsort(p)
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    expected = np.empty_like(p)
    expected[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1)
    np.testing.assert_allclose(genera.q_value, expected, rtol=1e-12)
    # each batch's one-sided p (Control greater), combined by scipy's Stouffer weighted by sqrt(batch samples)
    table, labels, batches = crc
    values = clr(table)["g__Parvimonas"]
    rows = result.per_batch[result.per_batch.genus == "g__Parvimonas"]
    one_sided = [scipy.stats.mannwhitneyu(values[(batches == b) & (labels == "Control")],
                                          values[(batches == b) & (labels == "Case")], alternative="greater").pvalue
                 for b in rows.batch]
    z = scipy.stats.combine_pvalues(one_sided, method="stouffer", weights=np.sqrt(rows.n_Case + rows.n_Control))[0]
    assert result.genera.loc["g__Parvimonas", "mann_whitney_p"] == pytest.approx(2 * scipy.stats.norm.sf(abs(z)),
                                                                               rel=1e-8)


def test_a_batch_of_one_class_is_left_out_and_counted(crc, result):
    table, labels, batches = crc
    cases_only = ~((batches == "2") & (labels == "Control"))
    partial = genus_meta_analysis(table[cases_only], labels[cases_only], batches[cases_only])
    assert partial.record["batches_compared"] == ["1", "3", "4", "5", "6", "7"]
    assert any("compare nothing: 2" in note for note in partial.record["notes"])
    assert (partial.per_batch[partial.per_batch.batch == "2"].left_out == CLASS_MISSING).all()
    fusobacterium = partial.genera.loc["g__Fusobacterium"]
    assert (fusobacterium.batches, fusobacterium.batches_left_out) == (6, 1)
    # the same as leaving the batch out, where the prevalence filter keeps the same genera
    without = genus_meta_analysis(table[batches != "2"], labels[batches != "2"], batches[batches != "2"],
                                  prevalence=0)
    kept = genus_meta_analysis(table[cases_only], labels[cases_only], batches[cases_only], prevalence=0)
    common = kept.genera.dropna(subset=["hedges_g"]).index
    np.testing.assert_allclose(kept.genera.loc[common, "hedges_g"], without.genera.loc[common, "hedges_g"],
                               rtol=1e-12)


def test_one_batch_is_that_studys_own_test(crc):
    table, labels, batches = crc
    one = batches == "6"
    result = genus_meta_analysis(table[one], labels[one], batches[one])
    assert result.genera.tau2.isna().all() and result.genera.i2.isna().all()
    compared = result.genera.dropna(subset=["hedges_g"])
    assert (compared.batches == 1).all() and compared.few_batches.all()
    per_batch = result.per_batch.set_index("genus").loc[compared.index]
    np.testing.assert_allclose(compared.hedges_g, per_batch.hedges_g, rtol=1e-12)
    np.testing.assert_allclose(compared.ci_high - compared.ci_low, 2 * 1.959964 * np.sqrt(per_batch.variance),
                               rtol=1e-6)
    assert any("no between-study variance" in note for note in result.record["notes"])
    # no batches: every sample in one
    pooled = genus_meta_analysis(table[one], labels[one])
    np.testing.assert_allclose(pooled.genera.hedges_g, result.genera.hedges_g, rtol=1e-12)


def test_two_or_three_batches_flag_tau2_as_poorly_estimated(crc):
    table, labels, batches = crc
    few = batches.isin(["1", "3", "4"])
    result = genus_meta_analysis(table[few], labels[few], batches[few])
    assert FEW_BATCHES == 4 and result.genera.dropna(subset=["hedges_g"]).few_batches.all()
    assert any("poorly estimated" in note for note in result.record["notes"])


def test_constant_and_absent_genera_within_a_batch(crc):
    """A batch of four copies of one sample: every genus the sample holds is constant there, the others absent."""
    table, labels, batches = crc
    copies = pd.DataFrame(np.repeat(table.iloc[[0]].to_numpy(), 4, axis=0), columns=table.columns,
                          index=[f"copy{i}" for i in range(4)])
    result = genus_meta_analysis(pd.concat([table, copies]),
                                 pd.concat([labels, pd.Series(["Case", "Case", "Control", "Control"], copies.index)]),
                                 pd.concat([batches, pd.Series("copies", copies.index)]))
    rows = result.per_batch[result.per_batch.batch == "copies"].set_index("genus")
    held = table.iloc[0].reindex(rows.index) > 0
    assert (rows.left_out[held] == CONSTANT).all() and (rows.left_out[~held] == ABSENT).all()
    assert rows.hedges_g.isna().all() and rows.p_value.isna().all()
    assert result.record["left_out"][CONSTANT] == held.sum()
    assert (result.genera.batches_left_out >= 1).all()


def test_the_prevalence_filter_leaves_genera_out_and_counts_them(crc):
    table, labels, batches = crc
    result = genus_meta_analysis(table, labels, batches)
    prevalent = (table > 0).mean() >= CLR_PREVALENCE
    assert sorted(result.genera.index) == sorted(table.columns[prevalent])
    q = result.genera.q_value.to_numpy()  # the most significant first, genera no batch compared last
    assert (np.diff(q[np.isfinite(q)]) >= 0).all() and not np.isfinite(q[np.isfinite(q).sum():]).any()
    assert list(result.per_batch.genus.drop_duplicates()) == list(result.genera.index)
    assert result.record["genera_below_prevalence"] == (~prevalent).sum() > 0
    # kept at prevalence 0, a genus no sample holds is absent from every batch: no figures, no direction
    empty = table.assign(g__Nowhere=0.0)
    nowhere = genus_meta_analysis(empty, labels, batches, prevalence=0).genera.loc["g__Nowhere"]
    assert np.isnan(nowhere.hedges_g) and np.isnan(nowhere.q_value) and nowhere.direction is None
    assert (nowhere.batches, nowhere.batches_left_out, nowhere.few_batches) == (0, 7, False)


@pytest.mark.parametrize("change, message", [
    (lambda t, l, b: (t, l.mask(l.index.isin(l.index[:50]), "Adenoma"), b), "compares two classes"),
    (lambda t, l, b: (t, l.iloc[1:], b), "have no value in labels"),
    (lambda t, l, b: (t, l, b.to_numpy()), "batches must be a pandas Series"),
    (lambda t, l, b: (t * -1, l, b), "negative, missing or infinite"),
    (lambda t, l, b: (t, l, b.where(l == "Case", b + "c")), "No batch holds at least 2 samples of each class"),
])
def test_errors_name_the_problem_and_the_fix(crc, change, message):
    with pytest.raises(MetaAnalysisError, match=message):
        genus_meta_analysis(*change(*crc))
    with pytest.raises(MetaAnalysisError, match="share of the samples"):
        genus_meta_analysis(*crc, prevalence=5)
