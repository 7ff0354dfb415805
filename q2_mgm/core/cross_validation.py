"""Cross-validation that predicts every sample from a model that never saw it (as q2-sample-classifier's
classify-samples-ncv does), with folds that can hold out whole groups (studies, countries, subjects), every method
fit on exactly the same samples of each fold, and the train-on-one-group, test-on-each-other transfer matrix.

The frozen encoder's features come in precomputed (`transfer.SampleFeatures`): one forward pass per sample, not one
per fold. A cross-validation is planned (plan_folds), run fold by fold (run_fold: one call per fold, which QIIME 2's
parallel pipelines run at once) and collated (collate_folds); cross_validate does the three in one process. Every fit
runs on one BLAS/OpenMP thread (ONE_THREAD), so the result is the same bit for bit whichever way the folds ran.
What a cross-validation stores and reads back (folds, plans, fold results, the collated result) is
core.cross_validation_store's.
"""
import dataclasses
import time
import warnings
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from . import schemas
from .baselines import BASELINE_TREES
from .cross_validation_store import CrossValidation, Fold, FoldPlan, FoldResult
from .settings import CONTRIBUTION_STEPS, MGM_BLOCKS
from .training.targets import encode_targets
from .transfer import (BASELINES, CLR_PREVALENCE, DEFAULT_RECIPE, RECIPES, RandomForestBaseline, SampleFeatures,
                       TransferError, make_recipe)

if TYPE_CHECKING:
    import torch

    from .vocab import Vocabulary

CV_STRATEGIES = ("k-fold", "leave-one-group-out")
# the BLAS/OpenMP threads of every fit of a cross-validation (folds and transfer matrix): one, so that a fold fit in
# a worker of QIIME 2's parallel pipelines, one of several side by side, gives the single process's result bit for
# bit (a solver's sums taken by more threads come in another order and differ in the last bits, ~1e-16)
ONE_THREAD = 1


@dataclasses.dataclass
class CrossValidationSettings:
    """The one table of defaults of cross-validate-* and classify-samples-cv / regress-samples-cv.

    cv: folds of k-fold (leave-one-group-out makes one fold per group); cv_strategy: one of CV_STRATEGIES;
    recipe: the MGM recipe (core.transfer.RECIPES); transfer_matrix: also train on each group alone and test on
    each other; mgm_markers: every fold's MGM recipe explains its held-out samples too, by integrated gradients
    (core.markers; the conventional baselines always do, cheaply); n_estimators: trees of
    the RandomForest baseline; random_state: seed of the folds and forests."""
    cv: int = 5
    cv_strategy: str = "k-fold"
    recipe: str = DEFAULT_RECIPE
    transfer_matrix: bool = False
    mgm_markers: bool = True
    n_estimators: int = BASELINE_TREES
    random_state: int = 0


CROSS_VALIDATION = CrossValidationSettings()


def check_fold_settings(cv: int, strategy: str, n_groups: Optional[int], groups_column: Optional[str] = None) -> None:
    """What can be checked of the folds before any work: the strategy, and enough groups (n_groups: how many
    distinct groups, None without a groups column, named groups_column). TransferError names the parameter, the
    column and the fix."""
    column = "the groups column" + (f" {groups_column!r}" if groups_column else "")
    if strategy not in CV_STRATEGIES:
        raise TransferError(f"cv_strategy must be one of {', '.join(CV_STRATEGIES)}, not {strategy!r}.")
    if strategy == "leave-one-group-out":
        if n_groups is None:
            raise TransferError("cv_strategy 'leave-one-group-out' needs a groups column (study, country or "
                                "subject of each sample; --m-groups-column); give one, or use cv_strategy "
                                "'k-fold'.")
        if n_groups < 2:
            raise TransferError(f"leave-one-group-out needs at least 2 groups; {column} holds {n_groups}. "
                                "Give a groups column with several groups, or use cv_strategy 'k-fold' without "
                                "groups.")
        return
    if cv < 2:
        raise TransferError(f"cv must be at least 2 folds, not {cv}.")
    if n_groups is not None and n_groups < cv:
        raise TransferError(f"k-fold with groups needs at least cv={cv} groups (--p-cv), and {column} holds "
                            f"{n_groups}; lower cv to {n_groups} or use cv_strategy 'leave-one-group-out'.")


