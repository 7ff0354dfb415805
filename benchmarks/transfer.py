"""Across studies: does MGM carry over to cohorts it was not trained on?

1. Leave-one-study-out (LOSO) on every cohort with 3 or more studies in --data (a folder laid out like
   ../shared/data/disease-benchmark: one folder per cohort with genus_relative.tsv and metadata.tsv, whose `Group` is
   Case/Control and `pair_rank` the study). Every recipe of q2_mgm.core.transfer and the conventional baselines are
   fit on exactly the same samples of each fold (core.cross_validation, as classify-samples-cv does); upstream's
   fine-tuning recipe (every layer trained, epoch-capped as in accuracy.py) runs on a named subset of small cohorts.
   Also the train-on-one-study, test-on-each-other means, and the published figures (published_auroc.tsv) beside.
2. The speed of classify-samples-cv itself (the QIIME 2 pipeline: tokenize, one encoder pass, every fold) on
   CRC_Metagenomics (else the largest cohort), beside the RandomForest's time on the same folds.
3. Few-label learning curves: 10, 20, 50, 100 labelled samples per class (10 repeats, the rest as test; a subject's
   samples on one side), macro AUROC and macro F1, on four disease cohorts and HMP's three oral sub-sites.
4. Continued pretraining on the cohort (domain-adaptive, a recipe that did not help): the general model's
   language-model pretraining continued on all of a cohort's samples (labels unused, the held-out studies' included:
   transductive), then every recipe of part 1 on the adapted model's frozen features, on the same folds; on a named
   subset of cohorts. `--only-continued-pretraining` runs this part alone and merges it into the transfer.json in
   --out, whose leave-one-study-out results it is compared with.

Writes benchmarks/results/transfer.{md,json} and transfer_few_label.png. Each part's results are kept in
benchmarks/work/transfer/ as they finish: `--resume` continues an interrupted run with the same settings; without it
a run starts afresh, carrying nothing over.

usage: transfer.py [--data DIR] [--cohorts NAME ...] [--upstream-cohorts NAME ...] [--epochs N] [--resume]
                   [--skip-few-label] [--continued-pretraining NAME ...] [--continued-epochs N]
                   [--continued-learning-rate LR] [--only-continued-pretraining] [--out DIR]
       transfer.py --from-json [TRANSFER_JSON]     # re-render transfer.md from transfer.json, measuring nothing
"""
import json
import platform
import shutil
import sys
import time

import numpy as np
import pandas as pd

from _harness import BENCH, SHARED, earlier_results, fmt_s, out_dir, parser, say, write_json, write_markdown

WORK = BENCH / "work" / "transfer"
SIZES = (10, 20, 50, 100)
REPEATS = 10
MIN_TEST_PER_CLASS = 5  # a repeat is scored only where every class keeps this many test samples
FEW_LABEL_TASKS = ("CRC_Metagenomics", "CD_Metagenomics", "PD_Amplicon", "ASD_Amplicon", "HMP_oral_sites")
UPSTREAM_SUBSET = ("CD_Amplicon", "UC_Amplicon", "NAFLD_Amplicon", "Adenoma_Metagenomics")
UPSTREAM = "upstream-fine-tuning"
CONTINUED_SUBSET = UPSTREAM_SUBSET + ("CRC_Metagenomics",)
PUBLISHED = {"MGM": "published upstream MGM", "ElasticNet": "published ElasticNet",
             "RandomForest": "published RandomForest", "TabPFN": "published TabPFN"}


def cohorts(data):
    """name -> folder, for every cohort of `data` whose metadata holds 3 or more studies (pair_rank)."""
    found = {}
    for folder in sorted(p for p in data.iterdir() if (p / "metadata.tsv").exists()):
        studies = pd.read_csv(folder / "metadata.tsv", sep="\t", usecols=["pair_rank"])["pair_rank"].nunique()
        if studies >= 3:
            found[folder.name] = folder
    return found


def read_cohort(folder):
    table = pd.read_csv(folder / "genus_relative.tsv", sep="\t", index_col=0, dtype={"sample_id": str})
    metadata = pd.read_csv(folder / "metadata.tsv", sep="\t", index_col=0, dtype={"sample_id": str})
    return table, metadata.loc[table.index, "Group"].astype(str), metadata.loc[table.index, "pair_rank"].astype(str)


