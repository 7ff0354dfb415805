"""Markers across held-out studies (issue 21): what they cost, how complete their integrated gradients are, and
whether they find what published cross-study meta-analyses found.

1. Speed: classify-samples-cv on CRC_Metagenomics (leave-one-study-out, the defaults, through QIIME 2) with markers
   (the pipeline always explains) beside the same steps without them (tokenize, prepare-cross-validation with
   markers off, cross-validate-fold per fold, collate, evaluate), side by side in one run; the integrated
   gradients' own seconds from the cross-validation's record.
2. Completeness: the median relative completeness gap of mgm-transfer's MGM part over held-out samples of
   CRC_Metagenomics at several integration steps, with the seconds each took.
3. Validation: on each cohort of benchmarks/published_markers.tsv, leave-one-study-out with studies as batches,
   the markers of the CLR baseline and the meta-analysis on the same samples (and of mgm-transfer, from the speed
   run's cross-validation, on CRC_Metagenomics; --mgm-cohorts adds others: the integrated gradients take minutes
   per few hundred samples on a CPU): how many of the published genera (those the cohort holds) are in their
   class's top 10, pointing the published way, by each ranking.

Writes benchmarks/results/markers.{md,json}.

usage: markers.py [--cohorts NAME ...] [--mgm-cohorts NAME ...] [--skip-speed] [--skip-steps] [--out DIR]
       markers.py --from-json [MARKERS_JSON]
"""
import sys
import time

import numpy as np
import pandas as pd

from _harness import BENCH, SHARED, earlier_results, fmt_s, out_dir, parser, say, write_json, write_markdown

DATA = SHARED / "data" / "disease-benchmark"
SPEED_COHORT = "CRC_Metagenomics"
STEPS = (8, 16, 32, 64)
STEP_SAMPLES = 40  # held-out samples whose gaps are measured at each step count
PUBLISHED = BENCH / "published_markers.tsv"
TOP = 10


def _cohort(name):
    sys.path.insert(0, str(BENCH))
    from transfer import read_cohort
    return read_cohort(DATA / name)


def _read(name, general, vocabulary):
    """(SampleFeatures with studies as batches, token ids, labels, encoded labels, classes, studies) of a cohort's
    samples that tokenization keeps."""
    from q2_mgm.core.inference import encode, language_model_features
    from q2_mgm.core.tokenizer import tokenize_dataframe
    from q2_mgm.core.training.targets import encode_targets
    from q2_mgm.core.transfer import SampleFeatures
    table, labels, studies = _cohort(name)
    corpus = tokenize_dataframe(table)
    kept = corpus.samples.index
    token_ids = encode(corpus.samples.sentence, vocabulary)
    embeddings, likelihood = language_model_features(general, token_ids)
    batches = studies.loc[kept].to_numpy()
    labels = labels.loc[kept]
    encoded, classes, _, _ = encode_targets(labels, "classification")
    return (SampleFeatures(embeddings, likelihood, corpus.abundance_table(kept), batches), token_ids, labels, encoded,
            classes, batches)


def speed():
    """Seconds of classify-samples-cv's steps without markers, then with them (as the pipeline runs them: tokenize,
    prepare-cross-validation, cross-validate-fold per fold, collate, evaluate, and with markers
    cross-validation-markers), one after the other through QIIME 2's Artifact API."""
    import qiime2
    from qiime2.plugins import mgm
    from q2_mgm._formats import MGMCrossValidationFoldsDirFmt
    from q2_mgm.core.cross_validation_store import CrossValidation, fold_count
    table, labels, studies = _cohort(SPEED_COHORT)
    metadata = qiime2.Metadata(pd.DataFrame({"Group": labels, "study": studies}).rename_axis("sample-id"))
    artifact = qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]", table)
    settings = dict(metadata=metadata.get_column("Group"), groups=metadata.get_column("study"),
                    batches=metadata.get_column("study"), cv_strategy="leave-one-group-out")

    def run(markers):
        start = time.perf_counter()
        corpus, = mgm.actions.tokenize(table=artifact)
        folds, = mgm.actions.prepare_cross_validation(corpus=corpus, task="classification", mgm_markers=markers,
                                                      **settings)
        n_folds = fold_count(folds.view(MGMCrossValidationFoldsDirFmt).path)
        results = [mgm.actions.cross_validate_fold(folds=folds, fold=f).fold_predictions
                   for f in range(1, n_folds + 1)]
        *_, result = mgm.actions.collate_classification_folds(folds=folds, fold_predictions=results)
        mgm.actions.evaluate_cross_validation(cross_validation=result)
        if markers:
            mgm.actions.cross_validation_markers(cross_validation=result)
        seconds = time.perf_counter() - start
        say(f"  {'with' if markers else 'without'} the MGM recipe's markers: {seconds:.1f} s")
        return seconds, result.view(CrossValidation)

    without, _ = run(False)
    with_markers, result = run(True)
    record = result.record["markers"]
    return result, {"cohort": SPEED_COHORT, "samples": int(len(table)), "studies": int(studies.nunique()),
            "without_markers_s": without, "with_markers_s": with_markers, "ratio": with_markers / without,
            "explain_s": record["explain_seconds"], "median_relative_gap": record["median_relative_gap"],
            "integration_steps": record["integration_steps"]}


