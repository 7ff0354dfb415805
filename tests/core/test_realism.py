"""Realism of synthetic samples on real data (ECAM genus profiles, labels = delivery mode), with generators that
need no model: real samples held out (real vs real), the bootstrap baseline, and a bad generator (genus columns
shuffled). Plus the evaluate-generated visualizer, called directly."""
import re

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import entropy
from skbio import DistanceMatrix
from skbio.stats.distance import permanova

from q2_mgm.core.baseline_generator import bootstrap_baseline
from q2_mgm.core.realism import (ALL_LABELS, REAL, SYNTHETIC, RealismError, alpha_diversity,
                                 bray_curtis_pcoa, genus_profiles, pool, realism_report, train_synthetic_test_real,
                                 two_sample_auc)
from q2_mgm.core.reconstruction import genus_relative_abundance

from ..helpers import read_genus_table, read_metadata

TREES = 50  # enough to separate the cases below by wide margins, cheap on a shared machine
LABELS = ["Cesarean", "Vaginal", ALL_LABELS]


@pytest.fixture(scope="module")
def ecam():
    """(ECAM relative abundance over MGM genera, 875 x 245; delivery mode per sample)."""
    return genus_relative_abundance(read_genus_table("ecam")), read_metadata("ecam").delivery


@pytest.fixture(scope="module")
def halves(ecam):
    """Two random halves of ECAM (438 and 437 samples): one plays real, the other a perfect generator."""
    relative, _ = ecam
    order = np.random.default_rng(1).permutation(relative.index)
    return relative.loc[order[::2]], relative.loc[order[1::2]]


@pytest.fixture(scope="module")
def shuffled(halves):
    """The bad generator: the second half with its genus columns permuted (Bacteroides' abundance under another
    genus' name, and so on)."""
    _, held_out = halves
    bad = held_out.copy()
    bad.columns = np.random.default_rng(0).permutation(held_out.columns)
    return bad


@pytest.fixture(scope="module")
def bootstrap(halves, ecam):
    """The bootstrap baseline fitted on the first half: as many samples per label as that half holds."""
    return bootstrap_baseline(halves[0], ecam[1], random_state=0)


def test_real_against_held_out_real_is_indistinguishable(halves, ecam):
    auc = two_sample_auc(halves[0], ecam[1], halves[1], ecam[1], n_estimators=TREES).auc
    assert list(auc.index) == LABELS
    assert auc.two_sample_auc.between(0.35, 0.65).all(), auc  # measured 0.47-0.52


def test_shuffled_genera_are_told_apart_and_teach_nothing(halves, shuffled, bootstrap, ecam):
    real, labels = halves[0], ecam[1]
    assert (two_sample_auc(real, labels, shuffled, labels, n_estimators=TREES).auc.two_sample_auc > 0.9).all()
    bad = train_synthetic_test_real(halves[1], labels, shuffled, labels, n_estimators=TREES)
    good = train_synthetic_test_real(halves[1], labels, *bootstrap, n_estimators=TREES)
    # trained on the bootstrap of one half, tested on the other half: measured 0.83; shuffled: 0.43
    assert good.tstr_auc[ALL_LABELS] > 0.7 and bad.tstr_auc[ALL_LABELS] < 0.65
    assert good.trtr_auc[ALL_LABELS] > 0.7  # delivery mode from real samples, out of fold: measured 0.82
    assert list(good.index) == LABELS and good.tstr_auc.nunique() == 1  # two classes: one AUC, either way round


def test_genus_profiles_agree_for_the_bootstrap_not_for_shuffled_genera(halves, shuffled, bootstrap, ecam):
    good = genus_profiles(halves[1], ecam[1], *bootstrap)
    bad = genus_profiles(halves[1], ecam[1], shuffled, ecam[1])
    # rare genera differ between any two sets of samples: real vs held-out real measured 0.67-0.80, the bootstrap
    # 0.62-0.77, shuffled genera -0.13-0.08
    for column in ("abundance_spearman", "prevalence_spearman"):
        assert (good.agreement[column] > 0.5).all() and (bad.agreement[column] < 0.3).all()
    table = good.table
    assert list(table.columns) == ["label", "genus", "real_prevalence", "synthetic_prevalence",
                                   "real_mean_abundance", "synthetic_mean_abundance"]
    assert list(table.label.unique()) == LABELS
    # every profile sums to 1, so the mean abundances of each side do too; no genus is absent from both sides
    sums = table.groupby("label")[["real_mean_abundance", "synthetic_mean_abundance"]].sum()
    assert np.allclose(sums, 1.0)
    assert ((table.real_prevalence > 0) | (table.synthetic_prevalence > 0)).all()
    assert table.real_prevalence.between(0, 1).all()


