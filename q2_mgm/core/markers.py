"""Which genera carry across held-out groups: each genus's effect on a model's decision in one group of samples
(how its contribution, from core.contributions, moves with its abundance: abundance_effects), and how consistently
it points one way across the held-out groups (studies) of a cross-validation (consistent_markers), as the
cross-study meta-analyses of SIAMCAT (Wirbel et al. 2021, Genome Biol.) and MMUPHin (Ma et al. 2022, Genome Biol.)
report markers. group_effects (a class's samples against the others') serves keystone-genera's per-class summary.

Effects are in the decision score's units per standard deviation of the genus's CLR: log-odds for a classifier,
the target's units for a regressor. With two classes the score is the log-odds of the second class, so a positive
effect points to the second class; with more, each class's effect is on its own logit; for numbers a positive
effect points to `higher`, a negative one to `lower`.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import scipy.stats

from .significance import t_interval
from .schemas import CV_EFFECT_COLUMNS, MARKER_COLUMNS

HIGHER, LOWER = "higher", "lower"


def effect_targets(task: str, classes: Sequence[str]) -> list:
    """What each output's effect is measured for: the second class (two classes: the log-odds of it), each class
    (more: each logit), or `higher` (regression)."""
    if task == "regression":
        return [HIGHER]
    return [classes[1]] if len(classes) == 2 else list(classes)


def group_effects(totals: Sequence[pd.DataFrame], truth: pd.Series, task: str,
                  classes: Sequence[str]) -> pd.DataFrame:
    """genera x effect_targets: each genus's effect in one group of samples.

    totals: one samples x genera DataFrame per output (core.contributions' Contributions.total, in output order);
    truth: each sample's class (or number), indexed as the totals. A class's effect is the mean contribution to its
    output in its samples minus in the others; NaN where the group lacks the class or holds nothing else (for
    numbers: where every value is the same)."""
    columns = {}
    for target, total in zip(effect_targets(task, classes), totals):
        values = truth.reindex(total.index)
        numbers = values.astype(float) if task == "regression" else None
        inside = (values == target) if numbers is None else numbers > numbers.median()
        if inside.all() or not inside.any():
            columns[target] = pd.Series(np.nan, index=total.columns)
        else:
            columns[target] = total[inside.to_numpy()].mean() - total[~inside.to_numpy()].mean()
    return pd.DataFrame(columns).rename_axis(index="genus", columns="points_to")


def abundance_effects(totals: Sequence[pd.DataFrame], abundances: pd.DataFrame, targets: Sequence[str],
                      batches: Optional[np.ndarray] = None) -> pd.DataFrame:
    """genera x targets: how a model's contribution of each genus to each output moves with the genus's abundance
    in one group of samples: the covariance, over the samples, of the contribution with the genus's CLR value
    standardised within each batch (over these samples), i.e. the change in the output per standard deviation of the
    genus's CLR. Positive: a higher abundance raises the output, so it points to the target. For the CLR part
    alone it is the part's coefficient exactly (core.contributions); no label is read. NaN for a genus whose CLR does
    not vary here.

    Why not the mean contribution in one class's samples minus in the others (group_effects): that is positive for
    a genus the model uses to separate the classes whichever class it is enriched in, so its sign says whether the
    model's use of the genus agrees with the labels, not which class a higher abundance points to."""
    from .transfer import batch_moments, clr
    values = clr(abundances).to_numpy()
    groups = np.zeros(len(values)) if batches is None else np.asarray(batches)
    mean, scale = batch_moments(values, groups)
    varies = pd.Series(values.std(axis=0) > 0, index=abundances.columns)
    standardised = pd.DataFrame((values - mean) / scale, index=abundances.index, columns=abundances.columns)
    columns = {}
    for target, total in zip(targets, totals):
        z = standardised.reindex(columns=total.columns, fill_value=np.nan)
        centred = total - total.mean()
        columns[target] = (centred * z).mean().where(varies.reindex(total.columns, fill_value=False))
    return pd.DataFrame(columns).rename_axis(index="genus", columns="points_to")


def fold_effects(totals: Sequence[pd.DataFrame], abundances: pd.DataFrame, task: str, classes: Sequence[str],
                 fold: str, method: str, batches: Optional[np.ndarray] = None, mgm: Optional[pd.DataFrame] = None,
                 clr: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One held-out group's effect of every genus, long (schemas.CV_EFFECT_COLUMNS): method, fold, genus,
    points_to (the output's target, effect_targets), effect (abundance_effects), present (held-out samples holding
    the genus: relative abundance above 0), abs_mgm and abs_clr (sums over the samples of the |MGM part| and |CLR
    part| of the first output's contributions, mgm and clr, for mgm_share; 0 where the method has no such part)."""
    return _long(abundance_effects(totals, abundances, effect_targets(task, classes), batches), abundances, fold,
                 method, mgm, clr)


def importance_effects(importances: pd.Series, truth: pd.Series, abundances: pd.DataFrame, task: str,
                       classes: Sequence[str], fold: str, method: str,
                       batches: Optional[np.ndarray] = None) -> pd.DataFrame:
    """fold_effects' table for a model that gives importances, not contributions (a RandomForest's impurity
    importances, indexed by genus): scikit-learn gives no per-sample contributions of a forest, so a genus's effect is
    its importance, signed by how its CLR moves with each output's target in the held-out group (abundance_effects of
    the target's indicator, or of the number): the direction comes from the data, the size from the forest."""
    targets = effect_targets(task, classes)
    values = truth.reindex(abundances.index)
    signals = [values.astype(float) if task == "regression" else (values == target).astype(float)
               for target in targets]
    totals = [pd.DataFrame(np.repeat(signal.to_numpy()[:, None], abundances.shape[1], axis=1), index=abundances.index,
                           columns=abundances.columns) for signal in signals]
    signs = np.sign(abundance_effects(totals, abundances, targets, batches))
    return _long(signs.mul(importances.reindex(signs.index).fillna(0.0), axis=0), abundances, fold, method)


def _long(effects, abundances, fold, method, mgm=None, clr=None):
    rows = effects.rename_axis(index="genus", columns="points_to").reset_index().melt(
        id_vars="genus", var_name="points_to", value_name="effect")  # NaN kept, as in every pandas
    rows.insert(0, "fold", fold)
    rows.insert(0, "method", method)
    present = (abundances.reindex(columns=effects.index, fill_value=0.0) > 0).sum()
    rows["present"] = present.reindex(rows["genus"]).to_numpy()
    for name, part in (("abs_mgm", mgm), ("abs_clr", clr)):
        rows[name] = 0.0 if part is None else part.abs().sum().reindex(rows["genus"]).fillna(0.0).to_numpy()
    return rows[list(CV_EFFECT_COLUMNS)]


MIN_GROUPS_FOR_INTERVAL = 3


def consistent_markers(effects: pd.DataFrame, task: str, classes: Sequence[str], n_samples: int,
                       min_prevalence: float) -> Tuple[pd.DataFrame, dict]:
    """(markers, record): one method's genera ranked by how consistently and how strongly a higher abundance points
    one way over the held-out groups, from its fold_effects rows (every fold; n_samples held out in all).

    A group counts for a genus where its effect could be computed (the genus's CLR varies there, and the fold's
    training samples hold the genus: core.cross_validation.fold_markers) and some held-out sample holds it. Per
    genus and target, its direction is the sign of the mean effect over those groups;
    points_to is the target (positive) or, with two classes, the other class (negative; with more, "not <class>";
    for numbers `lower`); with more than two classes the target whose consistent_effect is largest is kept.
    groups_agreeing: groups whose effect has that sign, of `groups`; median_position: the genus's median place in
    its groups' orderings by |effect| (1 = strongest there); mean_effect: the mean effect toward points_to, with a
    95% t-interval over groups (NaN below MIN_GROUPS_FOR_INTERVAL groups); consistent_effect: the sum of the effects
    toward points_to over the groups, divided by every scored group (groups lacking the genus count 0, disagreeing
    ones subtract), which ranks the genera (rank 1 = most consistent and strongest); mgm_share: sum |MGM part| /
    (sum |MGM part| + sum |CLR part|) over every held-out sample (NaN for a method without an MGM part);
    prevalence: the share of the held-out samples holding the genus. Genera below min_prevalence are left out and
    counted in the record (with the groups scored)."""
    prevalence = effects.drop_duplicates(["fold", "genus"]).groupby("genus")["present"].sum() / n_samples
    scored = effects.dropna(subset=["effect"])
    n_groups = scored["fold"].nunique()
    kept = prevalence.index[prevalence >= min_prevalence]
    record = {"groups_scored": int(n_groups), "genera_below_prevalence": int(effects["genus"].nunique() - len(
        set(effects["genus"]) & set(kept))), "min_prevalence": float(min_prevalence)}
    scored = scored[scored["genus"].isin(kept) & (scored["present"] > 0)].copy()
    if scored.empty:
        return pd.DataFrame(columns=list(MARKER_COLUMNS)), record
    scored["position"] = scored.assign(size=scored["effect"].abs()).groupby(["fold", "points_to"])["size"].rank(
        ascending=False, method="min")
    rows = []
    for (genus, target), frame in scored.groupby(["genus", "points_to"], sort=False):
        sign = 1.0 if frame["effect"].mean() >= 0 else -1.0
        toward = sign * frame["effect"].to_numpy()
        mean, (low, high) = t_interval(toward, MIN_GROUPS_FOR_INTERVAL)
        rows.append({"genus": genus, "target": target, "sign": sign, "groups_agreeing": int((toward > 0).sum()),
                     "groups": len(toward), "median_position": float(frame["position"].median()),
                     "mean_effect": mean, "ci_low": low, "ci_high": high,
                     "consistent_effect": toward.sum() / n_groups})
    table = pd.DataFrame(rows)
    table = table.sort_values("consistent_effect", ascending=False, kind="stable").drop_duplicates("genus")
    table.insert(1, "points_to", [_direction(t, s, task, classes) for t, s in zip(table["target"], table["sign"])])
    sums = effects[effects["genus"].isin(table["genus"])].groupby("genus")[["abs_mgm", "abs_clr"]].sum()
    both = sums["abs_mgm"] + sums["abs_clr"]
    share = (sums["abs_mgm"] / both).where(both > 0) if effects["abs_mgm"].any() else both * np.nan  # no MGM part
    table["mgm_share"] = share.reindex(table["genus"]).to_numpy()
    table["prevalence"] = prevalence.reindex(table["genus"]).to_numpy()
    table.insert(2, "rank", np.arange(1, len(table) + 1))
    return table[list(MARKER_COLUMNS)].reset_index(drop=True), record


def _direction(target, sign, task, classes):
    if sign > 0:
        return target
    if task == "regression":
        return LOWER
    return classes[0] if len(classes) == 2 else f"not {target}"


META_PREFIX = "meta_"


def marker_table(result, method: Optional[str] = None) -> Tuple[pd.DataFrame, dict]:
    """(markers.tsv's table, its record) of one method of a cross-validation run with markers
    (core.cross_validation_store.CrossValidation; default method: its MGM recipe): consistent_markers, then the
    meta-analysis' columns on the same genera, each prefixed META_PREFIX (meta_analysis.tsv's direction as
    meta_direction, and so on). The record is consistent_markers',
    with the genera counted over every method's rows (genera: of the held-out samples; genera_below_prevalence:
    present in fewer than min_prevalence of them; genera_ranked: the table's). ValueError where the run has no
    markers for the method."""
    method = method or result.methods[0]
    if result.effects is None or method not in set(result.effects["method"]):
        raise ValueError(f"This cross-validation holds no markers of {method}: run it with --p-mgm-markers.")
    n_samples = int((result.predictions["method"] == method).sum())
    minimum = result.record["markers"]["min_prevalence"]
    table, record = consistent_markers(result.effects[result.effects["method"] == method], result.task,
                                       result.classes, n_samples, minimum)
    # counted over every genus of the held-out samples (any method's rows): a recipe of a CLR part alone explains
    # only the genera its CLR block read, so its own rows miss the rare genera the block had already left out
    prevalence = result.effects.drop_duplicates(["fold", "genus"]).groupby("genus")["present"].sum() / n_samples
    record.update(genera=int(len(prevalence)), genera_below_prevalence=int((prevalence < minimum).sum()),
                  genera_ranked=len(table))
    if result.meta is not None:
        meta = result.meta.add_prefix(META_PREFIX).reindex(table["genus"])
        table = pd.concat([table, meta.reset_index(drop=True)], axis=1)
    return table, record


def agreement(markers: pd.DataFrame, classes: Sequence[str], top: int = 20) -> Optional[dict]:
    """How far the model-based ranking and the meta-analysis agree on two classes, over the genera both rank: the
    Spearman correlation of the model's consistent effect signed toward the second class with the meta-analysis'
    Hedges' g (positive: higher in the second class), the overlap of the two top-`top` lists (the meta-analysis'
    by q-value), and the genera of either top list whose directions differ. None without a meta-analysis (or
    with fewer than 3 genera in both)."""
    g = META_PREFIX + "hedges_g"
    if g not in markers or markers[g].notna().sum() < 3:
        return None
    both = markers.dropna(subset=[g])
    signed = np.where(both["points_to"] == classes[1], 1.0, -1.0) * both["consistent_effect"]
    model_top = list(markers["genus"].head(top))
    meta_top = list(both.sort_values([META_PREFIX + "q_value", META_PREFIX + "p_value"])["genus"].head(top))
    either = both[both["genus"].isin(set(model_top) | set(meta_top))]
    disagree = either[either["points_to"] != either[META_PREFIX + "direction"]]
    return {"spearman": float(scipy.stats.spearmanr(signed, both[g]).correlation), "genera": len(both), "top": top,
            "overlap": len(set(model_top) & set(meta_top)),
            "disagree": disagree[["genus", "rank", "points_to", META_PREFIX + "direction", g,
                                  META_PREFIX + "q_value"]].reset_index(drop=True)}


def importance_method(result) -> str:
    """The method whose markers a cross-validation's feature importances hold: its MGM recipe where it was explained,
    else its CLR baseline (core.transfer.BatchCLR), else the first method explained. ValueError where none was."""
    from .transfer import BatchCLR
    explained = [] if result.effects is None else list(dict.fromkeys(result.effects["method"]))
    for method in (result.methods[0], BatchCLR.name, *explained):
        if method in explained:
            return method
    raise ValueError("This cross-validation holds no markers (it was made by an older q2-mgm): run it again with "
                     "this q2-mgm (cross-validate-classification or -regression, or classify-samples-cv or "
                     "regress-samples-cv).")
