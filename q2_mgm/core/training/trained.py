"""A trained supervised model: its network, labels and forest; its predictions; its files (the MGM model files plus
training.json, and the forest's arrays)."""
import dataclasses
import json
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import safetensors
import safetensors.numpy
import torch
import transformers

from ..forest import Forest, load_forest, save_forest
from ..inference import language_model_features, length_batches, padded_batch
from ..models import ModelFormatError, load_model, save_model
from ..schemas import TRAINING_RECORD_FILE, TRAINING_RECORD_KEYS, TRANSFER_FILE, strict_json
from ..vocab import PathLike, Vocabulary
from .blend import forest_matrix
from .decision import DecisionRule, argmax_rule, load_decision_rule
from .settings import TrainingError, TrainingSettings

# the fix of a damaged supervised model's files: the actions that make one
RECREATE = ("re-create the model with q2-mgm: run the action that made it (fine-tune, train, classify-samples or "
            "regress-samples) again")

if TYPE_CHECKING:  # core.transfer reads the training defaults, so it is imported where it is used
    from ..transfer import Recipe


@dataclasses.dataclass
class TrainedModel:
    model: transformers.GPT2ForSequenceClassification
    task: str
    labels: List[str]  # class names in logit order; empty for regression
    target_mean: float
    target_std: float
    history: pd.DataFrame
    n_training: int
    n_validation: int
    forest: Optional[Forest] = None
    forest_weight: float = 0.0
    forest_genera: List[str] = dataclasses.field(default_factory=list)  # the forest's feature columns, genus tokens
    # validation metrics of each part (network, forest, blend): metric name -> value
    validation: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    # fit with batches: the across-study recipe that predicts (core.transfer), each batch standardised on itself
    transfer: Optional["Recipe"] = None
    # classification: the rule that calls a class from the probabilities, chosen on the validation share (None:
    # the most probable class, as a model made by an older q2-mgm)
    decision: Optional[DecisionRule] = None

    def predict_classes(self, probabilities: np.ndarray) -> np.ndarray:
        """(n,) class names of (n, n_classes) probabilities from predict(), by the model's decision rule."""
        return (self.decision or argmax_rule(self.labels)).predict(probabilities)

    def training_record(self) -> Dict[str, Any]:
        return {"task": self.task, "labels": self.labels, "target_mean": self.target_mean,
                "target_std": self.target_std, "n_training_samples": self.n_training,
                "n_validation_samples": self.n_validation, "validation": self.validation,
                "forest": None if self.forest is None else {"weight": self.forest_weight,
                                                             "genera": self.forest_genera},
                "transfer": None if self.transfer is None else self.transfer.record,
                "decision": None if self.decision is None else self.decision.record}


def network_outputs(model: transformers.GPT2ForSequenceClassification, task: str, token_ids: Sequence[np.ndarray],
                    device: str = "cpu") -> np.ndarray:
    """Class probabilities (n x classes) or standardised predictions (n,) of the network alone, float64."""
    model = model.to(device).eval()
    lengths = np.array([len(ids) for ids in token_ids])
    outputs = np.empty((len(token_ids), model.config.num_labels), dtype=np.float64)
    with torch.inference_mode():
        for batch in length_batches(lengths):
            input_ids, mask = padded_batch([token_ids[i] for i in batch], device)
            logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits.double()
            outputs[batch] = (torch.softmax(logits, -1) if task == "classification" else logits).cpu().numpy()
    return outputs[:, 0] if task == "regression" else outputs


def predict(trained_model: TrainedModel, token_ids: Sequence[np.ndarray], device: str = "cpu",
            abundances: Optional[pd.DataFrame] = None, batches: Optional[np.ndarray] = None) -> np.ndarray:
    """Class probabilities (n x classes) or de-standardised predictions (n,); a model with a forest blends in its
    predictions from `abundances` (samples x genus tokens, rows in token_ids' order). A model fit with batches
    (trained_model.transfer) predicts with its across-study recipe from the features, the abundances and
    `batches` ((n,) names; each batch standardised on its own samples, labels unused)."""
    if trained_model.transfer is not None:
        from ..transfer import SampleFeatures
        if abundances is None or batches is None:
            raise TrainingError("This model was fit with batches: predicting needs the corpus's genus abundances "
                                "and each sample's batch.")
        embeddings, likelihood = language_model_features(trained_model.model, token_ids, device)
        record = trained_model.transfer.record
        outputs = trained_model.transfer.predict(SampleFeatures(embeddings, likelihood, abundances, batches,
                                                                record["clr_parts"], record["clr_genera"]))
    else:
        outputs = network_outputs(trained_model.model, trained_model.task, token_ids, device)
    if trained_model.forest is not None:
        if abundances is None:
            raise TrainingError("This model blends in a RandomForest on genus abundances, and the corpus holds "
                                "none (it was generated, or made by an older q2-mgm). Tokenize the table again.")
        forest = trained_model.forest.predict(forest_matrix(abundances, trained_model.forest_genera))
        outputs = (1 - trained_model.forest_weight) * outputs + trained_model.forest_weight * forest
    if trained_model.task == "regression":
        return outputs * trained_model.target_std + trained_model.target_mean
    return outputs


