#!/usr/bin/env python3
"""Keystone genera of delivery mode on ECAM (Bokulich et al. 2016), against MGM's paper (Zhang et al. 2026), who
found Bacteroides and Bifidobacterium keystone for vaginal births and Haemophilus for caesarean births.

    PYTHONPATH=. .venv/bin/python benchmarks/ecam_keystone.py              # full run (about 15 min on 2 cores)
    PYTHONPATH=. .venv/bin/python benchmarks/ecam_keystone.py --seeds 0 --epochs 2 --gradient-samples 60 \\
        --out benchmarks/work/ecam_keystone_quick                       # smoke run, results elsewhere
    PYTHONPATH=. .venv/bin/python benchmarks/ecam_keystone.py --from-json  # re-render the .md from the .json

Everything the ranking depends on goes through the plugin's actions (qiime2.plugins.mgm), so the provenance is
real: tokenize the ECAM genus table (months 0-12, 635 samples); per seed, fine-tune the general model on delivery
mode with child-grouped validation (fine-tune, groups=studyid); per seed and scoring method (attention, rollout,
gradient), keystone-report with bootstrap CIs (its exported keystone_genera.tsv gives the ranks reported here) and
keystone-genera (its importance must equal the report's); the same for the pretrained general model (attention and
rollout, which do not need a classifier head) as a reference; embed all 875 samples with the general model and draw
trajectory (time = month, group = delivery, subject = studyid). Headless Chromium takes screenshots of the keystone
report (first seed; attention and gradient) and of the trajectory.

Added by this benchmark, from the per-sample scores the report exports (genus_scores.tsv), because ECAM repeats
each child 5-30 times and the plugin's bootstrap resamples samples: rank intervals (sample and child bootstrap),
child-bootstrap CIs of the mean score, a child-level test of the difference between delivery modes, seed stability
(Spearman, top-10 Jaccard), and a child-permutation null for the trajectory's centroid separation.

Writes benchmarks/results/ecam_keystone.{md,json} and benchmarks/results/ecam_keystone/ (screenshots, all ranked
genera as TSV). Needs ../shared/data/ecam; skips without it.
"""
import argparse
import itertools
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = pathlib.Path(os.environ.get("Q2_MGM_SHARED", ROOT.parent / "shared"))
ECAM = SHARED / "data" / "ecam"
RESULTS = ROOT / "benchmarks" / "results"
CHROMIUM = "/usr/bin/chromium"

GENERA = ("g__Bacteroides", "g__Bifidobacterium", "g__Haemophilus")
PAPER = {"g__Bacteroides": "Vaginal", "g__Bifidobacterium": "Vaginal", "g__Haemophilus": "Cesarean"}
MODES = ("Cesarean", "Vaginal")  # the plugin's class order (sorted); class_differences' AUC is P(Vaginal > Cesarean)
METHODS = ("attention", "rollout", "gradient")
TOP = 10  # "keystone" in the agreement checks and the Jaccard overlap: among the top 10 of a group's ranking
START = time.time()


def say(message):
    print(f"[ecam-keystone {time.strftime('%H:%M:%S')} +{time.time() - START:5.0f}s] {message}", flush=True)


def short(genus):
    return genus[3:] if genus.startswith("g__") else genus


# --- data ---

def load_ecam():
    counts = pd.read_csv(ECAM / "genus_counts.tsv", sep="\t", index_col=0, dtype={"sample_id": str})
    metadata = pd.read_csv(ECAM / "metadata.tsv", sep="\t", index_col=0,
                           dtype={"sample_id": str, "studyid": str})
    return counts, metadata.loc[counts.index].rename_axis("sample-id")


def subset_corpus(corpus_artifact, sample_ids):
    import qiime2
    from q2_mgm.core.tokenizer import Corpus
    return qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus_artifact.view(Corpus).subset(sample_ids))


def stratified_subset(labels, n, random_state=0):
    """n sample IDs, each class in proportion, drawn with a fixed seed (the same subset for every seed)."""
    rng = np.random.default_rng(random_state)
    chosen = []
    for label, ids in labels.groupby(labels).groups.items():
        take = max(1, round(n * len(ids) / len(labels)))
        chosen += list(rng.choice(np.asarray(ids), size=min(take, len(ids)), replace=False))
    return sorted(chosen)


# --- one keystone run: the plugin's report (and method), then what this benchmark adds ---

def keystone_run(mgm, corpus, model, delivery, method, args, work, name, run_genera):
    """Run keystone-report (and keystone-genera) through the Artifact API; return the exported tables."""
    start = time.time()
    visualization, = mgm.actions.keystone_report(corpus=corpus, model=model, metadata=delivery, method=method,
                                                 min_samples=args.min_samples, n_bootstrap=args.n_bootstrap,
                                                 top_genera=15, random_state=0, device="cpu")
    directory = work / name
    visualization.export_data(str(directory))
    report_seconds = time.time() - start
    genera = pd.read_csv(directory / "keystone_genera.tsv", sep="\t")
    differences = pd.read_csv(directory / "class_differences.tsv", sep="\t", index_col=0)
    scores = pd.read_csv(directory / "genus_scores.tsv", sep="\t", index_col=0)
    report_importance = pd.read_csv(directory / "importance.tsv", sep="\t", index_col=0)
    check = None
    if run_genera:
        start_genera = time.time()
        importance, = mgm.actions.keystone_genera(corpus=corpus, model=model, metadata=delivery, method=method,
                                                  min_samples=args.min_samples, device="cpu")
        table = importance.view(pd.DataFrame).reindex(index=report_importance.index,
                                                      columns=report_importance.columns)
        check = {"max_abs_difference": float(np.nanmax(np.abs(table.to_numpy() - report_importance.to_numpy()))),
                 "seconds": round(time.time() - start_genera, 1)}
    return {"directory": directory, "genera": genera, "differences": differences, "scores": scores,
            "importance_check": check, "seconds": round(report_seconds, 1)}


