"""What every benchmark script shares: paths, logging, the command line, results files, child processes, CPU
contention, memory and the machine's description.

Standard library only at import, so that the workers run in upstream MGM's venv (benchmarks/_pretrain_upstream.py,
benchmarks/_upstream_driver.py) import it too; what needs numpy, torch or q2_mgm imports it inside the function.
The benchmarks' data comes from the test helpers (tests/helpers.py: read_genus_table, read_metadata, ...), which
need pytest: import them where the data is read, not here.
"""
import argparse
import contextlib
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
QUICK = BENCH / "work" / "quick"
SHARED = ROOT.parent / "shared"  # as tests/helpers.py: the real data sets and upstream's parity fixtures
for _path in (str(ROOT), str(BENCH)):  # q2_mgm and tests (the repository), and the benchmarks' private modules
    if _path not in sys.path:
        sys.path.insert(0, _path)


# ---------------------------------------------------------------- logging

_LOG = {"name": "benchmark", "start": None}


def say(message):
    """One progress line on stdout: [name HH:MM:SS] message (with the seconds since the start for some scripts)."""
    elapsed = "" if _LOG["start"] is None else f" +{time.time() - _LOG['start']:5.0f}s"
    print(f"[{_LOG['name']} {time.strftime('%H:%M:%S')}{elapsed}] {message}", flush=True)


# ---------------------------------------------------------------- the command line

def parser(doc, name, *, quick=False, max_wait=None, show_elapsed_since=None):
    """The arguments every benchmark shares; the script adds its own to the parser this returns.

    --out: the results folder (default: benchmarks/results/, or benchmarks/work/quick/ with --quick; see out_dir);
    --from-json [NAME_JSON]: measure nothing, re-render NAME.md from an earlier run's NAME.json (without a path:
    the one in --out or benchmarks/results/); --quick (small sizes) and --max-wait (seconds to wait for idle CPUs
    before each measured phase) where the script has them. Also names the script's progress lines."""
    _LOG.update(name=name, start=show_elapsed_since)
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if quick:
        p.add_argument("--quick", action="store_true", help="small sizes for a smoke run (results go to "
                       "benchmarks/work/quick unless --out is given)")
    p.add_argument("--out", type=pathlib.Path, help=f"directory for {name}.md and {name}.json (default: "
                   "benchmarks/results" + (", or benchmarks/work/quick with --quick)" if quick else ")"))
    if max_wait is not None:
        p.add_argument("--max-wait", type=float, default=max_wait, help="seconds to wait, before each measured "
                       f"phase, for other processes to leave the CPUs idle (default {max_wait:g}); then it measures "
                       "anyway")
    p.add_argument("--from-json", nargs="?", const=True, default=False, type=pathlib.Path,
                   metavar=f"{name.upper()}_JSON", help=f"measure nothing: rewrite {name}.md (next to the JSON, or "
                   f"in --out) from an earlier run's {name}.json (default: the one in --out)")
    return p


def out_dir(args):
    """Where this run writes: --out, else benchmarks/work/quick with --quick, else benchmarks/results."""
    return args.out or (QUICK if getattr(args, "quick", False) else RESULTS)


def earlier_results(args, name):
    """For --from-json: (the earlier run's results, the folder to write into); None without --from-json."""
    if not args.from_json:
        return None
    path = (args.out or RESULTS) / f"{name}.json" if args.from_json is True else args.from_json
    return json.loads(path.read_text()), args.out or path.parent


def measuring(args, name, report, needs, why):
    """The start of a measuring script's run: with --from-json, re-render through report(results, folder); without
    `needs` (under ../shared), say why nothing is measured. Either way False. Else re-run in the project's venv where
    q2_mgm is not importable here, end the measuring child on SIGTERM, and True."""
    earlier = earlier_results(args, name)
    if earlier:
        report(*earlier)
        return False
    if not needs.exists():
        print(f"SKIP: {needs} is absent. {why}; nothing was measured.")
        return False
    run_in_the_venv(sys.argv[0])
    end_children_on_sigterm(f"{name}.py")
    return True


def finish(results, started, watch, report, args):
    """The end of a measuring script's run: the total time (from time.perf_counter() `started`) and each phase's CPU
    contention recorded, then report(results, folder); 0, the exit status."""
    results["total_s"] = time.perf_counter() - started
    results["contention"] = watch.phases
    report(results, out_dir(args))
    return 0


# ---------------------------------------------------------------- results files

def write_json(path, results, indent=2, default=str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=indent, default=default) + "\n")


def write_markdown(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def fmt_s(seconds):
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.1f} s" if seconds >= 10 else \
        f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


# ---------------------------------------------------------------- the project's venv