def test_bootstrap_baseline(halves, ecam, bootstrap):
    real, labels = halves[0], ecam[1]
    synthetic, synthetic_labels = bootstrap
    assert synthetic_labels.value_counts().to_dict() == labels.reindex(real.index).value_counts().to_dict()
    assert list(synthetic.columns) == list(real.columns) and np.allclose(synthetic.sum(axis=1), 1.0)
    assert synthetic.index.is_unique and synthetic.index[0] == "bootstrap-0"
    again = bootstrap_baseline(real, labels, random_state=0)
    pd.testing.assert_frame_equal(again[0], synthetic)
    assert not bootstrap_baseline(real, labels, random_state=1)[0].equals(synthetic)
    small, small_labels = bootstrap_baseline(real, labels, n_per_label=7, concentration=1e6)
    assert small_labels.value_counts().to_dict() == {"Cesarean": 7, "Vaginal": 7}
    # nearly no noise: each sample is one of the real profiles of its label, genera absent there stay absent
    nearest = [np.abs(real.to_numpy() - row).sum(axis=1).argmin() for row in small.to_numpy()]
    assert (labels.reindex(real.index[nearest]).to_numpy() == small_labels.to_numpy()).all()
    assert ((real.to_numpy()[nearest] > 0) >= (small.to_numpy() > 0)).all()


@pytest.fixture(scope="module")
def small_sets(ecam):
    """Every eighth ECAM sample as real (110) and a bootstrap of 30 per label: for the cheaper checks."""
    relative, labels = ecam
    real = relative.iloc[::8]
    return (real, labels, *bootstrap_baseline(real, labels, n_per_label=30, random_state=3))


def test_report_tables(small_sets):
    real, labels, synthetic, synthetic_labels = small_sets
    report = realism_report(*small_sets, n_estimators=20)
    assert list(report.summary.index) == LABELS
    assert list(report.summary.columns) == ["n_real", "n_synthetic", "two_sample_auc", "tstr_auc", "trtr_auc",
                                            "abundance_spearman", "prevalence_spearman", "permanova_pseudo_f",
                                            "permanova_p_value"]
    assert report.summary.n_synthetic.tolist() == [30, 30, 60]
    assert report.summary.n_real[ALL_LABELS] == len(real) and report.headline["n_labels"] == 2
    assert report.headline["two_sample_auc"] == report.summary.two_sample_auc[ALL_LABELS]
    assert report.notes == []
    alpha = report.alpha.samples
    assert list(alpha.columns) == ["source", "sample_id", "label", "shannon", "observed_genera", "simpson"]
    assert len(alpha) == len(real) + 60
    one = alpha.iloc[0]
    profile = real.loc[one.sample_id]
    assert one.shannon == pytest.approx(entropy(profile[profile > 0]))
    assert one.observed_genera == (profile > 0).sum()
    assert one.simpson == pytest.approx(1 - (profile ** 2).sum())
    tests = report.alpha.tests
    assert len(tests) == 3 * 3 and tests.ks_p_value.between(0, 1).all()
    coordinates = report.ordination.coordinates
    assert list(coordinates.columns) == ["source", "sample_id", "label", "PC1", "PC2", "PC3"]
    assert len(coordinates) == len(real) + 60  # under the cap: every sample
    assert report.ordination.proportion_explained.is_monotonic_decreasing
    assert report.ordination.permanova.p_value.between(0.01, 1).all()  # 99 permutations


def test_permanova_matches_skbio(small_sets):
    pooled = pool(*small_sets)
    ordination = bray_curtis_pcoa(*small_sets, permutations=0)
    distances = DistanceMatrix(squareform(pdist(pooled.profiles.to_numpy(), "braycurtis")))
    expected = permanova(distances, pooled.profiles.index.get_level_values("source").to_numpy(), permutations=0)
    assert ordination.permanova.pseudo_f[ALL_LABELS] == pytest.approx(expected["test statistic"])


def test_same_seed_same_numbers(small_sets):
    first = two_sample_auc(*small_sets, n_estimators=10, random_state=4)
    second = two_sample_auc(*small_sets, n_estimators=10, random_state=4)
    pd.testing.assert_frame_equal(first.scores, second.scores)
    other = two_sample_auc(*small_sets, n_estimators=10, random_state=5)
    assert not first.scores.p_synthetic.equals(other.scores.p_synthetic)
    ordinations = [bray_curtis_pcoa(*small_sets, max_samples=60, random_state=4) for _ in range(2)]
    pd.testing.assert_frame_equal(ordinations[0].coordinates, ordinations[1].coordinates)
    pd.testing.assert_frame_equal(ordinations[0].permanova, ordinations[1].permanova)