def _means(values, present, multiplicity):
    with np.errstate(invalid="ignore", divide="ignore"):
        return (multiplicity @ np.where(present, values, 0.0)) / (multiplicity @ present)


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
        n = len(ids)
        point = np.where(present, values, 0).sum(0) / present.sum(0)
        reproduced = _ranks(point[None])[0]
        # sample bootstrap
        draws = rng.integers(0, n, size=(args.n_bootstrap, n))
        multiplicity = np.zeros((args.n_bootstrap, n))
        np.add.at(multiplicity, (np.repeat(np.arange(args.n_bootstrap), n), draws.ravel()), 1)
        sample_ranks = _ranks(_means(values, present, multiplicity))
        # child bootstrap: resample the group's children, each drawn child brings all its samples
        kids = children.loc[ids].to_numpy()
        unique = np.unique(kids)
        member = (kids[None, :] == unique[:, None]).astype(float)  # children x samples
        picks = rng.integers(0, len(unique), size=(args.n_bootstrap, len(unique)))
        child_multiplicity = np.zeros((args.n_bootstrap, len(unique)))
        np.add.at(child_multiplicity, (np.repeat(np.arange(args.n_bootstrap), len(unique)), picks.ravel()), 1)
        child_means = _means(values, present, child_multiplicity @ member)
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


# --- fine-tuning ---

def validation_children(corpus_artifact, delivery, children, seed, fraction):
    """The children and samples fine-tune validates on, from the same split function and inputs (a report only)."""
    from q2_mgm.core.tokenizer import Corpus
    from q2_mgm.core.training import encode_targets, validation_split
    kept = corpus_artifact.view(Corpus).samples.index
    encoded, _, _, _ = encode_targets(delivery.loc[kept], "classification")
    _, val_idx = validation_split(encoded, children.loc[kept].to_numpy(), fraction, "classification", seed)
    val = kept[val_idx]
    return {m: {"children": int(children.loc[val][delivery.loc[val] == m].nunique()),
                "samples": int((delivery.loc[val] == m).sum())} for m in MODES}


def fine_tune(mgm, corpus, metadata, seed, args, work):
    import qiime2
    start = time.time()
    # newer plugin versions take the task explicitly (q2cli cannot key a TypeMap on a metadata column's type)
    task = ({"task": "classification"} if "task" in mgm.actions.fine_tune.signature.parameters else {})
    model, history = mgm.actions.fine_tune(
        corpus=corpus, **task, metadata=metadata.get_column("delivery"), groups=metadata.get_column("studyid"),
        epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size, patience=args.patience,
        freeze_layers=args.freeze_layers, validation_fraction=args.validation_fraction, random_state=seed,
        device="cpu")
    seconds = time.time() - start
    frame = history.view(qiime2.Metadata).to_dataframe()
    exported = work / f"model_seed{seed}"
    model.export_data(str(exported))
    record = json.loads((exported / "training.json").read_text())
    auc = frame["validation_auc"].astype(float)
    best = auc.idxmax()
    return model, {"seconds": round(seconds, 1), "epochs_run": int(len(frame)), "best_epoch": int(best),
                   "best_validation_auc": float(auc.max()), "last_validation_auc": float(auc.iloc[-1]),
                   "first_epoch_validation_auc": float(auc.iloc[0]),
                   "n_training_samples": record["n_training_samples"],
                   "n_validation_samples": record["n_validation_samples"],
                   "history": frame.reset_index().to_dict(orient="list")}


# --- stability across seeds ---

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


# --- trajectory ---

def trajectory(mgm, metadata_all, corpus_all, general, args, work, rng):
    import qiime2
    start = time.time()
    embeddings, = mgm.actions.embed(corpus=corpus_all, model=general, pooling="mean", device="cpu")
    embed_seconds = time.time() - start
    visualization, = mgm.actions.trajectory(embeddings=embeddings, time=metadata_all.get_column("month"),
                                            group=metadata_all.get_column("delivery"),
                                            subject=metadata_all.get_column("studyid"), projection="pca")
    directory = work / "trajectory"
    visualization.export_data(str(directory))
    separation = pd.read_csv(directory / "group_separation.tsv", sep="\t")
    samples = pd.read_csv(directory / "samples.tsv", sep="\t", index_col=0, dtype={"sample-id": str})
    # a child-permutation null: delivery labels shuffled between children, centroid distances per time point
    import skbio
    vectors = embeddings.view(skbio.OrdinationResults).samples.loc[samples.index].to_numpy(np.float64)
    points = samples.point.to_numpy()
    children = samples.subject.astype(str)
    child_mode = samples.group.groupby(children).first()
    distinct = np.unique(points)

    def distances(is_vaginal):
        out = []
        for p in distinct:
            at = points == p
            a, b = vectors[at & is_vaginal], vectors[at & ~is_vaginal]
            out.append(np.linalg.norm(a.mean(0) - b.mean(0)) if len(a) and len(b) else np.nan)
        return np.array(out)

    observed = distances((samples.group == "Vaginal").to_numpy())
    null = np.array([distances(children.map(pd.Series(rng.permutation(child_mode.to_numpy()),
                                                      index=child_mode.index)).eq("Vaginal").to_numpy())
                     for _ in range(args.permutations)])
    with np.errstate(invalid="ignore"):
        p_values = ((null >= observed).sum(0) + 1) / (np.isfinite(null).sum(0) + 1)
    counts = samples.groupby(["point", "group"]).size().unstack(fill_value=0)
    rows = []
    for i, p in enumerate(distinct):
        plugin = separation.loc[np.isclose(separation.time, p), "distance"]
        rows.append({"month": float(p), "distance": float(plugin.iloc[0]) if len(plugin) else None,
                     "recomputed": float(observed[i]), "null_median": float(np.nanmedian(null[:, i])),
                     "p_child_permutation": float(p_values[i]),
                     "n_Cesarean": int(counts.loc[p].get("Cesarean", 0)),
                     "n_Vaginal": int(counts.loc[p].get("Vaginal", 0))})
    spread = (samples.groupby(["group"]).distance_to_group_centroid.median()).to_dict()
    # overall: mean over time points of observed / null mean, tested against the permutations' own means
    ratio = float(np.nanmean(observed) / np.nanmean(null))
    overall_p = float(((np.nanmean(null, 1) >= np.nanmean(observed)).sum() + 1) / (len(null) + 1))
    return directory, {"embed_seconds": round(embed_seconds, 1), "seconds": round(time.time() - start, 1),
                       "n_samples": int(len(samples)), "n_children": int(children.nunique()),
                       "separation": rows, "median_distance_to_own_centroid": spread,
                       "mean_separation_over_null_mean": ratio, "overall_p_child_permutation": overall_p,
                       "permutations": args.permutations}


