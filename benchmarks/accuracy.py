"""Accuracy benchmark: q2-mgm's default fine-tuning recipe, upstream MGM's fine-tuning recipe and a 500-tree
RandomForest on relative abundance, on the same stratified (group-aware where samples repeat) 5-fold splits: ROC
AUC of the probabilities, and balanced accuracy of the hard predictions (the classes each method calls: q2-mgm's by
the decision rule its model chose on its validation share, the RandomForest's most probable class, as
q2-sample-classifier calls them; q2-mgm's most probable class beside, for what the rule changes).

Datasets: every cohort in ../shared/data/disease-benchmark (Case vs Control), ECAM delivery mode (months 0-12,
grouped by child) and twins lean vs obese (grouped by subject). Writes benchmarks/results/accuracy.{md,json}.

A method's figures are carried over from an earlier run with the same folds, epoch cap and recipe for that method
(the splits are seeded, so they are the same samples), and the results say so; --fresh reruns everything.

usage: accuracy.py [--datasets NAME ...] [--epochs N] [--folds K] [--methods ...] [--fresh | --rerun METHOD ...]
                   [--out DIR]
       accuracy.py --from-json [ACCURACY_JSON]     # re-render accuracy.md from accuracy.json, measuring nothing
"""
import dataclasses
import json
import platform
import sys
import time

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from _harness import SHARED, earlier_results, out_dir, parser, say, write_json, write_markdown
from q2_mgm.core.baselines import random_forest_baseline  # noqa: E402
from q2_mgm.core.inference import encode, resolve_device  # noqa: E402
from q2_mgm.core.models import load_general_model  # noqa: E402
from q2_mgm.core.tokenizer import tokenize_dataframe  # noqa: E402
from q2_mgm.core.training import TrainingSettings, predict, sequence_model, train_sequence_model  # noqa: E402

METHODS = ("q2-mgm", "q2-mgm-no-forest", "upstream", "randomforest")
# what a run recorded before these settings existed used: every layer trained, no forest
RECIPE_BEFORE_FOREST = {"freeze_layers": 0, "forest_weight": 0.0}


def recipes(epochs):
    """q2-mgm's defaults (fine-tune and classify-samples: encoder frozen, exactly fit head, 70% from a
    RandomForest on the corpus's genus abundances) and upstream's finetune config (mgm/resources/config.ini,
    main_finetune.py: every layer trained, lr 1e-3, batch 64, weight decay 0.001, 10% random validation, early
    stopping patience 10, no class weights), capped at `epochs` so the benchmark fits a 2-core machine."""
    ours = TrainingSettings(epochs=epochs, freeze_layers=8, forest_weight=0.7, forest_trees=500)
    upstream = TrainingSettings(epochs=epochs, learning_rate=1e-3, batch_size=64, weight_decay=0.001,
                                validation_fraction=0.1, patience=10, class_weighting=False, freeze_layers=0,
                                forest_weight=0.0)
    network_alone = dataclasses.replace(ours, forest_weight=0.0)  # what the frozen MGM head adds on its own
    return {"q2-mgm": ours, "q2-mgm-no-forest": network_alone, "upstream": upstream}