def test_pcoa_caps_samples_per_label(small_sets):
    coordinates = bray_curtis_pcoa(*small_sets, max_samples=40).coordinates
    counts = coordinates.groupby(["source", "label"]).size()
    assert counts[SYNTHETIC].tolist() == [10, 10]  # 20 of each side, in proportion to the labels
    assert counts[REAL].sum() <= 22 and (counts >= 5).all()


def test_colliding_ids_and_different_genera_are_kept_apart():
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(12)]
    real = pd.DataFrame(rng.random((12, 3)), index=ids, columns=["g__A", "g__B", "g__C"])
    synthetic = pd.DataFrame(rng.random((12, 2)), index=ids, columns=["g__B", "g__D"])
    labels = pd.Series(["x", "y"] * 6, index=ids)
    alpha = alpha_diversity(real, labels, synthetic, labels).samples
    assert len(alpha) == 24
    assert all(set(rows.sample_id) == set(ids) for _, rows in alpha.groupby("source"))
    table = genus_profiles(real, labels, synthetic, labels).table
    everything = table[table.label == ALL_LABELS].set_index("genus")
    assert everything.real_prevalence.to_dict() == {"g__A": 1.0, "g__B": 1.0, "g__C": 1.0, "g__D": 0.0}
    assert everything.synthetic_prevalence.to_dict() == {"g__A": 0.0, "g__B": 1.0, "g__C": 0.0, "g__D": 1.0}


def test_three_labels_and_one(ecam):
    relative, _ = ecam
    diet = read_metadata("ecam").diet_3
    real = relative.iloc[::4]
    synthetic, synthetic_labels = bootstrap_baseline(real, diet, n_per_label=15)
    utility = train_synthetic_test_real(real, diet, synthetic, synthetic_labels, n_estimators=20)
    assert list(utility.index) == ["bd", "eb", "fd", ALL_LABELS]
    # the macro one-vs-rest AUC is the mean of the per-label ones
    assert utility.loc[ALL_LABELS].to_numpy() == pytest.approx(utility.drop(ALL_LABELS).mean().to_numpy())
    one = pd.Series("all", index=relative.index)
    single = train_synthetic_test_real(real, one, synthetic, pd.Series("all", index=synthetic.index), n_estimators=5)
    assert single.isna().all().all() and list(single.index) == ["all", ALL_LABELS]


def test_labels_on_one_side_only_and_unlabelled_samples_are_noted(small_sets):
    real, labels, synthetic, synthetic_labels = small_sets
    extra = pd.DataFrame(synthetic.iloc[:6].to_numpy(), index=[f"extra-{i}" for i in range(6)],
                         columns=synthetic.columns)
    notes = pool(real, labels.drop(real.index[:3]), pd.concat([synthetic, extra]),
                 pd.concat([synthetic_labels, pd.Series("Other", index=extra.index)])).notes
    assert notes == ["3 real samples have no label and are left out.",
                     "Label 'Other' is only among the synthetic samples (6); it is left out."]


def _frame(values, prefix="s"):
    values = np.asarray(values, dtype=float)
    return pd.DataFrame(values, index=[f"{prefix}{i}" for i in range(len(values))],
                        columns=[f"g__G{j}" for j in range(values.shape[1])])


def _with(frame, sample, value):
    """frame with every value of one sample set to value."""
    frame = frame.copy()
    frame.loc[sample] = value
    return frame


