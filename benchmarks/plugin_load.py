#!/usr/bin/env python3
"""What q2-mgm costs QIIME 2 (issue 20): plugin load and everyday commands, against q2-sample-classifier's, and
before against after, side by side in one run.

    .venv/bin/python benchmarks/plugin_load.py                  # writes benchmarks/results/plugin_load.{md,json}
    .venv/bin/python benchmarks/plugin_load.py --before 8244f62 # the checkout measured as `before` (a git ref)
    .venv/bin/python benchmarks/plugin_load.py --from-json      # re-render plugin_load.md only

`after` is this checkout; `before` is the git ref --before (the last commit before lazy imports), checked out with
`git worktree add` in a temporary folder that the run removes. Both run on this venv's interpreter, with PYTHONPATH
and the working directory set to their checkout, so that each imports its own q2_mgm; each has its own q2cli cache.
Every figure is a fresh process. Needs ../shared (the twins data); skips without it.

Measurements:
  import   `import q2_mgm.plugin_setup` after qiime2, q2_types and q2_sample_classifier.plugin_setup (what QIIME 2 has
           imported by then), against `import q2_sample_classifier.plugin_setup` after qiime2 and q2_types: wall time
           and the resident memory it adds, median of --repeats fresh processes.
  plugins  `qiime2.sdk.PluginManager()` with every installed plugin, and without q2-mgm: one venv, q2-mgm's entry
           point left out by wrapping PluginManager.iter_entry_points in that process. Median of 3. Both checkouts
           load through the one installed q2-mgm's metadata, so its declared requirements are measured apart:
  requires what QIIME 2 2022.11's pkg_resources does for each plugin it loads before importing it: resolving the
           requirements the plugin declares (each checkout's setup.py install_requires, in this venv), against
           q2-sample-classifier's (none); median of --repeats fresh processes.
  first    a fresh process: PluginManager, then the Artifact API's first `tokenize` and first `embed` (twins).
  cli      `qiime mgm classify-samples` (subjects grouped) against `qiime sample-classifier classify-samples` on the
           twins (278 samples, 130 genera), both at their defaults, alternating, median of --cli-repeats; and
           `qiime mgm tokenize`, `qiime mgm embed` once each.
  profile  where q2-mgm's classify-samples spends its time: the pipeline in one process under cProfile.
"""
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _harness import ROOT, SHARED, CpuWatch, finish, fmt_s, machine_info, measuring, parser, q2_versions, say
from _plugin_load_report import report

TWINS = SHARED / "data" / "twins"
HEAVY = ("torch", "transformers", "accelerate", "safetensors.torch", "matplotlib.pyplot")
RSS = "int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024"
IMPORT_AFTER = """import json, sys, time
import qiime2, q2_types{before}
rss, t = {rss}, time.perf_counter()
import {module}
print(json.dumps({{"s": time.perf_counter() - t, "rss_mb": {rss} - rss,
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))"""
PLUGINS = """import json, time
import qiime2.sdk
if {without_mgm}:
    entry_points = qiime2.sdk.PluginManager.iter_entry_points.__func__
    qiime2.sdk.PluginManager.iter_entry_points = classmethod(
        lambda cls: (e for e in entry_points(cls) if "q2_mgm" not in str(e)))
t = time.perf_counter()
manager = qiime2.sdk.PluginManager()
print(json.dumps({{"s": time.perf_counter() - t, "rss_mb": {rss}, "plugins": sorted(manager.plugins)}}))"""
REQUIRES = """import json, time
import pkg_resources
requirements = list(pkg_resources.parse_requirements({requirements!r}))
t = time.perf_counter()
pkg_resources.working_set.resolve(requirements)
print(json.dumps({{"s": time.perf_counter() - t, "n_requirements": len(requirements)}}))"""
FIRST = """import json, time
t0 = time.perf_counter()
import qiime2
from qiime2.plugins import mgm
t1 = time.perf_counter()
corpus, = mgm.actions.tokenize(table=qiime2.Artifact.load({table!r}))
t2 = time.perf_counter()
mgm.actions.embed(corpus=corpus, model=qiime2.Artifact.load({model!r}))
t3 = time.perf_counter()
print(json.dumps({{"plugin_manager_s": t1 - t0, "first_tokenize_s": t2 - t1, "first_embed_s": t3 - t2}}))"""
PROFILE = """import cProfile, json, pstats, time
import qiime2
from qiime2.plugins import mgm
table, metadata = qiime2.Artifact.load({table!r}), qiime2.Metadata.load({metadata!r})
profile, t = cProfile.Profile(), time.perf_counter()
profile.enable()
mgm.pipelines.classify_samples(table=table, metadata=metadata.get_column("bmi_category"),
                               groups=metadata.get_column("subject"))
profile.disable()
total = time.perf_counter() - t
parts = {parts!r}
stats = pstats.Stats(profile).stats
found = {{name: sum(v[3] for k, v in stats.items() if k[0].endswith(path) and k[2] == function)
          for name, (path, function) in parts.items()}}
calls = {{name: sum(v[1] for k, v in stats.items() if k[0].endswith(path) and k[2] == function)
          for name, (path, function) in parts.items()}}
print(json.dumps({{"total_s": total, "parts_s": found, "calls": calls}}))"""
# where classify-samples' time goes: (file the function is in, its name); cumulative seconds of each
PARTS = {
    "imports (all modules first imported during the run)": ("<frozen importlib._bootstrap>", "_find_and_load"),
    "reading the general model (pytorch_model.bin)": ("q2_mgm/core/models.py", "load_general_model"),
    "reading a saved model (predict)": ("q2_mgm/core/models.py", "load_model"),
    "checking a model's files against its architecture": ("q2_mgm/core/models.py", "validate_model_dir"),
    "saving a model": ("q2_mgm/core/models.py", "save_model"),
    "tokenizing": ("q2_mgm/core/tokenizer.py", "tokenize_matrix"),
    "fine-tuning (all of train_sequence_model)": ("q2_mgm/core/training/fitting.py", "train_sequence_model"),
    "the encoder's features and the exactly fit head": ("q2_mgm/core/training/head.py", "fit_frozen_head"),
    "the RandomForest blended into the model": ("q2_mgm/core/training/blend.py", "add_forest"),
    "the decision rule": ("q2_mgm/core/training/decision.py", "choose_decision_rule"),
    "predicting the test samples": ("q2_mgm/core/training/trained.py", "predict"),
    "the evaluation page (all of it)": ("q2_mgm/visualizers/evaluate.py", "evaluate_classification"),
    "the evaluation's baseline RandomForest": ("q2_mgm/core/baselines.py", "random_forest_baseline"),
    "the evaluation's figures": ("q2_mgm/visualizers/_render.py", "save_figure"),
}


