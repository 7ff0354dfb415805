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
import argparse
import contextlib
import datetime
import json
import os
import pathlib
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
SHARED = pathlib.Path(os.environ.get("Q2_MGM_SHARED", ROOT.parent / "shared"))
PARITY = SHARED / "parity"
ECAM_CSV = PARITY / "t4_ecam_real_L7.input.csv"
UPSTREAM_VENV = BENCH / ".upstream-venv"
UPSTREAM_PYTHON = UPSTREAM_VENV / "bin" / "python"
STAMP = UPSTREAM_VENV / ".q2-mgm-benchmark.json"

# Each requirement with its fall-backs, nearest first. torch has none on purpose: an unpinned torch pulls CUDA.
# setuptools < 81: upstream imports pkg_resources (its own pin is 68.0.0), which newer setuptools no longer ship.
UPSTREAM_REQUIREMENTS = [
    ("torch", ["torch==2.13.0"]),
    ("numpy", ["numpy<2"]),
    ("pandas", ["pandas<2.2"]),
    ("transformers", ["transformers==4.33.3", "transformers==4.33.2", "transformers==4.33.1",
                      "transformers==4.33.0", "transformers==4.34.1", "transformers==4.32.1"]),
    ("scikit-learn", ["scikit-learn"]),
    ("tqdm", ["tqdm"]),
    ("setuptools", ["setuptools==68.0.0", "setuptools<81"]),
]
UPSTREAM_MGM = "microformer-mgm==0.5.8"

SIZES = {
    "full": {"synthetic_samples": 2000, "synthetic_genera": 500, "ecam_samples": None, "upstream_forward": 256,
             "scale_samples": 260_000, "scale_nonzero": 200, "upstream_slice": 1000, "repeats": 5},
    "quick": {"synthetic_samples": 200, "synthetic_genera": 500, "ecam_samples": 96, "upstream_forward": 32,
              "scale_samples": 20_000, "scale_nonzero": 200, "upstream_slice": 200, "repeats": 1},
}
TARGETS = {"embed_speedup": 20.0, "tokenize_speedup": 20.0, "scale_seconds": 60.0, "scale_gb": 4.0,
           "embed_max_abs_diff": 1e-4}
SEED = 20240607


def say(message):
    print(f"[speed {time.strftime('%H:%M:%S')}] {message}", flush=True)