def features(table, batches, general, vocabulary):
    """(SampleFeatures of the samples MGM reads, their IDs, seconds): tokenize, one encoder pass per sample."""
    from q2_mgm.core.inference import encode, language_model_features
    from q2_mgm.core.tokenizer import tokenize_dataframe
    from q2_mgm.core.transfer import SampleFeatures
    start = time.perf_counter()
    corpus = tokenize_dataframe(table)
    kept = corpus.samples.index
    embeddings, likelihood = language_model_features(general, encode(corpus.samples.sentence, vocabulary))
    data = SampleFeatures(embeddings, likelihood, corpus.abundance_table(kept),
                          None if batches is None else batches.loc[kept].to_numpy())
    return data, kept, time.perf_counter() - start


def auroc(truth, scores, classes):
    from sklearn.metrics import roc_auc_score
    if len(set(truth)) < 2:
        return float("nan")
    if len(classes) == 2:
        return float(roc_auc_score(np.asarray(truth) == classes[1], scores[:, 1]))
    return float(roc_auc_score(truth, scores, multi_class="ovr", labels=classes))


def upstream_folds(data, kept, labels, studies, general, vocabulary, table, epochs):
    """Upstream's fine-tuning recipe (accuracy.py's), per held-out study: {study: AUROC}, seconds."""
    from accuracy import recipes
    from q2_mgm.core.inference import encode
    from q2_mgm.core.tokenizer import tokenize_dataframe
    from q2_mgm.core.training import predict, sequence_model, train_sequence_model
    settings = recipes(epochs)["upstream"]
    token_ids = encode(tokenize_dataframe(table.loc[kept]).samples.sentence, vocabulary)
    start, scores = time.perf_counter(), {}
    for study in sorted(studies.unique()):
        test = np.flatnonzero(studies.to_numpy() == study)
        train = np.flatnonzero(studies.to_numpy() != study)
        model = sequence_model("classification", 2, backbone=general, random_state=0)
        trained = train_sequence_model(model, [token_ids[i] for i in train], labels.iloc[train], "classification",
                                       settings, report=lambda message: None)
        probabilities = predict(trained, [token_ids[i] for i in test])
        scores[study] = auroc(labels.iloc[test].to_numpy(), probabilities, trained.labels)
        say(f"    {UPSTREAM}: held out study {study}: AUROC {scores[study]:.3f}")
    return scores, time.perf_counter() - start


def loso(name, folder, general, vocabulary, upstream_epochs):
    """One cohort: every recipe LOSO and train-on-one-study, per held-out study AUROC."""
    from q2_mgm.core.cross_validation import cross_validate, make_folds
    from q2_mgm.core.training.targets import encode_targets
    from q2_mgm.core.transfer import DEFAULT_RECIPE, RECIPES
    table, labels, studies = read_cohort(folder)
    data, kept, embed_s = features(table, studies, general, vocabulary)
    labels, studies = labels.loc[kept], studies.loc[kept]
    encoded, classes, _, _ = encode_targets(labels, "classification")
    folds = make_folds(encoded, studies.to_numpy(), 0, "leave-one-group-out", "classification", 0)
    result = cross_validate(data, labels, "classification", folds, DEFAULT_RECIPE,
                            [m for m in RECIPES if m != DEFAULT_RECIPE], transfer_groups=studies.to_numpy(),
                            report=lambda message: None)
    per_study = {}
    for (method, study), frame in result.predictions.groupby(["method", "fold"]):
        scores = frame[[f"probability:{c}" for c in classes]].to_numpy()
        per_study.setdefault(method, {})[study] = auroc(frame["truth"].to_numpy(), scores, classes)
    seconds = dict(result.record["seconds"])
    if upstream_epochs:
        per_study[UPSTREAM], seconds[UPSTREAM] = upstream_folds(data, kept, labels, studies, general, vocabulary,
                                                                table, upstream_epochs)
    cross = result.transfer.groupby("method")["score"].mean().to_dict()
    return {"n_samples": int(len(kept)), "n_dropped": int(len(table) - len(kept)),
            "studies": {s: {"samples": int((studies == s).sum()), "cases": int(((studies == s) &
                                                                                (labels == "Case")).sum())}
                        for s in sorted(studies.unique())},
            "per_study_auroc": per_study, "auroc": {m: float(np.nanmean(list(v.values())))
                                                    for m, v in per_study.items()},
            "cross_auroc": cross, "seconds": seconds, "features_seconds": embed_s}


