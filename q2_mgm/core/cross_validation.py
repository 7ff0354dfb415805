"""Cross-validation that predicts every sample from a model that never saw it (as q2-sample-classifier's
classify-samples-ncv does), with folds that can hold out whole groups (studies, countries, subjects), every method
fit on exactly the same samples of each fold, and the train-on-one-group, test-on-each-other transfer matrix.

The frozen encoder's features come in precomputed (`transfer.SampleFeatures`): one forward pass per sample, not one
per fold.
"""
import dataclasses
import json
import pathlib
import time
from typing import Callable, List, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold

from . import schemas
from .baselines import BASELINE_TREES
from .training.targets import encode_targets
from .transfer import BASELINES, DEFAULT_RECIPE, RECIPES, SampleFeatures, TransferError, make_recipe
from .vocab import PathLike

CV_STRATEGIES = ("k-fold", "leave-one-group-out")


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
            raise TransferError(f"leave-one-group-out needs at least 2 groups; the groups column holds {n_groups}.")
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
        splits = splitter.split(index, targets, groups)
    elif task == "classification":
        smallest = int(np.bincount(targets).min())
        if smallest < cv:
            raise TransferError(f"A class has {smallest} samples, fewer than the cv={cv} folds that stratified "
                                f"k-fold puts one of each class in; lower cv to {max(smallest, 2)} or merge rare "
                                "classes.")
        splits = StratifiedKFold(cv, shuffle=True, random_state=random_state).split(index, targets)
    else:
        splits = KFold(cv, shuffle=True, random_state=random_state).split(index)
    return [Fold(f"fold {number}", train, test) for number, (train, test) in enumerate(splits, start=1)]


def _check_training_classes(folds, encoded, n_classes, classes):
    for fold in folds:
        seen = np.unique(encoded[fold.train])
        if len(seen) < n_classes:
            missing = [classes[i] for i in range(n_classes) if i not in seen]
            raise TransferError(f"Holding out {fold.name} leaves no training sample of class "
                                f"{', '.join(map(repr, missing))}: every class must occur outside each held-out "
                                "fold. Use fewer folds, other groups, or merge the class with a related one.")


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

    data and targets ((n_samples,) labels or numbers, index = sample IDs) hold the same samples in the same order.
    With transfer_groups ((n_samples,) names), also fit each method on each group alone and score it on each other
    group. `record` adds the columns and settings used to the result's record. Raises TransferError where a fold
    leaves a class without training samples."""
    encoded, classes, mean, std = encode_targets(targets, task)
    if task == "classification":
        _check_training_classes(folds, encoded, len(classes), classes)
    methods = [recipe] + [b for b in baselines if b != recipe]
    frames, seconds = [], {}
    for method in methods:
        start = time.perf_counter()
        parts = []
        for number, fold in enumerate(folds, start=1):
            fitted = make_recipe(method, task, random_state, n_estimators).fit(data.rows(fold.train),
                                                                              encoded[fold.train])
            out = fitted.predict(data.rows(fold.test))
            parts.append(pd.DataFrame({"sample_id": targets.index[fold.test], "fold": fold.name,
                                       "truth": targets.to_numpy()[fold.test],
                                       **_decode(out, task, classes, mean, std)}))
            report(f"{method}: fold {number}/{len(folds)} ({fold.name}, {len(fold.test)} held out) done")
        seconds[method] = time.perf_counter() - start
        frame = pd.concat(parts).set_index("sample_id").loc[targets.index].rename_axis("sample_id").reset_index()
        frame.insert(0, "method", method)
        frames.append(frame)
    transfer = (_transfer_matrix(data, encoded, np.asarray(transfer_groups), methods, task, random_state,
                                 n_estimators, classes, report) if transfer_groups is not None
                else pd.DataFrame(columns=["method", "trained_on", "tested_on", "score"]))
    return CrossValidation(pd.concat(frames, ignore_index=True), transfer, {
        "task": task, "classes": [str(c) for c in classes], "methods": methods,
        "descriptions": {m: RECIPES[m].description for m in methods}, "uses_mgm": [m for m in methods if
                                                                                   RECIPES[m].uses_mgm],
        "seconds": seconds, "random_state": random_state, **record})