@pytest.mark.parametrize("change, words", [
    (lambda r, rl, s, sl: (r, rl, s, sl.map({"x": "p", "y": "q"})), ["share no label", "x, y", "p, q"]),
    (lambda r, rl, s, sl: (r, rl, s.iloc[:13], sl), ["'y'", "4 synthetic", "at least 5"]),
    (lambda r, rl, s, sl: (r.mul(-1), rl, s, sl), ["negative", "real"]),
    (lambda r, rl, s, sl: (r, rl, _with(s, "s0", np.nan), sl), ["non-finite", "synthetic"]),
    (lambda r, rl, s, sl: (r.iloc[:0], rl, s, sl), ["real table is empty", "0 samples"]),
    (lambda r, rl, s, sl: (r, rl, s.assign(g__G0="a"), sl), ["non-numeric"]),
    (lambda r, rl, s, sl: (r, rl.set_axis([f"t{i}" for i in range(len(rl))]), s, sl),
     ["None of the real table's 20 sample IDs", "indexed by the table's sample IDs"]),
    (lambda r, rl, s, sl: (_with(r, "s3", 0.0), rl, s, sl), ["1 real samples hold no abundance", "s3"]),
    (lambda r, rl, s, sl: (r, rl, s.rename(index={"s1": "s0"}), sl), ["sample s0 more than once", "unique"]),
], ids=["no shared label", "too few", "negative", "nan", "empty", "text", "ids", "empty sample", "duplicate id"])
def test_clear_errors(change, words):
    rng = np.random.default_rng(0)
    real, synthetic = _frame(rng.random((20, 4))), _frame(rng.random((18, 3)))
    labels = pd.Series(["x", "y"] * 10, index=real.index)
    synthetic_labels = pd.Series(["x"] * 9 + ["y"] * 9, index=synthetic.index)
    with pytest.raises(RealismError) as error:
        genus_profiles(*change(real, labels, synthetic, synthetic_labels))
    for word in words:
        assert word in str(error.value)


def test_max_samples_is_checked(small_sets):
    with pytest.raises(RealismError, match="max_samples must be at least 20"):
        two_sample_auc(*small_sets, max_samples=10)


def test_bootstrap_settings_are_checked():
    real = _frame(np.ones((6, 2)))
    labels = pd.Series("x", index=real.index)
    with pytest.raises(RealismError, match="concentration must be positive"):
        bootstrap_baseline(real, labels, concentration=0)
    with pytest.raises(RealismError, match="n_per_label must be at least 1"):
        bootstrap_baseline(real, labels, n_per_label=0)


# --- the visualizer, called directly ---

def test_evaluate_generated_page(tmp_path):
    qiime2 = pytest.importorskip("qiime2")
    from q2_mgm.visualizers.evaluate_generated import evaluate_generated
    counts = read_genus_table("ecam").iloc[::5]  # taxonomy strings as feature IDs, unclassified included
    delivery = read_metadata("ecam").delivery
    synthetic, synthetic_labels = bootstrap_baseline(counts.drop(columns="unclassified_at_genus"), delivery,
                                                     n_per_label=25)
    synthetic.index = counts.index[:50]  # IDs that collide with real ones
    synthetic_labels.index = synthetic.index
    evaluate_generated(str(tmp_path), counts, synthetic, qiime2.CategoricalMetadataColumn(delivery),
                       qiime2.CategoricalMetadataColumn(synthetic_labels.rename_axis("sample-id")),
                       n_estimators=10)
    html = (tmp_path / "index.html").read_text()
    links = [link for link in re.findall(r'(?:src|href)="([^"#]+)"', html) if not link.startswith("http")]
    assert {"two_sample_roc.png", "pcoa.png", "prevalence.png", "mean_abundance.png", "alpha_diversity.png",
            "realism_summary.tsv", "genus_profiles.tsv", "alpha_diversity.tsv", "pcoa.tsv"} <= set(links)
    for link in links:
        assert (tmp_path / link).exists(), f"index.html links {link}, which the visualization lacks"
    for name in ("pcoa", "prevalence", "alpha_diversity"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / f"{name}.pdf").exists()
    summary = pd.read_csv(tmp_path / "realism_summary.tsv", sep="\t", index_col=0)
    assert list(summary.index) == LABELS and summary.n_synthetic.tolist() == [25, 25, 50]
    pcoa = pd.read_csv(tmp_path / "pcoa.tsv", sep="\t")
    assert pcoa.groupby("source").sample_id.apply(set).pipe(lambda ids: ids[REAL] >= ids[SYNTHETIC])
    assert "Two-sample AUC" in html and "(all labels)" in html


def test_evaluate_generated_rejects_synthetic_features_without_genera(tmp_path):
    qiime2 = pytest.importorskip("qiime2")
    from q2_mgm.visualizers.evaluate_generated import evaluate_generated
    table = _frame(np.ones((10, 2))).set_axis(["g__Bacteroides", "g__Blautia"], axis=1)
    labels = qiime2.CategoricalMetadataColumn(pd.Series(["x", "y"] * 5, index=pd.Index(table.index, name="id"),
                                                        name="group"))
    with pytest.raises(ValueError, match="synthetic table names a genus"):
        evaluate_generated(str(tmp_path), table, table.set_axis(["ASV1", "ASV2"], axis=1), labels, labels)
