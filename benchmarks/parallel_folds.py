"""classify-samples-cv's folds on QIIME 2's own parallel engine: serial against QIIME 2 2024.10's parsl executor.

On CRC_Metagenomics (766 samples, 7 studies, `pair_rank` the study) leave-one-study-out, through the Artifact API:
the encoder pass alone (tokenize + prepare-cross-validation), the folds alone one after another (cross-validate-fold
per fold, then collate-classification-folds: what running folds side by side can save at most), the serial pipeline
(`mgm.actions.classify_samples_cv(...)`), then the same call under a parsl HighThroughputExecutor of --workers
workers (`classify_samples_cv.parallel(...)`, each fold an action of its own, one thread each; parsl's logs in a
temporary directory). The predictions of both runs are compared; the CPU share other processes took and the load
average are recorded per phase (before each, it waits up to --max-wait seconds for the machine to be idle).
Needs QIIME 2 2023.5 or later (parallel pipelines); run with the 2024.10 venv:

    PYTHONPATH=. ../main/.venv-qiime2-2024.10/bin/python benchmarks/parallel_folds.py

Writes benchmarks/results/parallel_folds.md and parallel_folds.json.
"""
import os
import pathlib
import sys
import tempfile
import time

import _harness as H

NAME = "parallel_folds"
COHORT = "CRC_Metagenomics"


def _cohort():
    import pandas as pd
    import qiime2
    folder = H.SHARED / "data" / "disease-benchmark" / COHORT
    table = pd.read_csv(folder / "genus_relative.tsv", sep="\t", index_col=0, dtype={"sample_id": str})
    metadata = pd.read_csv(folder / "metadata.tsv", sep="\t", index_col=0, dtype={"sample_id": str})
    frame = pd.DataFrame({"Group": metadata.loc[table.index, "Group"].astype(str),
                          "study": "study " + metadata.loc[table.index, "pair_rank"].astype(str)},
                         index=pd.Index(table.index, name="sample-id"))
    return (qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table), qiime2.Metadata(frame),
            len(table), frame["study"].nunique())


def _predictions(results):
    import pandas as pd
    with tempfile.TemporaryDirectory() as folder:
        results.evaluation.export_data(folder)
        return pd.read_csv(f"{folder}/out_of_fold_predictions.tsv", sep="\t", float_precision="round_trip")


def _load():
    return [round(value, 2) for value in os.getloadavg()]


def measure(workers, n_estimators, max_wait):
    import qiime2
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider
    from qiime2.plugins import mgm
    from qiime2.sdk.parallel_config import ParallelConfig
    from q2_mgm.core.cross_validation_store import FoldPlan
    # parsl starts its interchange and worker pool as commands of this venv: the interchange from this process's
    # PATH, the workers from the environment parsl copied at its import (so worker_init sets their PATH too)
    venv_bin = pathlib.Path(sys.executable).parent
    os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    table, metadata, n_samples, n_studies = _cohort()
    study = metadata.get_column("study")
    settings = dict(table=table, metadata=metadata.get_column("Group"), groups=study, batches=study,
                    cv_strategy="leave-one-group-out", n_estimators=n_estimators)
    results = {"qiime2": qiime2.__version__, "cohort": COHORT, "samples": n_samples, "studies": n_studies,
               "workers": workers, "n_estimators": n_estimators, "machine": H.machine_info(), "load": {}}
    watch = H.CpuWatch(max_wait_s=max_wait)
    H.say("encoder pass alone (tokenize + prepare-cross-validation)")
    with watch.phase("prepare"):
        results["load"]["prepare"] = _load()
        started = time.perf_counter()
        corpus, = mgm.actions.tokenize(table=table)
        folds, = mgm.actions.prepare_cross_validation(corpus=corpus, task="classification", **{
            k: v for k, v in settings.items() if k != "table"})
        results["prepare_wall_s"] = time.perf_counter() - started
    results["encoder_s"] = folds.view(FoldPlan).record["features_seconds"]
    H.say("the folds alone, one after another (cross-validate-fold per fold, collate-classification-folds)")
    with watch.phase("folds"):
        results["load"]["folds"] = _load()
        started = time.perf_counter()
        n_folds = len(folds.view(FoldPlan).fold_names)
        fold_results = [mgm.actions.cross_validate_fold(folds=folds, fold=number).fold_predictions
                        for number in range(1, n_folds + 1)]
        mgm.actions.collate_classification_folds(folds=folds, fold_predictions=fold_results)
        results["folds_serial_s"] = time.perf_counter() - started
    H.say("serial classify-samples-cv")
    with watch.phase("serial"):
        results["load"]["serial"] = _load()
        started = time.perf_counter()
        serial = mgm.actions.classify_samples_cv(**settings)
        results["serial_s"] = time.perf_counter() - started
    H.say(f"classify-samples-cv --parallel, {workers} workers")
    with tempfile.TemporaryDirectory() as run_dir, watch.phase("parallel"):  # parsl's logs, not ./runinfo
        results["load"]["parallel"] = _load()
        config = Config(executors=[HighThroughputExecutor(label="default", max_workers_per_node=workers,
                                                          provider=LocalProvider(
                                                              worker_init=f'export PATH="{venv_bin}:$PATH"'))],
                        strategy="none",
                        run_dir=run_dir)
        started = time.perf_counter()
        with ParallelConfig(config):
            parallel = mgm.actions.classify_samples_cv.parallel(**settings)._result()
        results["parallel_s"] = time.perf_counter() - started
    results["contention"] = watch.phases
    a, b = _predictions(serial), _predictions(parallel)
    numbers = [c for c in a.columns if c.startswith("probability:")]
    results["same_classes"] = bool((a["prediction"] == b["prediction"]).all())
    results["max_probability_difference"] = float((a[numbers] - b[numbers]).abs().to_numpy().max())
    return results


