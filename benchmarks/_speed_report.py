"""speed.md and speed.json from benchmarks/speed.py's measurements: the table of targets, how each figure was made,
notes."""
from _harness import CpuWatch, fmt_s, write_json, write_markdown

TARGETS = {"embed_speedup": 20.0, "tokenize_speedup": 20.0, "scale_seconds": 60.0, "scale_gb": 4.0,
           "embed_max_abs_diff": 1e-4}


def shared_stats_count():
    from q2_mgm.core.vocab import genus_statistics
    return int(genus_statistics().duplicated(keep=False).sum())


def verdict(ok):
    return "PASS" if ok else "FAIL"



def agreement_row(label, a):
    shown = f"{a['n_identical']}/{a['n_upstream']}"
    if a["n_tie_order_only"]:
        shown += f" (+{a['n_tie_order_only']} tie order only)"
    if not a["same_samples"]:
        shown += f"; kept {a['n_q2']} vs {a['n_upstream']} samples"
    return (label, shown, "", "", "all (up to order of exact ties)", verdict(a["identical_up_to_tie_order"]))


def build_rows(r):
    rows = []
    e, t, s = r["embed"], r["tokenize"], r["scale"]
    for p in ("mean", "last"):
        sp = e["speedup"][p]
        rows.append((f"embed ECAM, {p} pooling: samples/s, table -> embeddings",
                     f"{e['q2']['samples_per_s'][p]:.1f}", f"{e['upstream']['samples_per_s']:.2f}",
                     f"{sp:.1f}x", f">= {TARGETS['embed_speedup']:.0f}x",
                     verdict(sp >= TARGETS["embed_speedup"])))
    rows.append(("embed ECAM, both poolings (q2-mgm: two passes; upstream: one)",
                 f"{e['q2']['both_poolings_samples_per_s']:.1f}", f"{e['upstream']['samples_per_s']:.2f}",
                 f"{e['speedup_both_poolings']:.1f}x", "-", "info"))
    rows.append(("embed ECAM, model forward only: samples/s (mean pooling)",
                 f"{e['q2']['forward_samples_per_s']['mean']:.1f}",
                 f"{e['upstream']['forward_samples_per_s']:.2f}", f"{e['forward_speedup']['mean']:.1f}x", "-",
                 "info"))
    rows.append(("embed ECAM, model loading", fmt_s(e["q2"]["model_load_s"]), fmt_s(e["upstream"]["model_load_s"]),
                 f"{e['upstream']['model_load_s'] / e['q2']['model_load_s']:.1f}x", "-", "info"))
    worst = max(e["max_abs_diff_vs_upstream"].values())
    rows.append((f"embed agreement, max abs diff vs upstream ({e['n_compared']} samples; mean / last)",
                 " / ".join(f"{v:.1e}" for v in e["max_abs_diff_vs_upstream"].values()), "", "",
                 f"<= {TARGETS['embed_max_abs_diff']:.0e}", verdict(worst <= TARGETS["embed_max_abs_diff"])))
    fx = max(e["max_abs_diff_vs_fixtures"].values())
    rows.append((f"embed agreement, max abs diff vs parity fixtures ({e['n_q2_embedded']} samples; mean / last)",
                 " / ".join(f"{v:.1e}" for v in e["max_abs_diff_vs_fixtures"].values()), "", "",
                 f"<= {TARGETS['embed_max_abs_diff']:.0e}", verdict(fx <= TARGETS["embed_max_abs_diff"])))
    rows.append((f"tokenize synthetic {t['n_samples']} x {t['n_genera']}: samples/s",
                 f"{t['q2_samples_per_s']:,.0f}", f"{t['upstream_samples_per_s']:,.0f}", f"{t['speedup']:.1f}x",
                 f">= {TARGETS['tokenize_speedup']:.0f}x", verdict(t["speedup"] >= TARGETS["tokenize_speedup"])))
    rows.append(agreement_row("tokenize synthetic: sentences identical to upstream", t["agreement"]))
    et = e["tokenize"]
    rows.append((f"tokenize ECAM {et['n_samples']} samples: time", fmt_s(et["q2_s"]), fmt_s(et["upstream_s"]),
                 f"{et['speedup']:.1f}x", "-", "info"))
    rows.append(agreement_row("tokenize ECAM: sentences identical to upstream", et["agreement"]))
    q = s["q2"]
    u = s["upstream_estimate"]
    rows.append((f"scale {s['n_samples']:,} x {s['n_genera']:,} sparse: tokenize time",
                 fmt_s(q["tokenize_s"]), f"~{fmt_s(u['estimated_s'])} (estimate)",
                 f"~{s['speedup_estimate']:.0f}x", f"< {TARGETS['scale_seconds']:.0f} s",
                 verdict(q["tokenize_s"] < TARGETS["scale_seconds"])))
    rows.append(("scale: peak memory while tokenizing (input held included)",
                 f"{q['tokenize_peak_mb'] / 1024:.2f} GB", f">= {u['dense_copy_gb']:.0f} GB (one dense copy)",
                 "", f"< {TARGETS['scale_gb']:.0f} GB", verdict(q["tokenize_peak_mb"] / 1024 < TARGETS["scale_gb"])))
    rows.append(("scale: whole process peak (building the input included)", f"{q['process_peak_mb'] / 1024:.2f} GB",
                 "", "", "-", "info"))
    rows.append(agreement_row(f"scale: first {u['slice_samples']} samples, sentences identical to upstream",
                              u["slice_agreement"]))
    return rows


