"""Cross-validation that predicts every sample from a model that never saw it (as q2-sample-classifier's
classify-samples-ncv does), with folds that can hold out whole groups (studies, countries, subjects), every method
fit on exactly the same samples of each fold, and the train-on-one-group, test-on-each-other transfer matrix.

The frozen encoder's features come in precomputed (`transfer.SampleFeatures`): one forward pass per sample, not one
per fold. A cross-validation is planned (plan_folds), run fold by fold (run_fold: one call per fold, which QIIME 2's
parallel pipelines run at once) and collated (collate_folds); cross_validate does the three in one process. Every fit
runs on one BLAS/OpenMP thread (ONE_THREAD), so the result is the same bit for bit whichever way the folds ran.
"""
import dataclasses
import json
import pathlib
import time
import warnings
from typing import Callable, List, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from . import schemas
from .baselines import BASELINE_TREES
from .training.targets import encode_targets
from .transfer import BASELINES, DEFAULT_RECIPE, RECIPES, SampleFeatures, TransferError, make_recipe
from .vocab import PathLike

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
    each other; n_estimators: trees of the RandomForest baseline; random_state: seed of the folds and forests."""
    cv: int = 5
    cv_strategy: str = "k-fold"
    recipe: str = DEFAULT_RECIPE
    transfer_matrix: bool = False
    n_estimators: int = BASELINE_TREES
    random_state: int = 0


CROSS_VALIDATION = CrossValidationSettings()


@dataclasses.dataclass
class Fold:
    """name: the held-out group(s), or "fold N"; train, test: sample positions (int arrays)."""
    name: str
    train: np.ndarray
    test: np.ndarray


def check_fold_settings(cv: int, strategy: str, n_groups: Optional[int]) -> None:
    """What can be checked of the folds before any work: the strategy, and enough groups (n_groups: how many
    distinct groups, None without a groups column). TransferError names the parameter and the fix."""
    if strategy not in CV_STRATEGIES:
        raise TransferError(f"cv_strategy must be one of {', '.join(CV_STRATEGIES)}, not {strategy!r}.")
    if strategy == "leave-one-group-out":
        if n_groups is None:
            raise TransferError("cv_strategy 'leave-one-group-out' needs a groups column (study, country or "
                                "subject of each sample; --m-groups-column); give one, or use cv_strategy "
                                "'k-fold'.")
        if n_groups < 2:
            raise TransferError(f"leave-one-group-out needs at least 2 groups; the groups column holds {n_groups}. "
                                "Give a groups column with several groups, or use cv_strategy 'k-fold' without "
                                "groups.")
        return
    if cv < 2:
        raise TransferError(f"cv must be at least 2 folds, not {cv}.")
    if n_groups is not None and n_groups < cv:
        raise TransferError(f"k-fold with groups needs at least cv={cv} groups (--p-cv), and the groups column "
                            f"holds {n_groups}; lower cv to {n_groups} or use cv_strategy 'leave-one-group-out'.")


def make_folds(targets: np.ndarray, groups: Optional[np.ndarray], cv: int, strategy: str, task: str,
               random_state: int) -> List[Fold]:
    """Folds over (n_samples,) targets. k-fold is stratified by class for classification, and keeps each group on
    one side where groups ((n_samples,) names) are given; leave-one-group-out holds out one group per fold.
    TransferError where the strategy cannot be made from these samples."""
    check_fold_settings(cv, strategy, None if groups is None else len(np.unique(groups)))
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
        smallest = int(np.bincount(targets).min())
        if smallest < cv:
            fix = (f"lower cv to {smallest} (--p-cv {smallest}), or merge the class with a related one"
                   if smallest >= 2 else "merge the class with a related one, or filter its sample out")
            raise TransferError(f"A class has {smallest} samples, fewer than the cv={cv} folds that stratified "
                                f"k-fold puts one of each class in; {fix}.")
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
            fix = ("Use cv_strategy 'leave-one-group-out' (each held-out group then leaves the classes of the "
                   f"others to train on), or leave the groups column {groups_column!r} out (stratified k-fold puts "
                   "every class in each training side)" if groups_column else
                   "Merge the class with a related one, or filter its samples out")
            raise TransferError(f"Holding out {fold.name} leaves no training sample of class "
                                f"{', '.join(map(repr, missing))}: every class must occur outside each held-out "
                                f"fold. {fix}.")


class CrossValidationFormatError(ValueError):
    """A stored cross-validation that is incomplete or inconsistent; the message names the file and the fault."""


@dataclasses.dataclass
class CrossValidation:
    """Out-of-fold predictions of every method, and what was run (the MGMCrossValidation artifact).

    predictions: one row per (method, sample): method, sample_id, fold, truth, prediction, and for classification
        one `probability:<class>` column per class (in `classes` order); each method's rows in input order.
    transfer: one row per (method, trained-on group, tested-on group) with the metric there (ROC AUC for
        classification, mean absolute error for regression); empty unless asked for.
    record: the task, classes, methods (the MGM recipe first, then the baselines), their descriptions, wall seconds
        per method, the columns and settings used, and the samples left out with the reason (schemas.CV_RECORD_KEYS).
    """
    predictions: pd.DataFrame
    transfer: pd.DataFrame
    record: dict

    @property
    def task(self) -> str:
        return self.record["task"]

    @property
    def classes(self) -> List[str]:
        return self.record["classes"]

    @property
    def methods(self) -> List[str]:
        return self.record["methods"]


def save_cross_validation(result: CrossValidation, directory: PathLike) -> None:
    directory = pathlib.Path(directory)
    result.predictions.to_csv(directory / schemas.CV_PREDICTIONS_FILE, sep="\t", index=False)
    result.transfer.to_csv(directory / schemas.CV_TRANSFER_FILE, sep="\t", index=False)
    (directory / schemas.CV_RECORD_FILE).write_text(json.dumps(result.record, indent=1))


def load_cross_validation(directory: PathLike) -> CrossValidation:
    """Read and check a stored cross-validation; CrossValidationFormatError names what is wrong."""
    directory = pathlib.Path(directory)
    try:
        record = json.loads((directory / schemas.CV_RECORD_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CrossValidationFormatError(f"{schemas.CV_RECORD_FILE} is missing or not JSON: {error}") from None
    missing = [key for key in schemas.CV_RECORD_KEYS if key not in record]
    if missing:
        raise CrossValidationFormatError(f"{schemas.CV_RECORD_FILE} lacks {', '.join(missing)}.")
    predictions = pd.read_csv(directory / schemas.CV_PREDICTIONS_FILE, sep="\t", dtype={
        "sample_id": str, "fold": str, **({"truth": str, "prediction": str} if record["task"] == "classification"
                                          else {})}, keep_default_na=False)
    expected = list(schemas.CV_PREDICTION_COLUMNS) + [schemas.CV_PROBABILITY_PREFIX + c for c in record["classes"]]
    if list(predictions.columns) != expected:
        raise CrossValidationFormatError(f"{schemas.CV_PREDICTIONS_FILE} has the columns "
                                         f"{', '.join(predictions.columns)}; expected {', '.join(expected)}.")
    unknown = set(predictions["method"]) - set(record["methods"])
    if unknown:
        raise CrossValidationFormatError(f"{schemas.CV_PREDICTIONS_FILE} holds methods the record does not list: "
                                         f"{', '.join(sorted(unknown))}.")
    transfer = pd.read_csv(directory / schemas.CV_TRANSFER_FILE, sep="\t", dtype={"trained_on": str,
                                                                                  "tested_on": str})
    if tuple(transfer.columns) != schemas.CV_TRANSFER_COLUMNS:
        raise CrossValidationFormatError(f"{schemas.CV_TRANSFER_FILE} has the columns {', '.join(transfer.columns)}"
                                         f"; expected {', '.join(schemas.CV_TRANSFER_COLUMNS)}.")
    return CrossValidation(predictions, transfer, record)


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
    fitted = make_recipe(method, task, random_state, n_estimators).fit(data.rows(fold.train), encoded[fold.train])
    out = fitted.predict(data.rows(fold.test))
    return pd.DataFrame({"sample_id": targets.index[fold.test], "fold": fold.name,
                         "truth": targets.to_numpy()[fold.test], **_decode(out, task, classes, mean, std)})


def _in_input_order(frame, targets, method):
    frame = frame.set_index("sample_id").loc[targets.index].rename_axis("sample_id").reset_index()
    frame.insert(0, "method", method)
    return frame


# --- the same cross-validation run fold by fold: a shared plan (features computed once, folds drawn once), one call
# per fold, and a collation into the CrossValidation above. QIIME 2's parallel pipelines run the folds at once. ---

class FoldsFormatError(ValueError):
    """A stored fold plan or fold result that is incomplete or inconsistent; the message names the file and fault."""


@dataclasses.dataclass
class FoldPlan:
    """What every fold of a cross-validation shares: the frozen encoder's features of every sample, the targets,
    the fold each sample is held out in, and the settings of the methods (the MGMCrossValidationFolds artifact).

    features: SampleFeatures of every sample (batches included), in the order of targets.
    targets: (n_samples,) labels (text) or numbers, index = sample IDs.
    fold_of: (n_samples,) the 1-based number of the fold that holds each sample out.
    fold_names: the held-out group(s) or "fold N" of each fold, in fold order.
    groups: (n_samples,) group names, or None without a groups column (the transfer matrix reads them).
    settings: recipe, methods, random_state, n_estimators, transfer_matrix.
    record: the columns and settings added to the CrossValidation's record (label_column, cv_strategy, ...)."""
    features: SampleFeatures
    targets: pd.Series
    task: str
    fold_of: np.ndarray
    fold_names: List[str]
    groups: Optional[np.ndarray]
    settings: dict
    record: dict

    def folds(self) -> List[Fold]:
        """The Fold of each fold number, as make_folds drew them (train: every other sample, in input order)."""
        return [Fold(name, np.flatnonzero(self.fold_of != number), np.flatnonzero(self.fold_of == number))
                for number, name in enumerate(self.fold_names, start=1)]


