#!/usr/bin/env python3
"""Pretraining throughput and memory of q2-mgm against upstream MGM (microformer-mgm 0.5.8), side by side in one run.

    .venv/bin/python benchmarks/pretrain.py             # full run: writes benchmarks/results/pretrain.{md,json}
    .venv/bin/python benchmarks/pretrain.py --quick     # smoke run, small sizes: writes benchmarks/work/quick/
    .venv/bin/python benchmarks/pretrain.py --from-json benchmarks/results/pretrain.json   # re-render the .md only

Both sides pretrain a GPT-2 language model from scratch on the same N real ECAM samples (../shared/data/ecam/
genus_counts.tsv; a seeded random subset), for two model sizes: small (2 layers x 2 heads x 64) and upstream's
(8 x 8 x 256, 512 positions). Batch size 32, 10% of the samples held out for validation on both sides.

  q2-mgm    tokenize_dataframe, encode with the general model's vocabulary, then
            q2_mgm.core.pretraining.pretrain(new_model(new_model_config(...)), token_ids, PretrainingSettings(...))
            in its own process (benchmarks/_pretrain_worker.py): batches padded to their longest sentence, grouped
            by length; validation after every epoch (timed apart).
  upstream  its own recipe in its own venv (benchmarks/.upstream-venv, built by benchmarks/_upstream_venv.py;
            accelerate, which upstream requires for its Trainer, is added here): MicroCorpus on the same samples
            (every sentence padded to 512), then main_pretrain.py's Trainer arguments with epochs fixed and no
            evaluation or checkpoints during the run (benchmarks/_pretrain_upstream.py). Upstream's steps at the
            upstream size take about a minute each on 2 CPU cores, so there it runs the first --upstream-steps
            steps of the epoch (same corpus, same batches of 32 x 512 tokens; its cost per step does not depend on
            which sentences are in it).

Measured per run: training wall time (Trainer.train, q2-mgm's per-epoch validation subtracted; imports, tokenizing
and model building excluded), real tokens/s (non-pad tokens in the training batches / time), sentences/s, padded
tokens/s (every token the model ran, padding included), peak RSS while training (VmHWM reset just before
Trainer.train) and of the whole process (ru_maxrss from wait4), torch threads. Each configuration runs in its own
process, one after another; each first waits (up to --max-wait s) for other processes to leave the CPUs idle, and
the share of CPU they took during it is recorded. Runs with more than one torch thread are skipped when the machine
is still busy after that wait. On a GPU (torch.cuda.is_available()) the q2-mgm rows are repeated on cuda, and the
upstream rows where the upstream venv's torch sees the GPU too. Needs ../shared; skips without it.
"""
import datetime
import json
import os
import pathlib
import signal
import sys
import tempfile
import time

import _harness
from _harness import (BENCH, ROOT, SHARED, CpuWatch, child_failed, clean_env, finish, fmt_s, machine_info,
                      measuring, mem_available_mb, parser, q2_versions, say, write_json, write_markdown)
from _upstream_venv import UPSTREAM_PYTHON, ensure_upstream_accelerate, ensure_upstream_venv, upstream_sees_cuda

ECAM_TABLE = SHARED / "data" / "ecam" / "genus_counts.tsv"

MODEL_SIZES = {
    "small": {"n_layer": 2, "n_head": 2, "n_embd": 64, "n_positions": 512},
    "upstream-sized": {"n_layer": 8, "n_head": 8, "n_embd": 256, "n_positions": 512},
}
SIZES = {
    "full": {"n_samples": 320, "epochs": 1, "batch_size": 32, "upstream_steps": {"small": 0, "upstream-sized": 2}},
    "quick": {"n_samples": 48, "epochs": 1, "batch_size": 16, "upstream_steps": {"small": 0, "upstream-sized": 1}},
}
SEED = 20240607
WATCH = CpuWatch(max_wait_s=60)


# ---------------------------------------------------------------- child processes

