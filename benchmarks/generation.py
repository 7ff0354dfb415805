#!/usr/bin/env python3
"""Generation benchmark: how realistic and how useful are q2-mgm's synthetic samples, against a simple baseline?
And which ranks-to-abundances reconstructor is best?

    PYTHONPATH=. .venv/bin/python benchmarks/generation.py            # full run: benchmarks/results/generation.*
    PYTHONPATH=. .venv/bin/python benchmarks/generation.py --quick    # smoke run (1 seed, 1 epoch): benchmarks/work/
    PYTHONPATH=. .venv/bin/python benchmarks/generation.py --from-json benchmarks/results/generation.json  # .md only

Datasets (../shared/data; skipped with a message when ../shared is absent):
  ECAM_delivery_0-12m  ECAM infants, months 0-12 (635 samples, 43 children), label = delivery mode (Vaginal /
                       Cesarean). Split by child (studyid): about 30% of each delivery mode's children are the test set.
  IBS_Amplicon         the disease-benchmark IBS 16S cohort (433 samples, Case 277 / Control 156; one sample per
                       subject as far as the metadata says), label = Group. Split by sample, 30% test, stratified.
The split is fixed (seed 0) and the same for every method; the test samples are never seen by any generator,
reconstructor or classifier trained below.

The pipeline runs through the QIIME 2 Artifact API (`from qiime2.plugins import mgm`), per seed:
  tokenize (train and test tables) -> pretrain_generator (from the general model, TRAIN corpus only, label-prompted)
  -> fit_reconstructor (neural, TRAIN table) -> generate (per label, n = the test set's count of that label: matched
  counts; max_length = the longest train sentence + 1 for the label token).
Compared with the same numbers (q2_mgm.core.realism.realism_report against the real TEST samples):
  MGM generator               generate's table (sentences from the fine-tuned generator, neural abundances)
  bootstrap baseline          baseline_generator.bootstrap_baseline on the TRAIN samples: per label, train profiles drawn with
                              replacement, each redrawn from a Dirichlet (concentration 100); matched counts
  MGM + MGnify means          the same generated sentences, abundances from the no-training default reconstructor
  general model, unprompted   the general model (no fine-tuning, no labels) through generate + the neural
                              reconstructor, n = all test samples; compared over all labels only (no TSTR)
  reference: real train       real TRAIN samples, a matched random subset: what a perfect copy of the training
                              distribution scores against unseen samples (the floor the generators can reach)
  reference: train sentences  the same TRAIN subset's real sentences with neural abundances: the cost of the
                              ranks-to-abundances step alone
Real profiles everywhere are the tokenizer's view (genus_relative_abundance: MGM-vocabulary genera, renormalised).
Figures: two-sample AUC (RandomForest real vs synthetic, 5-fold; 0.5 = indistinguishable), TSTR AUC (RandomForest
trained on synthetic, tested on real test) beside TRTR (trained on real train, tested on real test: a held-out
reference; realism_report's own TRTR is cross-validated within the test set, reported in the JSON), genus mean
abundance and prevalence Spearman, Shannon and observed-genera medians with the Kolmogorov-Smirnov statistic,
PERMANOVA pseudo-F of real vs synthetic (Bray-Curtis).
Reconstructors (held-out test samples: their real profile vs the reconstruction from their own sentence, mean
Bray-Curtis, lower is better): uniform (1/n per genus), mgnify-mean (generate's default), rank-median and neural
(both fit_reconstructor on the TRAIN table).
Seeds: each seed reruns pretraining, the neural reconstructor, generation, the baseline and every RandomForest; the
split stays fixed. Tables give the mean over seeds with the range.
"""
import os
import platform
import sys
import time
import warnings

import numpy as np
import pandas as pd

from _generation_report import ALL, CONCENTRATION, ROWS, reading, write
from _harness import SHARED, earlier_results, machine_info, out_dir, parser, q2_versions, say

TEST_FRACTION = 0.3
SPLIT_SEED = 0
N_ESTIMATORS = 200


# --- data ---