# --- screenshots ---

def screenshot(page, png, height, max_bytes=1_000_000):
    if not os.access(CHROMIUM, os.X_OK):
        say(f"no screenshot of {page.parent.name}: {CHROMIUM} is absent")
        return None
    with tempfile.TemporaryDirectory() as scratch:
        raw = pathlib.Path(scratch) / "page.png"
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                   f"--user-data-dir={scratch}/ud", f"--screenshot={raw}", f"--window-size=1280,{height}",
                   page.as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=scratch,
                                env={**os.environ, "HOME": scratch})
        if result.returncode != 0 or not raw.exists():
            say(f"screenshot of {page} failed: {result.stderr[-500:]}")
            return None
        from PIL import Image, ImageChops
        image = Image.open(raw).convert("RGB")
        box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
        if box:  # drop the blank space below the page's end
            image = image.crop((0, 0, image.width, min(image.height, box[3] + 24)))
        width = 1000
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        png.parent.mkdir(parents=True, exist_ok=True)
        image.save(png, optimize=True)
        if png.stat().st_size > max_bytes:
            image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
    return png


# --- results ---

def machine():
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


def fmt_rank(entry):
    if entry is None:
        return "absent"
    if entry["rank"] is None:
        return f"unranked (n={entry['n_samples']})"
    return f"{entry['rank']}/{entry['n_ranked']}"


def fmt_num(value, digits=3):
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}g}"


def fmt_adjusted(entry):
    if not entry:
        return "-"
    return " / ".join(f"{entry[level]['auc']:.2f} ({fmt_p(entry[level]['p_value'])})" if level in entry else "-"
                      for level in ("sample", "child"))


