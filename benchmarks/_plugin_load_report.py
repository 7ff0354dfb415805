"""plugin_load.md and plugin_load.json from benchmarks/plugin_load.py's measurements: before and after side by side,
against q2-sample-classifier, with the issue's targets."""
from _harness import fmt_s, write_json, write_markdown

TARGETS = {"import_s": 0.5, "classify_ratio": 1.2}


def _s(seconds):
    return fmt_s(seconds)


def _import_rows(r):
    imports = r["import"]
    sc = imports["q2-sample-classifier"]
    rows = ["| | wall, median | resident memory added | heavy modules loaded |", "|---|---:|---:|---|"]
    for name, entry in imports.items():
        what = ("`import q2_sample_classifier.plugin_setup` after qiime2, q2_types" if name == "q2-sample-classifier"
                else f"`import q2_mgm.plugin_setup` after qiime2, q2_types, q2-sample-classifier ({name[7:]})")
        heavy = sorted({m for run in entry["runs"] for m in run["heavy"]})
        rows.append(f"| {what} | {_s(entry['median_s'])} | {entry['median_rss_mb']:.0f} MB | "
                    f"{', '.join(heavy) or 'none'} |")
    after = imports["q2-mgm after"]["median_s"]
    rows += ["", f"q2-mgm after / q2-sample-classifier: {after / sc['median_s']:.2f}x; target: under "
             f"{TARGETS['import_s']} s ({'met' if after < TARGETS['import_s'] else 'missed'}) and under "
             f"q2-sample-classifier's ({'met' if after < sc['median_s'] else 'missed'}). Before / after: "
             f"{imports['q2-mgm before']['median_s'] / after:.1f}x."]
    return rows


def _plugin_rows(r):
    plugins = r["plugins"]
    without = plugins["without q2-mgm"]
    rows = ["| `qiime2.sdk.PluginManager()` | plugins | wall, median | q2-mgm's share | resident memory |",
            "|---|---:|---:|---:|---:|"]
    for name, entry in plugins.items():
        share = "" if name == "without q2-mgm" else _s(entry["median_s"] - without["median_s"])
        rows.append(f"| {name} | {entry['n_plugins']} | {_s(entry['median_s'])} | {share} | "
                    f"{entry['median_rss_mb']:.0f} MB |")
    return rows


def _requires_rows(r):
    requires = r.get("requires")
    if not requires:
        return []
    rows = ["| requirements a plugin declares (setup.py install_requires) | how many | resolved, median |",
            "|---|---:|---:|"]
    for name, entry in requires.items():
        rows.append(f"| {name} | {len(entry['requirements'])} | {_s(entry['median_s'])} |")
    return ["", "QIIME 2 2022.11 loads each plugin's entry point with pkg_resources, which first resolves every "
            "requirement the plugin declares, recursively, in every QIIME 2 command. The PluginManager rows above "
            "load both checkouts through the one installed q2-mgm's metadata (this checkout's), so what the "
            "declared requirements cost is measured here, each checkout's setup.py resolved in this venv:", "",
            *rows]


def _cli_rows(r):
    cli = r["cli"]
    sc = cli["qiime sample-classifier classify-samples"]["median_s"]
    rows = ["| command (twins, 278 samples) | runs | wall, median | / q2-sample-classifier |", "|---|---:|---:|---:|"]
    for name, entry in cli.items():
        ratio = f"{entry['median_s'] / sc:.2f}x" if "classify-samples" in name else ""
        rows.append(f"| `{name}` | {len(entry['runs'])} | {_s(entry['median_s'])} | {ratio} |")
    after = cli["qiime mgm classify-samples (after)"]["median_s"] / sc
    rows += ["", f"Target: q2-mgm's classify-samples within {TARGETS['classify_ratio']}x of q2-sample-classifier's: "
             f"{after:.2f}x ({'met' if after <= TARGETS['classify_ratio'] else 'missed'})."]
    return rows


def _first_rows(r):
    first = r["first"]
    rows = ["| fresh process | before | after |", "|---|---:|---:|"]
    for key, label in (("plugin_manager_s", "`from qiime2.plugins import mgm` (every plugin loaded)"),
                       ("first_tokenize_s", "then the first `tokenize`"), ("first_embed_s", "then the first `embed`")):
        rows.append(f"| {label} | {_s(first['before'][key])} | {_s(first['after'][key])} |")
    return rows


def _profile_rows(r):
    profile = r["profile"]
    rows = ["| q2-mgm classify-samples, in one process under cProfile | before | calls | after | calls |",
            "|---|---:|---:|---:|---:|"]
    for part in profile["after"]["parts_s"]:
        cells = [f"{_s(profile[v]['parts_s'][part])} | {profile[v]['calls'][part]}" for v in ("before", "after")]
        rows.append(f"| {part} | {' | '.join(cells)} |")
    rows.append(f"| **the whole pipeline** | {_s(profile['before']['total_s'])} | | {_s(profile['after']['total_s'])}"
                " | |")
    return rows