def continued_pretraining(name, folder, epochs, learning_rate):
    """The general model's language-model pretraining (core.pretraining, seed 0, pretrain's defaults otherwise)
    continued on every sample of the cohort, as features() tokenizes them: no labels, but the held-out studies'
    samples too (transductive, as a user with a new study's unlabelled samples could). Then loso() on the adapted
    model: every recipe, the same folds."""
    import torch
    from q2_mgm.core.inference import encode
    from q2_mgm.core.models import load_general_model
    from q2_mgm.core.pretraining import pretrain
    from q2_mgm.core.settings import PretrainingSettings
    from q2_mgm.core.tokenizer import tokenize_dataframe
    table, _, _ = read_cohort(folder)
    model, vocabulary, _ = load_general_model()  # a fresh copy: pretraining changes it
    token_ids = encode(tokenize_dataframe(table).samples.sentence, vocabulary)
    settings = PretrainingSettings(epochs=epochs, learning_rate=learning_rate, random_state=0, device="cpu")
    start = time.perf_counter()
    model, history = pretrain(model, token_ids, settings, report=lambda message: say(f"    {message}"))
    return {"pretraining_seconds": time.perf_counter() - start, "threads": torch.get_num_threads(),
            "sentences": len(token_ids), "history": history.reset_index().to_dict("records"),
            "loso": loso(name, folder, model, vocabulary, 0)}


def continued_part(args, names, found):
    """{settings, results: {cohort: continued_pretraining's}}, kept in WORK/continued.json as each cohort finishes;
    --resume continues it where the settings are the same."""
    settings = {"data": str(args.data), "cohorts": names, "epochs": args.continued_epochs,
                "learning_rate": args.continued_learning_rate}
    path = WORK / "continued.json"
    kept = json.loads(path.read_text()) if args.resume and path.exists() else None
    part = kept if kept and kept["settings"] == settings else {"settings": settings, "results": {}}
    for name in names:
        if name in part["results"]:
            continue
        say(f"{name}: language-model pretraining continued on the cohort, then leave-one-study-out")
        part["results"][name] = continued_pretraining(name, found[name], args.continued_epochs,
                                                      args.continued_learning_rate)
        say("  mean AUROC " + ", ".join(f"{m} {v:.3f}" for m, v in part["results"][name]["loso"]["auroc"].items()))
        write_json(path, part)
    return part


def pipeline_speed(folder):
    """classify-samples-cv as a user runs it (QIIME 2 Artifact API, leave-one-study-out, the defaults), in a fresh
    process (the plugin as installed now, nothing warm from the rest of the run)."""
    import subprocess
    result = subprocess.run([sys.executable, __file__, "--speed-of", str(folder)], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"classify-samples-cv failed on {folder.name}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _pipeline_speed(folder):
    import qiime2
    from qiime2.plugins import mgm
    table, labels, studies = read_cohort(folder)
    metadata = qiime2.Metadata(pd.DataFrame({"Group": labels, "study": studies}).rename_axis("sample-id"))
    artifact = qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table)
    start = time.perf_counter()
    mgm.actions.classify_samples_cv(table=artifact, metadata=metadata.get_column("Group"),
                                    groups=metadata.get_column("study"), batches=metadata.get_column("study"),
                                    cv_strategy="leave-one-group-out")
    return {"cohort": folder.name, "samples": int(len(table)), "studies": int(studies.nunique()),
            "seconds": time.perf_counter() - start}