def steps():
    """Median relative completeness gap and seconds of the MGM part's integrated gradients at each step count,
    on STEP_SAMPLES held-out samples of the first study of SPEED_COHORT."""
    from q2_mgm.core.contributions import explain
    from q2_mgm.core.models import load_general_model
    from q2_mgm.core.transfer import make_recipe
    general, vocabulary, _ = load_general_model()
    data, token_ids, labels, encoded, classes, batches = _read(SPEED_COHORT, general, vocabulary)
    held = batches == batches[0]
    fitted = make_recipe("mgm-transfer", "classification").fit(data.rows(np.flatnonzero(~held)), encoded[~held])
    rows = np.flatnonzero(held)[:STEP_SAMPLES]
    out = []
    for count in STEPS:
        start = time.perf_counter()
        parts = next(iter(explain(fitted, data, rows, classes, general, [token_ids[i] for i in rows], vocabulary,
                                  steps=count).values()))
        out.append({"steps": count, "samples": len(rows), "seconds": time.perf_counter() - start,
                    "median_relative_gap": float(np.median(parts.relative_gap)),
                    "p90_relative_gap": float(np.quantile(parts.relative_gap, 0.9))})
        say(f"  {count} steps: median gap {out[-1]['median_relative_gap']:.4f}, {out[-1]['seconds']:.1f} s")
    # the same at the default steps with the model as loaded (eager attention, weights trainable, so autograd also
    # computes weight gradients): what core.models.input_gradients saves
    import contextlib
    from q2_mgm.core import contributions
    from q2_mgm.core.settings import CONTRIBUTION_STEPS
    switched = contributions.input_gradients
    contributions.input_gradients = lambda network: contextlib.nullcontext(network)
    try:
        start = time.perf_counter()
        explain(fitted, data, rows, classes, general, [token_ids[i] for i in rows], vocabulary,
                steps=CONTRIBUTION_STEPS)
        plain = time.perf_counter() - start
    finally:
        contributions.input_gradients = switched
    default = next(r for r in out if r["steps"] == CONTRIBUTION_STEPS)
    default["seconds_as_loaded"] = plain
    say(f"  {CONTRIBUTION_STEPS} steps with the model as loaded: {plain:.1f} s")
    return out


def validation(names, mgm_cohorts, done):
    """Per cohort: the markers of batch-clr-logistic (and of mgm-transfer for mgm_cohorts, or where `done`, {cohort:
    CrossValidation}, holds a run with them), the meta-analysis' agreement, and the published genera's places."""
    from q2_mgm.core.cross_validation import make_folds, plan_folds, run_plan
    from q2_mgm.core.models import load_general_model
    general, vocabulary, _ = load_general_model()
    published = pd.read_csv(PUBLISHED, sep="\t")
    out = {}
    for name in names:
        say(f"  {name}")
        if name in done:
            out[name] = _validated(done[name], None, published, name)
            continue
        data, token_ids, labels, encoded, classes, batches = _read(name, general, vocabulary)
        folds = make_folds(encoded, batches, 0, "leave-one-group-out", "classification", 0)
        plan = plan_folds(data, labels, "classification", folds, "mgm-transfer", ("batch-clr-logistic",),
                          groups=batches, mgm_markers=name in mgm_cohorts, token_ids=token_ids,
                          cv_strategy="leave-one-group-out")
        start = time.perf_counter()
        out[name] = _validated(run_plan(plan, lambda message: None, (general, vocabulary)),
                               time.perf_counter() - start, published, name)
    return out