def load_datasets():
    """name -> (samples x genera relative abundance, labels, groups or None, description)."""
    from tests.helpers import read_genus_table, read_metadata
    ecam = read_genus_table("ecam", "genus_relative.tsv")
    meta = read_metadata("ecam").loc[ecam.index]
    infants = meta.index[meta["month"] <= 12]
    ibs = read_genus_table("disease-benchmark/IBS_Amplicon", "genus_relative.tsv")
    ibs_meta = read_metadata("disease-benchmark/IBS_Amplicon").loc[ibs.index]
    return {
        "ECAM_delivery_0-12m": (ecam.loc[infants], meta.loc[infants, "delivery"].astype(str),
                                meta.loc[infants, "studyid"].astype(str),
                                "ECAM infants, months 0-12, label delivery mode, split by child"),
        "IBS_Amplicon": (ibs, ibs_meta["Group"].astype(str), None,
                         "disease-benchmark IBS 16S cohort, label Case/Control, split by sample"),
    }


def split(labels, groups, fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """(train IDs, test IDs): per label, about `fraction` of its groups (children; samples where groups is None) go to
    the test set. A group carries one label (delivery mode is a property of the child)."""
    groups = pd.Series(labels.index, index=labels.index) if groups is None else groups
    if (labels.groupby(groups).nunique() > 1).any():
        raise ValueError("a group holds more than one label; the split keeps groups whole")
    rng = np.random.default_rng(seed)
    test_groups = []
    for label in sorted(labels.unique()):
        members = np.array(sorted(groups[labels == label].unique()))
        test_groups += list(rng.choice(members, max(1, round(fraction * len(members))), replace=False))
    is_test = groups.isin(test_groups)
    return labels.index[~is_test], labels.index[is_test]


def feature_table(frame):
    import qiime2
    frame = frame.copy()
    frame.index = frame.index.astype(str).rename("sample-id")
    return qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", frame.astype(float))


def label_column(labels):
    import qiime2
    series = pd.Series(labels.to_numpy(), index=pd.Index(labels.index.astype(str), name="sample-id"), name="label")
    return qiime2.CategoricalMetadataColumn(series)


# --- synthetic sets ---

def rebuilt(genera, abundances, names):
    """A samples x genera table from genus lists and their abundances (as generate builds it)."""
    return pd.DataFrame([dict(zip(g, a)) for g, a in zip(genera, abundances)], index=names).fillna(0.0)


def run_generate(mgm, model, reconstructor, counts, max_length, seed, labels=True):
    """generate per label with matched counts (labels=False: one unprompted call for sum(counts)). Returns the
    table, labels, the generated genus lists and the wall time."""
    from q2_mgm.core.reconstruction import sentence_genera
    from q2_mgm.core.tokenizer import Corpus
    tables, tags, genera, seconds = [], [], [], 0.0
    calls = list(counts.items()) if labels else [(None, int(sum(counts.values())))]
    for offset, (label, n) in enumerate(calls):
        start = time.time()
        kwargs = {"labels": [label]} if label is not None else {}
        table, corpus, sample_labels = mgm.actions.generate(
            model=model, reconstructor=reconstructor, n_per_label=int(n), max_length=max_length,
            random_state=seed * 1000 + offset, device="cpu", **kwargs)
        seconds += time.time() - start
        table = table.view(pd.DataFrame)
        sentences = corpus.view(Corpus).samples.sentence.reindex(table.index)
        tables.append(table)
        genera += sentence_genera(sentences)
        tags.append(sample_labels.view(pd.Series).reindex(table.index).astype(str) if label is not None
                    else pd.Series("all", index=table.index))
    table = pd.concat(tables).fillna(0.0)
    return table, pd.concat(tags), genera, seconds


def matched_bootstrap(relative_train, labels_train, counts, seed):
    """bootstrap_baseline per label with that label's test count (its n_per_label is one number for all labels)."""
    from q2_mgm.core.baseline_generator import bootstrap_baseline
    tables, tags = [], []
    for offset, (label, n) in enumerate(counts.items()):
        rows = labels_train.index[labels_train == label]
        table, tag = bootstrap_baseline(relative_train.loc[rows], labels_train.loc[rows], n_per_label=int(n),
                                        concentration=CONCENTRATION, random_state=seed * 1000 + offset)
        ids = [f"bootstrap-{label}-{i}" for i in range(len(table))]
        tables.append(table.set_axis(ids)), tags.append(tag.set_axis(ids))
    return pd.concat(tables).fillna(0.0), pd.concat(tags).astype(str)


def matched_subset(labels_train, counts, seed):
    rng = np.random.default_rng(seed + 7)
    picked = []
    for label, n in counts.items():
        rows = np.array(labels_train.index[labels_train == label])
        picked += list(rng.choice(rows, min(int(n), len(rows)), replace=False))
    return pd.Index(picked)


# --- realism ---

def held_out_trtr(relative_train, labels_train, relative_test, labels_test, seed):
    """RandomForest trained on the real TRAIN samples, tested on the real TEST samples (one vs rest AUC of the
    second label in sorted order, as realism reports TSTR)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    columns = relative_train.columns.union(relative_test.columns)
    train = relative_train.reindex(columns=columns, fill_value=0.0)
    test = relative_test.reindex(columns=columns, fill_value=0.0)
    forest = RandomForestClassifier(N_ESTIMATORS, random_state=seed, n_jobs=1).fit(train.to_numpy(),
                                                                                  labels_train.to_numpy())
    classes = sorted(labels_train.unique())
    probability = forest.predict_proba(test.to_numpy())[:, list(forest.classes_).index(classes[1])]
    return float(roc_auc_score(labels_test == classes[1], probability))


def label_fidelity(relative_train, labels_train, synthetic, synthetic_labels, seed):
    """Do synthetic samples carry their label? A RandomForest trained on the real TRAIN samples scores each synthetic
    sample; ROC AUC against the label it was generated for (0.5: the label left no trace)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    columns = relative_train.columns.union(synthetic.columns)
    forest = RandomForestClassifier(N_ESTIMATORS, random_state=seed, n_jobs=1).fit(
        relative_train.reindex(columns=columns, fill_value=0.0).to_numpy(), labels_train.to_numpy())
    classes = sorted(labels_train.unique())
    values = synthetic.reindex(columns=columns, fill_value=0.0)
    values = values.div(values.sum(axis=1), axis=0).to_numpy()
    probability = forest.predict_proba(values)[:, list(forest.classes_).index(classes[1])]
    return float(roc_auc_score(synthetic_labels.reindex(synthetic.index) == classes[1], probability))


def realism_figures(relative_test, labels_test, synthetic, synthetic_labels, seed):
    """realism_report against the real test samples, flattened: per label and over all labels."""
    from q2_mgm.core.realism import realism_report
    report = realism_report(relative_test, labels_test, synthetic, synthetic_labels, random_state=seed,
                            n_estimators=N_ESTIMATORS)
    out = {}
    for label, row in report.summary.iterrows():
        alpha = report.alpha.tests[report.alpha.tests.label == label].set_index("metric")
        out[str(label)] = {
            "n_real": int(row.n_real), "n_synthetic": int(row.n_synthetic),
            "two_sample_auc": _num(row.two_sample_auc), "tstr_auc": _num(row.tstr_auc),
            "trtr_auc_cv_within_test": _num(row.trtr_auc),
            "abundance_spearman": _num(row.abundance_spearman), "prevalence_spearman": _num(row.prevalence_spearman),
            "permanova_pseudo_f": _num(row.permanova_pseudo_f), "permanova_p": _num(row.permanova_p_value),
            **{f"{metric}_{key}": _num(alpha.loc[metric, column]) for metric in ("shannon", "observed_genera")
               for key, column in (("real_median", "real_median"), ("synthetic_median", "synthetic_median"),
                                   ("ks", "ks_statistic"))}}
    return out, report


def _num(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


# --- reconstructors ---

class Uniform:
    kind = "uniform"

    def predict(self, genera):
        return [np.full(len(g), 1.0 / len(g)) for g in genera]


def reconstructor_errors(reconstructors, relative_test, sentences_test):
    from q2_mgm.core.reconstruction import per_sample_bray_curtis
    per_sample = {name: per_sample_bray_curtis(r, relative_test, sentences_test) for name, r in reconstructors.items()}
    out = {name: {"mean_bray_curtis": float(s.mean()), "median_bray_curtis": float(s.median())}
           for name, s in per_sample.items()}
    if "neural" in per_sample:
        for name, s in per_sample.items():
            if name != "neural":
                out[name]["neural_better_share"] = float((per_sample["neural"] < s).mean())
    return out


# --- one dataset ---

def run_dataset(name, table, labels, groups, description, args, general):
    import qiime2  # noqa: F401
    from qiime2.plugins import mgm
    from q2_mgm._formats import MGMReconstructorDirFmt
    from q2_mgm.core.reconstruction import (MGnifyMeanReconstructor, genus_relative_abundance, load_reconstructor)
    from q2_mgm.core.tokenizer import Corpus

    train_ids, test_ids = split(labels, groups)
    tables = {part: feature_table(table.loc[ids]) for part, ids in (("train", train_ids), ("test", test_ids))}
    corpora = {part: mgm.actions.tokenize(table=artifact)[0] for part, artifact in tables.items()}
    sentences = {part: corpus.view(Corpus).samples.sentence for part, corpus in corpora.items()}
    relative = {part: genus_relative_abundance(table.loc[ids]) for part, ids in (("train", train_ids),
                                                                                 ("test", test_ids))}
    relative = {part: frame.loc[frame.index.intersection(sentences[part].index)] for part, frame in relative.items()}
    part_labels = {part: labels.loc[frame.index] for part, frame in relative.items()}
    counts = part_labels["test"].value_counts().sort_index().to_dict()
    n_tokens = corpora["train"].view(Corpus).samples.n_tokens
    max_length = int(n_tokens.max()) + 1  # the longest train sentence, plus the label token
    data = {"description": description, "n_samples": int(len(labels)),
            "n_groups": None if groups is None else int(groups.nunique()),
            "train": {"n": int(len(relative["train"])),
                      "per_label": part_labels["train"].value_counts().sort_index().to_dict(),
                      "n_groups": None if groups is None else int(groups.loc[train_ids].nunique())},
            "test": {"n": int(len(relative["test"])), "per_label": counts,
                     "n_groups": None if groups is None else int(groups.loc[test_ids].nunique())},
            "train_sentence_tokens": {"median": float(n_tokens.median()), "max": int(n_tokens.max())},
            "generate_max_length": max_length}
    say(f"{name}: train {data['train']['n']} / test {data['test']['n']} samples; test per label {counts}; "
        f"generate max_length {max_length}")

    rank_median, = mgm.actions.fit_reconstructor(table=tables["train"], kind="rank-median")
    base_reconstructors = {"uniform": Uniform(), "mgnify-mean": MGnifyMeanReconstructor(),
                           "rank-median": load_reconstructor(rank_median.view(MGMReconstructorDirFmt).path)}
    seeds, figures_report = {}, None
    for seed in range(args.seeds):
        run = {"timing": {}}
        start = time.time()
        generator, history = mgm.actions.pretrain_generator(
            corpora=[corpora["train"]], metadata=label_column(part_labels["train"]), epochs=args.epochs,
            patience=args.patience, learning_rate=args.learning_rate, random_state=seed, device="cpu")
        run["timing"]["pretrain_s"] = round(time.time() - start, 1)
        frame = history.view(qiime2.Metadata).to_dataframe()
        run["pretraining"] = {"epochs_run": int(len(frame)),
                              "best_validation_loss": float(frame.validation_loss.min()),
                              "best_validation_perplexity": float(frame.validation_perplexity.min()),
                              "history": frame.reset_index(drop=True).round(4).to_dict(orient="list")}
        start = time.time()
        neural_artifact, = mgm.actions.fit_reconstructor(table=tables["train"], kind="neural", random_state=seed)
        run["timing"]["fit_neural_reconstructor_s"] = round(time.time() - start, 1)
        neural = load_reconstructor(neural_artifact.view(MGMReconstructorDirFmt).path)
        run["reconstructors"] = reconstructor_errors({**base_reconstructors, "neural": neural}, relative["test"],
                                                     sentences["test"])
        say(f"{name} seed {seed}: pretrained {run['pretraining']['epochs_run']} epochs in "
            f"{run['timing']['pretrain_s']} s (validation perplexity "
            f"{run['pretraining']['best_validation_perplexity']:.2f}); reconstructors "
            + ", ".join(f"{k} {v['mean_bray_curtis']:.3f}" for k, v in run["reconstructors"].items()))

        synthetic = {}
        table_mgm, labels_mgm, genera_mgm, seconds = run_generate(mgm, generator, neural_artifact, counts, max_length,
                                                                  seed)
        run["timing"]["generate_s"] = round(seconds, 2)
        run["timing"]["generate_samples_per_s"] = round(len(table_mgm) / seconds, 1)
        synthetic["MGM generator"] = (table_mgm, labels_mgm)
        synthetic["MGM + MGnify means"] = (rebuilt(genera_mgm, MGnifyMeanReconstructor().predict(genera_mgm),
                                                   table_mgm.index), labels_mgm)
        synthetic["bootstrap baseline"] = matched_bootstrap(relative["train"], part_labels["train"], counts, seed)
        table_general, labels_general, _, seconds = run_generate(mgm, general, neural_artifact, counts, max_length,
                                                                 seed, labels=False)
        run["timing"]["generate_unprompted_s"] = round(seconds, 2)
        synthetic["general model, unprompted"] = (table_general, labels_general)
        subset = matched_subset(part_labels["train"], counts, seed)
        synthetic["reference: real train"] = (relative["train"].loc[subset].set_axis(
            [f"train-{s}" for s in subset]), part_labels["train"].loc[subset].set_axis([f"train-{s}" for s in subset]))
        train_genera = [g for g in _genera(sentences["train"].loc[subset])]
        synthetic["reference: train sentences"] = (
            rebuilt(train_genera, neural.predict(train_genera), [f"rebuilt-{s}" for s in subset]),
            part_labels["train"].loc[subset].set_axis([f"rebuilt-{s}" for s in subset]))

        run["realism"] = {}
        start = time.time()
        for row, (synthetic_table, synthetic_labels) in synthetic.items():
            if row == "general model, unprompted":
                real_labels = pd.Series("all", index=relative["test"].index)
            else:
                real_labels = part_labels["test"]
            figures, report = realism_figures(relative["test"], real_labels, synthetic_table, synthetic_labels, seed)
            if row == "general model, unprompted":
                figures = {ALL: figures[ALL]}
            if row != "general model, unprompted":
                figures[ALL]["label_fidelity_auc"] = label_fidelity(relative["train"], part_labels["train"],
                                                                    synthetic_table, synthetic_labels, seed)
            run["realism"][row] = figures
            if seed == 0 and row in ("MGM generator", "bootstrap baseline"):
                figures_report = {**(figures_report or {}), row: report}
        run["timing"]["realism_s"] = round(time.time() - start, 1)
        run["trtr_held_out_auc"] = held_out_trtr(relative["train"], part_labels["train"], relative["test"],
                                                 part_labels["test"], seed)
        say(f"{name} seed {seed}: two-sample AUC (all labels) " + ", ".join(
            f"{row} {run['realism'][row][ALL]['two_sample_auc']:.3f}" for row in synthetic)
            + f"; TSTR MGM {run['realism']['MGM generator'][ALL]['tstr_auc']:.3f}, bootstrap "
            f"{run['realism']['bootstrap baseline'][ALL]['tstr_auc']:.3f}, TRTR {run['trtr_held_out_auc']:.3f}")
        seeds[str(seed)] = run
    data["seeds"] = seeds
    data["summary"] = summarise(seeds)
    if figures_report and not args.quick:
        data["figure"] = draw(name, figures_report, args.out_dir)
    return data


def _genera(sentences):
    from q2_mgm.core.reconstruction import sentence_genera
    return sentence_genera(sentences)


# --- summaries ---

METRICS = ("two_sample_auc", "tstr_auc", "abundance_spearman", "prevalence_spearman", "shannon_real_median",
           "shannon_synthetic_median", "shannon_ks", "observed_genera_real_median", "observed_genera_synthetic_median",
           "observed_genera_ks", "permanova_pseudo_f", "trtr_auc_cv_within_test", "label_fidelity_auc")


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values)),
            "n": len(values)}


