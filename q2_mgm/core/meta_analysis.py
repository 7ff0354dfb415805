"""The field's meta-analysis of each genus across studies: how its centred log-ratio (CLR) abundance differs between
two classes within each batch (study), and how those differences combine over the batches, as cross-study
microbiome meta-analyses do (Wirbel et al. 2019 Nat Med 25:679; Thomas et al. 2019 Nat Med 25:667).

Per genus and batch, the CLR values of the batch's samples of the second class against its first (classes sorted by
name, as `core.training.targets.encode_targets` orders them: the second is class 1, whose probability a binary
classifier's positive score raises):
- Hedges' g (Hedges 1981): the difference of the class means over their pooled standard deviation (variances with
  n - 1, pooled over n1 + n2 - 2 degrees of freedom), times the small-sample correction J = 1 - 3 / (4 (n1 + n2) - 9);
  its variance (n1 + n2) / (n1 n2) + g^2 / (2 (n1 + n2 - 3.94)). Both from
  `statsmodels.stats.meta_analysis.effectsize_smd`. Positive g: the genus' CLR is higher in the second class.
- a two-sided Mann-Whitney U test (scipy.stats.mannwhitneyu, its default method: exact for small batches without
  ties, else the normal approximation with tie and continuity corrections).

Over batches, per genus:
- a random-effects meta-analysis of the g's, DerSimonian & Laird (1986): inverse-variance weights 1 / (v_b + tau2),
  tau2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w)) with w = 1 / v_b and Q Cochran's heterogeneity
  statistic; the combined g, its 95% confidence interval and two-sided p-value from the normal distribution; I^2 =
  max(0, (Q - (k - 1)) / Q) (Higgins & Thompson 2002). Computed here, vectorised over genera, rather than with
  `statsmodels.stats.meta_analysis.combine_effects(method_re="chi2")`, which is DerSimonian-Laird (its "chi2" and
  "dl") but combines one meta-analysis per call and, in statsmodels 0.13.5 and 0.14.x, does not truncate tau2 at 0:
  where Q < k - 1 its random-effects weights use a negative tau2 and its interval is narrower than the fixed-effect
  one (three equal-variance studies 0.10, 0.11, 0.12 of variance 0.1: tau2 -0.0999, standard error 0.006 against
  0.183). Where tau2 is positive the two agree (tests/core/test_meta_analysis.py checks it).
- q_value: Benjamini & Hochberg (1995) over the genera with a p-value (statsmodels.stats.multitest.multipletests,
  "fdr_bh").
- mann_whitney_p: the batches' one-sided Mann-Whitney p-values (second class greater) combined by Stouffer's method
  weighted by the square root of each batch's sample count (Stouffer et al. 1949; Liptak 1958; as
  scipy.stats.combine_pvalues(method="stouffer", weights=sqrt(n))), then made two-sided: 2 P(Z > |z|).

No covariates are adjusted for (age, sex, BMI, sequencing depth, medication): each figure compares the classes as
the batch's samples hold them; the study is the only thing accounted for, by comparing within each batch.
"""
import dataclasses
from typing import Dict, List, Optional

import numpy as np
import pandas as pd
import scipy.stats

from .significance import benjamini_hochberg
from .transfer import CLR_PREVALENCE, clr

CONFIDENCE = 0.95
MIN_CLASS_SAMPLES = 2  # per class and batch: a class' standard deviation needs two samples
FEW_BATCHES = 4  # below this many batches, tau2 (the between-study variance) is poorly estimated
CONSTANT_SD = 1e-10  # a pooled CLR standard deviation at or below this (natural-log units) is a constant genus
WHOLE_SET = "all samples"  # the one batch's name where no batches are given

# why a genus is left out of one batch's comparison (the per-batch table's left_out column)
CLASS_MISSING = "class_missing"  # the batch holds fewer than MIN_CLASS_SAMPLES samples of a class
ABSENT = "absent"  # the genus is in none of the batch's samples: its CLR there is the pseudocount's alone
CONSTANT = "constant"  # the genus' CLR does not vary within the batch
LEFT_OUT = {CLASS_MISSING: f"the batch holds fewer than {MIN_CLASS_SAMPLES} samples of a class",
            ABSENT: "the genus is absent from every sample of the batch (its CLR there measures only the "
                    "pseudocount)",
            CONSTANT: "the genus' CLR is constant within the batch (standard deviation 0)"}

