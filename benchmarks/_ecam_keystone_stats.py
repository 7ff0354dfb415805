"""What benchmarks/ecam_keystone.py adds to the plugin's keystone report, from the per-sample scores it exports
(genus_scores.tsv): rank intervals from sample and child bootstraps, child-level tests, the position effect, seed
stability and agreement with the paper. The constants of the comparison live here too."""
import itertools

import numpy as np
import pandas as pd

import _harness  # noqa: F401  (first: it puts the repository, hence q2_mgm, on sys.path)
from q2_mgm.core.keystone import bootstrap_means

GENERA = ("g__Bacteroides", "g__Bifidobacterium", "g__Haemophilus")
PAPER = {"g__Bacteroides": "Vaginal", "g__Bifidobacterium": "Vaginal", "g__Haemophilus": "Cesarean"}
MODES = ("Cesarean", "Vaginal")  # the plugin's class order (sorted); class_differences' AUC is P(Vaginal > Cesarean)
METHODS = ("attention", "rollout", "gradient")
TOP = 10  # "keystone" in the agreement checks and the Jaccard overlap: among the top 10 of a group's ranking


def short(genus):
    return genus[3:] if genus.startswith("g__") else genus


# --- per run: the plugin's ranks reproduced, bootstrap intervals, child-level and position-adjusted tests ---

def _ranks(means):
    """Rank 1 = highest mean per row; a genus that a resample misses ranks last."""
    import scipy.stats
    return scipy.stats.rankdata(np.where(np.isnan(means), np.inf, -means), axis=1, method="min")


def bootstrap_extras(run, delivery, children, args, rng):
    """Per group and genus of interest: the plugin's rank reproduced from genus_scores.tsv (a check), rank
    intervals from a sample bootstrap (what the plugin's CIs resample) and a child bootstrap (children resampled
    within the group, all their samples kept), and the child-bootstrap CI of the mean score."""
    scores, genera = run["scores"], run["genera"]
    tail = 50 * (1 - args.confidence)
    out = {}
    for group in MODES:
        ranked = genera[(genera.group == group) & genera["rank"].notna()]
        eligible = list(ranked.genus)
        ids = delivery.index[delivery == group].intersection(scores.index)
        values = scores.loc[ids, eligible].to_numpy()
        present = ~np.isnan(values)
        point = np.where(present, values, 0).sum(0) / present.sum(0)
        reproduced = _ranks(point[None])[0]
        # sample bootstrap: the plugin's own resampling of the group's samples (q2_mgm.core.keystone)
        sample_ranks = _ranks(bootstrap_means(values, present, args.n_bootstrap, rng))
        # child bootstrap: the same resampling over the group's children, each drawn child bringing all its samples
        # (its scores summed and its samples holding the genus counted, over its samples)
        kids = children.loc[ids].to_numpy()
        unique = np.unique(kids)
        member = (kids[None, :] == unique[:, None]).astype(float)  # children x samples
        child_means = bootstrap_means(member @ np.where(present, values, 0.0), member @ present, args.n_bootstrap,
                                       rng)
        child_ranks = _ranks(child_means)
        for genus in GENERA:
            if genus not in eligible:
                out[(group, genus)] = {"reproduced_rank": None}
                continue
            j = eligible.index(genus)
            plugin_rank = int(ranked.set_index("genus").loc[genus, "rank"])
            with np.errstate(invalid="ignore"):
                low, high = np.nanpercentile(child_means[:, j], [tail, 100 - tail])
            out[(group, genus)] = {
                "reproduced_rank": int(reproduced[j]), "plugin_rank": plugin_rank,
                "rank_interval_sample_bootstrap": [int(v) for v in np.percentile(sample_ranks[:, j], [tail, 100 - tail],
                                                                                 method="nearest")],
                "rank_interval_child_bootstrap": [int(v) for v in np.percentile(child_ranks[:, j], [tail, 100 - tail],
                                                                                method="nearest")],
                "mean_ci_child_bootstrap": [float(low), float(high)],
                "n_children": int(len(np.unique(kids[present[:, j]]))), "n_children_in_group": int(len(unique))}
    return out