def run_in_the_venv(script):
    """Re-run `script` with the project's venv python where q2_mgm is not importable here."""
    try:
        import q2_mgm  # noqa: F401
    except ImportError:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.exists() and pathlib.Path(sys.executable) != venv_python:
            os.execv(str(venv_python), [str(venv_python), script, *sys.argv[1:]])
        raise SystemExit(f"q2_mgm is not importable: run `make setup` first, then .venv/bin/python {script}")


# ---------------------------------------------------------------- CPU contention

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
        """Wait (up to max_wait_s) until other processes take < 10% of the CPUs; (seconds waited, last share)."""
        start = time.monotonic()
        while True:
            a = self.snapshot()
            time.sleep(2)
            share = self.other_share(a, self.snapshot())
            waited = time.monotonic() - start
            if share < self.IDLE_SHARE or waited > self.max_wait_s:
                return waited, share
            if waited < 3:
                say(f"  other processes take {share:.0%} of the CPUs; waiting for the machine to be idle "
                    f"(up to {self.max_wait_s:.0f} s) before {name}")

    @contextlib.contextmanager
    def phase(self, name, waited=None):
        """Measure the block as phase `name`, recording the CPU share other processes took; first wait for the
        machine to be idle unless the caller already did (waited: the seconds it waited)."""
        if waited is None:
            waited, share = self.wait_idle(name)
            if share >= self.IDLE_SHARE:
                say(f"  warning: other processes still take {share:.0%} of the CPUs after {waited:.0f} s; "
                    f"measuring {name} anyway (its timings will be pessimistic)")
        a = self.snapshot()
        yield
        share = self.other_share(a, self.snapshot())
        self.phases[name] = {"other_cpu_share": round(share, 3), "waited_for_idle_s": round(waited, 1)}
        if share >= self.IDLE_SHARE:
            say(f"  note: other processes took {share:.0%} of the CPUs during {name}")


# ---------------------------------------------------------------- child processes

CHILDREN = set()


def end_children_on_sigterm(script):
    """On SIGTERM, end the measuring child this run started (if one is running), then exit: a terminated run
    still removes its temporary directory."""
    def terminated(*_):
        for pid in CHILDREN:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        sys.exit(f"{script}: terminated")
    signal.signal(signal.SIGTERM, terminated)


def clean_env():
    """The environment for upstream's venv: none of this venv's paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def run_child(python, script, config, workdir, name, env=None):
    """Run `python script NAME.config.json` alone in workdir, its output in NAME.log; (exit code, wall seconds,
    the child's rusage from wait4)."""
    cfg_path = workdir / f"{name}.config.json"
    cfg_path.write_text(json.dumps(config))
    with open(workdir / f"{name}.log", "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([str(python), str(script), str(cfg_path)], stdout=log, stderr=subprocess.STDOUT,
                                cwd=workdir, env=env)
        CHILDREN.add(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        CHILDREN.discard(proc.pid)
        wall = time.perf_counter() - start
    return os.waitstatus_to_exitcode(status), wall, usage


def child_failed(name, code, workdir):
    tail = "\n".join((workdir / f"{name}.log").read_text(errors="replace").splitlines()[-30:])
    raise SystemExit(f"{name} failed (exit {code}); last lines of {workdir / f'{name}.log'}:\n{tail}")


def worker_config(threads=True):
    """In a worker: its CONFIG.json (the first argument), with `out` created; torch's threads set from it."""
    cfg = json.loads(pathlib.Path(sys.argv[1]).read_text())
    pathlib.Path(cfg["out"]).mkdir(parents=True, exist_ok=True)
    if threads:
        import torch
        torch.set_num_threads(cfg["threads"])
    return cfg


# ---------------------------------------------------------------- memory

def memory_mb():
    """VmRSS (now) and VmHWM (peak) of this process, in MB."""
    fields = {}
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def reset_peak():
    """Reset VmHWM, so that the next phase has its own peak; False where the kernel does not allow it."""
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def mem_available_mb():
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- the machine and versions

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


# ---------------------------------------------------------------- tables passed between processes

def save_table(path, matrix, sample_ids, feature_ids):
    """A samples x features table as a CSR .npz (data, indices, indptr, shape, sample_ids, feature_ids)."""
    import numpy as np
    import scipy.sparse as sp
    matrix = sp.csr_matrix(matrix)
    np.savez(path, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr, shape=np.array(matrix.shape),
             sample_ids=np.asarray(sample_ids, dtype=str), feature_ids=np.asarray(feature_ids, dtype=str))


def table_from_npz(path):
    """The DataFrame save_table wrote (dense)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    z = np.load(path, allow_pickle=False)
    matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    return pd.DataFrame(matrix.toarray(), index=pd.Index(z["sample_ids"].astype(str)),
                        columns=pd.Index(z["feature_ids"].astype(str)))


def taxonomy_string(genus):
    return f"k__Bacteria;p__;c__;o__;f__;{genus};s__"