def _child(code, root, label):
    """Runs `code` in a fresh interpreter of this venv beside checkout `root`; its last stdout line, as JSON."""
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONPATH": str(root)})
    if result.returncode != 0:
        raise SystemExit(f"{label} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _median(runs, key="s"):
    return statistics.median(run[key] for run in runs)


def measure_imports(roots, repeats, watch):
    results = {}
    with watch.phase("import"):
        for i in range(repeats):
            runs = {"q2-sample-classifier": (ROOT, "", "q2_sample_classifier.plugin_setup")}
            runs.update({f"q2-mgm {label}": (root, ", q2_sample_classifier.plugin_setup", "q2_mgm.plugin_setup")
                         for label, root in roots.items()})
            for name, (root, before, module) in runs.items():
                code = IMPORT_AFTER.format(before=before, module=module, rss=RSS, heavy=HEAVY)
                results.setdefault(name, []).append(_child(code, root, f"import {module}"))
    return {name: {"median_s": _median(runs), "median_rss_mb": _median(runs, "rss_mb"), "runs": runs}
            for name, runs in results.items()}


def measure_plugins(roots, watch):
    results = {}
    with watch.phase("plugins"):
        for _ in range(3):
            for name, root, without in [*((f"with q2-mgm {label}", root, False) for label, root in roots.items()),
                                        ("without q2-mgm", ROOT, True)]:
                code = PLUGINS.format(without_mgm=without, rss=RSS)
                results.setdefault(name, []).append(_child(code, root, "PluginManager()"))
    return {name: {"median_s": _median(runs), "median_rss_mb": _median(runs, "rss_mb"),
                   "n_plugins": len(runs[0]["plugins"]), "runs": [r["s"] for r in runs]}
            for name, runs in results.items()}


def _declared_requirements(root):
    """install_requires of the setup.py in checkout root (none where it declares none)."""
    import ast
    for node in ast.walk(ast.parse((root / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return ast.literal_eval(node.value)
    return []


def measure_requirements(roots, repeats, watch):
    declared = {f"q2-mgm {label}": _declared_requirements(root) for label, root in roots.items()}
    declared["q2-sample-classifier"] = []  # its egg-info declares none, as QIIME 2's plugins do
    results = {}
    with watch.phase("requires"):
        for _ in range(repeats):
            for name, requirements in declared.items():
                results.setdefault(name, []).append(_child(REQUIRES.format(requirements=requirements), ROOT,
                                                           "resolving requirements"))
    return {name: {"median_s": _median(runs), "requirements": declared[name], "runs": [r["s"] for r in runs]}
            for name, runs in results.items()}


def _inputs(work):
    """table.qza (twins' genus counts), metadata.tsv, the general model's artifact: made once, shared by all runs."""
    import pandas as pd
    import qiime2
    counts = pd.read_csv(TWINS / "genus_counts.tsv", sep="\t", index_col=0).astype(float)
    table = qiime2.Artifact.import_data("FeatureTable[Frequency]", counts.rename_axis("sample-id"))
    table.save(str(work / "table.qza"))
    metadata = pd.read_csv(TWINS / "metadata.tsv", sep="\t", index_col=0, dtype=str).rename_axis("sample-id")
    metadata.to_csv(work / "metadata.tsv", sep="\t")
    from qiime2.plugins import mgm
    mgm.actions.general_model().model.save(str(work / "general-model.qza"))


def _qiime(root, config, args, work):
    """Wall seconds of one `qiime ...` command run beside checkout root, with its own q2cli cache."""
    env = {**os.environ, "PYTHONPATH": str(root), "Q2_MGM_XDG_CONFIG_HOME": str(config)}
    started = time.perf_counter()
    result = subprocess.run([str(pathlib.Path(sys.executable).with_name("qiime")), *args], cwd=root, env=env,
                            capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"qiime {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    for path in work.glob("out-*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return seconds


def measure_cli(roots, repeats, work, watch):
    w = str(work)
    md = ["--m-metadata-file", f"{w}/metadata.tsv", "--m-metadata-column", "bmi_category"]
    commands = {
        "qiime mgm classify-samples": ["mgm", "classify-samples", "--i-table", f"{w}/table.qza", *md,
                                       "--m-groups-file", f"{w}/metadata.tsv", "--m-groups-column", "subject",
                                       "--output-dir", f"{w}/out-mgm"],
        "qiime sample-classifier classify-samples": ["sample-classifier", "classify-samples", "--i-table",
                                                     f"{w}/table.qza", *md, "--output-dir", f"{w}/out-sc"],
        "qiime mgm tokenize": ["mgm", "tokenize", "--i-table", f"{w}/table.qza", "--o-corpus", f"{w}/corpus.qza"],
        "qiime mgm embed": ["mgm", "embed", "--i-corpus", f"{w}/corpus.qza", "--i-model", f"{w}/general-model.qza",
                            "--o-embeddings", f"{w}/out-embeddings.qza"],
    }
    configs = {label: work / f"config-{label}" for label in roots}
    for label, root in roots.items():
        _qiime(root, configs[label], ["dev", "refresh-cache"], work)
    times = {}
    with watch.phase("cli"):
        for _ in range(repeats):  # alternating: q2-mgm after, q2-sample-classifier, q2-mgm before
            for label, root in roots.items():
                name = f"qiime mgm classify-samples ({label})"
                times.setdefault(name, []).append(_qiime(root, configs[label], commands["qiime mgm classify-samples"],
                                                         work))
                if label == "after":
                    name = "qiime sample-classifier classify-samples"
                    times.setdefault(name, []).append(_qiime(root, configs[label], commands[name], work))
        for label, root in roots.items():
            for name in ("qiime mgm tokenize", "qiime mgm embed"):
                times[f"{name} ({label})"] = [_qiime(root, configs[label], commands[name], work)]
    return {name: {"median_s": statistics.median(runs), "runs": runs} for name, runs in times.items()}


def measure(args, roots, work, watch):
    results = {"machine": machine_info(), "versions": q2_versions(), "before_ref": args.before,
               "load_average_at_start": os.getloadavg()}
    say(f"import: {args.repeats} fresh processes each")
    results["import"] = measure_imports(roots, args.repeats, watch)
    say("PluginManager(), with and without q2-mgm")
    results["plugins"] = measure_plugins(roots, watch)
    say(f"declared requirements resolved as pkg_resources does at plugin load: {args.repeats} fresh processes each")
    results["requires"] = measure_requirements(roots, args.repeats, watch)
    say("inputs: twins table, metadata, the general model's artifact")
    _inputs(work)
    say("the first tokenize and embed after QIIME 2 starts")
    with watch.phase("first"):
        results["first"] = {label: _child(FIRST.format(table=str(work / "table.qza"),
                                                       model=str(work / "general-model.qza")), root, "first calls")
                            for label, root in roots.items()}
    say(f"CLI: classify-samples x {args.cli_repeats}, alternating; tokenize, embed")
    results["cli"] = measure_cli(roots, args.cli_repeats, work, watch)
    say("profile of q2-mgm's classify-samples")
    with watch.phase("profile"):
        results["profile"] = {label: _child(PROFILE.format(table=str(work / "table.qza"),
                                                           metadata=str(work / "metadata.tsv"), parts=PARTS),
                                            root, "profile")
                              for label, root in roots.items()}
    return results


def main():
    p = parser(__doc__, "plugin_load", max_wait=30)
    p.add_argument("--before", default="8244f62", help="git ref measured as `before` (default 8244f62)")
    p.add_argument("--repeats", type=int, default=5, help="fresh processes per import figure (default 5)")
    p.add_argument("--cli-repeats", type=int, default=3, help="runs of each classify-samples (default 3)")
    args = p.parse_args()
    if not measuring(args, "plugin_load", report, TWINS, "The CLI figures run on the twins data set"):
        return 0
    started, watch = time.perf_counter(), CpuWatch(args.max_wait)
    with tempfile.TemporaryDirectory(prefix="plugin-load-") as tmp:
        work, before = pathlib.Path(tmp), pathlib.Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before],
                       check=True, capture_output=True)
        try:
            results = measure(args, {"after": ROOT, "before": before}, work, watch)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                           capture_output=True)
    say(f"done in {fmt_s(time.perf_counter() - started)}")
    return finish(results, started, watch, report, args)


if __name__ == "__main__":
    sys.exit(main())
