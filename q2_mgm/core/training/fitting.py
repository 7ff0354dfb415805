"""train_sequence_model: labels to a trained model, by the exact head on a frozen encoder or the Trainer, with a
RandomForest blended in where asked."""
import dataclasses
from typing import Callable, Optional, Sequence, Union

import numpy as np
import pandas as pd
import transformers

from ..inference import resolve_device
from .blend import add_forest
from .decision import choose_decision_rule
from .head import fit_frozen_head
from .networks import encoder_frozen, freeze
from .settings import TrainingError, TrainingSettings
from .splits import validation_split
from .targets import encode_targets, validation_scores
from .trained import TrainedModel
from .trainer import fit_with_trainer


def train_sequence_model(model: transformers.GPT2ForSequenceClassification, token_ids: Sequence[np.ndarray],
                         targets: pd.Series, task: str, settings: TrainingSettings,
                         groups: Optional[Union[np.ndarray, Sequence[str]]] = None,
                         report: Callable[[str], None] = print,
                         abundances: Optional[pd.DataFrame] = None) -> TrainedModel:
    """Train `model` (from sequence_model) on sentences and their labels. With the encoder frozen, fit its
    linear head exactly; otherwise train with the Trainer, stopping when validation stops improving and keeping the
    best epoch's weights; a classifier's decision rule is then chosen on the validation share (core.training.
    decision). groups: one group (e.g. subject) per sample, none on both sides of the validation split.
    With settings.forest_weight > 0, also fit a RandomForest on `abundances` (samples x genus tokens, rows in
    token_ids' order) and blend it into the predictions."""
    settings = dataclasses.replace(settings, device=resolve_device(settings.device))
    encoded, labels, mean, std = encode_targets(targets, task)
    train_idx, val_idx = validation_split(encoded, None if groups is None else np.asarray(groups),
                                          settings.validation_fraction, task, settings.random_state)
    if task == "classification" and len(np.unique(encoded[train_idx])) < len(labels):
        raise TrainingError("The validation split left a class without training samples; lower "
                            "validation_fraction or add samples of the rare class.")
    if settings.forest_weight > 0 and abundances is None:
        raise TrainingError("forest_weight needs the genus abundances of the corpus, and this corpus holds none "
                            "(it was generated, or made by an older q2-mgm). Tokenize the table again, or set "
                            "forest_weight to 0.")
    freeze(model, settings.freeze_layers)
    fit = fit_frozen_head if encoder_frozen(model, settings.freeze_layers) else fit_with_trainer
    model, history, n_training, network_validation = fit(model, token_ids, encoded, train_idx, val_idx, task,
                                                         labels, std, settings, report)
    trained = TrainedModel(model, task, labels, mean, std, history, n_training, len(val_idx),
                           validation={"network": validation_scores(task, network_validation, encoded[val_idx], std)})
    validation = network_validation
    if settings.forest_weight > 0:
        validation = add_forest(trained, abundances, encoded, train_idx, val_idx, network_validation, settings,
                                report)
    if task == "classification":  # on the outputs the model predicts with: the blend's where there is a forest
        # the shares of the samples the validated model was fit on, and of every sample the final one is refit on
        shares = [np.bincount(part, minlength=len(labels)) / len(part) for part in (encoded[train_idx], encoded)]
        trained.decision = choose_decision_rule(validation, encoded[val_idx], labels, *shares)
        report(trained.decision.summary())
    return trained

