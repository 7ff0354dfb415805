#!/usr/bin/env python3
"""Speed and memory of q2-mgm against upstream MGM (microformer-mgm 0.5.8), side by side in one run.

    .venv/bin/python benchmarks/speed.py            # full run: writes benchmarks/results/speed.{md,json}
    .venv/bin/python benchmarks/speed.py --quick    # smoke run with small sizes: writes benchmarks/work/quick/
    .venv/bin/python benchmarks/speed.py --from-json benchmarks/results/speed.json   # re-render speed.md only

Upstream runs with its own pins (transformers 4.33.3, pandas < 2.2, numpy < 2, torch 2.13.0 CPU) in a venv built
here at benchmarks/.upstream-venv (once; reused when present), through benchmarks/_upstream_driver.py. q2-mgm runs in
this process (tokenize, embed) and in benchmarks/_scale_worker.py (the 260,000-sample table, for its memory).
Heavy steps run one after another, never at the same time, and each first waits (up to --max-wait s) until other
processes leave the CPUs idle; the share of CPU they took during each phase is recorded. Needs ../shared (parity
fixtures); skips without it.

Measurements:
  embed     ECAM (875 real samples, Greengenes L7): table -> per-sample embeddings, mean and last pooling.
            Upstream: MicroCorpus, then GPT2LMHeadModel(output_hidden_states) on 512-padded batches of 64 over the
            first N samples (its per-sample cost does not depend on N: every sample is padded to 512), both poolings
            from one pass. q2-mgm: tokenize_dataframe, encode, sample_embeddings once per pooling.
  tokenize  a seeded synthetic table (2,000 samples x 500 genera from MGM's vocabulary), and ECAM: q2-mgm's
            tokenize_dataframe vs upstream's MicroCorpus; the sentences must be identical.
  scale     q2-mgm tokenize_matrix on 260,000 x 9,665 sparse samples (~200 genera each): time and peak memory.
            Upstream is timed on the first 1,000 samples of that table and extrapolated (an estimate).
"""
import datetime
import json
import pathlib
import statistics
import sys
import tempfile
import time

import _harness
from _harness import (BENCH, SHARED, CpuWatch, child_failed, clean_env, finish, machine_info, measuring, parser,
                      q2_versions, save_table, say, table_from_npz, taxonomy_string)
from _speed_report import TARGETS
from _upstream_venv import UPSTREAM_PYTHON, ensure_upstream_venv

PARITY = SHARED / "parity"
ECAM_CSV = PARITY / "t4_ecam_real_L7.input.csv"

SIZES = {
    "full": {"synthetic_samples": 2000, "synthetic_genera": 500, "ecam_samples": None, "upstream_forward": 256,
             "scale_samples": 260_000, "scale_nonzero": 200, "upstream_slice": 1000, "repeats": 5},
    "quick": {"synthetic_samples": 200, "synthetic_genera": 500, "ecam_samples": 96, "upstream_forward": 32,
              "scale_samples": 20_000, "scale_nonzero": 200, "upstream_slice": 200, "repeats": 1},
}
SEED = 20240607
WATCH = CpuWatch(max_wait_s=600)


# ---------------------------------------------------------------- child processes

def run_child(python, script, config, workdir, name):
    """Run `python script config.json` alone; (seconds, peak RSS in MB of that child from wait4)."""
    with WATCH.phase(name):
        code, seconds, usage = _harness.run_child(python, script, config, workdir, name,
                                                  env=clean_env() if python == UPSTREAM_PYTHON else None)
    if code != 0:
        child_failed(name, code, workdir)
    return seconds, usage.ru_maxrss / 1024


# ---------------------------------------------------------------- inputs and comparisons

def read_vocab():
    return (PARITY / "vocab.txt").read_text().splitlines()