def _validated(result, seconds, published, name):
    from q2_mgm.core.markers import agreement, marker_table
    entry = {"samples": int((result.predictions["method"] == result.methods[0]).sum()),
             "studies": int(result.predictions["fold"].nunique()), "seconds": seconds,
             "median_relative_gap": result.record["markers"]["median_relative_gap"].get("mgm-transfer")}
    for method in ("mgm-transfer", "batch-clr-logistic"):
        if method not in set(result.effects["method"]):
            continue
        markers, record = marker_table(result, method)
        together = agreement(markers, result.classes)
        entry[method] = {"top": markers.head(TOP)[["genus", "points_to", "consistent_effect",
                                                   "mgm_share"]].to_dict("records"),
                         "agreement": None if together is None else {
                             "spearman": together["spearman"], "overlap": together["overlap"],
                             "disagree": together["disagree"]["genus"].tolist()},
                         "published": _published_places(markers, published, name), **record}
    entry["meta-analysis"] = {"published": _published_places(_meta_ranking(result.meta), published, name)}
    return entry


def _meta_ranking(meta):
    """The meta-analysis' genera in the layout the published check reads: by q-value (as meta_analysis.tsv orders
    them), points_to its direction."""
    table = meta.reset_index()
    return table.rename(columns={"index": "genus", "direction": "points_to"})[["genus", "points_to"]]


def _published_places(markers, published, cohort):
    """For each published genus of the cohort: its place among the genera pointing its published way (None where
    it points the other way or is not ranked), and whether that is in the top TOP."""
    rows = published[published["cohort"] == cohort]
    places = {}
    for genus, points_to in zip(rows["genus"], rows["points_to"]):
        same = list(markers[markers["points_to"] == points_to]["genus"])
        places[genus] = {"points_to": points_to, "place": same.index(genus) + 1 if genus in same else None}
    return {"genera": places, "in_top": sum(p["place"] is not None and p["place"] <= TOP for p in places.values()),
            "held": len(places)}