def load_datasets(names=None):
    """name -> (relative abundance samples x genera, labels, groups or None)."""
    from tests.helpers import read_genus_table, read_metadata
    datasets = {}
    for folder in sorted(p for p in (SHARED / "data" / "disease-benchmark").iterdir() if p.is_dir()):  # not its .tsv
        table = read_genus_table(f"disease-benchmark/{folder.name}", "genus_relative.tsv")
        metadata = read_metadata(f"disease-benchmark/{folder.name}")
        datasets[folder.name] = (table, metadata.loc[table.index, "Group"].astype(str), None)
    ecam = read_genus_table("ecam", "genus_relative.tsv")
    ecam_meta = read_metadata("ecam").loc[ecam.index]
    infants = ecam_meta.index[ecam_meta["month"] <= 12]
    datasets["ECAM_delivery_0-12m"] = (ecam.loc[infants], ecam_meta.loc[infants, "delivery"].astype(str),
                                       ecam_meta.loc[infants, "studyid"].astype(str))
    twins = read_genus_table("twins")
    twins_meta = read_metadata("twins").loc[twins.index]
    lean_obese = twins_meta.index[twins_meta["bmi_category"].isin(["Lean", "Obese"])]
    datasets["Twins_lean_vs_obese"] = (twins.loc[lean_obese], twins_meta.loc[lean_obese, "bmi_category"],
                                       twins_meta.loc[lean_obese, "subject"].astype(str))
    return {k: v for k, v in datasets.items() if not names or k in names}


def folds(labels, groups, n_folds):
    splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=0) if groups is None
                else StratifiedGroupKFold(n_folds, shuffle=True, random_state=0))
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def run_dataset(name, table, labels, groups, general, vocabulary, settings, methods, n_folds, carried):
    corpus = tokenize_dataframe(table)
    kept = corpus.samples.index  # samples with no vocabulary genus cannot be read by MGM; RF sees the same samples
    labels, groups = labels.loc[kept], None if groups is None else groups.loc[kept]
    token_ids = encode(corpus.samples.sentence, vocabulary)
    positive = sorted(labels.unique())[-1] if "Case" not in set(labels) else "Case"
    to_run = [m for m in methods if m not in carried]
    scores = {m: pd.Series(np.nan, index=kept) for m in to_run}
    called = {m: pd.Series("", index=kept, dtype=object) for m in to_run}  # hard predictions
    called_argmax = {m: pd.Series("", index=kept, dtype=object) for m in to_run if m != "randomforest"}
    seconds = {m: 0.0 for m in to_run}
    for fold, (train, test) in enumerate(folds(labels, groups, n_folds)):
        for method in to_run:
            start = time.time()
            if method == "randomforest":
                probabilities = random_forest_baseline(table.loc[kept], labels, kept[test], "classification",
                                                       n_jobs=2)
                scores[method].iloc[test] = probabilities[positive].to_numpy()
                called[method].iloc[test] = probabilities.idxmax(axis=1).astype(str).to_numpy()
            else:
                model = sequence_model("classification", labels.nunique(), backbone=general,
                                       random_state=settings[method].random_state)
                forest = settings[method].forest_weight > 0  # the forest reads the corpus's abundances, as in q2-mgm
                trained = train_sequence_model(model, [token_ids[i] for i in train], labels.iloc[train],
                                               "classification", settings[method],
                                               None if groups is None else groups.iloc[train].to_numpy(),
                                               report=lambda message: None,
                                               abundances=corpus.abundance_table(kept[train]) if forest else None)
                probabilities = predict(trained, [token_ids[i] for i in test],
                                        abundances=corpus.abundance_table(kept[test]) if forest else None)
                scores[method].iloc[test] = probabilities[:, trained.labels.index(positive)]
                called[method].iloc[test] = trained.predict_classes(probabilities)
                called_argmax[method].iloc[test] = np.asarray(trained.labels)[probabilities.argmax(1)]
            seconds[method] += time.time() - start
        say(f"  {name} fold {fold + 1}/{n_folds} done")
    truth = (labels == positive).astype(int)
    auc = {m: float(roc_auc_score(truth, scores[m])) for m in to_run}
    balanced = {m: float(balanced_accuracy_score(labels.astype(str), called[m])) for m in to_run}
    balanced_argmax = {m: float(balanced_accuracy_score(labels.astype(str), p)) for m, p in called_argmax.items()}
    seconds = {m: round(seconds[m], 1) for m in to_run}
    for method, (previous_auc, previous_seconds, previous_balanced, previous_argmax) in carried.items():
        auc[method], seconds[method], balanced[method] = previous_auc, previous_seconds, previous_balanced
        if previous_argmax is not None:
            balanced_argmax[method] = previous_argmax
    return {"n_samples": int(len(kept)), "n_dropped": int(len(table) - len(kept)), "grouped": groups is not None,
            "positive_class": positive, "auc": {m: auc[m] for m in methods},
            "balanced_accuracy": {m: balanced[m] for m in methods},
            "balanced_accuracy_argmax": {m: balanced_argmax[m] for m in methods if m in balanced_argmax},
            "seconds": {m: seconds[m] for m in methods}, "carried_over": sorted(carried)}