def synthetic_table(n_samples, n_genera, vocab):
    """Seeded counts, 40% of cells present, log-normal sizes; 1% of samples all zero (upstream drops them)."""
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(SEED)
    genera = rng.choice(np.array(vocab[4:], dtype=object), size=n_genera, replace=False)
    present = rng.random((n_samples, n_genera)) < 0.4
    counts = np.where(present, np.round(rng.lognormal(2.0, 1.5, (n_samples, n_genera))) + 1, 0.0)
    counts[rng.choice(n_samples, size=max(1, n_samples // 100), replace=False)] = 0
    return pd.DataFrame(counts, index=[f"S{i:05d}" for i in range(n_samples)],
                        columns=[taxonomy_string(g) for g in genera])


def upstream_sentences(out_dir, vocab):
    import numpy as np
    tokens = np.load(out_dir / "tokens.npy")
    ids = json.loads((out_dir / "sample_ids.json").read_text())
    tok = np.array(vocab, dtype=object)
    return {sid: " ".join(tok[row[row != 0]]) for sid, row in zip(ids, tokens)}


def z_scores(table, sample_ids):
    """Upstream's z (relative abundance over vocabulary genera, MGnify mean/std) for a few samples:
    {sample: {genus: z}}."""
    from q2_mgm.core.vocab import genus_statistics
    stats = genus_statistics()
    rows = table.loc[list(sample_ids)]
    rows = rows.T.groupby(rows.columns.str.extract(r"(g__[A-Za-z0-9_]+)", expand=False).to_numpy()).sum().T
    rows = rows.loc[:, rows.columns.isin(stats.index)]
    rel = rows.div(rows.sum(axis=1), axis=0)
    z = (rel - stats["mean"][rel.columns]) / stats["std"][rel.columns]
    return {sid: z.loc[sid].to_dict() for sid in z.index}


def compare_sentences(q2, upstream, table=None):
    """q2 and upstream: dicts sample ID -> sentence. With the input table (samples x taxonomy strings), mismatches
    that only reorder genera whose z-scores are exactly equal are counted apart: upstream orders such ties with an
    unstable quicksort (pandas sort_values), q2-mgm in vocabulary order."""
    common = q2.keys() & upstream.keys()
    mismatched = sorted(s for s in common if q2[s] != upstream[s])
    result = {"n_q2": len(q2), "n_upstream": len(upstream), "same_samples": q2.keys() == upstream.keys(),
              "n_compared": len(common), "n_identical": len(common) - len(mismatched),
              "n_mismatched": len(mismatched), "examples": mismatched[:5],
              "identical": q2.keys() == upstream.keys() and not mismatched}
    if table is not None and mismatched:
        z = z_scores(table, mismatched)
        tie_only, details = [], []
        for sid in mismatched:
            a, b = q2[sid].split(), upstream[sid].split()
            za = [z[sid].get(t) for t in a if t.startswith("g__")]
            zb = [z[sid].get(t) for t in b if t.startswith("g__")]
            if sorted(a) == sorted(b) and za == zb:
                tie_only.append(sid)
                moved = [(x, y) for x, y in zip(a, b) if x != y]
                details.append({"sample": sid, "swapped_positions": len(moved),
                                "q2": [x for x, _ in moved][:6], "upstream": [y for _, y in moved][:6],
                                "z": [z[sid][x] for x, _ in moved][:6]})
        result.update({"n_tie_order_only": len(tie_only), "tie_order_examples": details[:3],
                       "identical_up_to_tie_order": result["same_samples"] and len(tie_only) == len(mismatched)})
    else:
        result.update({"n_tie_order_only": 0, "identical_up_to_tie_order": result["identical"]})
    return result


def time_q2_tokenize(df, repeats):
    """Median of `repeats` runs of tokenize_dataframe, each reading MGM's statistics afresh as upstream does."""
    from q2_mgm.core import vocab as q2_vocab
    from q2_mgm.core.tokenizer import tokenize_dataframe
    times = []
    for _ in range(repeats):
        q2_vocab.genus_statistics.cache_clear()
        q2_vocab.mgm_vocabulary.cache_clear()
        start = time.perf_counter()
        corpus = tokenize_dataframe(df)
        times.append(time.perf_counter() - start)
    return corpus, statistics.median(times), times


# ---------------------------------------------------------------- measurements

def upstream_tokenize(table, name, sizes, workdir):
    """Upstream's MicroCorpus on a table save_table wrote, in its venv (sizes' repeats; the median is reported):
    (its timings.json, its output folder, the child's wall seconds and peak RSS)."""
    out = workdir / name
    wall, rss = run_child(UPSTREAM_PYTHON, BENCH / "_upstream_driver.py",
                          {"task": "tokenize", "table": str(table), "out": str(out), "repeats": sizes["repeats"]},
                          workdir, name)
    return json.loads((out / "timings.json").read_text()), out, wall, rss


def bench_tokenize(sizes, vocab, workdir):
    say(f"tokenize: synthetic {sizes['synthetic_samples']} samples x {sizes['synthetic_genera']} genera")
    df = synthetic_table(sizes["synthetic_samples"], sizes["synthetic_genera"], vocab)
    save_table(workdir / "synthetic.npz", df.to_numpy(), df.index, df.columns)
    up, out, wall, rss = upstream_tokenize(workdir / "synthetic.npz", "upstream_tokenize", sizes, workdir)
    with WATCH.phase("q2_tokenize"):
        corpus, q2_s, q2_times = time_q2_tokenize(df, sizes["repeats"])
    agreement = compare_sentences(dict(zip(corpus.samples.index, corpus.samples.sentence)),
                                  upstream_sentences(out, vocab), df)
    n = len(df)
    result = {"n_samples": n, "n_genera": df.shape[1], "n_kept": len(corpus.samples),
              "q2_s": q2_s, "q2_runs_s": q2_times, "upstream_s": up["microcorpus_s"],
              "upstream_runs_s": up["microcorpus_runs_s"],
              "q2_samples_per_s": n / q2_s, "upstream_samples_per_s": n / up["microcorpus_s"],
              "speedup": up["microcorpus_s"] / q2_s, "agreement": agreement,
              "upstream_child_wall_s": wall, "upstream_child_peak_rss_mb": rss, "upstream_versions": up["versions"],
              "mean_genera_per_sample": float(corpus.samples.n_genera.mean())}
    say(f"  q2-mgm {q2_s:.3f} s, upstream {up['microcorpus_s']:.2f} s: {result['speedup']:.1f}x; "
        f"sentences identical: {agreement['n_identical']}/{agreement['n_upstream']}, differing only in the order of "
        f"exact ties: {agreement['n_tie_order_only']}")
    return result


def bench_embed(sizes, vocab, workdir):
    import numpy as np
    import pandas as pd
    import torch
    from q2_mgm.core.inference import encode, sample_embeddings
    from q2_mgm.core.models import load_general_model

    n_forward = sizes["upstream_forward"]
    say(f"embed: upstream MicroCorpus on ECAM, then its model on the first {n_forward} samples (512-padded)")
    out = workdir / "upstream_embed"
    wall, rss = run_child(UPSTREAM_PYTHON, BENCH / "_upstream_driver.py",
                          {"task": "embed", "csv": str(ECAM_CSV), "out": str(out), "n_forward": n_forward,
                           "batch_size": 64}, workdir, "upstream_embed")
    up = json.loads((out / "timings.json").read_text())
    up_ids = json.loads((out / "sample_ids.json").read_text())
    up_h = {p: np.load(out / f"h_{p}.npy") for p in ("mean", "last")}
    say(f"  upstream: MicroCorpus {up['microcorpus_s']:.2f} s ({up['n_samples_kept']} samples), model forward "
        f"{up['forward_s']:.1f} s for {up['n_forward']} samples")

    say("embed: q2-mgm on ECAM")
    ecam = pd.read_csv(ECAM_CSV, index_col=0).T  # samples x taxonomy strings
    with WATCH.phase("q2_embed"):
        corpus, tok_s, tok_runs = time_q2_tokenize(ecam, sizes["repeats"])
        start = time.perf_counter()
        model, vocabulary, _ = load_general_model()
        load_s = time.perf_counter() - start
        samples = corpus.samples if sizes["ecam_samples"] is None else corpus.samples.iloc[:sizes["ecam_samples"]]
        n = len(samples)
        start = time.perf_counter()
        token_ids = encode(samples.sentence, vocabulary)
        encode_s = time.perf_counter() - start
        sample_embeddings(model, token_ids[:4], "mean")  # warm-up (thread pool, allocator), like loading: untimed
        q2_h, forward_s = {}, {}
        for pooling in ("mean", "last"):
            start = time.perf_counter()
            q2_h[pooling] = sample_embeddings(model, token_ids, pooling)
            forward_s[pooling] = time.perf_counter() - start
            say(f"  q2-mgm {pooling} pooling: {forward_s[pooling]:.2f} s for {n} samples")
        del model
    tokenize_agreement = compare_sentences(dict(zip(corpus.samples.index, corpus.samples.sentence)),
                                           upstream_sentences(out, vocab), ecam)

    # per-sample seconds, table -> embeddings (model loading apart): tokenizing shared over the whole table
    n_table = len(ecam)
    up_per_sample = up["microcorpus_s"] / n_table + up["forward_s"] / up["n_forward"]
    q2_per_sample = {p: tok_s / n_table + (encode_s + forward_s[p]) / n for p in ("mean", "last")}
    q2_both = tok_s / n_table + (encode_s + forward_s["mean"] + forward_s["last"]) / n

    position = {sid: i for i, sid in enumerate(samples.index)}
    common = [sid for sid in up_ids[:up["n_forward"]] if sid in position]
    rows = [position[sid] for sid in common]
    diffs = {p: float(np.abs(q2_h[p][rows] - up_h[p][:len(common)]).max()) for p in ("mean", "last")}
    fixtures = {}
    for p in ("mean", "last"):
        ref = pd.read_csv(PARITY / f"t4_ecam_real_L7.h_{p}.csv", index_col=0)
        ref.index = ref.index.astype(str)
        fixtures[p] = float(np.abs(ref.loc[samples.index].to_numpy() - q2_h[p]).max())

    result = {
        "n_table_samples": n_table, "n_q2_embedded": n, "n_upstream_embedded": up["n_forward"],
        "n_compared": len(common),
        "upstream": {"microcorpus_s": up["microcorpus_s"], "model_load_s": up["model_load_s"],
                     "forward_s": up["forward_s"], "batch_size": up["batch_size"], "padded_to": up["padded_to"],
                     "per_sample_s": up_per_sample, "samples_per_s": 1 / up_per_sample,
                     "forward_samples_per_s": up["n_forward"] / up["forward_s"], "torch_threads": up["torch_threads"],
                     "child_wall_s": wall, "child_peak_rss_mb": rss, "versions": up["versions"]},
        "q2": {"tokenize_s": tok_s, "tokenize_runs_s": tok_runs, "model_load_s": load_s, "encode_s": encode_s,
               "forward_s": forward_s, "per_sample_s": q2_per_sample,
               "samples_per_s": {p: 1 / s for p, s in q2_per_sample.items()},
               "both_poolings_samples_per_s": 1 / q2_both,
               "forward_samples_per_s": {p: n / s for p, s in forward_s.items()},
               "torch_threads": torch.get_num_threads()},
        "speedup": {p: up_per_sample / s for p, s in q2_per_sample.items()},
        "speedup_both_poolings": up_per_sample / q2_both,
        "forward_speedup": {p: (n / forward_s[p]) / (up["n_forward"] / up["forward_s"]) for p in forward_s},
        "max_abs_diff_vs_upstream": diffs, "max_abs_diff_vs_fixtures": fixtures,
        "tokenize": {"n_samples": n_table, "q2_s": tok_s, "upstream_s": up["microcorpus_s"],
                     "speedup": up["microcorpus_s"] / tok_s, "agreement": tokenize_agreement},
    }
    say(f"  throughput (samples/s): q2-mgm mean {result['q2']['samples_per_s']['mean']:.1f}, last "
        f"{result['q2']['samples_per_s']['last']:.1f}; upstream {1 / up_per_sample:.2f} -> "
        f"{result['speedup']['mean']:.1f}x / {result['speedup']['last']:.1f}x; max |diff| vs upstream {diffs}")
    return result


def bench_scale(sizes, workdir):
    n = sizes["scale_samples"]
    say(f"scale: q2-mgm tokenize on {n} x 9665 sparse samples (~{sizes['scale_nonzero']} genera each)")
    out = workdir / "scale"
    out.mkdir()
    wall, rss = run_child(sys.executable, BENCH / "_scale_worker.py",
                          {"n_samples": n, "n_nonzero": sizes["scale_nonzero"], "seed": SEED, "out": str(out),
                           "n_slice": sizes["upstream_slice"]}, workdir, "scale")
    q2 = json.loads((out / "scale.json").read_text())
    mem = q2["memory_mb"]
    tokenize_peak = mem["after_tokenize"]["VmHWM"] if q2["peak_reset"] else rss
    say(f"  q2-mgm: {q2['tokenize_s']:.1f} s, peak {tokenize_peak / 1024:.2f} GB while tokenizing "
        f"(input held: {mem['after_build']['VmRSS'] / 1024:.2f} GB), whole process {rss / 1024:.2f} GB")

    m = sizes["upstream_slice"]
    say(f"scale: upstream MicroCorpus on the first {m} samples of that table, for an estimate")
    up, up_out, _, up_rss = upstream_tokenize(out / "slice.npz", "upstream_slice", sizes, workdir)
    vocab = read_vocab()
    agreement = compare_sentences(json.loads((out / "slice_sentences.json").read_text()),
                                  upstream_sentences(up_out, vocab), table_from_npz(out / "slice.npz"))
    n_genera = q2["input"]["shape"][1]
    estimate_s = up["microcorpus_s"] / m * n
    result = {
        "n_samples": n, "n_genera": n_genera, "input": q2["input"], "output": q2["output"],
        "q2": {"tokenize_s": q2["tokenize_s"], "build_input_s": q2["build_s"],
               "memory_mb": mem, "peak_reset_worked": q2["peak_reset"],
               "tokenize_peak_mb": tokenize_peak,
               "tokenize_extra_mb": tokenize_peak - mem["after_build"]["VmRSS"],
               "input_build_peak_mb": mem["after_build"]["VmHWM"], "input_held_mb": mem["after_build"]["VmRSS"],
               "process_peak_mb": rss, "child_wall_s": wall},
        "upstream_estimate": {"slice_samples": m, "slice_s": up["microcorpus_s"],
                              "slice_runs_s": up["microcorpus_runs_s"],
                              "per_1000_samples_s": up["microcorpus_s"] / m * 1000, "estimated_s": estimate_s,
                              "slice_peak_rss_mb": up_rss, "dense_copy_gb": n * n_genera * 8 / 1e9,
                              "slice_agreement": agreement},
        "speedup_estimate": estimate_s / q2["tokenize_s"],
    }
    say(f"  upstream {up['microcorpus_s']:.1f} s for {m} samples -> est. {estimate_s / 3600:.2f} h for {n} "
        f"(~{result['speedup_estimate']:.0f}x); slice sentences identical: "
        f"{agreement['n_identical']}/{agreement['n_upstream']} (+{agreement['n_tie_order_only']} tie order only)")
    return result



def main():
    args = parser(__doc__, "speed", quick=True, max_wait=600).parse_args()
    WATCH.max_wait_s = args.max_wait
    from _speed_report import report
    if not measuring(args, "speed", report, PARITY, "The speed benchmark needs the shared parity fixtures (ECAM "
                     "table, MGM vocabulary, upstream reference outputs) at ../shared next to the project"):
        return 0
    sizes = SIZES["quick" if args.quick else "full"]
    started = time.perf_counter()
    stamp = ensure_upstream_venv()
    vocab = read_vocab()
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "quick": args.quick, "sizes": sizes, "targets": TARGETS, "machine": machine_info()}
    with tempfile.TemporaryDirectory(prefix="q2-mgm-speed-") as tmp:
        workdir = pathlib.Path(tmp)
        results["embed"] = bench_embed(sizes, vocab, workdir)
        results["tokenize"] = bench_tokenize(sizes, vocab, workdir)
        results["scale"] = bench_scale(sizes, workdir)
    results["versions"] = {"q2": q2_versions(), "upstream": results["embed"]["upstream"]["versions"],
                           "upstream_venv": stamp}
    return finish(results, started, WATCH, report, args)


if __name__ == "__main__":
    sys.exit(main())
