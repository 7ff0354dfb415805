"""Upstream MGM's own venv (benchmarks/.upstream-venv), built once with its pins and reused when present; shared by
benchmarks/speed.py and benchmarks/pretrain.py (which adds accelerate, which upstream's Trainer needs)."""
import datetime
import json
import subprocess

from _harness import BENCH, ROOT, clean_env, say

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

# upstream (microformer-mgm 0.5.8) requires accelerate >= 0.20.1 for transformers' Trainer; speed.py's venv does not
# need it. Versions of upstream's time (transformers 4.33 passes Accelerator arguments that accelerate 1.0 removed).
ACCELERATE = ["accelerate==0.23.0", "accelerate==0.22.0", "accelerate==0.21.0", "accelerate==0.20.3"]


def _pip(*args):
    cmd = [str(UPSTREAM_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def _upstream_check(code):
    proc = subprocess.run([str(UPSTREAM_PYTHON), "-W", "ignore", "-c", code], capture_output=True, text=True,
                          env=clean_env())
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


def ensure_upstream_accelerate():
    """Add accelerate (and psutil) to the upstream venv unless it imports; {'version': ..., 'note': ...}."""
    check = ("import tempfile, accelerate, transformers; "
             "transformers.TrainingArguments(output_dir=tempfile.mkdtemp(), no_cuda=True); "
             "print(accelerate.__version__)")
    ok, out = _upstream_check(check)
    if ok:
        return {"version": out, "installed_now": False}
    say("adding accelerate (upstream's Trainer needs it) to the upstream venv")
    rc, log = _pip("psutil")
    if rc != 0:
        raise SystemExit(f"pip install psutil into {UPSTREAM_VENV} failed:\n{log}")
    for candidate in ACCELERATE:  # --no-deps: its other requirements are there, and torch must stay as it is
        rc, log = _pip("--no-deps", candidate)
        if rc == 0:
            ok, out = _upstream_check(check)
            if ok:
                return {"version": out, "installed_now": True, "requested": ACCELERATE[0]}
        say(f"  {candidate} failed: {(log or out).strip().splitlines()[-1] if (log or out).strip() else rc}")
    raise SystemExit(f"Could not install any of {ACCELERATE} into {UPSTREAM_VENV}.")


def upstream_sees_cuda():
    ok, out = _upstream_check("import torch; print(torch.cuda.is_available())")
    return ok and out.strip() == "True"