def child_level_difference(scores, delivery, children, genus):
    """Each child's mean score of the genus (over its samples holding it), compared between delivery modes with a
    two-sided Mann-Whitney U: AUC = P(a Vaginal child's mean > a Cesarean child's), as the plugin orients it."""
    import scipy.stats
    if genus not in scores.columns:
        return None
    per_child = scores[genus].groupby(children.loc[scores.index]).mean().dropna()
    mode = delivery.groupby(children).first().loc[per_child.index]
    first, second = (per_child[mode == m].to_numpy() for m in MODES)
    if len(first) < 3 or len(second) < 3:
        return {"n_Cesarean": len(first), "n_Vaginal": len(second)}
    result = scipy.stats.mannwhitneyu(second, first, alternative="two-sided")
    return {"auc": float(result.statistic / (len(first) * len(second))), "p_value": float(result.pvalue),
            "n_Cesarean_children": len(first), "n_Vaginal_children": len(second)}


def position_adjusted(scores, positions, delivery, children, bins=10):
    """Scores minus the median score of all tokens at the same relative position (deciles), over every sample of the
    run: what a genus gets beyond its place in the sentence. Per genus of interest, the difference between delivery
    modes of these residuals, sample-level and child-level (AUC = P(Vaginal > Cesarean), two-sided Mann-Whitney)."""
    import scipy.stats
    long = scores.stack().rename("score").rename_axis(["sample", "genus"]).to_frame().join(positions, how="inner")
    decile = np.minimum((long.position * bins).astype(int), bins - 1)
    long["residual"] = long.score - long.score.groupby(decile).transform("median")
    out = {}
    for genus in GENERA:
        if genus not in long.index.get_level_values("genus"):
            continue
        values = long.xs(genus, level="genus").residual
        mode = delivery.reindex(values.index)
        entry = {}
        for level, series, labels in (("sample", values, mode),
                                      ("child", values.groupby(children.reindex(values.index)).mean(),
                                       delivery.groupby(children).first())):
            labels = labels.reindex(series.index)
            first, second = series[labels == MODES[0]].to_numpy(), series[labels == MODES[1]].to_numpy()
            if len(first) >= 3 and len(second) >= 3:
                result = scipy.stats.mannwhitneyu(second, first, alternative="two-sided")
                entry[level] = {"auc": float(result.statistic / (len(first) * len(second))),
                                "p_value": float(result.pvalue)}
        out[genus] = entry
    return out


def summarise_run(run, delivery, children, args, rng, positions):
    genera, differences = run["genera"], run["differences"]
    extras = bootstrap_extras(run, delivery, children, args, rng)
    adjusted = position_adjusted(run["scores"], positions, delivery, children)
    summary = {"seconds": run["seconds"], "importance_check": run["importance_check"], "n_ranked": {},
               "top": {}, "genera": {}, "class_differences": {}}
    for group in MODES:
        rows = genera[genera.group == group]
        summary["n_ranked"][group] = int(rows["rank"].notna().sum())
        summary["n_scored"] = summary.get("n_scored", {}) | {group: int(len(rows))}
        summary["top"][group] = [short(g) for g in rows.sort_values("rank").genus[:TOP]]
    tested = differences.dropna(subset=["p_value"]).effect_size
    summary["all_tested_genera"] = {"n": int(len(tested)), "median_auc": float(tested.median()),
                                    "share_auc_above_half": float((tested > 0.5).mean()),
                                    "share_q05": float((differences.q_value < 0.05).sum() / max(len(tested), 1))}
    for genus in GENERA:
        entry = {}
        for group in MODES:
            row = genera[(genera.group == group) & (genera.genus == genus)]
            if row.empty:
                entry[group] = None
                continue
            row = row.iloc[0]
            entry[group] = {"rank": None if pd.isna(row["rank"]) else int(row["rank"]),
                            "n_ranked": summary["n_ranked"][group], "mean_score": float(row.mean_score),
                            "ci": [float(row.ci_low), float(row.ci_high)], "n_samples": int(row.n_samples),
                            "prevalence": float(row.prevalence), "importance": float(row.importance),
                            **extras.get((group, genus), {})}
        summary["genera"][genus] = entry
        if genus in differences.index:
            d = differences.loc[genus]
            summary["class_differences"][genus] = {
                "auc": None if pd.isna(d.effect_size) else float(d.effect_size),
                "p_value": None if pd.isna(d.p_value) else float(d.p_value),
                "q_value": None if pd.isna(d.q_value) else float(d.q_value),
                "mean_Cesarean": float(d.mean_Cesarean), "mean_Vaginal": float(d.mean_Vaginal),
                "auc_rank_among_tested": None if pd.isna(d.effect_size) else int((tested > d.effect_size).sum() + 1),
                "child_level": child_level_difference(run["scores"], delivery, children, genus),
                "position_adjusted": adjusted.get(genus)}
    return summary


