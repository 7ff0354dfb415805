"""How real do synthetic samples look? Real and synthetic relative-abundance profiles side by side, per label:
genus prevalence and mean abundance, alpha diversity, a Bray-Curtis PCoA of both together (with PERMANOVA), a
classifier two-sample test (ROC AUC of telling real from synthetic: 0.5 is indistinguishable) and the utility of
synthetic samples for learning the labels (train on synthetic, test on real, beside train and test on real).

Every function takes the same four inputs, so that any generator (MGM, or the bootstrap baseline here) is judged
by the same numbers:
- real, synthetic: samples x features (genera), counts or relative abundance; rows are normalised to sum to 1 and
  the two are aligned on the union of their features (a genus absent from one side is 0 there);
- real_labels, synthetic_labels: a label per sample, indexed by the tables' sample IDs. Only labels present on both
  sides are compared. Real and synthetic sample IDs may coincide: results keep them apart by a `source` column.
"""
import dataclasses
import math
import warnings
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist, squareform
from scipy.stats import ks_2samp, spearmanr
from skbio import DistanceMatrix
from skbio.stats.ordination import pcoa
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

REAL, SYNTHETIC = "real", "synthetic"
ALL_LABELS = "(all labels)"
MIN_SAMPLES = 5  # stratified 5-fold cross-validation needs five samples of each side per label
N_FOLDS = 5
MAX_SAMPLES = 1000  # PCoA and two-sample test: at most half of this from each side, for speed
ALPHA_METRICS = ("shannon", "observed_genera", "simpson")
N_AXES = 3


class RealismError(ValueError):
    """Inputs that cannot be compared; the message names the problem and the fix."""


# --- inputs ---

@dataclasses.dataclass(frozen=True)
class Pooled:
    """Real and synthetic profiles on one genus axis, restricted to the labels both sides hold.

    profiles: (source, sample_id) x genera relative abundance, rows summing to 1; labels: their labels (text);
    notes: what was left out and why."""
    profiles: pd.DataFrame
    labels: pd.Series
    notes: List[str]

    @property
    def groups(self) -> List[str]:
        """Each shared label, then ALL_LABELS: the comparisons every analysis reports."""
        return [*sorted(self.labels.unique()), ALL_LABELS]

    def rows(self, group: str, source: Optional[str] = None) -> np.ndarray:
        """(n_samples,) boolean mask of the samples of a group (a label or ALL_LABELS), optionally of one source."""
        mask = np.ones(len(self.labels), bool) if group == ALL_LABELS else (self.labels == group).to_numpy()
        if source is not None:
            mask &= self.profiles.index.get_level_values("source") == source
        return mask