def run_child(python, script, config, workdir, name, threads):
    """Run `python script config.json` alone. Returns the child's result.json plus wall, peak RSS (wait4) and the
    CPU share other processes took; or None when a multi-threaded run is skipped because the machine is busy."""
    waited, share = WATCH.wait_idle(name)
    if share >= WATCH.IDLE_SHARE:
        if threads > 1:
            say(f"  skipping {name}: other processes still take {share:.0%} of the CPUs after {waited:.0f} s, and "
                f"{threads} torch threads would compete with them")
            return {"skipped": f"machine busy: other processes took {share:.0%} of the CPUs after waiting "
                               f"{waited:.0f} s", "waited_for_idle_s": round(waited, 1)}
        say(f"  warning: other processes still take {share:.0%} of the CPUs after {waited:.0f} s; measuring {name} "
            "anyway (its timings will be pessimistic)")
    out = workdir / name
    env = clean_env() if python == UPSTREAM_PYTHON else {**os.environ, "PYTHONPATH": str(ROOT)}
    available = mem_available_mb()
    with WATCH.phase(name, waited):
        code, wall, usage = _harness.run_child(python, script, {**config, "out": str(out)}, workdir, name, env)
    if code == -signal.SIGKILL:  # the kernel's OOM killer, most likely: record it, go on with the other runs
        say(f"  {name} was killed (SIGKILL) after {wall:.0f} s; {available / 1024:.1f} GB were available at its start")
        return {"skipped": f"killed by SIGKILL after {wall:.0f} s, most likely out of memory "
                           f"({available / 1024:.1f} GB available at its start)", "waited_for_idle_s": round(waited, 1)}
    if code != 0:
        child_failed(name, code, workdir)
    result = json.loads((out / "result.json").read_text())
    result.update({"child_wall_s": wall, "child_peak_rss_mb": usage.ru_maxrss / 1024,
                   **WATCH.phases[name]})
    return result


# ---------------------------------------------------------------- inputs

def prepare_inputs(n_samples, workdir):
    """The same N ECAM samples for both: q2-mgm's token ids (.npz) and upstream's table (.csv, genera x samples)."""
    import numpy as np
    from q2_mgm.core.inference import encode
    from q2_mgm.core.models import load_general_model
    from q2_mgm.core.tokenizer import tokenize_dataframe

    from tests.helpers import read_genus_table

    table = read_genus_table("ecam")
    corpus = tokenize_dataframe(table)
    kept = corpus.samples.index
    rng = np.random.default_rng(SEED)
    chosen = set(rng.choice(np.asarray(kept), size=min(n_samples, len(kept)), replace=False))
    ids = [sid for sid in kept if sid in chosen]  # table order
    _, vocabulary, _ = load_general_model()
    token_ids = encode(corpus.samples.loc[ids, "sentence"], vocabulary)
    lengths = np.array([len(t) for t in token_ids])
    np.savez(workdir / "tokens.npz", ids=np.concatenate(token_ids),
             offsets=np.concatenate([[0], np.cumsum(lengths)]), sample_ids=np.asarray(ids, dtype=str))
    table.loc[ids].T.to_csv(workdir / "abundance.csv")  # upstream's orientation: rows = genera, columns = samples
    return {"n_table_samples": len(table), "n_kept_by_q2": len(kept), "n_samples": len(ids),
            "vocab_size": len(vocabulary), "lengths": dict(zip(ids, lengths.tolist())),
            "tokens_per_sentence": {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
                                    "min": int(lengths.min()), "max": int(lengths.max())}}


# ---------------------------------------------------------------- measuring