def _frame(results, key, methods):
    """datasets x methods of one figure; NaN where a run carried over from before it was recorded lacks it."""
    return pd.DataFrame({name: r.get(key, {}) for name, r in results.items()}).T.reindex(columns=list(methods))


def summarise(results, methods):
    auc = _frame(results, "auc", methods)
    balanced = _frame(results, "balanced_accuracy", methods)
    argmax = _frame(results, "balanced_accuracy_argmax", methods)
    summary = {"median_auc": auc.median().round(4).to_dict(),
               "median_balanced_accuracy": {m: (None if balanced[m].isna().any() else round(balanced[m].median(), 4))
                                            for m in methods},
               "median_balanced_accuracy_argmax": {m: round(argmax[m].median(), 4) for m in methods
                                                   if argmax[m].notna().all() and argmax[m].notna().any()},
               "total_seconds": {m: round(sum(r["seconds"][m] for r in results.values()), 1) for m in methods}}
    if "q2-mgm" in methods:
        summary["q2-mgm_wins_losses"] = {other: [int((auc["q2-mgm"] > auc[other]).sum()),
                                                 int((auc["q2-mgm"] < auc[other]).sum())]
                                         for other in methods if other != "q2-mgm"}
        summary["q2-mgm_balanced_accuracy_wins_ties_losses"] = {
            other: [int((balanced["q2-mgm"] > balanced[other]).sum()),
                    int((balanced["q2-mgm"] == balanced[other]).sum()),
                    int((balanced["q2-mgm"] < balanced[other]).sum())]
            for other in methods if other != "q2-mgm" and balanced[other].notna().all()}
    return auc, balanced, argmax, summary


def write(results, settings, methods, n_folds, epochs, dates, out, all_datasets=()):
    *_, summary = summarise(results, methods)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": torch.get_num_threads(),
               "python": platform.python_version(), "torch": torch.__version__}
    record = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "folds": n_folds, "epoch_cap": epochs,
              "method_recipes": {m: _recipe(settings, m) for m in methods}, "method_dates": dates, "datasets": results,
              "summary": summary, "methods": list(methods)}
    write_json(out / "accuracy.json", record)
    render(record, out, all_datasets)