def check_abundances(source: str, table: pd.DataFrame) -> np.ndarray:
    """The table's values as a (n_samples, n_features) float64 array; RealismError unless it is a non-empty
    DataFrame of finite, non-negative numbers."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        shape = f"{table.shape[0]} samples x {table.shape[1]} features" if isinstance(table, pd.DataFrame) else \
            type(table).__name__
        raise RealismError(f"The {source} table is empty ({shape}); give a samples x genera table with at least "
                           f"{MIN_SAMPLES} samples per label.")
    try:
        values = table.to_numpy(dtype=float)
    except (TypeError, ValueError) as error:
        raise RealismError(f"The {source} table holds non-numeric values ({error}); give abundances.") from None
    if not np.isfinite(values).all():
        rows = ~np.isfinite(values).all(axis=1)
        raise RealismError(f"The {source} table holds {int((~np.isfinite(values)).sum())} non-finite values (NaN "
                           f"or infinity) in {int(rows.sum())} samples (for example {table.index[rows][0]}); fix "
                           "or remove those samples (qiime feature-table filter-samples).")
    if (values < 0).any():
        rows = (values < 0).any(axis=1)
        raise RealismError(f"The {source} table holds {int((values < 0).sum())} negative values (for example in "
                           f"sample {table.index[rows][0]}); give counts or relative abundance, not transformed data "
                           "(CLR, log, z-scores).")
    return values


def labelled_profiles(source: str, table: pd.DataFrame,
                      labels: pd.Series) -> Tuple[pd.DataFrame, pd.Series, List[str]]:
    """One side's relative abundance and labels (text) over its labelled samples, validated, and a note on the
    samples left out for want of a label."""
    values = check_abundances(source, table)
    frame = pd.DataFrame(values, index=table.index.astype(str), columns=table.columns)
    if not frame.index.is_unique:
        raise RealismError(f"The {source} table lists sample {frame.index[frame.index.duplicated()][0]} more than "
                           "once; sample IDs must be unique within a table.")
    labels = pd.Series(labels)
    labels_given = labels = pd.Series(labels.to_numpy(), index=labels.index.astype(str), name=labels.name)
    labels = labels.reindex(frame.index).dropna().astype(str)
    if labels.empty:
        raise RealismError(f"None of the {source} table's {len(table)} sample IDs has a {source} label; the labels "
                           "must be indexed by the table's sample IDs (table: "
                           f"{', '.join(frame.index[:3])}; labels: {', '.join(map(str, labels_given.index[:3]))}). "
                           f"Give {source} labels from metadata whose IDs are the {source} table's.")
    frame = frame.loc[labels.index]
    totals = frame.sum(axis=1)
    if (totals == 0).any():
        raise RealismError(f"{int((totals == 0).sum())} {source} samples hold no abundance (for example "
                           f"{totals.index[totals == 0][0]}); remove them.")
    unlabelled = len(table) - len(labels)
    notes = [f"{unlabelled} {source} samples have no label and are left out."] if unlabelled else []
    return frame.div(totals, axis=0), labels, notes


def pool(real: pd.DataFrame, real_labels: pd.Series, synthetic: pd.DataFrame, synthetic_labels: pd.Series) -> Pooled:
    """Validate, normalise and align both sides; raises RealismError when they cannot be compared."""
    sides = {REAL: labelled_profiles(REAL, real, real_labels),
             SYNTHETIC: labelled_profiles(SYNTHETIC, synthetic, synthetic_labels)}
    seen = {source: set(labels) for source, (_, labels, _) in sides.items()}
    shared = seen[REAL] & seen[SYNTHETIC]
    if not shared:
        raise RealismError(f"Real and synthetic samples share no label (real: {', '.join(sorted(seen[REAL])[:5])}; "
                           f"synthetic: {', '.join(sorted(seen[SYNTHETIC])[:5])}). Label the synthetic samples with "
                           "the real labels they were generated for.")
    notes = []
    for source, (_, labels, side_notes) in sides.items():
        notes += side_notes
        for label in sorted(seen[source] - shared):
            notes.append(f"Label {label!r} is only among the {source} samples ({int((labels == label).sum())}); "
                         "it is left out.")
        counts = labels[labels.isin(shared)].value_counts()
        small = counts[counts < MIN_SAMPLES]
        if len(small):
            more = f"Generate at least {MIN_SAMPLES} samples of it (generate's n_per_label)" if source == SYNTHETIC \
                else f"Give at least {MIN_SAMPLES} real samples of it"
            raise RealismError(f"Label {small.index[0]!r} has {small.iloc[0]} {source} samples in {labels.name!r}; "
                               f"every label needs at least {MIN_SAMPLES} real and {MIN_SAMPLES} synthetic samples "
                               f"for {N_FOLDS}-fold cross-validation. {more}, or leave that label out of the "
                               f"{source} labels (samples without a label are left out).")
    kept = {source: labels[labels.isin(shared)] for source, (_, labels, _) in sides.items()}
    profiles = pd.concat({source: sides[source][0].loc[kept[source].index] for source in sides},
                         names=["source", "sample_id"]).fillna(0.0)
    profiles = profiles[sorted(profiles.columns)]
    labels = pd.concat(kept, names=["source", "sample_id"]).rename("label")
    return Pooled(profiles, labels, notes)


def _check_max_samples(max_samples):
    if max_samples < 4 * MIN_SAMPLES:
        raise RealismError(f"max_samples must be at least {4 * MIN_SAMPLES} (got {max_samples}), so that each side "
                           f"keeps at least {MIN_SAMPLES} samples of two labels.")


def _subsample(pooled, per_source, rng):
    """Positions of at most about per_source samples of each source, drawn within each label in proportion to its
    size (at least MIN_SAMPLES, so that every label stays testable); sorted."""
    keep = []
    for source in (REAL, SYNTHETIC):
        source_rows = pooled.rows(ALL_LABELS, source)
        for label in pooled.groups[:-1]:
            rows = np.flatnonzero(source_rows & pooled.rows(label))
            n = max(MIN_SAMPLES, math.ceil(per_source * len(rows) / source_rows.sum()))
            keep.append(rng.choice(rows, n, replace=False) if n < len(rows) else rows)
    return np.sort(np.concatenate(keep))


def _spearman(a, b):
    """Spearman correlation; NaN where it is undefined (fewer than three genera, or a constant side)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    return float(spearmanr(a, b).correlation)


# --- genus profiles ---

