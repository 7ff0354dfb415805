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

from _ecam_keystone_report import findings, fmt_rank, to_json, write_ecam_markdown
from _ecam_keystone_stats import (GENERA, METHODS, MODES, agreement, position_effect, sentence_positions, short,
                                  stability, summarise_run, versus_general)
from _harness import SHARED, earlier_results, out_dir, say
from _harness import parser as make_parser

ECAM = SHARED / "data" / "ecam"
CHROMIUM = "/usr/bin/chromium"
START = time.time()


# --- data ---

def load_ecam():
    from tests.helpers import read_genus_table, read_metadata
    counts = read_genus_table("ecam")
    return counts, read_metadata("ecam").loc[counts.index].rename_axis("sample-id")


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


# --- fine-tuning ---

def validation_children(corpus_artifact, delivery, children, seed, fraction):
    """The children and samples fine-tune validates on, from the same split function and inputs (a report only)."""
    from q2_mgm.core.tokenizer import Corpus
    from q2_mgm.core.training import validation_split
    from q2_mgm.core.training.targets import encode_targets
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


def settings_in_order(args):
    """The arguments in the order earlier results files hold them (the shared ones, --out and --from-json, last)."""
    values = vars(args)
    last = [k for k in ("out", "keep_work", "from_json") if k in values]
    return [(k, v) for k, v in values.items() if k not in last] + [(k, values[k]) for k in last]


def main():
    parser = make_parser(__doc__, "ecam_keystone", show_elapsed_since=START)
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
    parser.add_argument("--keep-work", type=pathlib.Path, help="keep the exported visualizations here")
    args = parser.parse_args()
    earlier = earlier_results(args, "ecam_keystone")
    if earlier:
        results, folder = earlier
        results["findings"] = findings(results)
        to_json(results, folder / "ecam_keystone.json")
        write_ecam_markdown(results, folder / "ecam_keystone.md")
        print((folder / "ecam_keystone.md").read_text())
        return
    args.out = out_dir(args)
    md_path, json_path, assets = (args.out / "ecam_keystone.md", args.out / "ecam_keystone.json",
                                  args.out / "ecam_keystone")
    if not ECAM.is_dir():
        sys.exit(f"skipped: {ECAM} is absent (this benchmark reads the real ECAM cohort from ../shared)")

    import torch
    torch.set_num_threads(args.threads)
    import qiime2
    from qiime2.plugins import mgm
    from tests.helpers import subset_corpus

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
               "settings": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in settings_in_order(args)},
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
        gradient_corpus = subset_corpus(corpus, gradient_ids)  # tests/helpers.py's
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
    write_ecam_markdown(results, md_path)
    say(f"done in {results['wall_seconds'] / 60:.1f} min: {md_path}, {json_path}, {assets}/")
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