def few_label_task(name, data_dir, general, vocabulary):
    """(SampleFeatures, labels, subjects or None) of a few-label task."""
    if name == "HMP_oral_sites":
        from tests.helpers import read_genus_table, read_metadata
        table = read_genus_table("hmp-bodysite", "genus_relative.tsv")
        metadata = read_metadata("hmp-bodysite").loc[table.index]
        oral = metadata.index[metadata["bodysite"].isin(["buccal_mucosa", "supragingival_plaque", "tongue_dorsum"])]
        table, metadata = table.loc[oral], metadata.loc[oral]
        labels, batches, subjects = (metadata["bodysite"].astype(str), metadata["study"].astype(str),
                                     metadata["subject"].astype(str))
    else:
        table, labels, batches = read_cohort(data_dir / name)
        subjects = None
    data, kept, _ = features(table, batches, general, vocabulary)
    return data, labels.loc[kept], None if subjects is None else subjects.loc[kept]


def few_label_curves(name, data, labels, subjects, methods):
    """{method: {size: [(macro AUROC, macro F1) per repeat]}}: n labelled samples per class drawn at random, the
    rest (less the drawn samples' subjects) as test."""
    from sklearn.metrics import f1_score
    from q2_mgm.core.training.targets import encode_targets
    from q2_mgm.core.transfer import make_recipe
    encoded, classes, _, _ = encode_targets(labels, "classification")
    out = {m: {} for m in methods}
    for size in SIZES:
        if np.bincount(encoded).min() < size + 10:
            say(f"    {name}: a class has fewer than {size} + 10 samples; size {size} left out")
            continue
        for repeat in range(REPEATS):
            rng = np.random.default_rng(1000 * size + repeat)
            train = np.concatenate([rng.choice(np.flatnonzero(encoded == c), size, replace=False)
                                    for c in range(len(classes))])
            test = np.setdiff1d(np.arange(len(encoded)), train)
            if subjects is not None:
                test = test[~np.isin(subjects.to_numpy()[test], subjects.to_numpy()[train])]
            if np.bincount(encoded[test], minlength=len(classes)).min() < MIN_TEST_PER_CLASS:
                continue  # the drawn samples' subjects took (nearly) all of a class's other samples
            for method in methods:
                fitted = make_recipe(method, "classification", repeat).fit(data.rows(train), encoded[train])
                scores = fitted.predict(data.rows(test))
                out[method].setdefault(size, []).append(
                    (auroc(np.asarray(classes)[encoded[test]], scores, classes),
                     float(f1_score(encoded[test], scores.argmax(1), average="macro"))))
        if size not in out[methods[0]]:
            say(f"    {name}: no repeat at {size} per class left {MIN_TEST_PER_CLASS} test samples of every class "
                "once the drawn samples' subjects were set aside; size left out")
            continue
        say(f"    {name}: {size} per class ({len(out[methods[0]][size])} repeats): " + ", ".join(
            f"{m} {np.mean([a for a, _ in out[m][size]]):.3f}" for m in methods))
    return out


# ---------------------------------------------------------------- the run, resumable part by part