def _notes(r):
    first = {v: sum(r["first"][v].values()) for v in ("before", "after")}
    parts = r["profile"]["after"]["parts_s"]
    share = {label: parts[name] for label, name in (
        ("imports (torch, transformers: what runs the model)", "imports (all modules first imported during the run)"),
        ("reading the general model", "reading the general model (pytorch_model.bin)"),
        ("the encoder's forward pass and the head", "the encoder's features and the exactly fit head"),
        ("the two forests of the blend (validation, then every sample)", "the RandomForest blended into the model"),
        ("predicting the test samples (forward pass, forest)", "predicting the test samples"),
        ("the evaluation page (its baseline RandomForest, figures)", "the evaluation page (all of it)"),
        ("checking the model's files (5 times)", "checking a model's files against its architecture"))}
    return [
        "## Notes",
        "",
        "- Plugin load no longer imports torch, transformers, accelerate, `safetensors.torch` or pyplot; every "
        "QIIME 2 command, of any plugin, stops paying for them. An action that runs the model imports them when "
        "called, so its first call pays what plugin load paid before: compare the sums of the first-call table "
        f"(before {fmt_s(first['before'])}, after {fmt_s(first['after'])}), not its rows.",
        "- On QIIME 2 2022.11 `PluginManager()` loads each plugin's entry point with pkg_resources, which first "
        "resolves the requirements the plugin declares: q2-mgm's (torch, transformers, accelerate: long trees) "
        "cost more than its import did (the requirements table). q2-mgm now declares none, as QIIME 2's own "
        "plugins declare none: the README installs them (q2-mgm itself with --no-deps) and recipe/meta.yaml states "
        "them for conda.",
        "- classify-samples: q2-mgm does all that q2-sample-classifier does (q2cli, plugin load, a RandomForest, an "
        "evaluation page) and runs a model besides. What that adds, from the profile (after): "
        + "; ".join(f"{label} {fmt_s(seconds)}" for label, seconds in share.items())
        + ". None of it moves with speed alone: the forests fit on every CPU (the same trees for any n_jobs, so "
        "the same predictions), the rest is the recipe (frozen encoder, exactly fit head, 70% from a 500-tree "
        "forest) that the accuracy benchmark chose, which this change leaves as it was. So the 1.2x target is out "
        "of reach without changing what is predicted; the floor is q2-sample-classifier's time plus the imports, "
        "the model's read and forward passes and the blend's forests.",
        "- Done once per command: the general model is read once (the profile counts one call); the pipeline "
        "hands each step the artifact the step before made; the evaluation page draws from the predictions and "
        "probabilities it is given and fits only its own baseline forest. A model's files are still checked 5 "
        "times in classify-samples (QIIME "
        "2 validates the model artifact twice as fine-tune returns it and twice as predict views it, and loading "
        "checks it once more), but the architecture's tensor shapes they are checked against (a model built on "
        "torch's meta device) are worked out once per configuration, where before each check built it.",
        "- The machine was shared with two other developers' jobs (see the CPU shares above), so single runs "
        "vary by a factor of up to 2 (the runs are in plugin_load.json); the medians of the same run are what to "
        "compare.",
    ]


def report(results, folder):
    """Writes plugin_load.json and plugin_load.md into folder."""
    write_json(folder / "plugin_load.json", results)
    m, v = results["machine"], results["versions"]
    contention = ", ".join(f"{name} {p['other_cpu_share']:.0%}" for name, p in results.get("contention", {}).items())
    lines = [
        "# What q2-mgm costs QIIME 2: plugin load and everyday commands",
        "",
        "`benchmarks/plugin_load.py` (issue 20). `after`: this checkout; `before`: "
        f"`{results['before_ref']}`, the last commit before lazy imports, in a temporary `git worktree`, on the same "
        "interpreter and venv, in the same run. Every figure is a fresh process.",
        "",
        f"Measured on a shared machine under load: {m['nproc']} cores ({m['cpu_model']}), {m['ram_gb']} GB, "
        f"load average {results['load_average_at_start'][0]:.1f} at the start; share of the CPUs other processes "
        f"took during each phase: {contention}. Absolute times are pessimistic; the ratios compare figures of the "
        f"same run. q2-mgm {v['q2-mgm']} ({v['commit']}), Python {v['python']}, torch {v['torch']}, transformers "
        f"{v['transformers']}.",
        "",
        "## Plugin load",
        "",
        "What QIIME 2 pays before any action of any plugin runs: q2-sample-classifier's `plugin_setup` is loaded "
        "either way (q2-mgm's types build on its), so q2-mgm's share is measured after it.",
        "",
        *_import_rows(results),
        "",
        "Every installed plugin loaded, with and without q2-mgm (one venv; q2-mgm's entry point is left out by "
        "wrapping `PluginManager.iter_entry_points` in that process):",
        "",
        *_plugin_rows(results),
        *_requires_rows(results),
        "",
        "## The first action call after QIIME 2 starts",
        "",
        *_first_rows(results),
        "",
        "## Commands, against q2-sample-classifier",
        "",
        "Both at their defaults, q2-mgm's with the subjects as groups; classify-samples alternating (q2-mgm after, "
        "q2-sample-classifier, q2-mgm before), each checkout with its own q2cli cache.",
        "",
        *_cli_rows(results),
        "",
        "## Where q2-mgm's classify-samples spends its time",
        "",
        "Cumulative seconds of each step (a step's time includes the steps it calls: the head and the forest are "
        "part of fine-tuning, the baseline forest and the figures part of the evaluation page); profiling slows "
        "Python-heavy code, so the whole is longer than on the command line.",
        "",
        *_profile_rows(results),
        "",
        f"Whole run: {fmt_s(results['total_s'])}.",
        "",
        *_notes(results),
    ]
    write_markdown(folder / "plugin_load.md", lines)