GENUS_COLUMNS = ["hedges_g", "ci_low", "ci_high", "p_value", "q_value", "direction", "tau2", "i2", "batches",
                 "batches_left_out", "few_batches", "mann_whitney_p"]


class MetaAnalysisError(ValueError):
    """Inputs the meta-analysis cannot compare; the message names the problem and the fix."""


@dataclasses.dataclass
class MetaAnalysis:
    """genera: one row per genus that passed the prevalence filter (by q_value, then p_value: the most significant
        first; genera no batch compared last), index
        'genus', columns GENUS_COLUMNS:
        hedges_g: the combined (random-effects) Hedges' g, in pooled within-batch standard deviations of the CLR;
            positive: higher in the second class. NaN where no batch could compare the genus.
        ci_low, ci_high: its 95% confidence interval. p_value: two-sided, from the normal distribution.
        q_value: Benjamini-Hochberg over the genera with a p_value.
        direction: the class that a higher CLR of the genus points to (the second class where hedges_g > 0, the
            first where < 0; None where hedges_g is 0 or NaN).
        tau2: the DerSimonian-Laird between-batch variance of g (NaN with one batch: none to estimate).
        i2: the share of the g's variation across batches beyond chance, 0 to 1 (NaN with one batch).
        batches: the batches combined (int). batches_left_out: the batches not compared for this genus (int; why:
            the per-batch table's left_out).
        few_batches: True where 1 <= batches < FEW_BATCHES: tau2 and the random-effects interval rest on few
            studies (with one, the figures are that study's own test).
        mann_whitney_p: the Stouffer-combined Mann-Whitney test, two-sided (NaN where no batch compared the genus).
    per_batch: one row per genus and batch (long format, genera in the same order, batches sorted): genus, batch,
        hedges_g, variance (of hedges_g), p_value (two-sided Mann-Whitney U), n_<first class>, n_<second class>,
        mean_<first class>, mean_<second class> (mean CLR, natural-log units), left_out (CLASS_MISSING, ABSENT,
        CONSTANT, or '' where compared; the figures are NaN where left out).
    record: classes ([first, second]), direction (a sentence), samples, batches (their names), batches_compared
        (the batches holding both classes), prevalence, genera_given, genera_below_prevalence, genera_compared
        (with a combined estimate), left_out (genus-batch pairs per reason), methods (a sentence each), notes
        (sentences a page can show: one batch, few batches, no covariates).
    """
    genera: pd.DataFrame
    per_batch: pd.DataFrame
    record: Dict