def fmt_p(value):
    if value is None:
        return "n/a"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def write_markdown(results, out):
    seeds, methods = results["settings"]["seeds"], results["settings"]["methods"]
    first = f"seed{seeds[0]}"
    keystone, ft = results["keystone"], results["fine_tune"]
    s = results["settings"]
    lines = [
        "# Keystone genera of delivery mode on ECAM: does MGM's attention single out the paper's genera?", "",
        f"Run on {results['date']} by `{results['command']}` in {results['wall_seconds'] / 60:.1f} min on "
        f"{results['machine']['cpu']} ({results['machine']['cores']} cores shared with other jobs, torch "
        f"{results['machine']['torch']} on {results['machine']['torch_threads']} thread(s); load average at start "
        f"{results['machine']['load_average_at_start'][0]}).", "",
        "The paper (MGM, Zhang et al. 2026) fine-tuned MGM on delivery mode in an infant cohort and read keystone "
        "genera from attention: **Bacteroides and Bifidobacterium for vaginal births, Haemophilus for caesarean "
        "births**. This benchmark repeats that on ECAM (Bokulich et al. 2016; `../shared/data/ecam`), all through "
        "the plugin's actions.", "",
        "## In short", ""] + results.get("summary", []) + ["",
        "## What was run", "",
        f"- Data: ECAM genus counts, months 0-{s['max_month']}: {results['data']['n_samples']} samples of "
        f"{results['data']['n_children']} children ({results['data']['by_mode_text']}); tokenized by "
        f"`mgm.actions.tokenize` (median sentence {results['data']['median_tokens']:.0f} tokens).",
        f"- `fine_tune` of the general model on `delivery`, `groups=studyid` (whole children held out), seeds "
        f"{', '.join(map(str, seeds))}: all layers trained (freeze_layers={s['freeze_layers']}), learning rate "
        f"{s['learning_rate']:g}, batch {s['batch_size']}, at most {s['epochs']} epochs, early stopping patience "
        f"{s['patience']}, validation fraction {s['validation_fraction']}, class weighting on (the default); the "
        "best validation-AUC epoch is kept.",
        f"- Per seed and method ({', '.join(methods)}): `keystone_report` (min_samples={s['min_samples']}, "
        f"n_bootstrap={s['n_bootstrap']}, {s['confidence']:.0%} CIs) on all {results['data']['n_samples']} samples, "
        "grouped by the true delivery mode; ranks below are its `keystone_genera.tsv` (rank 1 = highest mean score "
        f"among the samples holding the genus; only genera in >= {s['min_samples']} samples of a group are ranked). "
        "`keystone_genera` (the method) ran too; its importance table against the report's: "
        + results["importance_check_text"] + ".",
        f"- Gradient scoring: {results['gradient_scope']}.",
        "- Reference: the pretrained general model (no fine-tuning) with the delivery column, for "
        f"{', '.join(m for m in methods if m in keystone.get('general', {}))} (these read attention only, no "
        "classifier head; the general model's gradient would explain the sentence's log-likelihood, not delivery, "
        "so it is not run).",
        f"- `embed` (general model, mean pooling) of all {results['trajectory']['n_samples']} samples (months "
        "0-28), then `trajectory` (time=month, group=delivery, subject=studyid, PCA).", "",
        "Units. attention and rollout: the genus' attention from the token the classifier reads, relative to an even "
        "share over the sample's genera (1 = even share; special tokens excluded). gradient: integrated gradients of "
        "the logit of the sample's *true* class (the plugin's choice when the groups are the classifier's labels), "
        "so in the Cesarean column a positive score pushes a sample towards Cesarean, in the Vaginal column towards "
        "Vaginal. A within-group rank says how much the model looks at a genus in that group's samples; it does not "
        "say the genus distinguishes the groups. The class-difference tests compare a genus' scores between the "
        "delivery modes.", "",
        "## Did the classifier learn delivery mode?", "",
        "| seed | epochs run | best epoch | validation AUC: epoch 1 / best / last | training / validation samples | "
        "validation children (C / V) | seconds |", "|---|---|---|---|---|---|---|"]
    for seed in seeds:
        f = ft[f"seed{seed}"]
        vc = f["validation_children"]
        lines.append(f"| {seed} | {f['epochs_run']} | {f['best_epoch']} | {f['first_epoch_validation_auc']:.3f} / "
                     f"**{f['best_validation_auc']:.3f}** / {f['last_validation_auc']:.3f} | "
                     f"{f['n_training_samples']} / {f['n_validation_samples']} | "
                     f"{vc['Cesarean']['children']} / {vc['Vaginal']['children']} | {f['seconds']} |")
    best = [ft[f"seed{s_}"]["best_validation_auc"] for s_ in seeds]
    lines += ["", f"Validation holds whole children (about a fifth of the 43), so each AUC rests on "
              f"{min(f_['n_validation_samples'] for f_ in ft.values())}-"
              f"{max(f_['n_validation_samples'] for f_ in ft.values())} samples of only ~9 children, and the best "
              "epoch is picked on that same validation set, so the best AUC is optimistic. Best validation AUC "
              f"{min(best):.3f}-{max(best):.3f} across seeds; for scale, the README's RandomForest reaches 0.712 "
              "grouped-by-child (5-fold) on these samples and 0.871 when children leak across folds. The classifier "
              "learned some delivery signal, but a weak one: keystone genera of a weak classifier are a weak basis "
              "for biology.", ""]

    lines += ["## Where the three genera rank", "",
              f"Per method: rank in seed {seeds[0]} (out of the genera ranked in that group); the ranks in seeds "
              f"{', '.join(map(str, seeds))}; the {s['confidence']:.0%} rank interval when the group's *children* "
              "are resampled (this benchmark's addition: ECAM repeats each child 5-30 times, which the plugin's "
              "sample bootstrap ignores); mean score with the plugin's CI (samples resampled) and the child-bootstrap "
              "CI; samples (children) holding the genus; the general model's rank for the same method.", ""]
    for method in methods:
        run0 = keystone[first][method]
        general = keystone.get("general", {}).get(method)
        lines += [f"### {method}", "",
                  f"| genus | delivery | rank (seed {seeds[0]}) | ranks, seeds {'/'.join(map(str, seeds))} | "
                  "rank interval, child bootstrap | mean score [plugin CI] | child-bootstrap CI | samples "
                  "(children) | general model rank |", "|---|---|---|---|---|---|---|---|---|"]
        for genus in GENERA:
            for mode in MODES:
                e = run0["genera"][genus][mode]
                seeds_ranks = "/".join(str(keystone[f"seed{x}"][method]["genera"][genus][mode]["rank"])
                                       if keystone[f"seed{x}"][method]["genera"][genus][mode] else "-" for x in seeds)
                gr = fmt_rank(general["genera"][genus][mode]) if general else "not run"
                if e is None:
                    lines.append(f"| {short(genus)} | {mode} | absent | {seeds_ranks} | | | | | {gr} |")
                    continue
                interval = e.get("rank_interval_child_bootstrap")
                child_ci = e.get("mean_ci_child_bootstrap")
                bold = "**" if PAPER[genus] == mode else ""
                lines.append(
                    f"| {bold}{short(genus)}{bold} | {bold}{mode}{bold} | {fmt_rank(e)} | {seeds_ranks} | "
                    f"{'-' if not interval else f'{interval[0]}-{interval[1]}'} | "
                    f"{e['mean_score']:.3f} [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}] | "
                    f"{'-' if not child_ci else f'[{child_ci[0]:.3f}, {child_ci[1]:.3f}]'} | "
                    f"{e['n_samples']} ({e.get('n_children', '?')}) | {gr} |")
        lines += ["", f"Top {TOP} in seed {seeds[0]}: " + "; ".join(
            f"{mode}: {', '.join(run0['top'][mode])}" for mode in MODES) + "."]
        if general:
            lines.append(f"Top {TOP}, general model: " + "; ".join(
                f"{mode}: {', '.join(general['top'][mode])}" for mode in MODES) + ".")
        lines.append("")

    lines += ["## Do the scores differ between delivery modes?", "",
              "AUC = P(a Vaginal sample's score > a Cesarean sample's), from the plugin's `class_differences.tsv` "
              "(two-sided Mann-Whitney over samples holding the genus, Benjamini-Hochberg q over all tested genera); "
              "0.5 = no difference, > 0.5 = higher in vaginal births. The child-level test (this benchmark's "
              "addition) first averages each child's samples, then compares the 19 caesarean and 24 vaginal "
              "children, which is the honest unit: samples of a child are not independent.", "",
              "The last column removes the position effect (next section): each score minus the median score of "
              "all tokens at the same relative position in their sentences (deciles), then the same tests on these "
              "residuals.", "",
              "| genus | method | AUC (seed " + str(seeds[0]) + ") | q (seed " + str(seeds[0]) +
              ") | AUC range across seeds | child-level AUC (seed " + str(seeds[0]) + ") | child-level p | "
              "general model AUC / q | position-adjusted AUC, samples (p) / children (p), seed " + str(seeds[0])
              + " |", "|---|---|---|---|---|---|---|---|---|"]
    for genus in GENERA:
        for method in methods:
            d = keystone[first][method]["class_differences"].get(genus)
            if d is None:
                continue
            aucs = [keystone[f"seed{x}"][method]["class_differences"].get(genus, {}).get("auc") for x in seeds]
            aucs = [a for a in aucs if a is not None] or [float("nan")]
            child = d["child_level"] or {}
            gd = keystone.get("general", {}).get(method, {}).get("class_differences", {}).get(genus)
            lines.append(f"| {short(genus)} | {method} | {fmt_num(d['auc'])} | {fmt_p(d['q_value'])} | "
                         f"{min(aucs):.3f}-{max(aucs):.3f} | {fmt_num(child.get('auc'))} | "
                         f"{fmt_p(child.get('p_value'))} | "
                         f"{'-' if not gd else fmt_num(gd['auc']) + ' / ' + fmt_p(gd['q_value'])} | "
                         f"{fmt_adjusted(d.get('position_adjusted'))} |")
    lines += ["", f"For context, all genera tested in seed {seeds[0]} (AUC rank 1 = most Vaginal-leaning): "
              + "; ".join(
        f"{method}: median AUC {keystone[first][method]['all_tested_genera']['median_auc']:.2f}, "
        f"{keystone[first][method]['all_tested_genera']['share_auc_above_half']:.0%} above 0.5, "
        f"{keystone[first][method]['all_tested_genera']['share_q05']:.0%} with q < 0.05 (n = "
        f"{keystone[first][method]['all_tested_genera']['n']}); AUC ranks "
        + ", ".join(f"{short(g)} {keystone[first][method]['class_differences'][g].get('auc_rank_among_tested')}"
                    for g in GENERA if g in keystone[first][method]['class_differences'])
        for method in methods) + ".", ""]

    lines += ["## How much does a genus' place in the sentence explain its score?", "",
              "An MGM sentence orders genera by normalised abundance, so a genus' position is its abundance rank. "
              "Spearman correlation, over all (sample, genus) pairs, of the score with the genus' relative position "
              "(0 = first genus, 1 = last) and with the sample's number of genera:", "",
              "| model | method | score vs position | score vs genera per sample |", "|---|---|---|---|"]
    for name, runs in keystone.items():
        for method, run in runs.items():
            pe = run.get("position_effect")
            if pe:
                lines.append(f"| {'general' if name == 'general' else name.replace('seed', 'fine-tuned, seed ')} | "
                             f"{method} | {pe['spearman_score_vs_position']:+.2f} | "
                             f"{pe['spearman_score_vs_n_genera']:+.2f} |")
    sp = results["data"].get("sentence_position")
    if sp:
        lines += ["", "Where the three genera sit (median relative position; share of the samples holding it where it "
                  "is the first genus): " + "; ".join(
                      f"{g}: " + ", ".join(f"{m} {v['median_relative_position']:.2f} ({v['share_first']:.0%} first)"
                                           for m, v in modes.items()) for g, modes in sp.items())
                  + ". Median genera per sample: " + ", ".join(
                      f"{m} {v:g}" for m, v in results["data"]["median_genera_per_sample"].items()) + "."]
    lines.append("")

    lines += ["## Agreement with the paper", "",
              f"Two readings, each checked in every seed ({', '.join(map(str, seeds))}): **within** = the genus is in "
              f"the top {TOP} of the paper's delivery mode's ranking; **contrast** = its score is higher in the "
              "paper's delivery mode than in the other (sample-level q < 0.05; in brackets, the child-level test "
              "agrees in direction with p < 0.05).", "",
              "| method | genus (paper's mode) | within: top 10 | contrast: sample-level (child-level) |",
              "|---|---|---|---|"]
    for method in methods:
        for genus, a in results["agreement"][method].items():
            def yes(values):
                return f"{sum(bool(v) for v in values)}/{len(values)} seeds"
            lines.append(f"| {method} | {short(genus)} ({a['paper']}) | {yes(a['top10_in_paper_mode'])} | "
                         f"{yes(a['higher_in_paper_mode_sample_q05'])} ({yes(a['higher_in_paper_mode_child_p05'])}) |")
    lines += ["", "### What the data show", ""] + results["findings"] + [""]

    lines += ["## Stability across seeds", "",
              "Spearman correlation of the mean scores of all genera ranked in both seeds (per delivery mode), and "
              f"the Jaccard overlap of the two seeds' top {TOP}. Seeds change the validation children, the head's "
              "initial weights and the batch order.", "",
              "| method | delivery | Spearman per seed pair | top-10 Jaccard per seed pair | Spearman with the "
              "general model, per seed |", "|---|---|---|---|---|"]
    for method in methods:
        st = results["stability"][method]
        vg = results["versus_general"].get(method)
        for mode in MODES:
            pairs = st[mode]["pairs"]
            lines.append(f"| {method} | {mode} | " + ", ".join(f"{k}: {v['spearman']:.2f}" for k, v in pairs.items())
                         + " | " + ", ".join(f"{k}: {v['top10_jaccard']:.2f}" for k, v in pairs.items()) + " | "
                         + ("-" if not vg else ", ".join(f"{v:.2f}" for v in vg[mode])) + " |")
    lines.append("")

    t = results["trajectory"]
    lines += ["## Trajectories (general model embeddings, all months)", "",
              f"{t['n_samples']} samples of {t['n_children']} children. Distance between the Cesarean and Vaginal "
              "centroids per month in the full 256-dimensional embedding space (the plugin's `group_separation.tsv`), "
              f"against a null where delivery labels are shuffled between children ({t['permutations']} "
              "permutations; p = share of permutations at least as far apart).", "",
              "| month | samples C / V | centroid distance | null median | p (child permutation) |",
              "|---|---|---|---|---|"]
    for row in t["separation"]:
        lines.append(f"| {row['month']:g} | {row['n_Cesarean']} / {row['n_Vaginal']} | {fmt_num(row['distance'])} | "
                     f"{row['null_median']:.3g} | {row['p_child_permutation']:.3f} |")
    lines += ["", f"Averaged over months, the observed separation is {t['mean_separation_over_null_mean']:.2f}x the "
              f"null's (p = {t['overall_p_child_permutation']:.3f}). Median distance of a sample to its own group's "
              "centroid at its month: " + ", ".join(f"{k} {v:.3g}" for k, v in
                                                     t["median_distance_to_own_centroid"].items())
              + " - the groups' spread is far larger than the distance between their centroids.", ""]

    lines += ["## Screenshots (headless Chromium)", ""]
    for shot in results["screenshots"]:
        lines.append(f"- [{shot['what']}]({shot['path']})")
    lines += ["", "## Caveats", "",
              "- Keystone scores are computed on all 635 samples, 80% of which the classifier was trained on (as in "
              "the paper's view); the ranking describes the model, not held-out generalisation.",
              "- ECAM counts are approximate (relative frequency x read depth) and 29% of the mean abundance has no "
              "genus; 245 of 264 genera are in MGM's vocabulary. Share of these samples holding each genus: "
              + ", ".join(f"{g} {v:.0%}" for g, v in results["data"]["prevalence"].items()) + ".",
              "- The plugin's CIs and class-difference p-values treat samples as independent; ECAM has 43 children. "
              "The child bootstrap and child-level test above are the honest uncertainty; they are wider.",
              "- Delivery mode is confounded with other exposures in ECAM (antibiotics, diet); nothing here is "
              "causal.", "",
              f"Numbers: [ecam_keystone.json](ecam_keystone.json); every ranked genus of every run: "
              f"[ecam_keystone/keystone_genera_all.tsv](ecam_keystone/keystone_genera_all.tsv)."]
    out.write_text("\n".join(lines) + "\n")