def run(args):
    import torch
    from q2_mgm.core.models import load_general_model
    from q2_mgm.core.transfer import DEFAULT_RECIPE, RECIPES
    settings = {"data": str(args.data), "cohorts": args.cohorts, "upstream_cohorts": args.upstream_cohorts,
                "epochs": args.epochs, "few_label": not args.skip_few_label, "recipe": DEFAULT_RECIPE}
    state_path = WORK / "state.json"
    if args.resume and state_path.exists() and json.loads(state_path.read_text())["settings"] == settings:
        state = json.loads(state_path.read_text())
        say(f"resuming: {len(state['loso'])} cohorts and {len(state['few_label'])} few-label tasks already done")
    else:
        shutil.rmtree(WORK, ignore_errors=True)
        state = {"settings": settings, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "loso": {}, "few_label": {},
                 "speed": None}

    def save():
        write_json(state_path, state)

    general, vocabulary, _ = load_general_model()
    found = cohorts(args.data)
    names = [n for n in found if not args.cohorts or n in args.cohorts]
    for name in names:
        if name in state["loso"]:
            continue
        say(f"{name}: leave-one-study-out")
        epochs = args.epochs if name in args.upstream_cohorts else 0
        state["loso"][name] = loso(name, found[name], general, vocabulary, epochs)
        say("  mean AUROC " + ", ".join(f"{m} {v:.3f}" for m, v in state["loso"][name]["auroc"].items()))
        save()
    continued = continued_part(args, [n for n in args.continued_pretraining if n in state["loso"]], found)
    if state["speed"] is None and names:
        largest = ("CRC_Metagenomics" if "CRC_Metagenomics" in names  # the yardstick: 766 samples, 7 studies
                   else max(names, key=lambda n: state["loso"][n]["n_samples"]))
        say(f"classify-samples-cv through QIIME 2 on {largest}")
        state["speed"] = {**pipeline_speed(found[largest]),
                          "forest_seconds": state["loso"][largest]["seconds"]["random-forest"]}
        save()
    if not args.skip_few_label:
        default = RECIPES[DEFAULT_RECIPE]
        methods = [DEFAULT_RECIPE, "random-forest", default.without_mgm, default.mgm_only]
        for name in FEW_LABEL_TASKS:
            if name in state["few_label"] or (name != "HMP_oral_sites" and not (args.data / name).exists()):
                continue
            say(f"{name}: few-label learning curves")
            data, labels, subjects = few_label_task(name, args.data, general, vocabulary)
            curves = few_label_curves(name, data, labels, subjects, methods)
            state["few_label"][name] = {m: {str(k): v for k, v in c.items()} for m, c in curves.items()}
            save()
    published = args.data / "published_auroc.tsv"
    record = {**state, "continued_pretraining": continued,
              "machine": {"cores": torch.get_num_threads(), "python": platform.python_version(),
                          "torch": torch.__version__},
              "published": (pd.read_csv(published, sep="\t", index_col=0).to_dict("index")
                            if published.exists() else {}),
              "descriptions": {m: r.description for m, r in RECIPES.items()},
              "default": DEFAULT_RECIPE, "without_mgm": RECIPES[DEFAULT_RECIPE].without_mgm,
              "mgm_only": RECIPES[DEFAULT_RECIPE].mgm_only, "conventional": ["random-forest", "batch-clr-logistic"]}
    return record


# ---------------------------------------------------------------- the report

def _wins(a, b):
    both = pd.concat([a, b], axis=1).dropna()
    return int((both.iloc[:, 0] > both.iloc[:, 1]).sum()), int((both.iloc[:, 0] < both.iloc[:, 1]).sum())