def throughput(r):
    """Figures from one child's result: real/padded tokens and sentences per second of training time."""
    if r is None or "skipped" in r:
        return r
    c = r["counts"]["train"]
    s = r["train_s"]
    mem = r["memory_mb"]
    if c["batches"] != r["steps"]:
        raise SystemExit(f"counted {c['batches']} training batches but the Trainer took {r['steps']} steps")
    return {"train_s": s, "sentences": c["rows"], "steps": c["batches"], "real_tokens": c["real_tokens"],
            "padded_tokens": c["padded_tokens"], "real_tokens_per_s": c["real_tokens"] / s,
            "sentences_per_s": c["rows"] / s, "padded_tokens_per_s": c["padded_tokens"] / s,
            "padding_share": 1 - c["real_tokens"] / c["padded_tokens"],
            "train_peak_rss_mb": mem["train_peak"], "rss_before_train_mb": mem["before_train"]["VmRSS"],
            "process_peak_rss_mb": r["child_peak_rss_mb"], "cuda_peak_mb": r.get("cuda_peak_mb"),
            "torch_threads": r["torch_threads"], "other_cpu_share": r["other_cpu_share"]}


def ratios(q2, up):
    if not q2 or not up or "skipped" in q2 or "skipped" in up:
        return None
    return {"real_tokens_per_s": q2["real_tokens_per_s"] / up["real_tokens_per_s"],
            "sentences_per_s": q2["sentences_per_s"] / up["sentences_per_s"],
            "padded_tokens_per_s": q2["padded_tokens_per_s"] / up["padded_tokens_per_s"],
            "train_peak_rss": q2["train_peak_rss_mb"] / up["train_peak_rss_mb"],
            "process_peak_rss": q2["process_peak_rss_mb"] / up["process_peak_rss_mb"],
            **({"cuda_peak": q2["cuda_peak_mb"] / up["cuda_peak_mb"]}
               if q2.get("cuda_peak_mb") and up.get("cuda_peak_mb") else {})}


def check_sentences(inputs, upstream_result):
    """Upstream's sentence lengths (bos and eos included, before padding) against q2-mgm's, sample by sample."""
    up = dict(zip(upstream_result["sample_ids"], upstream_result["lengths"]))
    q2 = inputs["lengths"]
    same = sum(up.get(sid) == n for sid, n in q2.items())
    return {"same_samples": set(up) == set(q2), "n_same_length": same, "n": len(q2),
            "real_tokens_q2": int(sum(q2.values())), "real_tokens_upstream": int(sum(up.values()))}


def bench(sizes, threads_list, devices, upstream_devices, inputs, workdir):
    runs = {}
    base = {"epochs": sizes["epochs"], "batch_size": sizes["batch_size"], "seed": 0}
    for size_name, dims in MODEL_SIZES.items():
        runs[size_name] = {}
        for device in devices:
            for threads in threads_list if device == "cpu" else [threads_list[0]]:
                key = f"{device}, {threads} thread{'s' if threads > 1 else ''}" if device == "cpu" else device
                cfg = {**base, **dims, "threads": threads, "device": device}
                say(f"{size_name} ({dims['n_layer']} x {dims['n_head']} x {dims['n_embd']}), {key}: q2-mgm")
                q2 = run_child(sys.executable, BENCH / "_pretrain_worker.py",
                               {**cfg, "tokens": str(workdir / "tokens.npz"), "vocab_size": inputs["vocab_size"]},
                               workdir, f"q2_{size_name}_{device}_{threads}t", threads)
                if "skipped" in q2:  # no ratio without it: spare the wait
                    up = {"skipped": "not run, as q2-mgm's run at this setting was skipped"}
                elif device in upstream_devices:
                    steps = sizes["upstream_steps"][size_name]
                    say(f"{size_name}, {key}: upstream" + (f" (first {steps} steps)" if steps else ""))
                    up = run_child(UPSTREAM_PYTHON, BENCH / "_pretrain_upstream.py",
                                   {**cfg, "csv": str(workdir / "abundance.csv"), "max_steps": steps},
                                   workdir, f"upstream_{size_name}_{device}_{threads}t", threads)
                else:
                    up = {"skipped": f"the upstream venv's torch does not see the {device} device"}
                row = {"q2": throughput(q2), "upstream": throughput(up), "device": device, "threads": threads}
                row["ratio"] = ratios(row["q2"], row["upstream"])
                row["q2_detail"] = {k: q2.get(k) for k in ("pretrain_call_s", "train_call_s", "eval_s",
                                                            "n_evaluations", "n_train", "n_validation",
                                                            "train_split_real_tokens", "parameters", "memory_mb",
                                                            "child_wall_s", "attn_implementation", "train_loss")} \
                    if "skipped" not in q2 else q2
                if "skipped" not in up:
                    row["upstream_detail"] = {k: up.get(k) for k in (
                        "construct_s", "trainer_train_runtime_s", "max_steps", "n_train", "n_validation",
                        "train_split_real_tokens", "parameters", "memory_mb", "child_wall_s", "padded_to",
                        "train_loss")}
                    row["sentence_check"] = check_sentences(inputs, up)
                    row["versions_upstream"] = up["versions"]
                else:
                    row["upstream_detail"] = up
                if "skipped" not in q2:
                    row["versions_q2"] = q2["versions"]
                runs[size_name][key] = row
                show(size_name, key, row)
    return runs


