"""What a cross-validation stores and reads back: the folds (Fold), the plan every fold shares (FoldPlan, the
MGMCrossValidationFolds artifact), one fold's result (FoldResult, MGMFoldPredictions) and the collated
cross-validation (CrossValidation, MGMCrossValidation), each saved as TSV, JSON and safetensors and checked when
read back (CrossValidationFormatError, FoldsFormatError name the file and the fault; the artifact formats of
q2_mgm._formats add which action writes the file, the way to a valid one). core.cross_validation draws
the folds and runs them. numpy, pandas and safetensors' numpy API only: the formats read these without torch."""
import dataclasses
import json
import pathlib
from typing import List, Optional

import numpy as np
import pandas as pd

from . import schemas
from .transfer import RECIPES, SampleFeatures, TransferError
from .vocab import PathLike


@dataclasses.dataclass
class Fold:
    """name: the held-out group(s), or "fold N"; train, test: sample positions (int arrays)."""
    name: str
    train: np.ndarray
    test: np.ndarray


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
        per method, the columns and settings used, and the samples left out with the reason (schemas.CV_RECORD_KEYS);
        `markers`: how the markers were made (core.cross_validation._markers_record) and the meta-analysis'
        record.
    effects: each fold's effect of every genus per method that explains its predictions (schemas.CV_EFFECT_COLUMNS);
        None from an older q2-mgm.
    meta: with two classes, the meta-analysis' genus table (core.meta_analysis), else None.
    """
    predictions: pd.DataFrame
    transfer: pd.DataFrame
    record: dict
    effects: Optional[pd.DataFrame] = None
    meta: Optional[pd.DataFrame] = None

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
    (directory / schemas.CV_RECORD_FILE).write_text(json.dumps(schemas.strict_json(result.record), indent=1,
                                                               allow_nan=False))
    if result.effects is not None:
        result.effects.to_csv(directory / schemas.CV_EFFECTS_FILE, sep="\t", index=False)
    if result.meta is not None:
        result.meta.to_csv(directory / schemas.CV_META_FILE, sep="\t", index_label="genus")


def _read_frame(path, error, **kwargs):
    """pd.read_csv of a stored TSV; `error` (the format's error class) names the file where pandas cannot read it."""
    try:
        return pd.read_csv(path, sep="\t", **kwargs)
    except ValueError as problem:  # pandas' ParserError, or a value its dtype refuses
        raise error(f"{path.name} is not a TSV as q2-mgm writes it: {problem}") from None


def _read_effects(path, error):
    """A stored effects table (schemas.CV_EFFECT_COLUMNS), or None where the file is absent (no markers)."""
    if not path.exists():
        return None
    effects = _read_frame(path, error, dtype={"method": str, "fold": str, "genus": str, "points_to": str},
                          keep_default_na=False, na_values=[""])
    if tuple(effects.columns) != schemas.CV_EFFECT_COLUMNS:
        raise error(f"{path.name} has the columns {', '.join(effects.columns)}; expected "
                    f"{', '.join(schemas.CV_EFFECT_COLUMNS)}.")
    return effects


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
    predictions = _read_frame(directory / schemas.CV_PREDICTIONS_FILE, CrossValidationFormatError, dtype={
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
    transfer = _read_frame(directory / schemas.CV_TRANSFER_FILE, CrossValidationFormatError,
                           dtype={"trained_on": str, "tested_on": str})
    if tuple(transfer.columns) != schemas.CV_TRANSFER_COLUMNS:
        raise CrossValidationFormatError(f"{schemas.CV_TRANSFER_FILE} has the columns {', '.join(transfer.columns)}"
                                         f"; expected {', '.join(schemas.CV_TRANSFER_COLUMNS)}.")
    effects = _read_effects(directory / schemas.CV_EFFECTS_FILE, CrossValidationFormatError)
    if effects is not None and not set(effects["method"]) <= set(record["methods"]):
        raise CrossValidationFormatError(f"{schemas.CV_EFFECTS_FILE} holds methods the record does not list.")
    meta = None
    if (directory / schemas.CV_META_FILE).exists():
        from .meta_analysis import GENUS_COLUMNS
        meta = _read_frame(directory / schemas.CV_META_FILE, CrossValidationFormatError,
                           dtype={"genus": str, "direction": str})
        if list(meta.columns) != ["genus", *GENUS_COLUMNS]:  # checked before the index is set: genus may be absent
            raise CrossValidationFormatError(f"{schemas.CV_META_FILE} has the columns {', '.join(meta.columns)}; "
                                             f"expected genus, {', '.join(GENUS_COLUMNS)}.")
        meta = meta.set_index("genus")
    return CrossValidation(predictions, transfer, record, effects, meta)


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
    settings: recipe, methods, random_state, n_estimators, transfer_matrix, mgm_markers.
    record: the columns and settings added to the CrossValidation's record (label_column, cv_strategy, ...).
    token_ids: every sample's sentence ((n_tokens,) int64 arrays, in the order of targets), which the MGM
        recipes' explanations read; None where none were kept."""
    features: SampleFeatures
    targets: pd.Series
    task: str
    fold_of: np.ndarray
    fold_names: List[str]
    groups: Optional[np.ndarray]
    settings: dict
    record: dict
    token_ids: Optional[List[np.ndarray]] = None

    def folds(self) -> List[Fold]:
        """The Fold of each fold number, as make_folds drew them (train: every other sample, in input order)."""
        return [Fold(name, np.flatnonzero(self.fold_of != number), np.flatnonzero(self.fold_of == number))
                for number, name in enumerate(self.fold_names, start=1)]


@dataclasses.dataclass
class FoldResult:
    """One fold's out-of-fold predictions by every method (the MGMFoldPredictions artifact).

    predictions: the rows of CrossValidation.predictions for this fold's held-out samples, every method.
    record: fold (1-based number), name, n_folds, task, methods, classes, and seconds per method; with effects,
        explain_seconds per method and the relative completeness gap of each explained sample (relative_gaps).
    effects: this fold's rows of CrossValidation.effects (None from an older q2-mgm)."""
    predictions: pd.DataFrame
    record: dict
    effects: Optional[pd.DataFrame] = None


def save_fold_plan(plan: FoldPlan, directory: PathLike) -> None:
    import safetensors.numpy
    directory = pathlib.Path(directory)
    features = plan.features
    tokens = {} if plan.token_ids is None else {
        "tokens": np.concatenate(plan.token_ids).astype(np.int64),
        "token_lengths": np.array([len(ids) for ids in plan.token_ids], dtype=np.int64)}
    safetensors.numpy.save_file({"embeddings": np.ascontiguousarray(features.embeddings),
                                 "likelihood": np.ascontiguousarray(features.likelihood),
                                 "abundances": np.ascontiguousarray(features.abundances.to_numpy()), **tokens},
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
    if sorted(arrays) not in (sorted(schemas.FOLDS_FEATURE_ARRAYS),
                              sorted(schemas.FOLDS_FEATURE_ARRAYS + schemas.FOLDS_TOKEN_ARRAYS)):
        raise FoldsFormatError(f"{schemas.FOLDS_FEATURES_FILE} holds {', '.join(sorted(arrays))}; expected "
                               f"{', '.join(schemas.FOLDS_FEATURE_ARRAYS)}, and "
                               f"{', '.join(schemas.FOLDS_TOKEN_ARRAYS)} where mgm_markers are asked for.")
    samples = _read_tsv(directory / schemas.FOLDS_SAMPLES_FILE, schemas.FOLDS_SAMPLE_COLUMNS, dtype={
        "sample_id": str, "group": str, "batch": str, "target": str if meta["task"] == "classification" else float})
    n = len(samples)
    shapes = {name: arrays[name].shape for name in schemas.FOLDS_FEATURE_ARRAYS}
    if any(len(shape) != 2 or shape[0] != n for shape in shapes.values()) or \
            shapes["abundances"][1] != len(meta["genera"]):
        raise FoldsFormatError(f"{schemas.FOLDS_FEATURES_FILE}'s arrays ({shapes}) do not match the {n} samples of "
                               f"{schemas.FOLDS_SAMPLES_FILE} and the {len(meta['genera'])} genera of "
                               f"{schemas.FOLDS_RECORD_FILE}.")
    abundances = arrays["abundances"]
    if not np.isfinite(abundances).all() or (abundances < 0).any() or (abundances > 1).any():
        raise FoldsFormatError(f"{schemas.FOLDS_FEATURES_FILE}: abundances must be relative abundances (0 to 1, "
                               "finite), as the corpus holds them.")
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
    except TransferError as error:  # a batch of samples.tsv too small to standardise
        raise FoldsFormatError(f"{schemas.FOLDS_SAMPLES_FILE}: {error}") from None
    targets = pd.Series(samples["target"].to_numpy(), index=index)
    settings = {key: meta[key] for key in ("recipe", "methods", "random_state", "n_estimators", "transfer_matrix")}
    settings["mgm_markers"] = bool(meta.get("mgm_markers", False))
    token_ids = None
    if "tokens" in arrays:
        lengths, tokens = arrays["token_lengths"], arrays["tokens"]
        if lengths.shape != (n,) or (lengths < 1).any() or lengths.sum() != len(tokens) or (tokens < 0).any():
            raise FoldsFormatError(f"{schemas.FOLDS_FEATURES_FILE}: token_lengths must give each of the {n} samples' "
                                   "sentence length, adding up to the tokens held, every token id 0 or more.")
        token_ids = np.split(tokens.astype(np.int64), np.cumsum(lengths)[:-1])
    elif settings["mgm_markers"]:
        raise FoldsFormatError(f"{schemas.FOLDS_RECORD_FILE} asks for mgm_markers, and "
                               f"{schemas.FOLDS_FEATURES_FILE} "
                               "holds no sentences (tokens, token_lengths).")
    return FoldPlan(features, targets, meta["task"], fold_of.astype(np.int64), list(meta["fold_names"]),
                    samples["group"].to_numpy().astype(str) if meta["has_groups"] else None, settings,
                    meta["record"], token_ids)


def save_fold_result(result: FoldResult, directory: PathLike) -> None:
    directory = pathlib.Path(directory)
    result.predictions.to_csv(directory / schemas.CV_PREDICTIONS_FILE, sep="\t", index=False)
    (directory / schemas.FOLD_RECORD_FILE).write_text(json.dumps(schemas.strict_json(result.record), indent=1,
                                                                 allow_nan=False))
    if result.effects is not None:
        result.effects.to_csv(directory / schemas.CV_EFFECTS_FILE, sep="\t", index=False)


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
    effects = _read_effects(directory / schemas.CV_EFFECTS_FILE, FoldsFormatError)
    if effects is not None and (not set(effects["method"]) <= set(record["methods"]) or
                                set(effects["fold"]) != {record["name"]}):
        raise FoldsFormatError(f"{schemas.CV_EFFECTS_FILE} holds methods or folds that {schemas.FOLD_RECORD_FILE} "
                               "does not list.")
    return FoldResult(predictions, record, effects)


def fold_count(directory: PathLike) -> int:
    """How many folds a stored fold plan holds, read from its record alone (no arrays loaded)."""
    return len(_read_json(pathlib.Path(directory) / schemas.FOLDS_RECORD_FILE, schemas.FOLDS_RECORD_KEYS)
               ["fold_names"])