def check_stratified_classes(counts: pd.Series, cv: int, label_column: Optional[str] = None) -> None:
    """TransferError where a class has fewer samples than the cv folds stratified k-fold puts one of each class in
    (counts: samples per class, indexed by the class names, or by position where they are unnamed), naming the
    class, the column and the fix. Run before any work by the pipelines, on the metadata's values, and again by
    make_folds on the samples tokenization kept."""
    smallest = int(counts.min())
    if smallest < cv:
        fix = (f"lower cv to {smallest} (--p-cv {smallest}), or merge the class with a related one"
               if smallest >= 2 else "merge the class with a related one, or filter its sample out")
        name = "A class" if isinstance(counts.index, pd.RangeIndex) else f"Class {counts.idxmin()!r}"
        where = f" of {label_column!r}" if label_column else ""
        raise TransferError(f"{name}{where} has {smallest} samples, fewer than the cv={cv} folds that stratified "
                            f"k-fold puts one of each class in; {fix}.")


def make_folds(targets: np.ndarray, groups: Optional[np.ndarray], cv: int, strategy: str, task: str,
               random_state: int, classes: Optional[Sequence[str]] = None, label_column: Optional[str] = None,
               groups_column: Optional[str] = None) -> List[Fold]:
    """Folds over (n_samples,) targets (class indices into `classes` for classification). k-fold is stratified by
    class for classification, and keeps each group on one side where groups ((n_samples,) names) are given;
    leave-one-group-out holds out one group per fold. TransferError where the strategy cannot be made from these
    samples, naming the class and the columns (label_column, groups_column) where given."""
    check_fold_settings(cv, strategy, None if groups is None else len(np.unique(groups)), groups_column)
    index = np.arange(len(targets))
    if strategy == "leave-one-group-out":
        splits = LeaveOneGroupOut().split(index, targets, groups)
        return [Fold(str(groups[test][0]), train, test) for train, test in splits]
    if groups is not None:
        splitter = (StratifiedGroupKFold(cv, shuffle=True, random_state=random_state) if task == "classification"
                    else GroupKFold(cv))
        with warnings.catch_warnings():  # a class in fewer groups than folds is absent from some held-out folds:
            # the page's per-fold table counts each class's samples per fold (and check_training_classes stops a
            # fold that leaves a class untrained), so scikit-learn's console warning adds nothing
            warnings.filterwarnings("ignore", "The least populated class in y has only", UserWarning)
            splits = list(splitter.split(index, targets, groups))
    elif task == "classification":
        counts = np.bincount(targets)
        check_stratified_classes(pd.Series(counts, index=None if classes is None else list(classes)[:len(counts)]),
                                 cv, label_column)
        splits = StratifiedKFold(cv, shuffle=True, random_state=random_state).split(index, targets)
    else:
        splits = KFold(cv, shuffle=True, random_state=random_state).split(index)
    return [Fold(f"fold {number}", train, test) for number, (train, test) in enumerate(splits, start=1)]


def check_training_classes(folds: Sequence[Fold], encoded: np.ndarray, classes: Sequence[str],
                           groups_column: Optional[str] = None) -> None:
    """Before any work: every class (encoded: (n_samples,) class indices into `classes`) must keep a training
    sample outside each held-out fold. TransferError names the fold and the class, and fixes that work: where
    k-fold with groups drew the folds (groups_column), leave-one-group-out or no groups."""
    for fold in folds:
        seen = np.unique(encoded[fold.train])
        if len(seen) < len(classes):
            missing = [classes[i] for i in range(len(classes)) if i not in seen]
            fix = (f"Either leave the groups column {groups_column!r} out (stratified k-fold puts every class in "
                   "each training side), or, where its groups each hold several classes, use cv_strategy "
                   "'leave-one-group-out' (each held-out group then leaves the classes of the others to train on)"
                   if groups_column else
                   "Merge the class with a related one, or filter its samples out")
            raise TransferError(f"Holding out {fold.name} leaves no training sample of class "
                                f"{', '.join(map(repr, missing))}: every class must occur outside each held-out "
                                f"fold. {fix}.")