def show(size_name, key, row):
    q2, up, ratio = row["q2"], row["upstream"], row["ratio"]
    for side, r in (("q2-mgm", q2), ("upstream", up)):
        if r and "skipped" not in r:
            say(f"  {side:9} {r['real_tokens_per_s']:10.1f} real tokens/s, {r['sentences_per_s']:7.2f} sentences/s, "
                f"{r['padded_tokens_per_s']:9.0f} padded tokens/s; {r['train_s']:.1f} s for {r['sentences']} "
                f"sentences; training peak RSS {r['train_peak_rss_mb'] / 1024:.2f} GB")
        elif r:
            say(f"  {side:9} skipped: {r['skipped']}")
    if ratio:
        say(f"  q2-mgm / upstream: real tokens/s {ratio['real_tokens_per_s']:.1f}x, training peak RSS "
            f"{ratio['train_peak_rss']:.2f}x")


# ---------------------------------------------------------------- report

def fmt_mb(mb):
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def fmt_rate(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def table_rows(row):
    q2, up, ratio = row["q2"], row["upstream"], row["ratio"] or {}
    ok = lambda r: r and "skipped" not in r  # noqa: E731

    def cell(r, fn):
        return fn(r) if ok(r) else "skipped"

    rows = [
        ("real tokens/s", lambda r: fmt_rate(r["real_tokens_per_s"]), "real_tokens_per_s", "x"),
        ("sentences/s", lambda r: fmt_rate(r["sentences_per_s"]), "sentences_per_s", "x"),
        ("padded tokens/s (all tokens run)", lambda r: fmt_rate(r["padded_tokens_per_s"]), "padded_tokens_per_s",
         "x"),
        ("padding share of the tokens run", lambda r: f"{r['padding_share']:.0%}", None, None),
        ("training wall time", lambda r: f"{fmt_s(r['train_s'])} ({r['sentences']} sentences, "
                                         f"{r['steps']} step{'s' if r['steps'] != 1 else ''})", None, None),
        ("peak RSS while training", lambda r: fmt_mb(r["train_peak_rss_mb"]), "train_peak_rss", "frac"),
        ("peak RSS, whole process", lambda r: fmt_mb(r["process_peak_rss_mb"]), "process_peak_rss", "frac"),
    ]
    if ok(q2) and q2.get("cuda_peak_mb"):
        rows.append(("peak CUDA memory allocated", lambda r: fmt_mb(r["cuda_peak_mb"]) if r.get("cuda_peak_mb")
                     else "-", "cuda_peak", "frac"))
    out = []
    for label, fn, rkey, kind in rows:
        shown = ""
        if rkey and rkey in ratio:
            shown = f"**{ratio[rkey]:.1f}x**" if kind == "x" else f"{ratio[rkey]:.2f}"
        out.append((label, cell(q2, fn), cell(up, fn), shown))
    return out


def write_pretrain_markdown(path, r):
    m, sz, inp = r["machine"], r["sizes"], r["inputs"]
    q2v, upv = r["versions"]["q2"], r["versions"]["upstream"] or {}
    contention = ", ".join(f"{k} {v['other_cpu_share']:.0%}" for k, v in r["contention"].items())
    lines = [
        "# q2-mgm pretraining throughput and memory vs upstream MGM", "",
        f"Run {r['date']} ({'QUICK smoke run, small sizes: not the reference figures' if r['quick'] else 'full run'}),"
        f" {fmt_s(r['total_s'])} in all, by `benchmarks/pretrain.py{' --quick' if r['quick'] else ''}`.",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gb']} GB RAM, {m['os']}, Linux {m['kernel']}. "
        + ("GPU: " + r["gpu"]["name"] + "." if r["gpu"]["available"] else
           "**No GPU was lent to this run: the GPU rows are absent** (CPU only)."),
        f"q2-mgm {q2v['q2-mgm']} (commit {q2v['commit']}): Python {q2v['python']}, torch {q2v['torch']}, "
        f"transformers {q2v['transformers']}, accelerate {r['versions']['q2_accelerate']}.",
        f"Upstream microformer-mgm {upv.get('microformer-mgm', '?')}: Python {upv.get('python', '?')}, torch "
        f"{upv.get('torch', '?')}, transformers {upv.get('transformers', '?')}, accelerate "
        f"{upv.get('accelerate', '?')} (its own venv, benchmarks/.upstream-venv).",
        f"Share of the CPUs other processes took during each run: {contention}.", "",
        f"Data: {inp['n_samples']} real ECAM samples (a seeded random subset of {inp['n_table_samples']}), the same "
        f"for both; sentences of {inp['tokens_per_sentence']['mean']:.1f} tokens on average (median "
        f"{inp['tokens_per_sentence']['median']:.0f}, {inp['tokens_per_sentence']['min']}-"
        f"{inp['tokens_per_sentence']['max']}; <bos> and <eos> included). Batch size {sz['batch_size']}, "
        f"{sz['epochs']} epoch{'s' if sz['epochs'] > 1 else ''}, 10% held out for validation on both sides. "
        "Ratios are q2-mgm / upstream: above 1 for throughput means q2-mgm is faster; below 1 for memory means "
        "q2-mgm uses less.", "",
    ]
    headline = []
    for size_name, dims in MODEL_SIZES.items():
        for key, row in r["runs"][size_name].items():
            if row["ratio"]:
                headline.append(f"{size_name}, {key}: **{row['ratio']['real_tokens_per_s']:.1f}x** real tokens/s, "
                                f"training peak RSS {fmt_mb(row['q2']['train_peak_rss_mb'])} vs "
                                f"{fmt_mb(row['upstream']['train_peak_rss_mb'])}")
    if headline:
        lines += ["Summary: " + "; ".join(headline) + ".", ""]
    for size_name, dims in MODEL_SIZES.items():
        steps = sz["upstream_steps"][size_name]
        lines += [f"## {size_name}: {dims['n_layer']} layers x {dims['n_head']} heads x {dims['n_embd']}, "
                  f"{dims['n_positions']} positions, from scratch", ""]
        first = next(iter(r["runs"][size_name].values()))
        params = (first.get("q2_detail") or {}).get("parameters")
        if params:
            lines += [f"{params:,} parameters (the same on both sides)." if params == (
                first.get("upstream_detail") or {}).get("parameters") else f"{params:,} parameters (q2-mgm).", ""]
        if steps:
            lines += [f"Upstream ran the first {steps} optimizer step{'s' if steps > 1 else ''} of its epoch "
                      f"here ({steps} x "
                      f"{sz['batch_size']} sentences, each padded to 512 tokens): a full epoch takes minutes per "
                      "configuration on this machine. q2-mgm ran the whole epoch.", ""]
        for key, row in r["runs"][size_name].items():
            if all(row[side] and "skipped" in row[side] for side in ("q2", "upstream")):
                lines += [f"**{key}**: not measured; q2-mgm: {row['q2']['skipped']}; upstream: "
                          f"{row['upstream']['skipped']}.", ""]
                continue
            lines += [f"**{key}**" + (f" (other processes: q2-mgm {row['q2']['other_cpu_share']:.0%}, upstream "
                                      f"{row['upstream']['other_cpu_share']:.0%} of the CPUs)"
                                      if row["ratio"] else ""), "",
                      "| measure | q2-mgm | upstream | q2-mgm / upstream |", "|---|---:|---:|---:|",
                      *[f"| {' | '.join(t)} |" for t in table_rows(row)], ""]
            qd = row.get("q2_detail") or {}
            if qd.get("pretrain_call_s") is not None:
                lines += [f"q2-mgm's whole `pretrain()` call took {fmt_s(qd['pretrain_call_s'])}: training "
                          f"{fmt_s(row['q2']['train_s'])}, validation {fmt_s(qd['eval_s'])} "
                          f"({qd['n_evaluations']} pass{'es' if qd['n_evaluations'] != 1 else ''} over "
                          f"{qd['n_validation']} sentences), the rest setting up the Trainer and keeping the best "
                          "weights.", ""]
            for side in ("q2", "upstream"):
                if row[side] and "skipped" in row[side]:
                    lines += [f"{'q2-mgm' if side == 'q2' else 'upstream'} skipped: {row[side]['skipped']}.", ""]
    lines += ["## How the figures were made", "", *[f"- {n}" for n in r["method"]]]
    if r["notes"]:
        lines += ["", "## Notes", "", *[f"- {n}" for n in r["notes"]]]
    write_markdown(path, lines)


def method_notes(r):
    sz = r["sizes"]
    return [
        "**Same input.** The N samples are read from `../shared/data/ecam/genus_counts.tsv` (samples x genera). "
        "q2-mgm: `tokenize_dataframe`, then `encode` with the general model's vocabulary (`load_general_model`). "
        "Upstream: the same rows written in its orientation (genera x samples, .csv) and read by "
        "`MicroCorpus(data_path=..., max_len=512)` with its pickled `MicroTokenizer`, as `mgm construct` does. "
        "Sentence lengths are compared sample by sample (see `sentence_check` in the JSON).",
        "**q2-mgm** (`benchmarks/_pretrain_worker.py`): `pretrain(new_model(new_model_config(vocab, n_layer, n_head, "
        f"n_embd)), token_ids, PretrainingSettings(epochs={sz['epochs']}, batch_size={sz['batch_size']}, "
        "device=...))`, unchanged: batches padded to their longest sentence, `group_by_length`, eager attention, "
        "validation after every epoch. Instrumentation only: its collator is wrapped to count tokens, and "
        "`Trainer.train` / `Trainer.evaluate` are wrapped to time them. The training time is `Trainer.train` minus "
        "the validation passes inside it (reported apart as `eval_s`; the whole `pretrain()` call as "
        "`pretrain_call_s`).",
        "**Upstream** (`benchmarks/_pretrain_upstream.py`, upstream venv): main_pretrain.py's recipe with "
        "config.ini's [GPT2] and [pretrain] values (learning rate 1e-3, 1000 warmup steps, weight decay 0.001, "
        f"batch {sz['batch_size']}, `group_by_length` - which sees every sentence as 512 long, "
        "`DataCollatorForLanguageModeling(mlm=False)`, `random_split` 0.9/0.1), model sizes as above, epochs "
        "fixed, and no evaluation or checkpoints during the run (upstream evaluates and saves every 500 steps, "
        "which these runs never reach; `load_best_model_at_end` and early stopping, which need them, are dropped "
        "too). The training time is `trainer.train()`. Its collator is wrapped to count tokens.",
        "**Real tokens/s** = non-pad tokens in the training batches (each side counts its own; the two 90% splits "
        "hold different samples, so the counts differ a little) / training time; the q2-mgm / upstream ratio "
        "therefore includes upstream's padding waste. **Padded tokens/s** counts every position the model ran "
        "(upstream: 512 per sentence; q2-mgm: its batch's longest sentence): the cost of the model itself per "
        "position, padding aside.",
        "**Memory**: peak RSS while training is VmHWM read after `Trainer.train`, reset (`/proc/self/clear_refs`) "
        "just before it, so it includes what the process held before training (Python, torch, the model, the "
        "corpus: `rss_before_train_mb`). The whole-process peak is ru_maxrss from wait4. At the upstream size "
        f"with batch {sz['batch_size']} this is the comparison of full 512-token padding (upstream) with per-batch "
        "padding (q2-mgm): attention activations grow with the square of the padded length.",
        "**Threads**: `torch.set_num_threads(n)` in each child for n in --threads; runs with n > 1 are skipped "
        "when other processes still take 10% or more of the CPUs after the wait, as 2 threads on 2 shared cores "
        "measure the contention, not the code.",
    ]


def make_notes(r):
    notes = []
    acc = r["versions"]["upstream_accelerate"]
    notes.append(f"Upstream's `mgm pretrain` needs accelerate (microformer-mgm 0.5.8 requires accelerate>=0.20.1; "
                 "transformers 4.33's Trainer refuses to start without it), which the upstream venv that "
                 "benchmarks/speed.py builds does not hold; this benchmark adds accelerate "
                 f"{acc['version']} (and psutil) to it, without dependencies so that its torch stays as it is.")
    measured = [row for rows in r["runs"].values() for row in rows.values() if row["q2"] and "skipped" not in row["q2"]]
    if measured:
        n_train, batch = measured[0]["q2_detail"]["n_train"], r["sizes"]["batch_size"]
        mult = min(n_train // (batch * 4), 50) or 1
        shares = sorted({round(100 * row["q2"]["padding_share"]) for row in measured})
        notes.append(f"q2-mgm's batches still hold {'-'.join(map(str, shares))}% padding here: transformers' "
                     "`group_by_length` sorts by length only within random mega-batches of min(N / (4 x batch "
                     f"size), 50) batches, {mult} batch{'es' if mult != 1 else ''} of {batch} at {n_train} training "
                     "sentences; on a large corpus (50 batches per mega-batch) the padding falls further.")
    if not r["gpu"]["available"]:
        notes.append("No GPU was lent to this run (torch.cuda.is_available() is False here): only CPU rows were "
                     "measured. On a machine with a GPU the same command adds cuda rows for q2-mgm, and for upstream "
                     "where its venv's torch is a CUDA build.")
    elif not r["gpu"]["upstream_sees_cuda"]:
        notes.append("Upstream's venv holds a CPU-only torch, so its cuda rows are absent; q2-mgm's cuda rows stand "
                     "alone.")
    mismatch = [f"{s} {k}" for s, rows in r["runs"].items() for k, row in rows.items()
                if row.get("sentence_check") and row["sentence_check"]["n_same_length"] != row["sentence_check"]["n"]]
    if mismatch:
        notes.append("Sentence lengths differ between q2-mgm and upstream for some samples in: " + ", ".join(mismatch)
                     + " (see sentence_check in the JSON).")
    noisy = {k: v["other_cpu_share"] for k, v in r["contention"].items() if v["other_cpu_share"] >= WATCH.IDLE_SHARE}
    if noisy:
        notes.append("Other processes used the CPUs during " + ", ".join(f"{k} ({v:.0%})" for k, v in noisy.items())
                     + ": those timings are pessimistic.")
    skipped = [f"{s} model, {k} ({'both sides' if row['q2'] and 'skipped' in row['q2'] else 'upstream'}: "
               f"{(row['q2'] if row['q2'] and 'skipped' in row['q2'] else row['upstream'])['skipped']})"
               for s, rows in r["runs"].items() for k, row in rows.items() if not row["ratio"]]
    if skipped:
        notes.append("Not measured: " + "; ".join(skipped) + ". Rerun on an idle machine for those rows.")
    if r["quick"]:
        notes.append("QUICK run: reduced sizes (see `sizes` in the JSON); the reference figures come from a full run.")
    return notes


def report(results, out_dir):
    results["method"] = method_notes(results)
    results["notes"] = make_notes(results)
    write_pretrain_markdown(out_dir / "pretrain.md", results)
    write_json(out_dir / "pretrain.json", results)
    print()
    for size_name, rows in results["runs"].items():
        for key, row in rows.items():
            ratio = row["ratio"]
            if ratio:
                print(f"{size_name:15} {key:18} q2-mgm/upstream: real tokens/s {ratio['real_tokens_per_s']:6.1f}x, "
                      f"sentences/s {ratio['sentences_per_s']:6.1f}x, padded tokens/s "
                      f"{ratio['padded_tokens_per_s']:5.2f}x, training peak RSS {ratio['train_peak_rss']:.2f}")
            else:
                print(f"{size_name:15} {key:18} no ratio (a side was skipped)")
    print(f"\ntotal {fmt_s(results['total_s'])}; wrote {out_dir / 'pretrain.md'} and pretrain.json")


def main():
    p = parser(__doc__, "pretrain", quick=True, max_wait=60)
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts for the CPU runs "
                   "(default 1,2; counts above 1 are skipped while other processes keep the CPUs busy)")
    p.add_argument("--samples", type=int, help="ECAM samples to pretrain on (default 320)")
    p.add_argument("--upstream-steps", type=int, help="optimizer steps upstream runs at the upstream size "
                   "(default 2; 0 for whole epochs, minutes per configuration on 2 CPU cores)")
    args = p.parse_args()
    WATCH.max_wait_s = args.max_wait
    if not measuring(args, "pretrain", report, ECAM_TABLE, "The pretraining benchmark needs the real ECAM table in "
                     "../shared next to the project"):
        return 0
    import accelerate
    import torch

    sizes = json.loads(json.dumps(SIZES["quick" if args.quick else "full"]))
    if args.samples:
        sizes["n_samples"] = args.samples
    if args.upstream_steps is not None:
        sizes["upstream_steps"]["upstream-sized"] = args.upstream_steps
    threads_list = [int(t) for t in args.threads.split(",") if t.strip()]
    started = time.perf_counter()
    stamp = ensure_upstream_venv()
    acc = ensure_upstream_accelerate()
    gpu = {"available": torch.cuda.is_available()}
    if gpu["available"]:
        gpu.update({"name": torch.cuda.get_device_name(0), "upstream_sees_cuda": upstream_sees_cuda()})
    devices = ["cpu"] + (["cuda"] if gpu["available"] else [])
    upstream_devices = ["cpu"] + (["cuda"] if gpu.get("upstream_sees_cuda") else [])
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "quick": args.quick, "sizes": sizes, "model_sizes": MODEL_SIZES, "threads": threads_list,
               "machine": machine_info(), "gpu": gpu}
    with tempfile.TemporaryDirectory(prefix="q2-mgm-pretrain-") as tmp:
        workdir = pathlib.Path(tmp)
        say(f"inputs: {sizes['n_samples']} ECAM samples")
        inputs = prepare_inputs(sizes["n_samples"], workdir)
        results["inputs"] = {k: v for k, v in inputs.items() if k != "lengths"}
        results["runs"] = bench(sizes, threads_list, devices, upstream_devices, inputs, workdir)
    upstream_versions = next((row.get("versions_upstream") for rows in results["runs"].values()
                              for row in rows.values() if row.get("versions_upstream")), None)
    results["versions"] = {"q2": q2_versions(), "q2_accelerate": accelerate.__version__,
                           "upstream": upstream_versions, "upstream_venv": stamp, "upstream_accelerate": acc}
    return finish(results, started, WATCH, report, args)


if __name__ == "__main__":
    sys.exit(main())