class CpuWatch:
    """How much CPU other processes (not this benchmark's process tree) take while each phase runs, from
    /proc/stat minus this process tree's ticks; and waiting for the machine to be idle before a phase."""
    IDLE_SHARE = 0.10

    def __init__(self, max_wait_s):
        self.hz = os.sysconf("SC_CLK_TCK")
        self.ncpu = len(os.sched_getaffinity(0))
        self.max_wait_s = max_wait_s
        self.phases = {}

    @staticmethod
    def _ticks(pid):
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[1], [int(v) for v in fields[11:15]]  # ppid, utime stime cutime cstime

    def _ours(self):
        me = os.getpid()
        _, (ut, st, cut, cst) = self._ticks(me)
        total, parents, ticks = ut + st + cut + cst, {}, {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != me:
                try:
                    ppid, (ut, st, cut, cst) = self._ticks(entry)
                except (OSError, IndexError, ValueError):
                    continue
                parents[int(entry)], ticks[int(entry)] = int(ppid), ut + st + cut + cst
        for pid in ticks:
            ancestor = parents.get(pid)
            while ancestor is not None and ancestor != me:
                ancestor = parents.get(ancestor)
            if ancestor == me:
                total += ticks[pid]
        return total

    def snapshot(self):
        values = [int(v) for v in pathlib.Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return time.monotonic(), sum(values) - values[3] - values[4], self._ours()

    def other_share(self, a, b):
        other = (b[1] - a[1]) - (b[2] - a[2])
        return max(0.0, other / max((b[0] - a[0]) * self.hz * self.ncpu, 1e-9))

    def wait_idle(self, name):
        start = time.monotonic()
        while True:
            a = self.snapshot()
            time.sleep(2)
            share = self.other_share(a, self.snapshot())
            waited = time.monotonic() - start
            if share < self.IDLE_SHARE:
                return waited
            if waited > self.max_wait_s:
                say(f"  warning: other processes still take {share:.0%} of the CPUs after {waited:.0f} s; "
                    f"measuring {name} anyway (its timings will be pessimistic)")
                return waited
            if waited < 3:
                say(f"  other processes take {share:.0%} of the CPUs; waiting for the machine to be idle "
                    f"(up to {self.max_wait_s:.0f} s) before {name}")

    @contextlib.contextmanager
    def phase(self, name):
        waited = self.wait_idle(name)
        a = self.snapshot()
        yield
        share = self.other_share(a, self.snapshot())
        self.phases[name] = {"other_cpu_share": round(share, 3), "waited_for_idle_s": round(waited, 1)}
        if share >= self.IDLE_SHARE:
            say(f"  note: other processes took {share:.0%} of the CPUs during {name}")


WATCH = CpuWatch(max_wait_s=600)


# ---------------------------------------------------------------- upstream venv

def _pip(*args):
    cmd = [str(UPSTREAM_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def _upstream_check(code):
    proc = subprocess.run([str(UPSTREAM_PYTHON), "-W", "ignore", "-c", code], capture_output=True, text=True,
                          env=_clean_env())
    return proc.returncode == 0, proc.stdout.strip() or proc.stderr.strip()[-2000:]


def _installed_version(name):
    ok, out = _upstream_check(f"import importlib.metadata as m; print(m.version({name!r}))")
    return out if ok else None


def ensure_upstream_venv():
    """Build benchmarks/.upstream-venv once; reuse it (a stamp records what was installed) when present."""
    spec = {"requirements": UPSTREAM_REQUIREMENTS, "mgm": UPSTREAM_MGM}
    if STAMP.exists() and UPSTREAM_PYTHON.exists():
        stamp = json.loads(STAMP.read_text())
        if stamp.get("spec") == json.loads(json.dumps(spec)):
            say(f"upstream venv present: {UPSTREAM_VENV.relative_to(ROOT)}")
            return stamp
    say(f"building the upstream venv at {UPSTREAM_VENV.relative_to(ROOT)} (a few minutes, once)")
    if not UPSTREAM_PYTHON.exists() or subprocess.run([str(UPSTREAM_PYTHON), "-c", "1"]).returncode != 0:
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--clear", str(UPSTREAM_VENV)], check=True)
    constraints = UPSTREAM_VENV / "benchmark-constraints.txt"
    constraints.write_text("")
    installed, notes = {}, []
    for name, candidates in UPSTREAM_REQUIREMENTS:
        for candidate in candidates:
            rc, log = _pip(candidate, "-c", str(constraints))
            works = rc == 0
            if works and name == "transformers":
                works, log = _upstream_check("import transformers, transformers.models.gpt2; "
                                             "print(transformers.__version__)")
            if works:
                installed[name] = _installed_version(name)
                constraints.write_text(constraints.read_text() + f"{name}=={installed[name]}\n")
                if candidate != candidates[0]:
                    notes.append(f"{candidates[0]} did not install or import; used {candidate} "
                                 f"({name} {installed[name]}) instead.")
                break
            say(f"  {candidate} failed: {log.strip().splitlines()[-1] if log.strip() else rc}")
        else:
            raise SystemExit(f"Could not install any of {candidates} into {UPSTREAM_VENV}; see the messages above.")
    rc, log = _pip("--no-deps", UPSTREAM_MGM)
    if rc != 0:
        raise SystemExit(f"pip install --no-deps {UPSTREAM_MGM} failed:\n{log}")
    installed["microformer-mgm"] = _installed_version("microformer-mgm")
    ok, out = _upstream_check("import transformers; from mgm.src.MicroCorpus import MicroCorpus; "
                              "from mgm.src.utils import CustomUnpickler; print(transformers.__version__)")
    if not ok:
        raise SystemExit(f"The upstream venv cannot import MGM's code:\n{out}")
    stamp = {"spec": spec, "installed": installed, "notes": notes,
             "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    STAMP.write_text(json.dumps(stamp, indent=2))
    say(f"upstream venv ready: {installed}")
    return stamp


# ---------------------------------------------------------------- child processes

def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


CHILDREN = set()


def _terminated(*_):
    for pid in CHILDREN:  # the measuring child this run started, if one is running
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    sys.exit("speed.py: terminated")


def run_child(python, script, config, workdir, name):
    """Run `python script config.json` alone; (seconds, peak RSS in MB of that child from wait4)."""
    cfg_path = workdir / f"{name}.config.json"
    cfg_path.write_text(json.dumps(config))
    log_path = workdir / f"{name}.log"
    with WATCH.phase(name), open(log_path, "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([str(python), str(script), str(cfg_path)], stdout=log, stderr=subprocess.STDOUT,
                                cwd=workdir, env=_clean_env() if python == UPSTREAM_PYTHON else None)
        CHILDREN.add(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        CHILDREN.discard(proc.pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"{name} failed (exit {proc.returncode}); last lines of {log_path}:\n{tail}")
    return seconds, usage.ru_maxrss / 1024


# ---------------------------------------------------------------- inputs and comparisons

def read_vocab():
    return (PARITY / "vocab.txt").read_text().splitlines()


def taxonomy_string(genus):
    return f"k__Bacteria;p__;c__;o__;f__;{genus};s__"


def save_table(path, matrix, sample_ids, feature_ids):
    import numpy as np
    import scipy.sparse as sp
    matrix = sp.csr_matrix(matrix)
    np.savez(path, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr, shape=np.array(matrix.shape),
             sample_ids=np.asarray(sample_ids, dtype=str), feature_ids=np.asarray(feature_ids, dtype=str))


def table_from_npz(path):
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    z = np.load(path)
    matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    return pd.DataFrame(matrix.toarray(), index=z["sample_ids"].astype(str), columns=z["feature_ids"].astype(str))


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

def bench_tokenize(sizes, vocab, workdir):
    say(f"tokenize: synthetic {sizes['synthetic_samples']} samples x {sizes['synthetic_genera']} genera")
    df = synthetic_table(sizes["synthetic_samples"], sizes["synthetic_genera"], vocab)
    save_table(workdir / "synthetic.npz", df.to_numpy(), df.index, df.columns)
    out = workdir / "upstream_tokenize"
    wall, rss = run_child(UPSTREAM_PYTHON, BENCH / "_upstream_driver.py",
                          {"task": "tokenize", "table": str(workdir / "synthetic.npz"), "out": str(out),
                           "repeats": sizes["repeats"]},
                          workdir, "upstream_tokenize")
    up = json.loads((out / "timings.json").read_text())
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
    up_out = workdir / "upstream_slice"
    up_wall, up_rss = run_child(UPSTREAM_PYTHON, BENCH / "_upstream_driver.py",
                                {"task": "tokenize", "table": str(out / "slice.npz"), "out": str(up_out),
                                 "repeats": sizes["repeats"]},
                                workdir, "upstream_slice")
    up = json.loads((up_out / "timings.json").read_text())
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


# ---------------------------------------------------------------- report

def shared_stats_count():
    from q2_mgm.core.vocab import genus_statistics
    return int(genus_statistics().duplicated(keep=False).sum())


def machine_info():
    cpu = "unknown"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(line.split()[1]) for line in pathlib.Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)
    except (OSError, ValueError):
        nproc = os.cpu_count()
    return {"nproc": nproc, "cpu_model": cpu, "ram_gb": round(mem_kb / 2**20, 1), "kernel": platform.release(),
            "os": platform.freedesktop_os_release().get("PRETTY_NAME", "") if hasattr(platform, "freedesktop_os_release")
            else ""}


def q2_versions():
    import numpy
    import pandas
    import scipy
    import torch
    import transformers
    import q2_mgm
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "q2_mgm"], capture_output=True,
                           text=True).stdout.strip()
    return {"q2-mgm": q2_mgm.__version__, "commit": commit + ("+uncommitted q2_mgm changes" if dirty else ""),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": numpy.__version__, "pandas": pandas.__version__, "scipy": scipy.__version__}


def verdict(ok):
    return "PASS" if ok else "FAIL"


def fmt_s(seconds):
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.1f} s" if seconds >= 10 else \
        f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


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


def write_markdown(path, r):
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
    path.write_text("\n".join(lines) + "\n")
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
    out_dir.mkdir(parents=True, exist_ok=True)
    write_markdown(out_dir / "speed.md", results)
    (out_dir / "speed.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    width = max(len(row[0]) for row in rows)
    print()
    for row in rows:
        print(f"{row[0]:<{width}}  q2-mgm {row[1]:>14}  upstream {row[2]:>24}  {row[3]:>8}  {row[4]:>9}  {row[5]}")
    print(f"\n{results['summary']['passed']} targets passed, {len(failed)} failed; "
          f"total {fmt_s(results['total_s'])}; wrote {out_dir / 'speed.md'} and speed.json")


def run_in_the_venv(script):
    """Re-run `script` with the project's venv python where q2_mgm is not importable here."""
    try:
        import q2_mgm  # noqa: F401
    except ImportError:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.exists() and pathlib.Path(sys.executable) != venv_python:
            os.execv(str(venv_python), [str(venv_python), script, *sys.argv[1:]])
        raise SystemExit(f"q2_mgm is not importable: run `make setup` first, then .venv/bin/python {script}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run (results go to "
                        "benchmarks/work/quick unless --out is given)")
    parser.add_argument("--out", type=pathlib.Path, help="directory for speed.md and speed.json")
    parser.add_argument("--max-wait", type=float, default=600, help="seconds to wait, before each measured phase, "
                        "for other processes to leave the CPUs idle (default 600); then it measures anyway")
    parser.add_argument("--from-json", type=pathlib.Path, metavar="SPEED_JSON", help="measure nothing: rewrite "
                        "speed.md (next to SPEED_JSON, or in --out) from an earlier run's speed.json")
    args = parser.parse_args()
    WATCH.max_wait_s = args.max_wait
    if args.from_json:
        report(json.loads(args.from_json.read_text()), args.out or args.from_json.parent)
        return 0
    if not PARITY.is_dir():
        print(f"SKIP: {PARITY} is absent. The speed benchmark needs the shared parity fixtures (ECAM table, MGM "
              "vocabulary, upstream reference outputs) at ../shared next to the project; nothing was measured.")
        return 0
    run_in_the_venv(__file__)

    # a terminated run still removes its temporary directory
    signal.signal(signal.SIGTERM, _terminated)
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    out_dir = args.out or (BENCH / "work" / "quick" if args.quick else BENCH / "results")
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
    results["total_s"] = time.perf_counter() - started
    results["contention"] = WATCH.phases
    report(results, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