def summarise(seeds):
    runs = list(seeds.values())
    realism = {}
    for row in ROWS:
        labels = sorted({label for run in runs for label in run["realism"].get(row, {})})
        realism[row] = {label: {metric: _stats([run["realism"][row][label].get(metric) for run in runs
                                                if label in run["realism"].get(row, {})])
                                for metric in METRICS} for label in labels}
    reconstructors = {name: _stats([run["reconstructors"][name]["mean_bray_curtis"] for run in runs])
                      for name in runs[0]["reconstructors"]}
    neural_better = {name: _stats([run["reconstructors"][name].get("neural_better_share") for run in runs])
                     for name in runs[0]["reconstructors"] if name != "neural"}
    timing = {key: _stats([run["timing"][key] for run in runs]) for key in runs[0]["timing"]}
    return {"realism": realism, "trtr_held_out_auc": _stats([run["trtr_held_out_auc"] for run in runs]),
            "reconstructors_mean_bray_curtis": reconstructors, "neural_better_share": neural_better,
            "timing": timing,
            "pretraining_epochs_run": _stats([run["pretraining"]["epochs_run"] for run in runs]),
            "pretraining_best_validation_perplexity": _stats(
                [run["pretraining"]["best_validation_perplexity"] for run in runs])}


def draw(name, reports, out_dir):
    """PCoA (Bray-Curtis) of real test vs each generator, and Shannon distributions, for seed 0."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder = out_dir / "generation"
    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (row, report) in zip(axes, reports.items()):
        coords = report.ordination.coordinates
        axis_names = [c for c in coords.columns if c not in ("source", "sample_id", "label")][:2]
        explained = report.ordination.proportion_explained
        for (source, label), part in coords.groupby(["source", "label"]):
            ax.scatter(part[axis_names[0]], part[axis_names[1]], s=10, alpha=0.6,
                       marker="o" if source == "real" else "x", label=f"{source} {label}")
        ax.set_xlabel(f"{axis_names[0]} ({explained.iloc[0]:.0%})")
        ax.set_ylabel(f"{axis_names[1]} ({explained.iloc[1]:.0%})")
        auc = report.summary.loc[ALL, "two_sample_auc"]
        ax.set_title(f"{row} vs real test\ntwo-sample AUC {auc:.2f}", fontsize=10)
        ax.legend(fontsize=7)
    ax = axes[2]
    shown = False
    for row, report in reports.items():
        samples = report.alpha.samples
        if not shown:
            ax.hist(samples[samples.source == "real"].shannon, bins=30, alpha=0.4, density=True, label="real test")
            shown = True
        ax.hist(samples[samples.source == "synthetic"].shannon, bins=30, histtype="step", density=True, lw=1.5,
                label=row)
    ax.set_xlabel("Shannon (natural log), MGM-vocabulary genera")
    ax.set_title(f"{name}: alpha diversity", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path.relative_to(out_dir))


def main():
    p = parser(__doc__, "generation", quick=True)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6, help="epoch cap of pretrain_generator")
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--datasets", nargs="*", help="dataset names (default: both)")
    args = p.parse_args()
    earlier = earlier_results(args, "generation")
    if earlier:
        results, folder = earlier
        results["reading"] = reading(results)
        write(results, folder)
        return
    if not (SHARED / "data").is_dir():
        sys.exit(f"skipped: {SHARED / 'data'} is absent (the benchmark reads the shared real datasets)")
    if args.quick:
        args.seeds, args.epochs = 1, 1
    import torch
    torch.set_num_threads(1)  # 2 shared cores: one thread is faster under contention
    warnings.filterwarnings("ignore", category=FutureWarning)
    from qiime2.plugins import mgm
    started = time.time()
    load_start = os.getloadavg()
    general, = mgm.actions.general_model()
    datasets = load_datasets()
    if args.datasets:
        datasets = {k: v for k, v in datasets.items() if k in args.datasets}
    folder = args.out_dir = out_dir(args).resolve()
    results = {"date": time.strftime("%Y-%m-%d"), "machine": machine_info(), "versions": q2_versions(),
               "platform": platform.platform(),
               "settings": {"seeds": args.seeds, "epochs": args.epochs, "patience": args.patience,
                            "learning_rate": args.learning_rate, "quick": args.quick, "torch_threads": 1,
                            "test_fraction": TEST_FRACTION, "split_seed": SPLIT_SEED,
                            "bootstrap_concentration": CONCENTRATION, "n_estimators": N_ESTIMATORS},
               "load_average_start": [round(x, 2) for x in load_start], "datasets": {}}
    for name, (table, labels, groups, description) in datasets.items():
        say(f"{name}: {len(table)} samples")
        results["datasets"][name] = run_dataset(name, table, labels, groups, description, args, general)
        results["wall_s"] = round(time.time() - started, 1)
        results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        results["reading"] = reading(results)
        write(results, folder)  # partial results survive


if __name__ == "__main__":
    main()