def genus_meta_analysis(abundances: pd.DataFrame, labels: pd.Series, batches: Optional[pd.Series] = None,
                        prevalence: float = CLR_PREVALENCE) -> MetaAnalysis:
    """Per genus, Hedges' g of its CLR abundance (second class against first) within each batch, combined over the
    batches by a DerSimonian-Laird random-effects meta-analysis, with a Mann-Whitney U test per batch and combined
    (the module docstring gives each method and its source).

    abundances: (n_samples, n_genera) counts or relative abundances (non-negative, finite; columns: genus tokens),
        indexed by sample ID. Their CLR is `core.transfer.clr(abundances)` (each row closed to 1 over every column,
        pseudocount half the sample's smallest non-zero abundance), the same as the cross-study recipes' CLR block.
        Genera present (> 0) in fewer than `prevalence` (0 to 1) of the samples are left out and counted, as the
        CLR block leaves them out (default CLR_PREVALENCE).
    labels: each sample's class, indexed by sample ID (every sample of abundances; extra IDs are ignored). Exactly
        two classes: with more, raises MetaAnalysisError (g compares two groups; compare two classes at a time).
    batches: each sample's batch (study), indexed likewise; None: all samples form one batch.

    Left out and counted, never silently: a batch holding fewer than MIN_CLASS_SAMPLES samples of a class (from
    every genus' meta-analysis); within a batch, a genus absent from all its samples or whose CLR is constant
    there (from that genus' meta-analysis). With one batch compared, each genus' figures are that batch's own test
    (tau2 and i2 NaN); with 2 or 3, tau2 is poorly estimated (few_batches, and a note).

    Returns a MetaAnalysis (see its docstring for every column). Raises MetaAnalysisError for inputs that are not
    aligned, missing values, negative or non-finite abundances, other than two classes, a prevalence outside 0 to
    1, or no batch holding MIN_CLASS_SAMPLES samples of each class.
    """
    from statsmodels.stats.meta_analysis import effectsize_smd

    labels, batches, classes = _check_inputs(abundances, labels, batches, prevalence)
    present = abundances.to_numpy(dtype=np.float64) > 0
    kept = present.mean(axis=0) >= prevalence
    genera = abundances.columns[kept]
    values = clr(abundances).to_numpy()[:, kept]
    present = present[:, kept]
    second = (labels == classes[1]).to_numpy()

    names = sorted(batches.unique())
    shape = (len(genera), len(names))
    g, variance, p_two, p_greater = (np.full(shape, np.nan) for _ in range(4))
    counts = np.zeros((len(names), 2), dtype=int)
    means = np.full((2,) + shape, np.nan)
    left_out = np.full(shape, "", dtype=object)
    for column, name in enumerate(names):
        rows = (batches == name).to_numpy()
        groups = [values[rows & ~second], values[rows & second]]
        counts[column] = [len(groups[0]), len(groups[1])]
        for side, group in enumerate(groups):
            if len(group):
                means[side, :, column] = group.mean(axis=0)
        if counts[column].min() < MIN_CLASS_SAMPLES:
            left_out[:, column] = CLASS_MISSING
            continue
        sds = [group.std(axis=0, ddof=1) for group in groups]
        pooled = np.sqrt(((counts[column][0] - 1) * sds[0] ** 2 + (counts[column][1] - 1) * sds[1] ** 2)
                         / (counts[column].sum() - 2))
        absent = ~present[rows].any(axis=0)
        constant = ~absent & (pooled <= CONSTANT_SD)
        left_out[absent, column], left_out[constant, column] = ABSENT, CONSTANT
        compared = ~(absent | constant)
        g[compared, column], variance[compared, column] = effectsize_smd(
            means[1, compared, column], sds[1][compared], counts[column][1],
            means[0, compared, column], sds[0][compared], counts[column][0])
        first_values, second_values = groups[0][:, compared], groups[1][:, compared]
        p_two[compared, column] = scipy.stats.mannwhitneyu(second_values, first_values, alternative="two-sided",
                                                           axis=0).pvalue
        p_greater[compared, column] = scipy.stats.mannwhitneyu(second_values, first_values, alternative="greater",
                                                               axis=0).pvalue

    combined = _random_effects(g, variance)
    compared_batches = (left_out == "").sum(axis=1)
    table = pd.DataFrame(combined, index=pd.Index(genera, name="genus"))
    table["q_value"] = benjamini_hochberg(table.p_value.to_numpy())
    direction = np.full(len(table), None, dtype=object)
    direction[table.hedges_g.to_numpy() > 0], direction[table.hedges_g.to_numpy() < 0] = classes[1], classes[0]
    table["direction"] = direction
    table["batches"] = compared_batches
    table["batches_left_out"] = len(names) - compared_batches
    table["few_batches"] = (compared_batches >= 1) & (compared_batches < FEW_BATCHES)
    table["mann_whitney_p"] = _stouffer(p_greater, counts.sum(axis=1))
    # most significant first (ties and genera no batch compared by name, last): how meta_analysis.tsv is read
    table = table[GENUS_COLUMNS].sort_values(["q_value", "p_value", "genus"], na_position="last", kind="stable")
    order = pd.Index(genera).get_indexer(table.index)
    genera, g, variance, p_two, means, left_out = (np.asarray(genera, dtype=object)[order], g[order],
                                                   variance[order], p_two[order], means[:, order], left_out[order])

    per_batch = pd.DataFrame({
        "genus": np.repeat(np.asarray(genera, dtype=object), len(names)),
        "batch": np.tile(np.asarray(names, dtype=object), len(genera)),
        "hedges_g": g.ravel(), "variance": variance.ravel(), "p_value": p_two.ravel(),
        f"n_{classes[0]}": np.tile(counts[:, 0], len(genera)), f"n_{classes[1]}": np.tile(counts[:, 1], len(genera)),
        f"mean_{classes[0]}": means[0].ravel(), f"mean_{classes[1]}": means[1].ravel(),
        "left_out": left_out.ravel()})
    usable = [name for column, name in enumerate(names) if counts[column].min() >= MIN_CLASS_SAMPLES]
    record = _record(classes, labels, names, usable, prevalence, abundances.shape[1], len(genera), table, left_out)
    return MetaAnalysis(table, per_batch, record)