def write_speed_markdown(path, r):
    rows = build_rows(r)
    e, t, s = r["embed"], r["tokenize"], r["scale"]
    m, q2v, upv = r["machine"], r["versions"]["q2"], r["versions"]["upstream"]
    lines = [
        "# q2-mgm speed vs upstream MGM", "",
        f"Run {r['date']} ({'QUICK smoke run, small sizes: not the reference figures' if r['quick'] else 'full run'}),"
        f" {fmt_s(r['total_s'])} in all, by `benchmarks/speed.py{' --quick' if r['quick'] else ''}`.",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gb']} GB RAM, {m['os']}, Linux {m['kernel']}; "
        "CPU only. Each measured phase waited for the machine to be idle; share of the CPUs that other processes "
        "took during each: " + ", ".join(f"{k} {v['other_cpu_share']:.0%}" for k, v in r["contention"].items()) + ".",
        f"q2-mgm {q2v['q2-mgm']} (commit {q2v['commit']}): Python {q2v['python']}, torch {q2v['torch']}, "
        f"transformers {q2v['transformers']}, numpy {q2v['numpy']}, pandas {q2v['pandas']}, scipy {q2v['scipy']}.",
        f"Upstream microformer-mgm {upv['microformer-mgm']}: Python {upv['python']}, torch {upv['torch']}, "
        f"transformers {upv['transformers']}, numpy {upv['numpy']}, pandas {upv['pandas']} "
        "(its own venv, benchmarks/.upstream-venv).", "",
        "| measurement | q2-mgm | upstream | ratio | target | result |",
        "|---|---:|---:|---:|---|---|",
        *[f"| {' | '.join(row)} |" for row in rows], "",
        f"Targets: {r['summary']['passed']} passed, {r['summary']['failed']} failed"
        + (f" ({', '.join(r['summary']['failed_rows'])})." if r["summary"]["failed"] else "."), "",
        "## How each figure was made", "",
        f"- **embed** (ECAM, {e['n_table_samples']} real samples x 561 Greengenes L7 lineages, "
        "`parity/t4_ecam_real_L7.input.csv`): samples/s = 1 / per-sample seconds from the table to embeddings, "
        "model loading apart (reported on its own row). Tokenizing is charged per sample over the whole table. "
        f"Upstream: `MicroCorpus(abu=..., preprocess=True, max_len=512)` on all {e['n_table_samples']} samples "
        f"({fmt_s(e['upstream']['microcorpus_s'])}), then `GPT2LMHeadModel` (eval, `no_grad`, "
        "`output_hidden_states=True`, attention_mask = tokens != 0) in batches of "
        f"{e['upstream']['batch_size']} padded to {e['upstream']['padded_to']} tokens, **timed on the first "
        f"{e['n_upstream_embedded']} samples only** ({fmt_s(e['upstream']['forward_s'])}); every upstream sample is "
        "padded to 512, so its per-sample cost does not depend on which samples are run. Both poolings (final hidden "
        "state after ln_f: at the last non-pad token, and the mean over non-pad tokens) come from that one pass. "
        f"q2-mgm: `tokenize_dataframe` ({fmt_s(e['q2']['tokenize_s'])}, median), `encode` and `sample_embeddings` "
        f"once per pooling on {e['n_q2_embedded']} samples after an untimed warm-up call on 4 samples (mean {fmt_s(e['q2']['forward_s']['mean'])}, last "
        f"{fmt_s(e['q2']['forward_s']['last'])}); q2-mgm packs samples by length instead of padding to 512. "
        "The both-poolings row charges q2-mgm two passes (its API computes one pooling per call). "
        f"Agreement: the {e['n_compared']} samples upstream embedded, and all {e['n_q2_embedded']} against the "
        "parity fixtures. torch threads: "
        f"q2-mgm {e['q2']['torch_threads']}, upstream {e['upstream']['torch_threads']}.",
        f"- **tokenize**: a seeded synthetic table of {t['n_samples']} samples x {t['n_genera']} genera drawn from "
        "MGM's vocabulary (`parity/vocab.txt`), taxonomy strings `k__Bacteria;p__;c__;o__;f__;g__Name;s__`, "
        "40% of cells non-zero with log-normal counts, 1% of samples all zero "
        f"(dropped by both; {t['n_kept']} kept, {t['mean_genera_per_sample']:.0f} genera each on average). "
        "Both sides get the same samples x taxa DataFrame; the times are upstream's `MicroCorpus(...)` construction "
        f"and q2-mgm's `tokenize_dataframe`, each the median of {len(t['q2_runs_s'])} runs (q2-mgm re-reads MGM's "
        "per-genus statistics in every run, as every upstream construction does). Sentences are compared as strings.",
        f"- **scale**: {s['n_samples']:,} samples x {s['n_genera']:,} genera (MGM's whole vocabulary) built directly "
        f"as a scipy CSR matrix ({s['input']['nnz']:,} non-zeros, {s['input']['nonzero_per_sample']['mean']:.0f} "
        f"per sample on average, min {s['input']['nonzero_per_sample']['min']}, max "
        f"{s['input']['nonzero_per_sample']['max']}; Zipf genus popularity, log-normal richness and counts; "
        f"{s['output']['n_truncated']:,} samples exceed 511 genera and are truncated) and tokenized with "
        "`tokenize_matrix` in a separate process (`benchmarks/_scale_worker.py`). "
        f"Memory: the process held {s['q2']['input_held_mb'] / 1024:.2f} GB after building the input "
        f"(CSR arrays {s['input']['csr_mb'] / 1024:.2f} GB; building peaked at "
        f"{s['q2']['input_build_peak_mb'] / 1024:.2f} GB); the peak while tokenizing "
        f"({s['q2']['tokenize_peak_mb'] / 1024:.2f} GB, VmHWM after resetting it once the input was built"
        f"{'' if s['q2']['peak_reset_worked'] else ' - the reset failed, so this is the whole-process peak'}) "
        f"includes that input, i.e. tokenizing itself added {s['q2']['tokenize_extra_mb'] / 1024:.2f} GB. The "
        f"whole-process peak (ru_maxrss from wait4) is {s['q2']['process_peak_mb'] / 1024:.2f} GB. Building the input "
        f"took {fmt_s(s['q2']['build_input_s'])}.",
        f"- **upstream at scale is an estimate**, not a run: upstream's `MicroCorpus` took "
        f"{fmt_s(s['upstream_estimate']['slice_s'])} on the first {s['upstream_estimate']['slice_samples']:,} samples "
        f"of the same table ({s['upstream_estimate']['per_1000_samples_s']:.1f} s per 1,000 samples), extrapolated "
        f"linearly to {s['n_samples']:,} samples: ~{fmt_s(s['upstream_estimate']['estimated_s'])}. Upstream also "
        f"holds the table dense: {s['upstream_estimate']['dense_copy_gb']:.0f} GB per float64 copy, and its "
        "pre-processing (reindexing to the vocabulary, fillna, transposes, division, z-scoring) makes several"
        + (", so it would not fit in this machine's memory at all; the estimate ignores that."
           if s['upstream_estimate']['dense_copy_gb'] * 2 > m['ram_gb'] else "."),
    ]
    if r["notes"]:
        lines += ["", "## Notes", "", *[f"- {n}" for n in r["notes"]]]
    write_markdown(path, lines)
    return rows