def findings(results):
    """Plain statements generated from the numbers, so that they stay true when the benchmark is rerun."""
    seeds, methods = results["settings"]["seeds"], results["settings"]["methods"]
    keystone = results["keystone"]
    text = []
    for method in methods:
        a = results["agreement"][method]
        parts = []
        for genus, entry in a.items():
            mode, other = entry["paper"], entry["other"]
            ranks = [keystone[f"seed{s}"][method]["genera"][genus][mode] for s in seeds]
            ranks_text = "/".join("-" if r is None or r["rank"] is None else str(r["rank"]) for r in ranks)
            n_ranked = ranks[0]["n_ranked"] if ranks[0] else "?"
            aucs = [keystone[f"seed{s}"][method]["class_differences"].get(genus, {}).get("auc") for s in seeds]
            qs = [keystone[f"seed{s}"][method]["class_differences"].get(genus, {}).get("q_value") for s in seeds]
            child = [(keystone[f"seed{s}"][method]["class_differences"].get(genus, {}).get("child_level") or {})
                     for s in seeds]
            valid = [x for x in aucs if x is not None]
            if not valid:
                direction = "not tested"
            else:
                toward_vaginal = [x > 0.5 for x in valid]
                significant = [q is not None and q < 0.05 for q in qs]
                if all(toward_vaginal):
                    where = "higher in Vaginal"
                elif not any(toward_vaginal):
                    where = "higher in Cesarean"
                else:
                    where = "higher in Vaginal in some seeds, Cesarean in others"
                child_sig = sum(1 for c in child if c.get("p_value") is not None and c["p_value"] < 0.05)
                direction = (f"{where} (AUC {min(valid):.2f}-{max(valid):.2f}; sample-level q < 0.05 in "
                             f"{sum(significant)}/{len(seeds)} seeds, child-level p < 0.05 in {child_sig}/"
                             f"{len(seeds)})")
            within = sum(entry["top10_in_paper_mode"])
            contrast = sum(bool(v) for v in entry["higher_in_paper_mode_sample_q05"])
            n = len(seeds)
            if within == n and contrast == n:
                verdict = "agrees (top 10 and higher in the paper's mode, every seed)"
            elif contrast == n:
                verdict = (f"agrees on the contrast only (higher in {mode} in every seed; top 10 in "
                           f"{within}/{n} seeds)")
            elif within == n:
                verdict = f"top 10 in every seed but not higher in {mode} than in {other} ({contrast}/{n} seeds)"
            elif within or contrast:
                verdict = (f"inconsistent: top 10 in {within}/{n} seeds, higher in {mode} in {contrast}/{n} "
                           "seeds")
            else:
                verdict = "does not agree in any seed"
            parts.append(f"{short(genus)} (paper: {mode}) ranks {ranks_text} of ~{n_ranked} in {mode} samples, "
                         f"and its score is {direction}: **{verdict}**")
        text.append(f"- **{method}**: " + "; ".join(parts) + ".")
    results["summary"] = summary_lines(results)
    return text + reading(results)


