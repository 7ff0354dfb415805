"""generation.md and generation.json from benchmarks/generation.py's results: the tables and a reading written from
the numbers."""
import numpy as np

from _harness import say, write_json, write_markdown

CONCENTRATION = 100.0
ROWS = ("MGM generator", "bootstrap baseline", "MGM + MGnify means", "general model, unprompted",
        "reference: real train", "reference: train sentences")
ALL = "(all labels)"


def _fmt(stat, digits=3):
    if stat is None:
        return "n/a"
    if stat["n"] == 1 or stat["max"] - stat["min"] < 10 ** -digits:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ({stat['min']:.{digits}f}-{stat['max']:.{digits}f})"


def write(results, out_dir):
    write_json(out_dir / "generation.json", results, default=_json_default)
    settings = results["settings"]
    lines = [
        "# Generation: realism and usefulness of q2-mgm's synthetic samples against a bootstrap baseline",
        "",
        f"Run {results['date']} by `PYTHONPATH=. .venv/bin/python benchmarks/generation.py"
        f"{' --quick' if settings['quick'] else ''}`, {results['wall_s'] / 60:.1f} min in all. "
        f"Machine: {results['machine']['nproc']} CPUs ({results['machine']['cpu_model']}), "
        f"{results['machine']['ram_gb']} GB RAM, no GPU, torch on {settings['torch_threads']} thread, shared with "
        f"other jobs (load average {results['load_average_start']} at the start, {results['load_average_end']} at "
        f"the end). q2-mgm {results['versions']['q2-mgm']} ({results['versions']['commit']}), torch "
        f"{results['versions']['torch']}, transformers {results['versions']['transformers']}.",
        "",
        f"Budget per dataset and seed: `pretrain_generator` from the general model on the TRAIN corpus, at most "
        f"{settings['epochs']} epochs (early stopping, patience {settings['patience']}, learning rate "
        f"{settings['learning_rate']}, batch 32, 10% of train for validation); `fit_reconstructor` neural with its "
        f"defaults (up to 300 epochs, patience 10). {settings['seeds']} seed(s): each reruns pretraining, the neural "
        "reconstructor, generation, the baseline and every RandomForest; the train/test split is fixed. Cells give "
        "the mean over seeds and, in brackets, the range.",
        "",
        "All comparisons are against real TEST samples that no generator, reconstructor or classifier saw; synthetic "
        "sets have the test set's count per label (matched). Real profiles are the tokenizer's view: "
        "MGM-vocabulary genera, renormalised. **two-sample AUC**: RandomForest telling real test from synthetic "
        "(5-fold; 0.5 = indistinguishable, 1 = always told apart). **TSTR**: RandomForest trained on the synthetic "
        "samples, tested on the real test samples (label AUC); **TRTR**: trained on the real train samples, tested "
        "on the same test samples. **label fidelity**: a RandomForest trained on the real train samples scores "
        "each synthetic sample; AUC against the label it was generated for (0.5: the prompt left no trace; for the "
        "bootstrap and reference rows, made of train samples or noisy copies of them, it is near 1 by construction). "
        "**Spearman**: genus mean abundance / prevalence, real vs synthetic. **Shannon**, "
        "**observed genera**: medians (real test -> synthetic) and the Kolmogorov-Smirnov statistic. **PERMANOVA "
        "F**: Bray-Curtis pseudo-F of real vs synthetic (0 ~ no separation).",
        "",
        "Rows: *MGM generator* = `generate` with the fine-tuned label-prompted generator and the neural "
        "reconstructor; *bootstrap baseline* = `realism.bootstrap_baseline` on the train samples (Dirichlet "
        f"concentration {CONCENTRATION:g}); *MGM + MGnify means* = the same generated sentences with the no-training "
        "default reconstructor; *general model, unprompted* = the general model with no fine-tuning and no label "
        "(all labels only); *reference: real train* = a matched subset of real train samples (the floor: a perfect "
        "copy of the training distribution, scored against unseen samples); *reference: train sentences* = that "
        "subset's real sentences with neural abundances (the cost of ranks-to-abundances alone).",
    ]
    for name, data in results["datasets"].items():
        s = data["summary"]
        lines += ["", f"## {name}", "",
                  f"{data['description']}. {data['n_samples']} samples"
                  + (f" ({data['n_groups']} children)" if data["n_groups"] else "")
                  + f"; train {data['train']['n']} ({_counts(data['train']['per_label'])}"
                  + (f", {data['train']['n_groups']} children" if data["train"]["n_groups"] else "")
                  + f"), test {data['test']['n']} ({_counts(data['test']['per_label'])}"
                  + (f", {data['test']['n_groups']} children" if data["test"]["n_groups"] else "")
                  + f"). Train sentences: median {data['train_sentence_tokens']['median']:.0f} tokens, longest "
                  f"{data['train_sentence_tokens']['max']}; generate max_length {data['generate_max_length']}.",
                  "", "**All labels**", "",
                  "| generator | two-sample AUC | TSTR AUC | label fidelity AUC | abundance Spearman | "
                  "prevalence Spearman | Shannon median | Shannon KS | observed genera median | observed genera KS | "
                  "PERMANOVA F |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in ROWS:
            r = s["realism"].get(row, {}).get(ALL)
            if r is None:
                continue
            lines.append(
                f"| {row} | {_fmt(r['two_sample_auc'])} | {_fmt(r['tstr_auc'])} | {_fmt(r['label_fidelity_auc'])} | "
                f"{_fmt(r['abundance_spearman'])} | "
                f"{_fmt(r['prevalence_spearman'])} | {_fmt(r['shannon_real_median'], 2)} -> "
                f"{_fmt(r['shannon_synthetic_median'], 2)} | {_fmt(r['shannon_ks'])} | "
                f"{_fmt(r['observed_genera_real_median'], 1)} -> {_fmt(r['observed_genera_synthetic_median'], 1)} | "
                f"{_fmt(r['observed_genera_ks'])} | {_fmt(r['permanova_pseudo_f'], 1)} |")
        lines += ["", f"TRTR (RandomForest on real train, tested on real test): {_fmt(s['trtr_held_out_auc'])}.",
                  "", "**Per label** (real test vs synthetic samples of that label)", "",
                  "| generator | " + " | ".join(f"{label}: two-sample AUC | {label}: abundance Spearman | "
                                               f"{label}: PERMANOVA F" for label in data["test"]["per_label"]) + " |",
                  "|---|" + "---|---|---|" * len(data["test"]["per_label"])]
        for row in ROWS:
            per = s["realism"].get(row, {})
            if not all(label in per for label in data["test"]["per_label"]):
                continue
            lines.append(f"| {row} | " + " | ".join(
                f"{_fmt(per[label]['two_sample_auc'])} | {_fmt(per[label]['abundance_spearman'])} | "
                f"{_fmt(per[label]['permanova_pseudo_f'], 1)}" for label in data["test"]["per_label"]) + " |")
        timing = s["timing"]
        lines += ["", f"Pretraining: {_fmt(timing['pretrain_s'], 0)} s, {_fmt(s['pretraining_epochs_run'], 1)} epochs, "
                  f"best validation perplexity {_fmt(s['pretraining_best_validation_perplexity'], 2)}. Neural "
                  f"reconstructor fit: {_fmt(timing['fit_neural_reconstructor_s'], 1)} s. Generation (`generate`, "
                  f"sampling + reconstruction + artifact I/O): {_fmt(timing['generate_samples_per_s'], 1)} samples/s "
                  f"({data['test']['n']} samples in {_fmt(timing['generate_s'], 1)} s)."]
        if data.get("figure"):
            lines += ["", f"![{name}: PCoA and Shannon, seed 0]({data['figure']})"]
    lines += ["", "## Reconstructors: ranks to abundances", "",
              "Held-out test samples: Bray-Curtis between each real profile (MGM-vocabulary genera) and the "
              "reconstruction from its own sentence (lower is better); rank-median and neural are fitted on the "
              "train table with `fit_reconstructor`. *neural better* = share of test samples where neural's "
              "Bray-Curtis is lower.", "",
              "| dataset | uniform | mgnify-mean (default) | rank-median | neural | neural better than mgnify-mean | "
              "neural better than rank-median |", "|---|---|---|---|---|---|---|"]
    for name, data in results["datasets"].items():
        rec, better = data["summary"]["reconstructors_mean_bray_curtis"], data["summary"]["neural_better_share"]
        lines.append(f"| {name} | {_fmt(rec['uniform'])} | {_fmt(rec['mgnify-mean'])} | {_fmt(rec['rank-median'])} | "
                     f"{_fmt(rec['neural'])} | {_fmt(better['mgnify-mean'], 2)} | {_fmt(better['rank-median'], 2)} |")
    lines += ["", "## Reading", ""] + results.get("reading", ["(no reading: see the tables)"])
    write_markdown(out_dir / "generation.md", lines)
    say(f"wrote {out_dir / 'generation.md'} and generation.json")


def _counts(per_label):
    return ", ".join(f"{k} {v}" for k, v in per_label.items())


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return str(value)


def _compare(a, b, lower_is_better, margin=0.01):
    """'better', 'worse' or 'tied' for stats a vs b: tied when the means differ by less than margin or, over several
    seeds, the ranges overlap."""
    overlap = a["n"] > 1 and b["n"] > 1 and not (a["max"] < b["min"] or b["max"] < a["min"])
    if abs(a["mean"] - b["mean"]) < margin or overlap:
        return "tied"
    return "better" if (a["mean"] < b["mean"]) == lower_is_better else "worse"


REALISM_WORDS = {"better": "more realistic than", "worse": "less realistic than",
                 "tied": "about as realistic as"}
USE_WORDS = {"better": "more useful than", "worse": "less useful than", "tied": "about as useful as"}


def reading(results):
    """A plain reading of the numbers, written from them (not by hand)."""
    lines = []
    for name, data in results["datasets"].items():
        r = {row: data["summary"]["realism"].get(row, {}).get(ALL) for row in ROWS}
        m, b, ref = r["MGM generator"], r["bootstrap baseline"], r["reference: real train"]
        auc_m, auc_b, auc_ref = (x["two_sample_auc"]["mean"] for x in (m, b, ref))
        tstr_m, tstr_b = m["tstr_auc"]["mean"], b["tstr_auc"]["mean"]
        trtr = data["summary"]["trtr_held_out_auc"]["mean"]
        realism = _compare(m["two_sample_auc"], b["two_sample_auc"], lower_is_better=True)
        use = _compare(m["tstr_auc"], b["tstr_auc"], lower_is_better=False)
        use_words = USE_WORDS[use] if use != "tied" else \
            f"not clearly {'less' if tstr_m < tstr_b else 'more'} useful than"
        text = (f"- **{name}**: by the two-sample test MGM's generator is {REALISM_WORDS[realism]} the bootstrap "
                f"baseline (AUC {auc_m:.3f} vs {auc_b:.3f}{', within the seed range' if realism == 'tied' else ''}); "
                f"both are told apart from unseen real samples "
                f"{'far ' if min(auc_m, auc_b) - auc_ref > 0.1 else ''}more easily than a noise-free matched subset of the real train samples ({auc_ref:.3f}). As training data "
                f"it is {use_words} the baseline{' (the seed ranges overlap)' if use == 'tied' else ''}: TSTR {tstr_m:.3f} vs {tstr_b:.3f}, and {trtr:.3f} training on "
                f"the real train samples. A classifier trained on real samples recovers the prompted label of MGM's "
                f"samples with AUC {m['label_fidelity_auc']['mean']:.3f} (0.5 = no trace of the label).")
        ts = r["reference: train sentences"]
        if ts:
            text += (f" Decomposition: real train sentences given neural abundances already score "
                     f"{ts['two_sample_auc']['mean']:.3f} (from {auc_ref:.3f} for the real profiles), so the "
                     f"ranks-to-abundances step accounts for "
                     f"{'most' if ts['two_sample_auc']['mean'] - auc_ref > auc_m - ts['two_sample_auc']['mean'] else 'part'}"
                     f" of MGM's detectability; MGM's own sentences move it to {auc_m:.3f}.")
        text += (f" Generated samples hold fewer genera than real ones (median "
                 f"{m['observed_genera_synthetic_median']['mean']:.1f} vs {m['observed_genera_real_median']['mean']:.1f}"
                 f" in the test set; the bootstrap {b['observed_genera_synthetic_median']['mean']:.1f}); Shannon "
                 f"median {m['shannon_synthetic_median']['mean']:.2f} vs real {m['shannon_real_median']['mean']:.2f}.")
        um = r["MGM + MGnify means"]
        if um:
            text += (f" With the no-training MGnify-mean reconstructor (generate's default) the same sentences score "
                     f"two-sample AUC {um['two_sample_auc']['mean']:.3f}, Shannon median "
                     f"{um['shannon_synthetic_median']['mean']:.2f}: always detectable, too even.")
        gm = r["general model, unprompted"]
        if gm:
            text += (f" The general model, unprompted and not fine-tuned, scores {gm['two_sample_auc']['mean']:.3f}, "
                     f"with median {gm['observed_genera_synthetic_median']['mean']:.1f} genera per sample: it "
                     "generates MGnify-like samples, not this cohort's.")
        lines.append(text)
    for name, data in results["datasets"].items():
        rec = {k: v["mean"] for k, v in data["summary"]["reconstructors_mean_bray_curtis"].items()}
        best = min(rec, key=rec.get)
        lines.append(f"- Reconstructors on {name} (held-out samples, mean Bray-Curtis): best is {best} (" + ", ".join(
            f"{k} {v:.3f}" for k, v in sorted(rec.items(), key=lambda kv: kv[1])) + ").")
    return lines