def make_notes(results):
    stamp = results["versions"]["upstream_venv"]
    notes = list(stamp.get("notes", []))
    setuptools = stamp.get("installed", {}).get("setuptools", "?")
    notes.append(f"Besides the requested pins, the upstream venv holds setuptools {setuptools} "
                 + ("(upstream's own pin)" if setuptools == "68.0.0" else "(upstream pins 68.0.0)")
                 + ": upstream's `mgm` package imports `pkg_resources`, which setuptools 81 and later no longer "
                 "ship. The requested pins installed as asked unless a note above says otherwise.")
    ties = {name: a for name, a in (("synthetic", results["tokenize"]["agreement"]),
                                    ("ECAM", results["embed"]["tokenize"]["agreement"]),
                                    ("scale slice", results["scale"]["upstream_estimate"]["slice_agreement"]))
            if a["n_tie_order_only"]}
    if ties:
        example = next(iter(ties.values()))["tie_order_examples"][0]
        notes.append(
            "Sentences that differ only in the order of exactly tied genera: "
            + ", ".join(f"{a['n_tie_order_only']} of {a['n_compared']} ({name})" for name, a in ties.items())
            + ". Such genera have equal z-scores: equal counts in the sample and equal MGnify mean and std "
            f"({shared_stats_count()} rare genera of the vocabulary share their mean and std with another). "
            "Upstream orders them with pandas' default, unstable quicksort (`sort_values(ascending=False)`), so its "
            "order among ties is an artifact of numpy's sort; q2-mgm puts them in vocabulary order. Example: sample "
            f"{example['sample']}, q2-mgm {' '.join(example['q2'])} vs upstream {' '.join(example['upstream'])} "
            f"(z = {example['z'][0]:.6g} for each). Everything else is identical, token for token.")
    noisy = {k: v["other_cpu_share"] for k, v in results["contention"].items()
             if v["other_cpu_share"] >= CpuWatch.IDLE_SHARE}
    if noisy:
        notes.append("Other processes used the CPUs during " + ", ".join(f"{k} ({v:.0%})" for k, v in noisy.items())
                     + ": those timings are pessimistic.")
    if results["quick"]:
        notes.append("QUICK run: sizes are reduced (see speed.json `sizes`); the reference figures come from a full "
                     "run.")
    return notes


def report(results, out_dir):
    """Notes, summary, speed.md and speed.json from the measured results; a table on stdout."""
    results["notes"] = make_notes(results)
    rows = build_rows(results)
    failed = [row[0] for row in rows if row[5] == "FAIL"]
    results["summary"] = {"passed": sum(row[5] == "PASS" for row in rows), "failed": len(failed),
                          "failed_rows": failed}
    write_speed_markdown(out_dir / "speed.md", results)
    write_json(out_dir / "speed.json", results)
    width = max(len(row[0]) for row in rows)
    print()
    for row in rows:
        print(f"{row[0]:<{width}}  q2-mgm {row[1]:>14}  upstream {row[2]:>24}  {row[3]:>8}  {row[4]:>9}  {row[5]}")
    print(f"\n{results['summary']['passed']} targets passed, {len(failed)} failed; "
          f"total {fmt_s(results['total_s'])}; wrote {out_dir / 'speed.md'} and speed.json")