def render(record, out, all_datasets=()):
    """accuracy.md from accuracy.json's record (datasets in all_datasets but not in the record are listed as not run
    yet; the JSON does not name them, so a re-rendering from it alone lists none)."""
    results, methods, n_folds, dates = record["datasets"], record["methods"], record["folds"], record["method_dates"]
    auc, balanced, argmax, summary = summarise(results, methods)
    lines = [f"# Accuracy: ROC-AUC and balanced accuracy, {n_folds}-fold, the same splits for every method",
             "", f"Run on {record['date']}, {record['machine']['cores']} CPU threads, torch "
             f"{record['machine']['torch']}. "
             f"Fine-tuning capped at {record['epoch_cap']} epochs (early stopping may end sooner); RandomForest: 500 "
             "trees on relative abundance. Grouped datasets keep each subject/child in one fold.", "",
             "| dataset | n | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for name, row in auc.iterrows():
        lines.append(f"| {name} | {results[name]['n_samples']} | " + " | ".join(f"{row[m]:.3f}" for m in methods)
                     + " |")
    lines.append("| **median** | | " + " | ".join(f"**{summary['median_auc'][m]:.3f}**" for m in methods) + " |")
    lines += _balanced_accuracy_lines(results, balanced, argmax, summary, methods)
    missing = [name for name in all_datasets if name not in results]
    if missing:
        lines += ["", f"Not run yet ({len(missing)} of {len(all_datasets)}): {', '.join(missing)}. "
                  "`benchmarks/accuracy.py` resumes from these results."]
    lines += ["", "Wall time (s, all folds): " + ", ".join(f"{m} {s}" for m, s in summary["total_seconds"].items())]
    if "q2-mgm_wins_losses" in summary:
        lines.append("q2-mgm wins/losses (paired, per dataset): " + ", ".join(
            f"vs {k} {w}/{l}" for k, (w, l) in summary["q2-mgm_wins_losses"].items()))
    carried = sorted({m for r in results.values() for m in r.get("carried_over", [])})
    lines += ["", "Each method's figures were computed on: " + ", ".join(f"{m} {d}" for m, d in dates.items()) + "."]
    if carried:
        lines.append(f"Carried over from an earlier run with the same recipe, folds and epoch cap (seeded, so the "
                     f"same samples in every fold): {', '.join(carried)}. `--fresh` reruns every method.")
    write_markdown(out / "accuracy.md", lines)
    print("\n".join(lines))


def _balanced_accuracy_lines(results, balanced, argmax, summary, methods):
    """The hard predictions' table: each method's balanced accuracy, and q2-mgm's most probable class beside."""
    if balanced.isna().all().all():
        return []
    shown = [m for m in methods if balanced[m].notna().any()]
    beside = [m for m in shown if m in summary["median_balanced_accuracy_argmax"]]
    lines = ["", "## Balanced accuracy of the hard predictions", "",
             "The classes each method calls: q2-mgm's by the decision rule its model chose on its validation share "
             "(core.training.decision: a prior correction whose strength is chosen by validation balanced accuracy "
             "with the one-standard-error rule), "
             "the RandomForest's most probable class (as q2-sample-classifier calls them). `argmax` columns: the "
             "same model's most probable class, for what the rule changes. Balanced accuracy is the mean of the "
             "per-class recalls (0.5: no better than chance).", "",
             "| dataset | " + " | ".join(shown + [f"{m} argmax" for m in beside]) + " |",
             "|---|" + "---|" * (len(shown) + len(beside))]
    cell = lambda v: "—" if pd.isna(v) else f"{v:.3f}"  # noqa: E731
    for name in balanced.index:
        lines.append(f"| {name} | " + " | ".join([cell(balanced.loc[name, m]) for m in shown]
                                                 + [cell(argmax.loc[name, m]) for m in beside]) + " |")
    median = lambda v: "—" if v is None else f"**{v:.3f}**"  # noqa: E731
    lines.append("| **median** | " + " | ".join([median(summary["median_balanced_accuracy"][m]) for m in shown]
                                               + [median(summary["median_balanced_accuracy_argmax"][m])
                                                  for m in beside]) + " |")
    missing = [m for m in shown if balanced[m].isna().any()]
    if missing:
        lines += ["", f"—: carried over from a run before balanced accuracy was recorded ({', '.join(missing)})."]
    for other, (wins, ties, losses) in summary.get("q2-mgm_balanced_accuracy_wins_ties_losses", {}).items():
        lines.append(f"q2-mgm's balanced accuracy vs {other}: {wins} wins, {ties} ties, {losses} losses of "
                     f"{len(balanced)} datasets.")
    return lines


def _recipe(settings, method):
    if method in settings:
        return vars(settings[method])
    return "500 trees on relative abundance"


def _same_recipe(old, new):
    """Settings added since the old run count as their defaults, which is how that run behaved."""
    if isinstance(new, str) or isinstance(old, str):
        return old == new
    defaults = {**vars(TrainingSettings()), **RECIPE_BEFORE_FOREST}
    # 'auto' is the device it resolves to here: a run on this machine recorded either
    old, new = ({**r, "device": resolve_device(r.get("device", defaults["device"]))} for r in (old, new))
    return old.keys() <= new.keys() and all(old.get(k, defaults[k]) == v for k, v in new.items())


def previous_results(settings, args, out):
    """(dataset -> earlier entry, dataset -> {method: (auc, seconds, balanced accuracy, its argmax)}, method ->
    date) from an earlier run with the same folds and epoch cap, for the methods whose recipe is unchanged and
    that --rerun does not name: only what changed is rerun."""
    path = out / "accuracy.json"
    if args.fresh or not path.exists():
        return {}, {}, {}
    previous = json.loads(path.read_text())
    if previous.get("folds") != args.folds or previous.get("epoch_cap") != args.epochs:
        return {}, {}, {}
    recipes = previous.get("method_recipes") or {m: previous["recipes"].get(m, _recipe(settings, m))
                                                 for m in previous["methods"]}
    same = [m for m in args.methods if m in recipes and _same_recipe(recipes[m], _recipe(settings, m))]
    dates = previous.get("method_dates") or {m: previous["date"] for m in previous["methods"]}
    same = [m for m in same if m not in args.rerun]
    carried = {name: {m: (r["auc"][m], r["seconds"][m], r.get("balanced_accuracy", {}).get(m),
                          r.get("balanced_accuracy_argmax", {}).get(m)) for m in same if m in r["auc"]}
               for name, r in previous["datasets"].items()}
    return previous["datasets"], carried, {m: dates[m] for m in same}


def main():
    p = parser(__doc__, "accuracy")
    p.add_argument("--datasets", nargs="*", help="dataset names (default: all)")
    p.add_argument("--epochs", type=int, default=10, help="epoch cap for both fine-tuning recipes")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    p.add_argument("--fresh", action="store_true", help="ignore results of an earlier run with these settings")
    p.add_argument("--rerun", nargs="*", default=[], choices=METHODS, help="rerun these methods even where an "
                   "earlier run used the same recipe (e.g. after a change to what is recorded), carrying the rest")
    p.add_argument("--report-only", action="store_true", help="rewrite accuracy.md from accuracy.json, for the "
                   "datasets and methods asked for (those not run yet listed as such)")
    args = p.parse_args()
    earlier = earlier_results(args, "accuracy")
    if earlier:
        render(*earlier)
        return
    if not (SHARED / "data").is_dir():
        sys.exit(f"skipped: {SHARED / 'data'} is absent (the benchmark reads the shared real datasets)")
    out = out_dir(args)
    general, vocabulary, _ = load_general_model()
    settings = recipes(args.epochs)
    previous, carried, dates = previous_results(settings, args, out)
    dates = {m: dates.get(m, time.strftime("%Y-%m-%d")) for m in args.methods}
    datasets = load_datasets(args.datasets)
    if args.report_only:
        write({n: previous[n] for n in datasets if n in previous}, settings, args.methods, args.folds, args.epochs,
              dates, out, list(datasets))
        return
    results = {}
    for name, (table, labels, groups) in datasets.items():
        carry = carried.get(name, {})
        if set(carry) == set(args.methods):
            say(f"{name}: every method kept from the previous run with the same settings")
            results[name] = previous[name]
            continue
        say(f"{name}: {len(table)} samples" + (f"; carried over: {', '.join(carry)}" if carry else ""))
        results[name] = run_dataset(name, table, labels, groups, general, vocabulary, settings, args.methods,
                                    args.folds, carry)
        say(f"  AUC {results[name]['auc']}  seconds {results[name]['seconds']}")
        write(results, settings, args.methods, args.folds, args.epochs, dates, out, list(datasets))  # partial survive


if __name__ == "__main__":
    main()