def render(record, out):
    default, ablation, mgm_only = record["default"], record["without_mgm"], record["mgm_only"]
    auc = pd.DataFrame({n: r["auroc"] for n, r in record["loso"].items()}).T
    methods = [default] + [m for m in auc.columns if m != default]
    auc = auc[methods]
    published = pd.DataFrame(record["published"]).T
    lines = ["# q2-mgm across studies: leave-one-study-out, train-on-one-study, few labels", "",
             f"Run {record['started']} by `benchmarks/transfer.py` on {record['settings']['data']}, "
             f"{record['machine']['cores']} CPU threads, torch {record['machine']['torch']}. "
             "Every method is fit on exactly the same samples of each fold; the held-out study's labels choose "
             "nothing (no per-cohort settings; batch correction standardises each study on its own samples, "
             "labels unused).", "", "## Methods", ""]
    lines += [f"- **{m}**: {record['descriptions'].get(m, '')}" for m in methods if m in record["descriptions"]]
    if UPSTREAM in auc.columns:
        lines.append(f"- **{UPSTREAM}**: upstream MGM's fine-tuning recipe (every layer trained, accuracy.py's "
                     f"settings, capped at {record['settings']['epochs']} epochs), on the named subset "
                     f"{', '.join(record['settings']['upstream_cohorts'])} only: it trains per fold")
    lines += ["", "## Leave-one-study-out: mean AUROC over held-out studies", "",
              "| cohort | n | studies | " + " | ".join(methods) + " | " + " | ".join(
                  f"{v}" for k, v in PUBLISHED.items() if f"{k}_loso" in published) + " |",
              "|---|---:|---:|" + "---:|" * (len(methods) + sum(f"{k}_loso" in published for k in PUBLISHED))]
    for name, row in auc.iterrows():
        best = row[[m for m in methods if m != UPSTREAM]].max()
        cells = [("**{:.3f}**" if row[m] == best else "{:.3f}").format(row[m]) if np.isfinite(row[m]) else "-"
                 for m in methods]
        pub = [f"{published.loc[name, f'{k}_loso']:.3f}" if name in published.index else "-"
               for k in PUBLISHED if f"{k}_loso" in published]
        lines.append(f"| {name} | {record['loso'][name]['n_samples']} | {len(record['loso'][name]['studies'])} | "
                     + " | ".join(cells + pub) + " |")
    means = auc.mean()
    pub_means = [f"{published.loc[auc.index, f'{k}_loso'].mean():.3f}" for k in PUBLISHED
                 if f"{k}_loso" in published and set(auc.index) <= set(published.index)]
    counted = auc.notna().sum()
    lines.append("| **mean** | | | " + " | ".join(
        f"**{means[m]:.3f}**" + ("" if counted[m] == len(auc) else f" ({counted[m]} cohorts)") for m in methods)
        + " | " + " | ".join(pub_means) + " |")
    lines += ["", f"Paired over cohorts, {default} wins / losses: " + ", ".join(
        "vs {} {}/{}".format(m, *_wins(auc[default], auc[m])) for m in methods[1:]) + "."]
    conventional = max(record["conventional"], key=lambda m: means[m])
    wins_rf = _wins(auc[default], auc["random-forest"])
    checks = [(f"{default} at least 0.02 above the best conventional baseline ({conventional}, "
               f"{means[conventional]:.3f})", means[default] - means[conventional] >= 0.02,
               f"{means[default] - means[conventional]:+.3f}"),
              (f"{default} ahead of the RandomForest on at least 9 of {len(auc)} cohorts", wins_rf[0] >= 9,
               f"{wins_rf[0]} / {wins_rf[1]}"),
              (f"the ablation without MGM ({ablation}) at least 0.01 lower", means[default] - means[ablation] >= 0.01,
               f"{means[default] - means[ablation]:+.3f}")]
    lines += ["", "| target | result | figure |", "|---|---|---:|"]
    lines += [f"| {what} | {'PASS' if ok else 'FAIL'} | {figure} |" for what, ok, figure in checks]
    lines += ["", f"MGM alone, batch-corrected ({mgm_only}): mean {means[mgm_only]:.3f}.", ""]
    lines += ["## Train on one study, test on each other: mean AUROC", "",
              "| cohort | " + " | ".join(m for m in methods if m != UPSTREAM) + " | published upstream MGM | "
              "published RandomForest |", "|---|" + "---:|" * (len(methods) - (UPSTREAM in methods) + 2)]
    cross = pd.DataFrame({n: r["cross_auroc"] for n, r in record["loso"].items()}).T
    for name, row in cross.iterrows():
        pub = [f"{published.loc[name, c]:.3f}" if name in published.index else "-"
               for c in ("MGM_cross", "RandomForest_cross")]
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in methods if m != UPSTREAM) + " | "
                     + " | ".join(pub) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{cross[m].mean():.3f}**" for m in methods if m != UPSTREAM)
                 + " | | |")
    lines += ["", "## Per held-out study (AUROC)", "", "| cohort | study | samples | cases | "
              + " | ".join(methods) + " |", "|---|---|---:|---:|" + "---:|" * len(methods)]
    for name, entry in record["loso"].items():
        for study, counts in entry["studies"].items():
            cells = [entry["per_study_auroc"].get(m, {}).get(study, float("nan")) for m in methods]
            lines.append(f"| {name} | {study} | {counts['samples']} | {counts['cases']} | "
                         + " | ".join("-" if not np.isfinite(c) else f"{c:.3f}" for c in cells) + " |")
    seconds = pd.DataFrame({n: r["seconds"] for n, r in record["loso"].items()}).T
    lines += ["", "## Time", "", "Wall time over all cohorts' leave-one-study-out folds: " + ", ".join(
        f"{m} {fmt_s(seconds[m].sum())}" for m in seconds.columns) + "; tokenizing and the one encoder pass: "
        + fmt_s(sum(r["features_seconds"] for r in record["loso"].values())) + "."]
    if record.get("speed"):
        speed = record["speed"]
        lines.append(f"classify-samples-cv through QIIME 2 (leave-one-study-out, the defaults) on "
                     f"{speed['cohort']} ({speed['samples']} samples, {speed['studies']} studies): "
                     f"{fmt_s(speed['seconds'])} in all, tokenizing and the encoder included; the RandomForest "
                     f"baseline's own folds there took {fmt_s(speed['forest_seconds'])} (target: under 90 s).")
    lines += continued_section(record)
    lines += few_label_section(record, out)
    write_markdown(out / "transfer.md", lines)
    print("\n".join(lines))