def summary_lines(results):
    seeds, methods = results["settings"]["seeds"], results["settings"]["methods"]
    n = len(seeds)
    ft = results["fine_tune"]
    best = [ft[f"seed{s}"]["best_validation_auc"] for s in seeds]
    lines = [f"- The classifier learned delivery mode only weakly: best child-held-out validation AUC "
             f"{min(best):.2f}-{max(best):.2f} over seeds {', '.join(map(str, seeds))} (~9 validation children each)."]
    for method in methods:
        a = results["agreement"][method]
        good = [short(g) for g, e in a.items() if all(e["higher_in_paper_mode_sample_q05"])]
        some = [f"{short(g)} ({sum(bool(v) for v in e['higher_in_paper_mode_sample_q05'])}/{n})" for g, e in a.items()
                if 0 < sum(bool(v) for v in e["higher_in_paper_mode_sample_q05"]) < n]
        none = [short(g) for g, e in a.items() if not any(e["higher_in_paper_mode_sample_q05"])]
        top = ", ".join(f"{short(g)} {sum(e['top10_in_paper_mode'])}/{n}" for g, e in a.items())
        lines.append(f"- {method}: higher in the paper's delivery mode in every seed: {', '.join(good) or 'none'}; "
                     f"in some seeds: {', '.join(some) or 'none'}; in none: {', '.join(none) or 'none'}. In the top "
                     f"10 of the paper's mode: {top} seeds.")
    rho = {m: [v for values in (results["versus_general"].get(m) or {}).values() for v in values]
           for m in ("attention", "rollout") if m in methods}
    if rho:
        lines.append("- Attention and rollout scores track each genus' position in the sentence (its abundance rank) "
                     "and stay close to the untouched general model's (Spearman " + ", ".join(
                         f"{m} {min(v):.2f}-{max(v):.2f}" for m, v in rho.items() if v) + "); the gradient method "
                     "is the one that reflects what the classifier learned. Details, uncertainty and caveats below.")
    return lines


def _range(values, digits=2):
    values = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    return "n/a" if not values else f"{min(values):+.{digits}f} to {max(values):+.{digits}f}"