def report(results, folder):
    H.write_json(folder / f"{NAME}.json", results)
    speedup = results["serial_s"] / results["parallel_s"]
    print(f"serial {results['serial_s']:.1f} s, parallel {results['parallel_s']:.1f} s: ratio {speedup:.2f}")
    contention = ", ".join(f"{phase} {v['other_cpu_share']:.0%} (load average {results['load'][phase][0]:.1f})"
                           for phase, v in results["contention"].items())
    H.write_markdown(folder / f"{NAME}.md", [
        f"# classify-samples-cv: serial against QIIME 2's parallel engine ({results['workers']} workers)", "",
        f"{results['cohort']}: {results['samples']} samples, {results['studies']} studies, leave-one-study-out "
        f"(one fold per study), n_estimators={results['n_estimators']}; QIIME 2 {results['qiime2']}, "
        f"{results['machine']['nproc']} CPUs ({results['machine']['cpu_model']}).", "",
        "| run | wall |", "|---|---|",
        f"| encoder pass (features of every sample, once) | {H.fmt_s(results['encoder_s'])} |",
        f"| tokenize + prepare-cross-validation | {H.fmt_s(results['prepare_wall_s'])} |",
        f"| the {results['studies']} folds alone, one after another, and their collation | "
        f"{H.fmt_s(results['folds_serial_s'])} |",
        f"| classify-samples-cv, serial | {H.fmt_s(results['serial_s'])} |",
        f"| classify-samples-cv --parallel, {results['workers']} parsl workers | {H.fmt_s(results['parallel_s'])} |",
        "", f"Serial / parallel: {speedup:.2f} (above 1, the parallel run is faster). The parallel run includes "
        "starting parsl's interchange and worker processes (each imports QIIME 2, torch and q2-mgm), passing every "
        "artifact through them, and the encoder pass, which is one action that every fold waits for; only the folds "
        "(MGM recipe and baselines per held-out study) run side by side, one thread each. Run one after another, the "
        f"folds take {H.fmt_s(results['folds_serial_s'])} in all, so {results['workers']} workers could save at most "
        f"about {H.fmt_s(results['folds_serial_s'] * (1 - 1 / results['workers']))} here: on this cohort the start-up "
        "costs more than it saves. Folds that take longer (more samples, more trees, a slower recipe) or more "
        "CPUs change that balance.", "",
        f"Same predicted classes as the serial run: {results['same_classes']}; largest difference of a "
        f"probability: {results['max_probability_difference']:.1e}.", "",
        f"Share of the CPUs that other processes took during each phase (the machine is shared): {contention}. "
        "Where it is high, the figures measure the contention as much as the code. The parallel phase's share also "
        "counts parsl's own interchange and workers, which its LocalProvider starts outside this process's tree.",
    ])
    print((folder / f"{NAME}.md").read_text())


def main():
    p = H.parser(__doc__, NAME, max_wait=60)
    p.add_argument("--workers", type=int, default=2, help="parsl worker processes (default 2)")
    p.add_argument("--n-estimators", type=int, default=100, help="trees of the RandomForest baseline (default 100)")
    args = p.parse_args()
    earlier = H.earlier_results(args, NAME)
    if earlier:
        return report(*earlier)
    import qiime2
    if tuple(int(part) for part in qiime2.__version__.split(".")[:2]) < (2023, 5):
        print(f"SKIP: QIIME 2 {qiime2.__version__} has no parallel pipelines; run with QIIME 2 2024.10's venv.")
        return 0
    if not (H.SHARED / "data" / "disease-benchmark" / COHORT).exists():
        print(f"SKIP: ../shared/data/disease-benchmark/{COHORT} is absent; nothing was measured.")
        return 0
    report(measure(args.workers, args.n_estimators, args.max_wait), H.out_dir(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