class Profiles(NamedTuple):
    """table: per label and genus (genera present on either side), prevalence (share of samples holding the genus)
    and mean relative abundance among the real and the synthetic samples; agreement: per label, genus counts and
    the Spearman correlations of mean abundance and of prevalence across those genera."""
    table: pd.DataFrame
    agreement: pd.DataFrame


def genus_profiles(real: pd.DataFrame, real_labels: pd.Series, synthetic: pd.DataFrame,
                   synthetic_labels: pd.Series) -> Profiles:
    """Prevalence and mean relative abundance of each genus, real beside synthetic, per label and over all."""
    pooled = pool(real, real_labels, synthetic, synthetic_labels)
    tables, agreement = [], {}
    for group in pooled.groups:
        sides = {source: pooled.profiles[pooled.rows(group, source)] for source in (REAL, SYNTHETIC)}
        frame = pd.DataFrame({**{f"{source}_prevalence": (p > 0).mean() for source, p in sides.items()},
                              **{f"{source}_mean_abundance": p.mean() for source, p in sides.items()}})
        held = frame[[f"{REAL}_prevalence", f"{SYNTHETIC}_prevalence"]] > 0
        frame = frame[held.any(axis=1)]  # genera absent from both sides say nothing and would inflate agreement
        agreement[group] = {
            "real_genera": int(held[f"{REAL}_prevalence"].sum()),
            "synthetic_genera": int(held[f"{SYNTHETIC}_prevalence"].sum()),
            "shared_genera": int(held.all(axis=1).sum()),
            "abundance_spearman": _spearman(frame.real_mean_abundance, frame.synthetic_mean_abundance),
            "prevalence_spearman": _spearman(frame.real_prevalence, frame.synthetic_prevalence)}
        tables.append(frame.rename_axis("genus").reset_index().assign(label=group))
    table = pd.concat(tables, ignore_index=True)
    return Profiles(table[["label", *table.columns[:-1]]],
                    pd.DataFrame.from_dict(agreement, orient="index").rename_axis("label"))


# --- alpha diversity ---

class Alpha(NamedTuple):
    """samples: Shannon (natural log), observed genera and Simpson (1 - sum p^2) of each sample, with its source
    and label; tests: per label and metric, the medians of each side and a two-sample Kolmogorov-Smirnov test."""
    samples: pd.DataFrame
    tests: pd.DataFrame


def _alpha(profiles):
    p = profiles.to_numpy()
    with np.errstate(divide="ignore"):
        logs = np.where(p > 0, np.log(p), 0.0)
    return pd.DataFrame({"shannon": -(p * logs).sum(axis=1), "observed_genera": (p > 0).sum(axis=1),
                         "simpson": 1 - (p ** 2).sum(axis=1)}, index=profiles.index)


def alpha_diversity(real: pd.DataFrame, real_labels: pd.Series, synthetic: pd.DataFrame,
                    synthetic_labels: pd.Series) -> Alpha:
    """Alpha diversity of every sample, and per label whether the real and synthetic distributions differ."""
    pooled = pool(real, real_labels, synthetic, synthetic_labels)
    metrics = _alpha(pooled.profiles)
    tests = []
    for group in pooled.groups:
        for metric in ALPHA_METRICS:
            a, b = (metrics[metric][pooled.rows(group, source)] for source in (REAL, SYNTHETIC))
            with warnings.catch_warnings():  # large samples: scipy falls back to the asymptotic p-value, rightly
                warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
                result = ks_2samp(a, b)
            tests.append({"label": group, "metric": metric, "real_median": a.median(), "synthetic_median": b.median(),
                          "ks_statistic": result.statistic, "ks_p_value": result.pvalue})
    return Alpha(metrics.join(pooled.labels).reset_index()[["source", "sample_id", "label", *ALPHA_METRICS]],
                 pd.DataFrame(tests))


# --- Bray-Curtis ordination ---

class Ordination(NamedTuple):
    """coordinates: the first axes of a Bray-Curtis PCoA of real and synthetic samples together, with source and
    label; proportion_explained: of each axis; permanova: per label, real vs synthetic (pseudo-F, p-value)."""
    coordinates: pd.DataFrame
    proportion_explained: pd.Series
    permanova: pd.DataFrame