def reading(results):
    """How to read the verdicts: what drives each method's scores, from the numbers of this run."""
    seeds, methods = results["settings"]["seeds"], results["settings"]["methods"]
    keystone = results["keystone"]
    first = f"seed{seeds[0]}"
    out = ["", "How to read these verdicts:", ""]
    where_bacteroides = ", ".join(f"{m} {v['median_relative_position']:.2f}" for m, v in
                                  results["data"].get("sentence_position", {}).get("Bacteroides", {}).items())
    position = {m: [keystone[f"seed{s}"][m]["position_effect"]["spearman_score_vs_position"] for s in seeds]
                for m in methods if "position_effect" in keystone[first][m]}
    for method in ("attention", "rollout"):
        if method not in methods:
            continue
        vg = results["versus_general"].get(method) or {}
        general_rho = [v for values in vg.values() for v in values]
        adjusted = {short(g): (keystone[first][method]["class_differences"].get(g) or {}).get("position_adjusted")
                    for g in GENERA}
        adjusted_text = ", ".join(
            f"{g} {keystone[first][method]['class_differences'][f'g__{g}']['auc']:.2f} -> "
            f"{a['sample']['auc']:.2f}" for g, a in adjusted.items() if a and "sample" in a)
        sign = np.mean(position.get(method, [0]))
        shared = ("is essentially the general model's" if general_rho and min(general_rho) > 0.9 else
                  "is largely shared with the general model's")
        out.append(
            f"- {method}: a genus' score follows its place in the sentence (Spearman with relative position "
            f"{_range(position.get(method, []))} across seeds: "
            + ("later genera, of lower normalised abundance, score higher" if sign > 0 else
               "earlier genera, of higher normalised abundance, score higher")
            + f"), and the fine-tuned models' per-group scores correlate {_range(general_rho)} with the untouched "
            f"general model's, so the {method} ranking {shared}, which never saw delivery mode. Part of the "
            "differences between delivery modes restates where each genus sits in infant sentences (median "
            f"relative position of Bacteroides: {where_bacteroides}). Removing the position effect moves the "
            f"sample-level AUC (seed {seeds[0]}: {adjusted_text}).")
    if "gradient" in methods:
        allg = keystone[first]["gradient"]["all_tested_genera"]
        diffs = {short(g): [(keystone[f"seed{s}"]["gradient"]["class_differences"].get(g) or {}).get("auc")
                            for s in seeds] for g in GENERA}
        out.append(
            "- gradient: the only method that reads the classifier's decision. Its contrast is genus-specific, not "
            f"a whole-sample offset (seed {seeds[0]}: median AUC over all {allg['n']} tested genera "
            f"{allg['median_auc']:.2f}, {allg['share_auc_above_half']:.0%} of them above 0.5). AUC across seeds: "
            + ", ".join(f"{g} " + "/".join("-" if v is None else f"{v:.2f}" for v in values)
                        for g, values in diffs.items()) + f" (seeds {'/'.join(map(str, seeds))})"
            + ". An AUC near 1 means the genus pushes vaginal samples towards Vaginal and caesarean samples away "
            "from Cesarean: the classifier uses it as a vaginal-birth marker; near 0, as a caesarean marker.")
    val = results["fine_tune"]
    thin = [f"seed {s}" for s in seeds
            if min(v["children"] for v in val[f"seed{s}"]["validation_children"].values()) <= 1]
    if thin:
        out.append(f"- The validation split of {', '.join(thin)} held out only one child of a delivery mode "
                   "(sklearn's StratifiedGroupKFold does not balance children when each child has one label), so "
                   "that seed's early stopping and validation AUC rest on one child.")
    return out