def check_scored_folds(folds: Sequence[Fold], encoded: np.ndarray, classes: Sequence[str], groups: np.ndarray,
                       label_column: str, groups_column: str) -> None:
    """Before any work: where groups drew a classification's folds ((n_samples,) names), the held-out folds must
    not each hold one class, or no fold can be scored (ROC AUC needs two classes): the groups then each hold one
    class. TransferError names the columns, a fold, its group and class, and the fix that works: no groups
    (stratified k-fold holds out every class in each fold)."""
    if len(classes) < 2 or not all(len(np.unique(encoded[fold.test])) == 1 for fold in folds):
        return
    fold = folds[0]
    raise TransferError(f"Every held-out fold holds one class of {label_column!r} only ({fold.name}, group "
                        f"{str(groups[fold.test][0])!r} of {groups_column!r}: {classes[encoded[fold.test][0]]!r}), "
                        f"as the groups of {groups_column!r} each hold one class: no fold can be scored (ROC AUC "
                        f"needs two classes). Leave the groups column {groups_column!r} out (stratified k-fold then "
                        "holds out every class in each fold), or give a groups column whose groups each hold "
                        "several classes.")


def _decode(outputs, task, classes, mean, std):
    if task == "regression":
        return {"prediction": outputs * std + mean}
    columns = {schemas.CV_PROBABILITY_PREFIX + c: outputs[:, i] for i, c in enumerate(classes)}
    return {"prediction": np.asarray(classes)[outputs.argmax(1)], **columns}


def _transfer_matrix(data, encoded, groups, methods, task, random_state, n_estimators, classes, report):
    from sklearn.metrics import mean_absolute_error, roc_auc_score
    rows = []
    names = np.unique(groups)
    for source in names:
        train = np.flatnonzero(groups == source)
        if task == "classification" and len(np.unique(encoded[train])) < len(classes):
            report(f"transfer matrix: {source} holds one class only; not trained on alone")
            continue
        for method in methods:
            recipe = make_recipe(method, task, random_state, n_estimators).fit(data.rows(train), encoded[train])
            for target in names[names != source]:
                test = np.flatnonzero(groups == target)
                out = recipe.predict(data.rows(test))
                if task == "classification":
                    truth = encoded[test]
                    if len(np.unique(truth)) < 2:
                        score = np.nan
                    elif len(classes) == 2:
                        score = roc_auc_score(truth, out[:, 1])
                    else:
                        score = roc_auc_score(truth, out, multi_class="ovr", labels=np.arange(len(classes)))
                else:
                    score = mean_absolute_error(encoded[test], out)
                rows.append({"method": method, "trained_on": str(source), "tested_on": str(target),
                             "score": float(score)})
    return pd.DataFrame(rows, columns=["method", "trained_on", "tested_on", "score"])


def cross_validate(data: SampleFeatures, targets: pd.Series, task: str, folds: Sequence[Fold],
                   recipe: str = DEFAULT_RECIPE, baselines: Sequence[str] = BASELINES,
                   random_state: int = 0, n_estimators: int = BASELINE_TREES,
                   transfer_groups: Optional[np.ndarray] = None, report: Callable[[str], None] = print,
                   **record) -> CrossValidation:
    """Fit the MGM `recipe` and each baseline on every fold's training samples and predict its held-out samples.

    data and targets ((n_samples,) labels or numbers, index = sample IDs) hold the same samples in the same order;
    folds: from make_folds (each sample held out once, trained on by every other fold). With transfer_groups
    ((n_samples,) names), also fit each method on each group alone and score it on each other group. `record` adds
    the columns and settings used to the result's record. Raises TransferError where a fold leaves a class without
    training samples.

    The same path as the fold-by-fold actions (plan_folds, run_fold per fold, collate_folds), in one process: every
    fit runs on one BLAS/OpenMP thread, so both give the same result bit for bit."""
    plan = plan_folds(data, targets, task, folds, recipe, baselines, random_state, n_estimators,
                      transfer_matrix=transfer_groups is not None, groups=transfer_groups, **record)
    return run_plan(plan, report)


def _methods(recipe, baselines):
    return [recipe] + [b for b in baselines if b != recipe]


def predict_fold(data, targets, encoded, task, classes, mean, std, fold, method, random_state,
                 n_estimators=BASELINE_TREES):
    """One method fit on one fold's training samples; its held-out samples' rows (sample_id, fold, truth,
    prediction, probabilities)."""
    return _fit_and_predict(data, targets, encoded, task, classes, mean, std, fold, method, random_state,
                            n_estimators)[1]


def _fit_and_predict(data, targets, encoded, task, classes, mean, std, fold, method, random_state, n_estimators):
    fitted = make_recipe(method, task, random_state, n_estimators).fit(data.rows(fold.train), encoded[fold.train])
    out = fitted.predict(data.rows(fold.test))
    return fitted, pd.DataFrame({"sample_id": targets.index[fold.test], "fold": fold.name,
                                 "truth": targets.to_numpy()[fold.test], **_decode(out, task, classes, mean, std)})