def report(results, folder):
    write_json(folder / "markers.json", results)
    lines = ["# Markers across held-out studies: cost, completeness and validation", "",
             f"Run {results['started']} by `benchmarks/markers.py`, {fmt_s(results['total_s'])} in all; "
             f"{results['machine']}.", ""]
    if results.get("speed"):
        s = results["speed"]
        lines += ["## Speed", "",
                  f"classify-samples-cv on {s['cohort']} ({s['samples']} samples, {s['studies']} studies, "
                  "leave-one-study-out, the defaults) through QIIME 2, one after the other in one process:", "",
                  "| run | seconds |", "|---|---:|",
                  f"| the same steps with --p-no-mgm-markers (the baselines' markers and the meta-analysis made, the "
                  f"MGM recipe not explained) | {s['without_markers_s']:.1f} |",
                  f"| classify-samples-cv with markers (the default) | {s['with_markers_s']:.1f} |",
                  f"| ratio | **{s['ratio']:.2f}x** (target: at most 3x) |", "",
                  "Seconds explaining each method's held-out samples, all folds (the MGM recipe's are its integrated "
                  f"gradients, {s['integration_steps']} steps): " +
                  ", ".join(f"{m} {v:.1f}" for m, v in s["explain_s"].items()) +
                  "; median relative completeness gap: " +
                  ", ".join(f"{m} {v:.2%}" for m, v in s["median_relative_gap"].items()) + ".", ""]
    if results.get("steps"):
        lines += ["## Integrated gradients: steps, completeness gap and time", "",
                  f"mgm-transfer's MGM part on {results['steps'][0]['samples']} held-out samples of "
                  f"{SPEED_COHORT}'s first study (baseline: every genus token at the vocabulary's average genus "
                  "embedding). The relative gap is |sum of the genus contributions - the part's change from baseline "
                  "to sentence| over the size of that change.", "",
                  "| steps | median gap | 90th percentile | seconds |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['steps']} | {r['median_relative_gap']:.2%} | {r['p90_relative_gap']:.2%} | "
                  f"{r['seconds']:.1f} |" for r in results["steps"]]
        lines += [""]
        default = [r for r in results["steps"] if "seconds_as_loaded" in r]
        if default:
            r = default[0]
            lines += [f"At {r['steps']} steps the integrated gradients run inside core.models.input_gradients "
                      f"(weights frozen, attention by sdpa): {r['seconds']:.1f} s, against "
                      f"{r['seconds_as_loaded']:.1f} s with the model as loaded (eager attention, weights trainable, "
                      f"so autograd also computes weight gradients): {r['seconds_as_loaded'] / r['seconds']:.2f}x.",
                      ""]
    if results.get("validation"):
        lines += ["## Validation against published cross-study meta-analyses", "",
                  f"Leave-one-study-out, studies as batches. For each published genus (benchmarks/published_markers.tsv"
                  f"), its place among the genera pointing the published way; 'in top {TOP}' counts those at "
                  f"{TOP} or better. Spearman: the model's consistent effect (signed toward the second class) against "
                  "the meta-analysis' Hedges' g over the genera both rank; overlap: of the two top-20 lists.", "",
                  "| cohort | samples | studies | ranking | published genera in top 10 | Spearman | top-20 overlap | "
                  "median gap |", "|---|---:|---:|---|---:|---:|---:|---:|"]
        for name, entry in results["validation"].items():
            for method in [m for m in ("mgm-transfer", "batch-clr-logistic", "meta-analysis") if m in entry]:
                e, gap = entry[method], entry["median_relative_gap"]
                together = e.get("agreement") or {}
                rho = f"{together['spearman']:.2f}" if together else ""
                gap = f"{gap:.2%}" if method == "mgm-transfer" and gap is not None else ""
                lines.append(f"| {name} | {entry['samples']} | {entry['studies']} | {method} | "
                             f"{e['published']['in_top']} of {e['published']['held']} | {rho} | "
                             f"{together.get('overlap', '')} | {gap} |")
        lines += ["", "Published genera and their places (mgm-transfer / CLR baseline / meta-analysis):", ""]
        for name, entry in results["validation"].items():
            genera = entry["meta-analysis"]["published"]["genera"]
            if genera:
                lines.append(f"- {name}: " + "; ".join(
                    f"{g.removeprefix('g__')} -> {p['points_to']}: " + " / ".join(
                        str(entry[m]["published"]["genera"][g]["place"] or "other way") if m in entry else "-"
                        for m in ("mgm-transfer", "batch-clr-logistic", "meta-analysis")) for g, p in genera.items()))
        sources = {part for source in pd.read_csv(PUBLISHED, sep="\t")["source"] for part in source.split("; ")}
        lines += ["", "Sources: " + "; ".join(sorted(sources)) + ".", ""]
    write_markdown(folder / "markers.md", lines)


def main():
    p = parser(__doc__, "markers")
    p.add_argument("--cohorts", nargs="*", help="validation cohorts (default: every cohort of "
                   "benchmarks/published_markers.tsv)")
    p.add_argument("--mgm-cohorts", nargs="*", help="validation cohorts whose mgm-transfer markers are made too (the "
                   "speed run's CRC_Metagenomics always is)")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-steps", action="store_true")
    args = p.parse_args()
    earlier = earlier_results(args, "markers")
    if earlier:
        report(*earlier)
        return 0
    if not DATA.exists():
        print(f"SKIP: {DATA} is absent; nothing was measured.")
        return 0
    import platform
    started = time.perf_counter()
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"}
    done = {}
    if not args.skip_speed:
        say("speed")
        done[SPEED_COHORT], results["speed"] = speed()
    if not args.skip_steps:
        say("integration steps")
        results["steps"] = steps()
    names = args.cohorts or sorted(set(pd.read_csv(PUBLISHED, sep="\t")["cohort"]))
    say("validation")
    results["validation"] = validation(names, set(args.mgm_cohorts or ()), done)
    results["total_s"] = time.perf_counter() - started
    report(results, out_dir(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