def save_trained_model(trained: TrainedModel, vocabulary: Vocabulary, directory: PathLike,
                       settings: Optional[TrainingSettings] = None, **provenance: Any) -> None:
    """The MGM model files, training.json (training_record, settings, history) and the forest's arrays."""
    directory = pathlib.Path(directory)
    save_model(trained.model, vocabulary, directory, **provenance)
    record = {**trained.training_record(),
              "settings": dataclasses.asdict(settings) if settings else None,
              "history": trained.history.reset_index().to_dict(orient="list")}
    (directory / TRAINING_RECORD_FILE).write_text(json.dumps(strict_json(record), indent=2, allow_nan=False,
                                                                    default=float) + "\n")
    if trained.forest is not None:
        save_forest(trained.forest, directory)
    if trained.transfer is not None:
        safetensors.numpy.save_file({k: np.ascontiguousarray(v, dtype=np.float64)
                                     for k, v in trained.transfer.arrays.items()}, str(directory / TRANSFER_FILE))


def read_training_record(directory: PathLike) -> Dict[str, Any]:
    """training.json of a supervised model directory, checked against its config.json (every required key, one
    output per class) and, where it names a forest, against the forest's files. ModelFormatError (or
    ForestFormatError) names what does not fit."""
    directory = pathlib.Path(directory)
    record = json.loads((directory / TRAINING_RECORD_FILE).read_text())
    for key in TRAINING_RECORD_KEYS:
        if key not in record:
            raise ModelFormatError(f"{TRAINING_RECORD_FILE} lacks {key!r}; {RECREATE}.")
    n_outputs = json.loads((directory / "config.json").read_text()).get("id2label", {})
    if record["task"] == "classification" and len(n_outputs) != len(record["labels"]):
        raise ModelFormatError(f"{TRAINING_RECORD_FILE} lists {len(record['labels'])} classes but the model has "
                               f"{len(n_outputs)} outputs; {RECREATE}.")
    if record.get("forest"):
        load_blended_forest(directory, record)
    if record.get("transfer"):
        load_transfer(directory, record)
    if record["task"] == "classification":
        load_decision_rule(record.get("decision"), record["labels"])
    return record


def load_trained_model(directory: PathLike) -> Tuple[TrainedModel, Vocabulary, Dict[str, Any]]:
    """(the trained model, its vocabulary, versions.json) from a directory save_trained_model wrote."""
    directory = pathlib.Path(directory)
    model, vocabulary, versions = load_model(directory)
    record = json.loads((directory / TRAINING_RECORD_FILE).read_text())
    history = pd.DataFrame(record.get("history") or {"epoch": []}).set_index("epoch")
    trained = TrainedModel(model, record["task"], record["labels"], record["target_mean"], record["target_std"],
                           history, record["n_training_samples"], record.get("n_validation_samples", 0),
                           validation=record.get("validation") or {})
    if record.get("forest"):
        trained.forest, trained.forest_weight, trained.forest_genera = load_blended_forest(directory, record)
    if record.get("transfer"):
        trained.transfer = load_transfer(directory, record)
    if record["task"] == "classification" and record.get("decision"):
        trained.decision = load_decision_rule(record["decision"], record["labels"])
    return trained, vocabulary, versions


def load_transfer(directory: PathLike, record: Dict[str, Any]) -> "Recipe":
    """The across-study recipe of a model fit with batches: transfer.safetensors checked against training.json;
    ModelFormatError where they do not fit."""
    from ..transfer import TransferError, load_recipe
    path = pathlib.Path(directory) / TRANSFER_FILE
    try:
        arrays = safetensors.numpy.load_file(str(path))
        return load_recipe(arrays, record["transfer"])
    except (OSError, safetensors.SafetensorError, TransferError, KeyError) as error:
        raise ModelFormatError(f"{TRANSFER_FILE} does not hold the recipe training.json names ({error}); "
                               f"{RECREATE}.") from None


def load_blended_forest(directory: PathLike, record: Dict[str, Any]) -> Tuple[Forest, float, List[str]]:
    """(forest, weight, genera) of a model whose training.json `record` names a forest, checked against each
    other; ForestFormatError or ModelFormatError where they do not fit."""
    forest = load_forest(directory)
    genera, weight = record["forest"].get("genera", []), record["forest"].get("weight", -1)
    if len(genera) != forest.n_features:
        raise ModelFormatError(f"training.json names {len(genera)} forest genera but the forest reads "
                               f"{forest.n_features}; {RECREATE}.")
    if not 0 < weight <= 1:
        raise ModelFormatError(f"training.json's forest weight must be in (0, 1]; {RECREATE}.")
    return forest, weight, genera
