"""How far q2-mgm's recorded float32 outputs move across instruction sets, kernels and thread counts, against the
tolerance tests/test_behaviour_reference.py holds them to.

Recomputes the behaviour reference (tests/behaviour_reference.py: ECAM tokens, general-model embeddings, seeded
fine-tuning and predictions, keystone scores, through the Artifact API) once per setting, each in a fresh process
whose environment differs only by that setting: the machine's defaults, one and two OpenMP threads, oneMKL's
instruction sets and its conditional numerical reproducibility mode, oneDNN's instruction sets, and ATen's own
vectorised kernels (ATEN_CPU_CAPABILITY). For each output it reports the largest difference from the recorded
reference and from this machine's defaults, and the tolerance's margin (tolerance / largest difference, which the
report checks is at least 10); for the class calls, how many differ. Settings that leave every output as the
defaults give it are named: on an AMD CPU oneMKL runs the same kernels whatever MKL_ENABLE_INSTRUCTIONS says.

    .venv/bin/python benchmarks/numerics.py

Writes benchmarks/results/numerics.md and numerics.json.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import _harness as H

NAME = "numerics"
SETTINGS = {  # name: the environment it adds to the machine's
    "defaults": {},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
    "OMP_NUM_THREADS=2": {"OMP_NUM_THREADS": "2"},
    "MKL_ENABLE_INSTRUCTIONS=AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "MKL_ENABLE_INSTRUCTIONS=SSE4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "DNNL_MAX_CPU_ISA=AVX2": {"DNNL_MAX_CPU_ISA": "AVX2"},
    "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
}
MARGIN = 10  # the tolerance must be at least this many times the largest difference measured


def worker(out):
    """In a child: the behaviour reference's outputs under this process's environment, to out.npz / out.json."""
    import numpy as np
    from tests import behaviour_reference
    now = behaviour_reference.compute()
    np.savez(f"{out}.npz", **{k: np.asarray(v, dtype=np.float64) for k, v in now.items() if not isinstance(v, str)})
    pathlib.Path(f"{out}.json").write_text(json.dumps({k: v for k, v in now.items() if isinstance(v, str)}))


def _cpu_flags():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return sorted(flag for flag in line.split(":", 1)[1].split() if flag.startswith(("avx", "fma")))
    return []


def measure():
    import numpy as np
    import torch
    from q2_mgm.core.models import general_model_config
    from tests import behaviour_reference
    arrays, texts = behaviour_reference.read()
    config = general_model_config()
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, extra in SETTINGS.items():
            H.say(f"computing the reference's outputs under {name}")
            started = time.perf_counter()
            out = pathlib.Path(folder, name.replace("=", "_"))
            subprocess.run([sys.executable, __file__, "--worker", str(out)], check=True, cwd=H.ROOT,
                           env={**os.environ, "PYTHONPATH": str(H.ROOT), **extra}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            runs[name] = (dict(np.load(f"{out}.npz")), json.loads(pathlib.Path(f"{out}.json").read_text()),
                          time.perf_counter() - started)
    defaults = runs["defaults"][0]
    outputs = {}
    for key, reference in arrays.items():
        tolerance = behaviour_reference.tolerance(key, reference, config)
        to_reference = {name: float(np.abs(run[0][key] - reference).max()) for name, run in runs.items()}
        to_defaults = {name: float(np.abs(run[0][key] - defaults[key]).max()) for name, run in runs.items()}
        largest = max(to_reference.values())
        outputs[key] = {"tolerance": tolerance, "scale": float(np.abs(reference).max()), "to_reference": to_reference,
                        "to_defaults": to_defaults, "margin": tolerance / largest if largest else float("inf")}
    calls = {name: {key: sum(a != b for a, b in zip(run[1][key].split("\n"), texts[key].split("\n")))
                    for key in texts if key.endswith("_predictions")} for name, run in runs.items()}
    texts_same = {name: all(run[1][key] == texts[key] for key in texts if not key.endswith("_predictions"))
                  for name, run in runs.items()}
    return {"machine": H.machine_info(), "cpu_flags": _cpu_flags(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "n_layer": config.n_layer, "reduction": config.n_inner or 4 * config.n_embd,
            "outputs": outputs, "calls_changed": calls, "texts_same": texts_same,
            "seconds": {name: run[2] for name, run in runs.items()},
            "unchanged_settings": [name for name in SETTINGS if name != "defaults" and
                                   all(outputs[key]["to_defaults"][name] == 0 for key in outputs)]}


def report(results, folder):
    H.write_json(folder / f"{NAME}.json", results)
    settings = list(results["seconds"])
    outputs = results["outputs"]
    margins_ok = all(o["margin"] >= MARGIN for o in outputs.values())
    lines = [
        "# Recorded float32 outputs across instruction sets, kernels and threads", "",
        f"The behaviour reference (tests/behaviour_reference.py, ECAM) recomputed under each setting in a fresh "
        f"process, on {results['machine']['nproc']} CPUs ({results['machine']['cpu_model']}; "
        f"{' '.join(results['cpu_flags'])}); torch {results['torch']}, whose ATen kernels run "
        f"{results['torch_cpu_capability']} by default. The tolerance is tests/behaviour_reference.py's "
        f"`float32_tolerance` (tests/test_behaviour_reference.py holds each output to it): u x sqrt(K) x n_layer x max|output| with u = 2^-24, K = {results['reduction']} (the "
        f"longest sum of a block) and n_layer = {results['n_layer']}.", "",
        "Largest absolute difference from the recorded reference (recorded on another CPU):", "",
        "| output | scale | tolerance | " + " | ".join(settings) + " | margin |",
        "|---|---|---|" + "---|" * len(settings) + "---|"]
    for key, o in outputs.items():
        lines.append(f"| {key} | {o['scale']:.3g} | {o['tolerance']:.2e} | "
                     + " | ".join(f"{o['to_reference'][s]:.2e}" for s in settings) + f" | {o['margin']:.0f}x |")
    lines += ["", "Largest absolute difference from this machine's defaults (0: the setting changed nothing):", "",
              "| output | " + " | ".join(settings[1:]) + " |", "|---|" + "---|" * (len(settings) - 1)]
    for key, o in outputs.items():
        lines.append(f"| {key} | " + " | ".join(f"{o['to_defaults'][s]:.2e}" for s in settings[1:]) + " |")
    lines += ["", "Class calls that differ from the recorded ones: "
              + "; ".join(f"{s}: " + ", ".join(f"{k} {n}" for k, n in c.items())
                          for s, c in results["calls_changed"].items()) + ".",
              f"Sentences, sample counts and genus names the same as recorded under every setting: "
              f"{all(results['texts_same'].values())}.", "",
              f"Every tolerance is at least {MARGIN}x the largest difference measured: {margins_ok}.",
              "Settings that left every output exactly as the defaults did: "
              + (", ".join(results["unchanged_settings"]) or "none") + ". (oneMKL picks its kernels by CPU "
              "vendor: on an AMD CPU it kept its own choice whether MKL_ENABLE_INSTRUCTIONS allowed AVX2 or only "
              "SSE4.2, while MKL_CBWR=COMPATIBLE, its reproducible mode, did change them; torch's float32 matrix "
              "products go through oneMKL, not oneDNN (MKL_VERBOSE lists them as SGEMM), so DNNL_MAX_CPU_ISA reaches "
              "none of them. Where the machine has 2 CPUs, OMP_NUM_THREADS=2 is its default.)", "",
              "Seconds per setting (a shared machine): "
              + ", ".join(f"{s} {t:.0f}" for s, t in results["seconds"].items()) + "."]
    H.write_markdown(folder / f"{NAME}.md", lines)
    print((folder / f"{NAME}.md").read_text())


def main():
    if sys.argv[1:2] == ["--worker"]:
        sys.path.insert(0, str(H.ROOT))
        return worker(sys.argv[2])
    p = H.parser(__doc__, NAME)
    args = p.parse_args()
    if not H.measuring(args, NAME, report, H.SHARED / "data" / "ecam", "The reference is computed on ECAM"):
        return 0
    report(measure(), H.out_dir(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