def to_json(results, path):
    clean = {k: v for k, v in results.items() if not k.startswith("_")}
    clean["keystone"] = {name: {m: {k: v for k, v in run.items() if not k.startswith("_")} for m, run in runs.items()}
                         for name, runs in results["keystone"].items()}
    path.write_text(json.dumps(clean, indent=1, default=float) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="epoch cap of fine-tuning (early stopping may end "
                                                              "sooner)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--freeze-layers", type=int, default=0)
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--gradient-samples", type=int, default=0,
                        help="score the gradient method on a fixed stratified subset of this many samples (0: all; "
                             "about 0.25 s per sample on one thread)")
    parser.add_argument("--genera-gradient-all-seeds", action="store_true",
                        help="also run keystone-genera (the method) for the gradient in every seed, not only the "
                             "first (it repeats the report's scoring: minutes per seed)")
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--min-samples", type=int, default=10)
    parser.add_argument("--max-month", type=int, default=12)
    parser.add_argument("--permutations", type=int, default=1000, help="child permutations for the trajectory null")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster on a shared 2-core box)")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS,
                        help="results folder (writes ecam_keystone.md, .json and ecam_keystone/)")
    parser.add_argument("--keep-work", type=pathlib.Path, help="keep the exported visualizations here")
    parser.add_argument("--from-json", action="store_true", help="re-render ecam_keystone.md from the .json")
    args = parser.parse_args()
    md_path, json_path, assets = (args.out / "ecam_keystone.md", args.out / "ecam_keystone.json",
                                  args.out / "ecam_keystone")
    if args.from_json:
        results = json.loads(json_path.read_text())
        results["findings"] = findings(results)
        to_json(results, json_path)
        write_markdown(results, md_path)
        print(md_path.read_text())
        return
    if not ECAM.is_dir():
        sys.exit(f"skipped: {ECAM} is absent (this benchmark reads the real ECAM cohort from ../shared)")

    import torch
    torch.set_num_threads(args.threads)
    import qiime2
    from qiime2.plugins import mgm

    work = args.keep_work or pathlib.Path(tempfile.mkdtemp(prefix="ecam-keystone-"))
    work.mkdir(parents=True, exist_ok=True)
    assets.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20260401)
    counts, metadata = load_ecam()
    infants = metadata.index[metadata.month <= args.max_month]
    metadata_all = qiime2.Metadata(metadata)
    metadata_infants = qiime2.Metadata(metadata.loc[infants])
    delivery = metadata.delivery.astype(str)
    children = metadata.studyid.astype(str)
    delivery_column = metadata_infants.get_column("delivery")
    results = {"date": time.strftime("%Y-%m-%d"), "command": "PYTHONPATH=. .venv/bin/python benchmarks/ecam_keystone.py"
               + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""), "machine": machine(),
               "settings": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()},
               "fine_tune": {}, "keystone": {}}

    say(f"tokenizing ECAM: {len(infants)} samples of months 0-{args.max_month}, {len(counts)} for the trajectory")
    table = qiime2.Artifact.import_data("FeatureTable[Frequency]", counts.loc[infants].astype(float))
    corpus, = mgm.actions.tokenize(table=table)
    table_all = qiime2.Artifact.import_data("FeatureTable[Frequency]", counts.astype(float))
    corpus_all, = mgm.actions.tokenize(table=table_all)
    general, = mgm.actions.general_model()
    sentences = corpus.view(pd.DataFrame)
    kept = sentences.index
    results["data"] = {"n_samples": int(len(kept)), "n_children": int(children.loc[kept].nunique()),
                       "by_mode": {m: {"samples": int((delivery.loc[kept] == m).sum()),
                                       "children": int(children.loc[kept][delivery.loc[kept] == m].nunique())}
                                   for m in MODES},
                       "median_tokens": float(sentences.n_tokens.median()),
                       "prevalence": {short(g): float((counts.loc[kept, g] > 0).mean()) for g in GENERA}}
    results["data"]["by_mode_text"] = ", ".join(f"{m} {v['samples']} samples / {v['children']} children"
                                                for m, v in results["data"]["by_mode"].items())

    positions = sentence_positions(sentences.sentence)
    results["data"]["sentence_position"] = {
        short(g): {m: {"median_relative_position": float(positions.xs(g, level="genus").position[
            delivery.reindex(positions.xs(g, level="genus").index) == m].median()),
            "share_first": float((positions.xs(g, level="genus").position[
                delivery.reindex(positions.xs(g, level="genus").index) == m] == 0).mean())} for m in MODES}
        for g in GENERA}
    results["data"]["median_genera_per_sample"] = {
        m: float(positions.groupby(level="sample").n_genera.first()[lambda x: delivery.reindex(x.index) == m].median())
        for m in MODES}
    gradient_corpus, gradient_ids = corpus, kept
    if "gradient" in args.methods and args.gradient_samples and args.gradient_samples < len(kept):
        gradient_ids = stratified_subset(delivery.loc[kept], args.gradient_samples)
        gradient_corpus = subset_corpus(corpus, gradient_ids)
        results["gradient_scope"] = (f"a fixed stratified subset of {len(gradient_ids)} of the {len(kept)} samples "
                                     "(the same subset for every seed), to fit the time budget")
    else:
        results["gradient_scope"] = (f"all {len(kept)} samples, integrated gradients with the plugin's default 32 "
                                     "Gauss-Legendre steps")

    def keystone_for(name, model, methods, genera_for):
        runs = {}
        for method in methods:
            say(f"{name}: keystone-report by {method}")
            run = keystone_run(mgm, gradient_corpus if method == "gradient" else corpus, model, delivery_column,
                               method, args, work, f"{name}_{method}", genera_for(method))
            summary = summarise_run(run, delivery, children, args, rng, positions)
            summary["_genera"] = run["genera"]
            summary["position_effect"] = position_effect(run["scores"], positions)
            summary["n_samples_scored"] = int(len(run["scores"]))
            runs[method] = summary
            for genus in GENERA:
                say(f"  {short(genus)}: " + ", ".join(f"{mode} {fmt_rank(summary['genera'][genus][mode])}"
                                                     for mode in MODES))
        return runs

    for index, seed in enumerate(args.seeds):
        say(f"seed {seed}: fine-tuning on delivery mode (children held out for validation)")
        model, record = fine_tune(mgm, corpus, metadata_infants, seed, args, work)
        record["validation_children"] = validation_children(corpus, delivery, children, seed,
                                                            args.validation_fraction)
        results["fine_tune"][f"seed{seed}"] = record
        say(f"seed {seed}: {record['epochs_run']} epochs in {record['seconds']} s, best validation AUC "
            f"{record['best_validation_auc']:.3f} (epoch {record['best_epoch']})")
        results["keystone"][f"seed{seed}"] = keystone_for(
            f"seed{seed}", model, args.methods,
            lambda method: method != "gradient" or index == 0 or args.genera_gradient_all_seeds)
    general_methods = [m for m in args.methods if m != "gradient"]
    if general_methods:
        results["keystone"]["general"] = keystone_for("general", general, general_methods, lambda method: True)

    say("embedding all samples with the general model; trajectory")
    trajectory_dir, results["trajectory"] = trajectory(mgm, metadata_all, corpus_all, general, args, work, rng)

    say("screenshots")
    shots = []
    first = f"seed{args.seeds[0]}"
    for method, height in (("attention", 4800), ("gradient", 4800)):
        if method in args.methods:
            png = screenshot(work / f"{first}_{method}" / "index.html",
                             assets / f"keystone_report_{first}_{method}.png", height)
            if png:
                shots.append({"what": f"keystone-report, fine-tuned seed {args.seeds[0]}, {method}",
                              "path": f"ecam_keystone/{png.name}"})
    png = screenshot(trajectory_dir / "index.html", assets / "trajectory.png", 2400)
    if png:
        shots.append({"what": f"trajectory, general-model embeddings, all {len(counts)} samples",
                      "path": "ecam_keystone/trajectory.png"})
    results["screenshots"] = shots

    # every ranked genus of every run, and the stability figures
    frames = []
    for name, runs in results["keystone"].items():
        for method, run in runs.items():
            frames.append(run["_genera"].dropna(subset=["rank"]).assign(model=name, method=method))
    pd.concat(frames)[["model", "method", "group", "genus", "rank", "mean_score", "ci_low", "ci_high", "n_samples",
                       "prevalence", "importance"]].to_csv(assets / "keystone_genera_all.tsv", sep="\t",
                                                          index=False, float_format="%.5g")
    shutil.copy(trajectory_dir / "group_separation.tsv", assets / "trajectory_group_separation.tsv")
    results["stability"] = {m: stability(results["keystone"], args.seeds, m) for m in args.methods} \
        if len(args.seeds) > 1 else {m: {mode: {"pairs": {}, "ranks_by_seed": {}} for mode in MODES}
                                     for m in args.methods}
    results["versus_general"] = {m: versus_general(results["keystone"], args.seeds, m) for m in args.methods}
    results["agreement"] = {m: agreement(results["keystone"], args.seeds, m) for m in args.methods}
    checks = [run["importance_check"]["max_abs_difference"] for runs in results["keystone"].values()
              for run in runs.values() if run["importance_check"]]
    reproduced = all(e is None or e.get("reproduced_rank") is None or e["reproduced_rank"] == e["plugin_rank"]
                     for runs in results["keystone"].values() for run in runs.values()
                     for g in run["genera"].values() for e in g.values())
    results["rank_reproduction_check"] = reproduced
    results["importance_check_text"] = (
        "not run" if not checks else
        f"identical in all {len(checks)} runs where both ran (largest difference {max(checks):.1e})"
        if max(checks) < 1e-9 else f"DIFFERENT (largest difference {max(checks):.3g} over {len(checks)} runs)")
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["wall_seconds"] = round(time.time() - START, 1)
    results["findings"] = findings(results)
    to_json(results, json_path)  # first, so that --from-json can re-render the .md
    write_markdown(results, md_path)
    say(f"done in {results['wall_seconds'] / 60:.1f} min: {md_path}, {json_path}, {assets}/")
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