def _permanova(distances, grouping, permutations, rng):
    """PERMANOVA pseudo-F (Anderson 2001, as skbio computes it) and its permutation p-value. Written out because
    skbio 0.5 draws its permutations from numpy's global RNG, which a seed here must not touch."""
    squared, (_, codes) = distances ** 2, np.unique(grouping, return_inverse=True)
    n, k = len(codes), codes.max() + 1
    total = squared.sum() / (2 * n)

    def pseudo_f(codes):
        indicator = np.eye(k)[codes]
        within = ((indicator.T @ squared) * indicator.T).sum(axis=1) / (2 * np.bincount(codes, minlength=k))
        return ((total - within.sum()) / (k - 1)) / (within.sum() / (n - k))

    statistic = pseudo_f(codes)
    permuted = np.array([pseudo_f(rng.permutation(codes)) for _ in range(permutations)])
    return statistic, ((permuted >= statistic).sum() + 1) / (permutations + 1) if permutations else np.nan


def bray_curtis_pcoa(real: pd.DataFrame, real_labels: pd.Series, synthetic: pd.DataFrame, synthetic_labels: pd.Series,
                     max_samples: int = MAX_SAMPLES, permutations: int = 99, random_state: int = 0) -> Ordination:
    """Bray-Curtis PCoA of real and synthetic samples together (at most about max_samples / 2 of each side, drawn
    per label) and a PERMANOVA of real vs synthetic per label: synthetic samples that look real mix with the real
    ones, and the pseudo-F stays small."""
    _check_max_samples(max_samples)
    pooled = pool(real, real_labels, synthetic, synthetic_labels)
    rng = np.random.default_rng(random_state)
    keep = _subsample(pooled, max_samples // 2, rng)
    profiles, labels = pooled.profiles.iloc[keep], pooled.labels.iloc[keep]
    distances = squareform(pdist(profiles.to_numpy(), "braycurtis"))
    with warnings.catch_warnings():  # Bray-Curtis is not Euclidean: negative eigenvalues are expected
        warnings.filterwarnings("ignore", "The result contains negative eigenvalues", RuntimeWarning)
        result = pcoa(DistanceMatrix(distances, [str(i) for i in range(len(keep))]))
    axes = result.samples.columns[:N_AXES]
    coordinates = pd.DataFrame(result.samples[axes].to_numpy(), index=profiles.index, columns=axes)
    sources = profiles.index.get_level_values("source").to_numpy()
    permanova = {}
    for group in pooled.groups:
        rows = np.ones(len(keep), bool) if group == ALL_LABELS else (labels == group).to_numpy()
        statistic, p_value = _permanova(distances[np.ix_(rows, rows)], sources[rows], permutations, rng)
        permanova[group] = {"n_real": int((sources[rows] == REAL).sum()),
                            "n_synthetic": int((sources[rows] == SYNTHETIC).sum()),
                            "pseudo_f": statistic, "p_value": p_value}
    return Ordination(coordinates.join(labels).reset_index()[["source", "sample_id", "label", *axes]],
                      result.proportion_explained[axes],
                      pd.DataFrame.from_dict(permanova, orient="index").rename_axis("label"))


# --- classifiers ---

def _forest(n_estimators, random_state):
    return RandomForestClassifier(n_estimators=n_estimators, random_state=random_state, n_jobs=1)


def _out_of_fold(features, truth, n_estimators, random_state):
    """Class probabilities of each sample from a forest that did not see it (stratified N_FOLDS-fold)."""
    folds = StratifiedKFold(N_FOLDS, shuffle=True, random_state=random_state)
    return cross_val_predict(_forest(n_estimators, random_state), features, truth, cv=folds, method="predict_proba")


class TwoSample(NamedTuple):
    """auc: per label, the cross-validated ROC AUC of a RandomForest telling real from synthetic (0.5: it cannot;
    1: it always can) and the samples per side it used; scores: each of those samples' out-of-fold probability of
    being synthetic, for ROC curves."""
    auc: pd.DataFrame
    scores: pd.DataFrame


def two_sample_auc(real: pd.DataFrame, real_labels: pd.Series, synthetic: pd.DataFrame, synthetic_labels: pd.Series,
                   n_estimators: int = 200, max_samples: int = MAX_SAMPLES, random_state: int = 0) -> TwoSample:
    """Classifier two-sample test per label and over all: real and synthetic samples, balanced by drawing as many
    from the larger side as the smaller holds (at most max_samples / 2 each), features = relative abundance."""
    _check_max_samples(max_samples)
    pooled = pool(real, real_labels, synthetic, synthetic_labels)
    rng = np.random.default_rng(random_state)
    features = pooled.profiles.to_numpy()
    aucs, scores = {}, []
    for group in pooled.groups:
        sides = [np.flatnonzero(pooled.rows(group, source)) for source in (REAL, SYNTHETIC)]
        n = min(len(sides[0]), len(sides[1]), max_samples // 2)
        rows = np.concatenate([rng.choice(side, n, replace=False) for side in sides])
        truth = np.repeat([0, 1], n)
        synthetic_probability = _out_of_fold(features[rows], truth, n_estimators, random_state)[:, 1]
        aucs[group] = {"two_sample_auc": roc_auc_score(truth, synthetic_probability), "n_per_side": n}
        scores.append(pooled.profiles.index[rows].to_frame(index=False)
                      .assign(label=group, p_synthetic=synthetic_probability))
    return TwoSample(pd.DataFrame.from_dict(aucs, orient="index").rename_axis("label"),
                     pd.concat(scores, ignore_index=True))


def _label_aucs(truth, probabilities, classes):
    """One-vs-rest ROC AUC of each class, and over all: the AUC of two classes or the macro one-vs-rest AUC."""
    per_label = {c: roc_auc_score(truth == c, probabilities[:, i]) for i, c in enumerate(classes)}
    overall = per_label[classes[1]] if len(classes) == 2 else \
        roc_auc_score(truth, probabilities, multi_class="ovr", average="macro", labels=classes)
    return pd.Series({**per_label, ALL_LABELS: overall})


def train_synthetic_test_real(real: pd.DataFrame, real_labels: pd.Series, synthetic: pd.DataFrame,
                              synthetic_labels: pd.Series, n_estimators: int = 200,
                              random_state: int = 0) -> pd.DataFrame:
    """Do synthetic samples teach the labels? tstr_auc: a RandomForest trained on the synthetic samples and their
    labels, tested on the real samples; trtr_auc, the reference: trained and tested on real samples (stratified
    N_FOLDS-fold, out of fold). Per label one vs rest, and over all labels. Both are optimistic where the test
    samples were among the generator's training samples, or where subjects were sampled repeatedly; NaN with a
    single label."""
    pooled = pool(real, real_labels, synthetic, synthetic_labels)
    classes = sorted(pooled.labels.unique())
    if len(classes) < 2:
        return pd.DataFrame(np.nan, index=pd.Index(pooled.groups, name="label"), columns=["tstr_auc", "trtr_auc"])
    is_real = pooled.rows(ALL_LABELS, REAL)
    features, truth = pooled.profiles.to_numpy(), pooled.labels.to_numpy()
    forest = _forest(n_estimators, random_state).fit(features[~is_real], truth[~is_real])
    tstr = forest.predict_proba(features[is_real])
    trtr = _out_of_fold(features[is_real], truth[is_real], n_estimators, random_state)
    return pd.DataFrame({"tstr_auc": _label_aucs(truth[is_real], tstr, classes),
                         "trtr_auc": _label_aucs(truth[is_real], trtr, classes)}).rename_axis("label")


# --- all together ---

@dataclasses.dataclass
class RealismReport:
    """summary: one row per label and one over all labels (sample counts, two-sample AUC, TSTR and TRTR AUC, genus
    agreement, PERMANOVA); headline: the all-labels row as a dict; the analyses' full results; notes on what was
    left out."""
    summary: pd.DataFrame
    headline: Dict[str, Any]
    profiles: Profiles
    alpha: Alpha
    ordination: Ordination
    two_sample: TwoSample
    utility: pd.DataFrame
    notes: List[str]


def realism_report(real: pd.DataFrame, real_labels: pd.Series, synthetic: pd.DataFrame, synthetic_labels: pd.Series,
                   random_state: int = 0, n_estimators: int = 200, max_samples: int = MAX_SAMPLES) -> RealismReport:
    """Every analysis above on the same inputs, with one random_state: the same inputs give the same numbers."""
    inputs = (real, real_labels, synthetic, synthetic_labels)
    pooled = pool(*inputs)
    counts = pd.DataFrame({f"n_{source}": [int(pooled.rows(group, source).sum()) for group in pooled.groups]
                           for source in (REAL, SYNTHETIC)}, index=pd.Index(pooled.groups, name="label"))
    profiles = genus_profiles(*inputs)
    two_sample = two_sample_auc(*inputs, n_estimators, max_samples, random_state)
    utility = train_synthetic_test_real(*inputs, n_estimators, random_state)
    ordination = bray_curtis_pcoa(*inputs, max_samples, random_state=random_state)
    summary = pd.concat([counts, two_sample.auc[["two_sample_auc"]], utility,
                         profiles.agreement[["abundance_spearman", "prevalence_spearman"]],
                         ordination.permanova[["pseudo_f", "p_value"]].add_prefix("permanova_")], axis=1)
    return RealismReport(summary, {"n_labels": len(pooled.groups) - 1, **summary.loc[ALL_LABELS].to_dict()},
                         profiles, alpha_diversity(*inputs), ordination, two_sample, utility, pooled.notes)
