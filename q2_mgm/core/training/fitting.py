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


LOWER_FRACTIONS = (0.25, 0.2, 0.15, 0.1, 0.05)  # validation_fraction's advised values, within its Range


def _fraction_training_every_class(encoded, groups, settings, n_classes):
    """The largest of LOWER_FRACTIONS below settings.validation_fraction whose split leaves every class training
    samples, or None."""
    for fraction in LOWER_FRACTIONS:
        if fraction >= settings.validation_fraction:
            continue
        try:
            train_idx, _ = validation_split(encoded, None if groups is None else np.asarray(groups), fraction,
                                            "classification", settings.random_state)
        except ValueError:  # more group folds than a class has members
            continue
        if len(np.unique(encoded[train_idx])) == n_classes:
            return fraction
    return None


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
    untrained = [] if task != "classification" else sorted(set(range(len(labels))) - set(encoded[train_idx]))
    if untrained:  # groups mixing classes: every group of a class can fall on the validation side
        lower = _fraction_training_every_class(encoded, groups, settings, len(labels))
        fix = (f"lower validation_fraction to {lower:g}, which keeps training samples of every class, or add samples "
               "of that class" if lower is not None else "add samples of that class (in more groups), or leave "
               "groups out")
        raise TrainingError(f"The validation split left class {labels[untrained[0]]!r} without training samples "
                            f"(validation_fraction {settings.validation_fraction:g} held out all of its samples); "
                            f"{fix}.")
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