def sentence_positions(sentences):
    """(sample, genus) -> relative position of the genus in the sample's sentence: 0 = first genus after <bos> (the
    highest normalised abundance), 1 = the last one before <eos>; and each sample's number of genera."""
    rows = []
    for sample, sentence in sentences.items():
        genera = [t for t in sentence.split() if t.startswith("g__")]
        n = len(genera)
        for i, genus in enumerate(genera):
            rows.append((sample, genus, i / (n - 1) if n > 1 else 0.0, n))
    return pd.DataFrame(rows, columns=["sample", "genus", "position", "n_genera"]).set_index(["sample", "genus"])


def position_effect(scores, positions):
    """Spearman correlation between a genus' score and its relative position in the sentence, over all (sample,
    genus) pairs: how much of a score the token's place (set by its abundance) explains."""
    long = scores.stack().rename("score").rename_axis(["sample", "genus"]).to_frame().join(positions, how="inner")
    return {"spearman_score_vs_position": float(long.score.corr(long.position, method="spearman")),
            "spearman_score_vs_n_genera": float(long.score.corr(long.n_genera, method="spearman")),
            "n_pairs": int(len(long))}


# --- across seeds ---

def stability(keystone, seeds, method):
    out = {}
    for group in MODES:
        tables = {s: keystone[f"seed{s}"][method]["_genera"] for s in seeds}
        pairs = {}
        for a, b in itertools.combinations(seeds, 2):
            ta = tables[a][(tables[a].group == group) & tables[a]["rank"].notna()].set_index("genus").mean_score
            tb = tables[b][(tables[b].group == group) & tables[b]["rank"].notna()].set_index("genus").mean_score
            common = ta.index.intersection(tb.index)
            top_a = set(ta.sort_values(ascending=False).index[:TOP])
            top_b = set(tb.sort_values(ascending=False).index[:TOP])
            pairs[f"{a}-{b}"] = {"spearman": float(ta[common].corr(tb[common], method="spearman")),
                                 "n_genera": int(len(common)),
                                 "top10_jaccard": len(top_a & top_b) / len(top_a | top_b)}
        ranks = {short(g): [keystone[f"seed{s}"][method]["genera"][g][group]["rank"]
                            if keystone[f"seed{s}"][method]["genera"][g][group] else None for s in seeds]
                 for g in GENERA}
        out[group] = {"pairs": pairs, "ranks_by_seed": ranks}
    return out


def versus_general(keystone, seeds, method):
    """Spearman between each fine-tuned seed's per-group mean scores and the general model's (same method)."""
    if method not in keystone.get("general", {}):
        return None
    out = {}
    general = keystone["general"][method]["_genera"]
    for group in MODES:
        g = general[(general.group == group) & general["rank"].notna()].set_index("genus").mean_score
        values = []
        for s in seeds:
            t = keystone[f"seed{s}"][method]["_genera"]
            t = t[(t.group == group) & t["rank"].notna()].set_index("genus").mean_score
            common = g.index.intersection(t.index)
            values.append(float(g[common].corr(t[common], method="spearman")))
        out[group] = values
    return out


# --- agreement with the paper ---

def agreement(keystone, seeds, method):
    """Two readings of 'keystone for a delivery mode', checked in every seed:
    within: the genus is in the top 10 of that mode's ranking (the paper's per-group view);
    contrast: the genus scores higher in that mode than in the other, sample-level Mann-Whitney q < 0.05, and the
    child-level test agrees in direction with p < 0.05."""
    out = {}
    for genus, mode in PAPER.items():
        other = [m for m in MODES if m != mode][0]
        within, contrast, child = [], [], []
        for s in seeds:
            run = keystone[f"seed{s}"][method]
            entry = run["genera"][genus][mode]
            within.append(bool(entry and entry["rank"] is not None and entry["rank"] <= TOP))
            d = run["class_differences"].get(genus)
            if d is None or d["auc"] is None:
                contrast.append(None), child.append(None)
                continue
            toward_mode = d["auc"] > 0.5 if mode == "Vaginal" else d["auc"] < 0.5
            contrast.append(bool(toward_mode and d["q_value"] < 0.05))
            c = d["child_level"] or {}
            child.append(bool("auc" in c and (c["auc"] > 0.5 if mode == "Vaginal" else c["auc"] < 0.5)
                              and c["p_value"] < 0.05))
        out[genus] = {"paper": mode, "other": other, "top10_in_paper_mode": within,
                      "higher_in_paper_mode_sample_q05": contrast, "higher_in_paper_mode_child_p05": child}
    return out