def _check_inputs(abundances, labels, batches, prevalence):
    """(labels, batches) as text in the abundances' row order, and the two classes sorted."""
    if not isinstance(abundances, pd.DataFrame) or abundances.empty:
        raise MetaAnalysisError("abundances must be a non-empty pandas DataFrame of samples x genera.")
    if abundances.index.has_duplicates:
        raise MetaAnalysisError("abundances lists a sample ID twice; give each sample one row.")
    numbers = abundances.to_numpy(dtype=np.float64)
    if not np.isfinite(numbers).all() or (numbers < 0).any():
        raise MetaAnalysisError("abundances hold negative, missing or infinite values; pass counts or relative "
                                "abundances (0 where a sample lacks a genus).")
    if not 0 <= prevalence <= 1:
        raise MetaAnalysisError(f"prevalence is {prevalence}; it is a share of the samples, 0 to 1 (default "
                                f"{CLR_PREVALENCE}).")
    if batches is None:
        batches = pd.Series(WHOLE_SET, index=abundances.index)
    aligned = []
    for name, values in (("labels", labels), ("batches", batches)):
        if not isinstance(values, pd.Series):
            raise MetaAnalysisError(f"{name} must be a pandas Series indexed by sample ID, not "
                                    f"{type(values).__name__}.")
        if values.index.has_duplicates:
            raise MetaAnalysisError(f"{name} lists a sample ID twice; give each sample one value.")
        values = values.reindex(abundances.index)
        if values.isna().any():
            missing = values.index[values.isna()]
            raise MetaAnalysisError(
                f"{len(missing)} of the {len(values)} samples have no value in {name} (for example "
                f"{', '.join(map(str, missing[:3]))}). Leave those samples out of abundances first "
                "(core.samples.samples_with_values counts and reports them).")
        aligned.append(values.astype(str))
    classes = sorted(aligned[0].unique())
    if len(classes) != 2:
        raise MetaAnalysisError(
            f"The meta-analysis compares two classes; labels hold {len(classes)} ({', '.join(map(repr, classes))}). "
            "Compare two at a time: keep the samples of two classes, or map the labels to two (e.g. each class "
            "against the rest).")
    counts = pd.crosstab(aligned[1], aligned[0])
    if not (counts.min(axis=1) >= MIN_CLASS_SAMPLES).any():
        raise MetaAnalysisError(
            f"No batch holds at least {MIN_CLASS_SAMPLES} samples of each class ({classes[0]!r} and "
            f"{classes[1]!r}); the meta-analysis compares the classes within each batch, so a batch of one class "
            "(a study of cases only, a subject) cannot be compared. Give batches that each hold both classes, "
            "such as studies or sequencing runs (a cross-validation compares within its batches column, else within "
            "its groups, else over all its samples).")
    return aligned[0], aligned[1], classes