def continued_section(record):
    part = record.get("continued_pretraining") or {}
    if not part.get("results"):
        return []
    settings, results, compared = part["settings"], part["results"], (record["default"], record["mgm_only"])
    before = pd.DataFrame({n: record["loso"][n]["auroc"] for n in results}).T
    after = pd.DataFrame({n: r["loso"]["auroc"] for n, r in results.items()}).T
    lines = ["", "## Continued pretraining on the cohort (did not help)", "",
             "The general model's language-model pretraining continued on each cohort's own samples "
             f"(core.pretraining: {settings['epochs']} epochs at learning rate {settings['learning_rate']:g}, seed 0, "
             "pretrain's defaults otherwise, a tenth of the samples to validate on): every sample, labels unused, the "
             "held-out studies' included (transductive). Then every recipe leave-one-study-out on the adapted model's "
             "frozen features, on the same folds as above; before: the general model's figures above. Mean AUROC "
             "over held-out studies; the conventional baselines read no MGM features.", "",
             "| cohort | n | pretraining | validation loss by epoch | " + " | ".join(
                 f"{m} before | after | change" for m in compared) + " | " + " | ".join(record["conventional"]) + " |",
             "|---|---:|---:|---|" + "---:|" * (3 * len(compared) + len(record["conventional"]))]
    for name, entry in results.items():
        b, a = before.loc[name], after.loc[name]
        cells = [f"{b[m]:.3f} | {a[m]:.3f} | {a[m] - b[m]:+.3f}" for m in compared]
        lines.append(f"| {name} | {entry['sentences']} | {fmt_s(entry['pretraining_seconds'])} | "
                     + ", ".join(f"{e['validation_loss']:.3f}" for e in entry["history"]) + " | "
                     + " | ".join(cells + [f"{a[m]:.3f}" for m in record["conventional"]]) + " |")
    lines.append("| **mean** | | | | " + " | ".join(
        f"**{before[m].mean():.3f}** | **{after[m].mean():.3f}** | **{(after[m] - before[m]).mean():+.4f}**"
        for m in compared) + " | " + " | ".join(f"**{after[m].mean():.3f}**" for m in record["conventional"]) + " |")
    threads = {entry["threads"] for entry in results.values()}
    lines += ["", "Paired over cohorts, after against before: " + ", ".join(
        "{} won {} / lost {}".format(m, *_wins(after[m], before[m])) for m in compared)
        + f". Pretraining took {fmt_s(sum(e['pretraining_seconds'] for e in results.values()))} in all on "
        f"{', '.join(map(str, sorted(threads)))} CPU thread(s)."]
    return lines