def plan_folds(features: SampleFeatures, targets: pd.Series, task: str, folds: Sequence[Fold],
               recipe: str = DEFAULT_RECIPE, baselines: Sequence[str] = BASELINES, random_state: int = 0,
               n_estimators: int = BASELINE_TREES, transfer_matrix: bool = False,
               groups: Optional[np.ndarray] = None, **record) -> FoldPlan:
    """A FoldPlan of folds from make_folds over these samples (features and targets in the same order; groups:
    (n_samples,) names, read by the transfer matrix where transfer_matrix is set). TransferError where a fold leaves
    a class without training samples (checked here, before any fold runs), or where the folds are not as make_folds
    draws them: every sample held out by exactly one fold, which trains on every other sample, in input order."""
    if recipe not in RECIPES:
        raise TransferError(f"Unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    encoded, classes, _, _ = encode_targets(targets, task)
    if task == "classification":
        check_training_classes(folds, encoded, classes, record.get("groups_column"))
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
    settings = {"recipe": recipe, "methods": _methods(recipe, baselines), "random_state": int(random_state),
                "n_estimators": int(n_estimators), "transfer_matrix": bool(transfer_matrix and groups is not None)}
    return FoldPlan(features, targets, task, fold_of, [f.name for f in folds],
                    None if groups is None else np.asarray(groups).astype(str), settings, record)


@dataclasses.dataclass
class FoldResult:
    """One fold's out-of-fold predictions by every method (the MGMFoldPredictions artifact).

    predictions: the rows of CrossValidation.predictions for this fold's held-out samples, every method.
    record: fold (1-based number), name, n_folds, task, methods, classes, and seconds per method."""
    predictions: pd.DataFrame
    record: dict


def run_fold(plan: FoldPlan, number: int, report: Callable[[str], None] = print) -> FoldResult:
    """Fit every method of the plan on fold `number`'s training samples (1-based) and predict its held-out ones,
    on one BLAS/OpenMP thread (ONE_THREAD; the forests' n_jobs is 1 too): the fold of cross_validate, which calls
    this. TransferError where `number` is not one of the plan's folds."""
    if not 1 <= number <= len(plan.fold_names):
        raise TransferError(f"fold must be between 1 and {len(plan.fold_names)} (this plan's folds), not {number}.")
    fold = plan.folds()[number - 1]
    encoded, classes, mean, std = encode_targets(plan.targets, plan.task)
    settings = plan.settings
    parts, seconds = [], {}
    for method in settings["methods"]:
        start = time.perf_counter()
        with threadpool_limits(limits=ONE_THREAD):
            frame = predict_fold(plan.features, plan.targets, encoded, plan.task, classes, mean, std, fold, method,
                                 settings["random_state"], settings["n_estimators"])
        frame.insert(0, "method", method)
        parts.append(frame)
        seconds[method] = time.perf_counter() - start
        report(f"{method}: fold {number}/{len(plan.fold_names)} ({fold.name}, {len(fold.test)} held out) done")
    return FoldResult(pd.concat(parts, ignore_index=True), {
        "fold": number, "name": fold.name, "n_folds": len(plan.fold_names), "task": plan.task,
        "methods": list(settings["methods"]), "classes": [str(c) for c in classes], "seconds": seconds})


def collate_folds(plan: FoldPlan, results: Sequence[FoldResult],
                  report: Callable[[str], None] = print) -> CrossValidation:
    """The CrossValidation that cross_validate gives, from each fold's result (any order, each fold once); the
    transfer matrix, where the plan asks for one, is made here."""
    numbers = sorted(r.record["fold"] for r in results)
    expected = list(range(1, len(plan.fold_names) + 1))
    if numbers != expected:
        raise TransferError(f"Expected the results of folds {expected[0]}-{expected[-1]} once each; got folds "
                            f"{', '.join(map(str, numbers)) or 'none'}.")
    methods = plan.settings["methods"]
    for result in results:
        if result.record["methods"] != methods or result.record["task"] != plan.task or \
                result.record["name"] != plan.fold_names[result.record["fold"] - 1]:
            raise TransferError(f"The result of fold {result.record['fold']} was not made from these folds "
                                "(its fold name, task or methods differ).")
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
    return CrossValidation(pd.concat(frames, ignore_index=True), transfer, {
        "task": plan.task, "classes": [str(c) for c in classes], "methods": methods,
        "descriptions": {m: RECIPES[m].description for m in methods},
        "uses_mgm": [m for m in methods if RECIPES[m].uses_mgm], "seconds": seconds,
        "random_state": settings["random_state"], **plan.record})


def run_plan(plan: FoldPlan, report: Callable[[str], None] = print) -> CrossValidation:
    """Every fold of the plan, one after another in this process (run_fold), collated (collate_folds)."""
    return collate_folds(plan, [run_fold(plan, number, report) for number in range(1, len(plan.fold_names) + 1)],
                         report)


def save_fold_plan(plan: FoldPlan, directory: PathLike) -> None:
    import safetensors.numpy
    directory = pathlib.Path(directory)
    features = plan.features
    safetensors.numpy.save_file({"embeddings": np.ascontiguousarray(features.embeddings),
                                 "likelihood": np.ascontiguousarray(features.likelihood),
                                 "abundances": np.ascontiguousarray(features.abundances.to_numpy())},
                                str(directory / schemas.FOLDS_FEATURES_FILE))
    n = len(plan.targets)
    pd.DataFrame({"sample_id": plan.targets.index.astype(str), "target": plan.targets.to_numpy(),
                  "fold": plan.fold_of, "group": [""] * n if plan.groups is None else plan.groups,
                  "batch": [""] * n if features.batches is None else features.batches}).to_csv(
        directory / schemas.FOLDS_SAMPLES_FILE, sep="\t", index=False)
    (directory / schemas.FOLDS_RECORD_FILE).write_text(json.dumps({
        "task": plan.task, "genera": [str(g) for g in features.abundances.columns], "fold_names": plan.fold_names,
        **plan.settings, "has_groups": plan.groups is not None, "has_batches": features.batches is not None,
        "record": plan.record}, indent=1))


def _read_json(path, keys):
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise FoldsFormatError(f"{path.name} is missing or not JSON: {error}") from None
    missing = [key for key in keys if key not in record] if isinstance(record, dict) else list(keys)
    if missing:
        raise FoldsFormatError(f"{path.name} lacks {', '.join(missing)}.")
    return record


def _read_tsv(path, columns, **kwargs):
    try:
        frame = pd.read_csv(path, sep="\t", keep_default_na=False, float_precision="round_trip", **kwargs)
    except (OSError, ValueError) as error:
        raise FoldsFormatError(f"{path.name} is missing or not a TSV: {error}") from None
    if tuple(frame.columns) != tuple(columns):
        raise FoldsFormatError(f"{path.name} has the columns {', '.join(map(str, frame.columns))}; expected "
                               f"{', '.join(columns)}.")
    return frame


def load_fold_plan(directory: PathLike) -> FoldPlan:
    """Read and check a stored fold plan; FoldsFormatError names what is wrong."""
    import safetensors.numpy
    directory = pathlib.Path(directory)
    meta = _read_json(directory / schemas.FOLDS_RECORD_FILE, schemas.FOLDS_RECORD_KEYS)
    if meta["task"] not in ("classification", "regression"):
        raise FoldsFormatError(f"{schemas.FOLDS_RECORD_FILE}: task {meta['task']!r} is not classification or "
                               "regression.")
    unknown = [m for m in meta["methods"] if m not in RECIPES]
    if unknown or not meta["methods"] or meta["methods"][0] != meta["recipe"]:
        raise FoldsFormatError(f"{schemas.FOLDS_RECORD_FILE}: methods must start with the recipe and name known "
                               f"recipes ({', '.join(RECIPES)}).")
    try:
        arrays = safetensors.numpy.load_file(str(directory / schemas.FOLDS_FEATURES_FILE))
    except Exception as error:  # safetensors raises its own error types for any malformed header
        raise FoldsFormatError(f"{schemas.FOLDS_FEATURES_FILE} is missing or not safetensors ({error}).") from None
    if sorted(arrays) != sorted(schemas.FOLDS_FEATURE_ARRAYS):
        raise FoldsFormatError(f"{schemas.FOLDS_FEATURES_FILE} holds {', '.join(sorted(arrays))}; expected "
                               f"{', '.join(schemas.FOLDS_FEATURE_ARRAYS)}.")
    samples = _read_tsv(directory / schemas.FOLDS_SAMPLES_FILE, schemas.FOLDS_SAMPLE_COLUMNS, dtype={
        "sample_id": str, "group": str, "batch": str, "target": str if meta["task"] == "classification" else float})
    n = len(samples)
    shapes = {name: arrays[name].shape for name in schemas.FOLDS_FEATURE_ARRAYS}
    if any(len(shape) != 2 or shape[0] != n for shape in shapes.values()) or \
            shapes["abundances"][1] != len(meta["genera"]):
        raise FoldsFormatError(f"{schemas.FOLDS_FEATURES_FILE}'s arrays ({shapes}) do not match the {n} samples of "
                               f"{schemas.FOLDS_SAMPLES_FILE} and the {len(meta['genera'])} genera of "
                               f"{schemas.FOLDS_RECORD_FILE}.")
    fold_of = samples["fold"].to_numpy()
    if not np.issubdtype(fold_of.dtype, np.integer) or \
            sorted(set(fold_of.tolist())) != list(range(1, len(meta["fold_names"]) + 1)):
        raise FoldsFormatError(f"{schemas.FOLDS_SAMPLES_FILE}: every fold 1-{len(meta['fold_names'])} of "
                               f"{schemas.FOLDS_RECORD_FILE} must hold out samples, and no other.")
    index = pd.Index(samples["sample_id"], name=None)
    try:
        features = SampleFeatures(arrays["embeddings"], arrays["likelihood"],
                                  pd.DataFrame(arrays["abundances"], index=index, columns=meta["genera"]),
                                  samples["batch"].to_numpy() if meta["has_batches"] else None)
    except TransferError as error:
        raise FoldsFormatError(str(error)) from None
    targets = pd.Series(samples["target"].to_numpy(), index=index)
    settings = {key: meta[key] for key in ("recipe", "methods", "random_state", "n_estimators", "transfer_matrix")}
    return FoldPlan(features, targets, meta["task"], fold_of.astype(np.int64), list(meta["fold_names"]),
                    samples["group"].to_numpy().astype(str) if meta["has_groups"] else None, settings,
                    meta["record"])


def save_fold_result(result: FoldResult, directory: PathLike) -> None:
    directory = pathlib.Path(directory)
    result.predictions.to_csv(directory / schemas.CV_PREDICTIONS_FILE, sep="\t", index=False)
    (directory / schemas.FOLD_RECORD_FILE).write_text(json.dumps(result.record, indent=1))


def load_fold_result(directory: PathLike) -> FoldResult:
    """Read and check one fold's stored result; FoldsFormatError names what is wrong."""
    directory = pathlib.Path(directory)
    record = _read_json(directory / schemas.FOLD_RECORD_FILE, schemas.FOLD_RECORD_KEYS)
    columns = list(schemas.CV_PREDICTION_COLUMNS) + [schemas.CV_PROBABILITY_PREFIX + c for c in record["classes"]]
    text = {"truth": str, "prediction": str} if record["task"] == "classification" else {}
    predictions = _read_tsv(directory / schemas.CV_PREDICTIONS_FILE, columns,
                            dtype={"method": str, "sample_id": str, "fold": str, **text})
    if set(predictions["method"]) != set(record["methods"]):
        raise FoldsFormatError(f"{schemas.CV_PREDICTIONS_FILE} holds the methods "
                               f"{', '.join(sorted(set(predictions['method'])))}; {schemas.FOLD_RECORD_FILE} lists "
                               f"{', '.join(record['methods'])}.")
    if set(record["seconds"]) != set(record["methods"]):
        raise FoldsFormatError(f"{schemas.FOLD_RECORD_FILE}: seconds must name each method once.")
    return FoldResult(predictions, record)


def fold_count(directory: PathLike) -> int:
    """How many folds a stored fold plan holds, read from its record alone (no arrays loaded)."""
    return len(_read_json(pathlib.Path(directory) / schemas.FOLDS_RECORD_FILE, schemas.FOLDS_RECORD_KEYS)
               ["fold_names"])