def _random_effects(g, variance):
    """DerSimonian-Laird random-effects meta-analysis of each row of g (genera x batches, NaN: left out), with its
    variances: a dict of hedges_g, ci_low, ci_high, p_value, tau2, i2 arrays (NaN where a row has no batch)."""
    used = np.isfinite(g)
    k = used.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(used, 1.0 / variance, 0.0)
        effects = np.where(used, g, 0.0)
        total = weights.sum(axis=1)
        fixed = (weights * effects).sum(axis=1) / total
        q = (weights * (effects - fixed[:, None]) ** 2).sum(axis=1)
        spread = total - (weights ** 2).sum(axis=1) / total
        tau2 = np.where(k >= 2, np.maximum(0.0, (q - (k - 1)) / spread), np.nan)
        i2 = np.where(k >= 2, np.where(q > 0, np.maximum(0.0, (q - (k - 1)) / q), 0.0), np.nan)
        random = np.where(used, 1.0 / (variance + np.nan_to_num(tau2)[:, None]), 0.0)
        combined = (random * effects).sum(axis=1) / random.sum(axis=1)
        se = np.sqrt(1.0 / random.sum(axis=1))
        z = scipy.stats.norm.isf((1 - CONFIDENCE) / 2)
        p_value = 2 * scipy.stats.norm.sf(np.abs(combined / se))
    none = k == 0
    combined[none], se[none], p_value[none] = np.nan, np.nan, np.nan
    return {"hedges_g": combined, "ci_low": combined - z * se, "ci_high": combined + z * se, "p_value": p_value,
            "tau2": tau2, "i2": i2}


def _stouffer(p_greater, batch_samples):
    """Two-sided p of the Stouffer combination (weights sqrt(samples of the batch)) of each row's one-sided p's."""
    used = np.isfinite(p_greater)
    weights = np.where(used, np.sqrt(batch_samples)[None, :], 0.0)
    z = np.where(used, scipy.stats.norm.isf(np.where(used, p_greater, 0.5)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        combined = (weights * z).sum(axis=1) / np.sqrt((weights ** 2).sum(axis=1))
    return np.where(used.any(axis=1), 2 * scipy.stats.norm.sf(np.abs(combined)), np.nan)


def _record(classes, labels, names, usable, prevalence, given, kept, table, left_out) -> Dict:
    compared = int(table.hedges_g.notna().sum())
    most = int(table.batches.max()) if len(table) else 0
    notes: List[str] = []
    if most == 1:
        notes.append("One batch compared the classes: each genus' figures are that study's own test; there is no "
                     "between-study variance to estimate (tau2 and i2 are NaN).")
    elif 1 < most < FEW_BATCHES:
        notes.append(f"At most {most} batches compared the classes: the between-study variance (tau2) is poorly "
                     f"estimated with fewer than {FEW_BATCHES} studies, so the random-effects intervals are "
                     "approximate.")
    skipped = [name for name in names if name not in usable]
    if skipped:
        notes.append(f"{len(skipped)} of {len(names)} batches hold fewer than {MIN_CLASS_SAMPLES} samples of a "
                     f"class and compare nothing: {', '.join(map(str, skipped))}.")
    notes.append("No covariates are adjusted for: each batch compares its classes as its samples hold them.")
    return {
        "classes": list(classes),
        "direction": f"hedges_g > 0: the genus' CLR is higher in {classes[1]!r} than in {classes[0]!r}",
        "samples": int(len(labels)), "batches": [str(n) for n in names], "batches_compared": [str(n) for n in usable],
        "prevalence": float(prevalence), "genera_given": int(given),
        "genera_below_prevalence": int(given - kept), "genera_compared": compared,
        "left_out": {reason: int((left_out == reason).sum()) for reason in LEFT_OUT},
        "methods": {
            "effect": "Hedges' g of the CLR (pooled-sd standardised mean difference, small-sample corrected; "
                      "Hedges 1981), second class minus first, per batch",
            "combined": "DerSimonian-Laird random effects (DerSimonian & Laird 1986), tau2 truncated at 0, normal "
                        f"{CONFIDENCE:.0%} interval and two-sided p",
            "q_value": "Benjamini-Hochberg over the genera with a p-value (Benjamini & Hochberg 1995)",
            "mann_whitney_p": "per-batch one-sided Mann-Whitney U combined by Stouffer's method weighted by "
                            "sqrt(batch samples), two-sided"},
        "notes": notes}