def few_label_section(record, out):
    curves = record.get("few_label") or {}
    if not curves:
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    default, ablation = record["default"], record["without_mgm"]
    methods = list(next(iter(curves.values())))
    lines = ["", "## Few labels: learning curves", "",
             f"{REPEATS} repeats of n labelled samples per class drawn at random, the rest as test (HMP: less the "
             f"drawn samples' subjects; a repeat counts only where every class keeps {MIN_TEST_PER_CLASS} test samples). "
             "Macro AUROC (macro F1 in brackets), mean over repeats.", "",
             "| task | n per class | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
    ahead = {size: 0 for size in ("10", "20")}
    earns = 0
    figure, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.6), squeeze=False)
    for ax, (task, by_method) in zip(axes[0], curves.items()):
        sizes = list(by_method[methods[0]])
        for size in sizes:
            cells = [f"{np.mean([a for a, _ in by_method[m][size]]):.3f} "
                     f"({np.mean([f for _, f in by_method[m][size]]):.3f})" for m in methods]
            repeats = len(by_method[methods[0]][size])
            lines.append(f"| {task} | {size}{'' if repeats == REPEATS else f' ({repeats} repeat(s) only)'} | "
                         + " | ".join(cells) + " |")
            mean = {m: np.mean([a for a, _ in by_method[m][size]]) for m in methods}
            if size in ahead and mean[default] > mean["random-forest"]:
                ahead[size] += 1
        if all(np.mean([a for a, _ in by_method[default][s]]) - np.mean([a for a, _ in by_method[ablation][s]])
               >= 0.01 for s in sizes if s in ("10", "20")):
            earns += 1
        for m in methods:
            ax.plot([int(s) for s in sizes], [np.mean([a for a, _ in by_method[m][s]]) for s in sizes], marker="o",
                    label=m)
        ax.set_xscale("log"), ax.set_title(task, fontsize=9), ax.set_xlabel("labelled samples per class")
        ax.set_ylabel("macro AUROC")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "transfer_few_label.png", dpi=100)
    plt.close(figure)
    lines += ["", "![few-label learning curves](transfer_few_label.png)", "",
              f"{default} ahead of the RandomForest at 10 per class on {ahead['10']} of {len(curves)} tasks, at 20 "
              f"on {ahead['20']} (target: both on at least 3); its MGM part earns 0.01 or more over {ablation} at "
              f"10 and 20 on {earns} of {len(curves)} tasks."]
    return lines


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS


def main():
    p = parser(__doc__, "transfer")
    p.add_argument("--data", type=__import__("pathlib").Path, default=SHARED / "data" / "disease-benchmark",
                   help="a folder laid out like ../shared/data/disease-benchmark (default: that one)")
    p.add_argument("--cohorts", nargs="*", help="cohort names (default: every cohort with 3 or more studies)")
    p.add_argument("--upstream-cohorts", nargs="*", default=list(UPSTREAM_SUBSET),
                   help=f"cohorts on which upstream's fine-tuning also runs (default: {' '.join(UPSTREAM_SUBSET)})")
    p.add_argument("--epochs", type=int, default=4, help="epoch cap of upstream's fine-tuning (accuracy.py's)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same settings")
    p.add_argument("--skip-few-label", action="store_true", help="leave out the few-label learning curves")
    p.add_argument("--continued-pretraining", nargs="*", default=list(CONTINUED_SUBSET), metavar="NAME",
                   help="cohorts (of those run leave-one-study-out) on which the general model's pretraining is "
                   f"continued first (default: {' '.join(CONTINUED_SUBSET)}; none: leave the part out)")
    p.add_argument("--continued-epochs", type=int, default=3, help="epochs of the continued pretraining (default 3)")
    p.add_argument("--continued-learning-rate", type=float, default=1e-4,
                   help="learning rate of the continued pretraining (default 1e-4)")
    p.add_argument("--only-continued-pretraining", action="store_true",
                   help="run only the continued pretraining and merge it into the transfer.json in --out")
    p.add_argument("--speed-of", type=__import__("pathlib").Path, help=argparse_suppress())
    args = p.parse_args()
    if args.speed_of:  # the child process of pipeline_speed
        print(json.dumps(_pipeline_speed(args.speed_of)))
        return
    earlier = earlier_results(args, "transfer")
    if earlier:
        render(*earlier)
        return
    if not args.data.is_dir():
        sys.exit(f"skipped: {args.data} is absent (the benchmark reads real cohorts laid out like "
                 "../shared/data/disease-benchmark)")
    out = out_dir(args)
    if args.only_continued_pretraining:
        path = out / "transfer.json"
        record = json.loads(path.read_text()) if path.exists() else {"loso": {}}
        missing = [n for n in args.continued_pretraining if n not in record["loso"]]
        if missing:
            sys.exit(f"{path} has no leave-one-study-out results of {', '.join(missing)} to compare with; run "
                     "transfer.py on them first")
        record["continued_pretraining"] = continued_part(args, args.continued_pretraining, cohorts(args.data))
    else:
        record = run(args)
    write_json(out / "transfer.json", record)
    render(record, out)


if __name__ == "__main__":
    main()