def _in_input_order(frame, targets, method):
    frame = frame.set_index("sample_id").loc[targets.index].rename_axis("sample_id").reset_index()
    frame.insert(0, "method", method)
    return frame


# --- the same cross-validation run fold by fold: a shared plan (features computed once, folds drawn once), one call
# per fold, and a collation into a CrossValidation. QIIME 2's parallel pipelines run the folds at once. ---

def plan_folds(features: SampleFeatures, targets: pd.Series, task: str, folds: Sequence[Fold],
               recipe: str = DEFAULT_RECIPE, baselines: Sequence[str] = BASELINES, random_state: int = 0,
               n_estimators: int = BASELINE_TREES, transfer_matrix: bool = False,
               groups: Optional[np.ndarray] = None, mgm_markers: bool = False,
               token_ids: Optional[Sequence[np.ndarray]] = None, **record) -> FoldPlan:
    """A FoldPlan of folds from make_folds over these samples (features and targets in the same order; groups:
    (n_samples,) names, read by the transfer matrix where transfer_matrix is set and by the markers' meta-analysis
    where no batches were given; each fold's methods explain its held-out samples, and with mgm_markers the
    recipes that read MGM features too, from token_ids, each sample's sentence, through the frozen model).
    TransferError where a fold leaves
    a class without training samples or every held-out fold one class (checked here, before any fold runs: the
    record's label_column and groups_column name them), or where the folds are not as make_folds
    draws them: every sample held out by exactly one fold, which trains on every other sample, in input order."""
    if recipe not in RECIPES:
        raise TransferError(f"Unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    encoded, classes, _, _ = encode_targets(targets, task)
    if task == "classification":
        check_training_classes(folds, encoded, classes, record.get("groups_column"))
        if groups is not None:
            check_scored_folds(folds, encoded, classes, np.asarray(groups).astype(str),
                               record.get("label_column", "the target"), record.get("groups_column", "the groups"))
    fold_of = np.zeros(len(targets), dtype=np.int64)
    for number, fold in enumerate(folds, start=1):
        if (fold_of[fold.test] != 0).any():
            raise TransferError(f"Every sample must be held out by exactly one fold; {fold.name} holds out samples "
                                "an earlier fold holds out.")
        fold_of[fold.test] = number
    if (fold_of == 0).any():
        raise TransferError("Every sample must be held out by exactly one fold; some are held out by none.")
    for number, fold in enumerate(folds, start=1):
        if not np.array_equal(fold.train, np.flatnonzero(fold_of != number)):
            raise TransferError(f"{fold.name} must train on every sample it does not hold out, in input order (as "
                                "make_folds draws folds).")
    if mgm_markers and token_ids is None:
        raise TransferError("mgm_markers needs each sample's sentence (token_ids), which the MGM recipes' "
                            "explanations read.")
    settings = {"recipe": recipe, "methods": _methods(recipe, baselines), "random_state": int(random_state),
                "n_estimators": int(n_estimators), "transfer_matrix": bool(transfer_matrix and groups is not None),
                "mgm_markers": bool(mgm_markers)}
    return FoldPlan(features, targets, task, fold_of, [f.name for f in folds],
                    None if groups is None else np.asarray(groups).astype(str), settings, record,
                    None if token_ids is None else [np.asarray(ids, dtype=np.int64) for ids in token_ids])


def run_fold(plan: FoldPlan, number: int, report: Callable[[str], None] = print,
             model: Optional[Tuple["torch.nn.Module", "Vocabulary"]] = None) -> FoldResult:
    """Fit every method of the plan on fold `number`'s training samples (1-based) and predict its held-out ones,
    on one BLAS/OpenMP thread (ONE_THREAD; the forests' n_jobs is 1 too): the fold of cross_validate, which calls
    this. Each method then explains its held-out samples (fold_markers; the MGM recipes where the plan asks for
    mgm_markers); model: (the frozen network, its vocabulary) that made the plan's features, which the MGM
    recipes' explanations run.
    TransferError where `number` is not one of the plan's folds, or a needed model is missing."""
    if not 1 <= number <= len(plan.fold_names):
        raise TransferError(f"fold must be between 1 and {len(plan.fold_names)} (this plan's folds), not {number}: "
                            f"run cross-validate-fold with --p-fold 1 to {len(plan.fold_names)}, once for each.")
    fold = plan.folds()[number - 1]
    encoded, classes, mean, std = encode_targets(plan.targets, plan.task)
    settings = plan.settings
    parts, seconds, effects, explained, gaps = [], {}, [], {}, {}
    for method in settings["methods"]:
        start = time.perf_counter()
        with threadpool_limits(limits=ONE_THREAD):
            fitted, frame = _fit_and_predict(plan.features, plan.targets, encoded, plan.task, classes, mean, std,
                                             fold, method, settings["random_state"], settings["n_estimators"])
        frame.insert(0, "method", method)
        parts.append(frame)
        seconds[method] = time.perf_counter() - start
        report(f"{method}: fold {number}/{len(plan.fold_names)} ({fold.name}, {len(fold.test)} held out) done")
        start = time.perf_counter()
        table, gap = fold_markers(plan, fold, fitted, method, classes, std, model, report)
        if table is not None:
            effects.append(table)
            explained[method] = time.perf_counter() - start
            if gap is not None:
                gaps[method] = [float(g) for g in gap]
    return FoldResult(pd.concat(parts, ignore_index=True), {
        "fold": number, "name": fold.name, "n_folds": len(plan.fold_names), "task": plan.task,
        "methods": list(settings["methods"]), "classes": [str(c) for c in classes], "seconds": seconds,
        "explain_seconds": explained, "relative_gaps": gaps},
        pd.concat(effects, ignore_index=True) if effects else None)


def fold_markers(plan: FoldPlan, fold: Fold, fitted, method: str, classes: Sequence[str], std: float,
                 model, report: Callable[[str], None]):
    """(one fitted method's effects of every genus in the fold's held-out samples (core.markers.fold_effects), the
    relative completeness gaps of its integrated gradients or None): a recipe of linear parts through its
    contributions (core.contributions.explain), the RandomForest through its impurity importances; (None, None)
    for a method that gives neither (mgm-frozen-head, classify-default), and for a recipe that reads MGM features
    where the plan does not ask for mgm_markers. A genus that no training sample of the fold holds has no effect
    there (NaN): whatever the model gives it reads nothing of the genus (for the CLR part, only the samples'
    geometric means)."""
    from .contributions import explain
    from .markers import fold_effects, importance_effects
    held_out = plan.features.rows(fold.test)
    truth = plan.targets.iloc[fold.test]
    batches = held_out.batches
    trained = plan.features.abundances.columns[(plan.features.abundances.iloc[fold.train] > 0).any().to_numpy()]

    def seen_in_training(table):
        table.loc[~table["genus"].isin(trained), "effect"] = np.nan
        return table

    if isinstance(fitted, RandomForestBaseline):
        importances = pd.Series(fitted.model_.feature_importances_, index=held_out.abundances.columns)
        return seen_in_training(importance_effects(importances, truth, held_out.abundances, plan.task, classes,
                                                   fold.name, method, batches)), None
    reads_mgm = any(name in MGM_BLOCKS for blocks, _ in fitted.parts for name, _ in blocks)
    if not fitted.parts or (reads_mgm and not plan.settings.get("mgm_markers")):
        return None, None
    network, vocabulary = model if model is not None else (None, None)
    token_ids = None if plan.token_ids is None else [plan.token_ids[i] for i in fold.test]
    if reads_mgm:
        report(f"{method}: explaining the {len(fold.test)} held-out samples of {fold.name} (integrated gradients)")
    contributions = explain(fitted, plan.features, fold.test, classes, network, token_ids, vocabulary,
                            unit=std if plan.task == "regression" else 1.0)
    first = next(iter(contributions.values()))
    has_mgm = bool((first.mgm.to_numpy() != 0).any())
    return seen_in_training(fold_effects([c.total for c in contributions.values()], held_out.abundances, plan.task,
                                         classes, fold.name, method, batches, first.mgm, first.clr)), \
        (first.relative_gap.to_numpy() if has_mgm else None)


def collate_folds(plan: FoldPlan, results: Sequence[FoldResult],
                  report: Callable[[str], None] = print) -> CrossValidation:
    """The CrossValidation that cross_validate gives, from each fold's result (any order, each fold once); the
    transfer matrix, where the plan asks for one, is made here."""
    numbers = sorted(r.record["fold"] for r in results)
    expected = list(range(1, len(plan.fold_names) + 1))
    if numbers != expected:
        raise TransferError(f"Expected the results of folds {expected[0]}-{expected[-1]} once each; got folds "
                            f"{', '.join(map(str, numbers)) or 'none'}. Run cross-validate-fold on these folds for "
                            "each fold missing, and pass every fold's result once.")
    methods = plan.settings["methods"]
    for result in results:
        if result.record["methods"] != methods or result.record["task"] != plan.task or \
                result.record["name"] != plan.fold_names[result.record["fold"] - 1]:
            raise TransferError(f"The result of fold {result.record['fold']} was not made from these folds "
                                "(its fold name, task or methods differ): run cross-validate-fold on these folds "
                                "(the same --i-folds) and pass its results.")
    ordered = sorted(results, key=lambda r: r.record["fold"])
    frames = []
    for method in methods:
        rows = pd.concat([r.predictions[r.predictions["method"] == method].drop(columns="method") for r in ordered])
        frames.append(_in_input_order(rows, plan.targets, method))
    seconds = {method: float(sum(r.record["seconds"][method] for r in ordered)) for method in methods}
    encoded, classes, _, _ = encode_targets(plan.targets, plan.task)
    settings = plan.settings
    if settings["transfer_matrix"]:
        with threadpool_limits(limits=ONE_THREAD):
            transfer = _transfer_matrix(plan.features, encoded, plan.groups, methods, plan.task,
                                        settings["random_state"], settings["n_estimators"], classes, report)
    else:
        transfer = pd.DataFrame(columns=list(schemas.CV_TRANSFER_COLUMNS))
    record = {"task": plan.task, "classes": [str(c) for c in classes], "methods": methods,
              "descriptions": {m: RECIPES[m].description for m in methods},
              "uses_mgm": [m for m in methods if RECIPES[m].uses_mgm], "seconds": seconds,
              "random_state": settings["random_state"], **plan.record}
    effects, meta = None, None
    if any(r.effects is not None for r in ordered):
        effects = pd.concat([r.effects for r in ordered if r.effects is not None], ignore_index=True)
        record["markers"] = _markers_record(plan, ordered, classes)
        meta = _meta_analysis(plan, classes, record["markers"], report)
    return CrossValidation(pd.concat(frames, ignore_index=True), transfer, record, effects, meta)


def _markers_record(plan, results, classes):
    """What the markers' page says of how they were made: seconds explaining and completeness gaps per method."""
    explained = sorted({m for r in results for m in r.record.get("explain_seconds", {})},
                       key=plan.settings["methods"].index)
    gaps = {m: [g for r in results for g in r.record.get("relative_gaps", {}).get(m, [])] for m in explained}
    return {"methods": explained,
            "explain_seconds": {m: float(sum(r.record["explain_seconds"].get(m, 0.0) for r in results))
                                for m in explained},
            "median_relative_gap": {m: float(np.median(g)) for m, g in gaps.items() if g},
            "integration_steps": CONTRIBUTION_STEPS, "strategy": plan.record.get("cv_strategy"),
            "mgm_markers": bool(plan.settings.get("mgm_markers")),
            "min_prevalence": CLR_PREVALENCE}


def _meta_analysis(plan, classes, record, report):
    """The field's meta-analysis (core.meta_analysis) on the same samples: over the batches, else the groups, else
    one batch; None (and why, in `record`) for numbers or more than two classes."""
    from .meta_analysis import MetaAnalysisError, genus_meta_analysis
    if plan.task == "regression" or len(classes) != 2:
        record["meta_analysis"] = ("not run: the meta-analysis compares two classes" if plan.task == "classification"
                                   else "not run: the meta-analysis compares two classes, and this target is a number")
        return None
    batches, over = plan.features.batches, "batches"
    if batches is None:
        batches, over = plan.groups, "groups"
    if batches is None:
        over = "one batch"
    try:
        result = genus_meta_analysis(plan.features.abundances, plan.targets.astype(str),
                                     None if batches is None else pd.Series(batches, index=plan.targets.index))
    except MetaAnalysisError as error:
        record["meta_analysis"] = f"not run: {error}"
        report(f"meta-analysis not run: {error}")
        return None
    record["meta_analysis"] = {"over": over, **result.record}
    return result.genera


def run_plan(plan: FoldPlan, report: Callable[[str], None] = print, model=None) -> CrossValidation:
    """Every fold of the plan, one after another in this process (run_fold, with `model` for the markers),
    collated (collate_folds)."""
    return collate_folds(plan, [run_fold(plan, number, report, model)
                                for number in range(1, len(plan.fold_names) + 1)], report)


