"""Supervised MGM: fine-tune a pretrained model (or train one from random weights) to classify or regress samples.

Upstream's recipe is GPT2ForSequenceClassification, a linear head on the final hidden state at the last non-pad
token, trained with the transformers Trainer (`trainer`). With the whole encoder frozen the head is fit exactly
instead (`head`: L2 logistic regression or ridge), and a RandomForest on the corpus's genus abundances can be blended
into the predictions (`blend`). One module per concern:

- settings: the task names, TrainingSettings (the one table of defaults) and TrainingError
- networks: the sequence model on a pretrained encoder, and freezing
- targets: labels as targets, validation scores
- splits: stratified, group-aware train/validation splits (also split-corpus's)
- trainer, head, blend: the three ways a model is fit
- decision: the class a classifier calls from its probabilities (a rule chosen on the validation share)
- fitting: train_sequence_model, which picks among them
- trained: TrainedModel, its predictions and its files

settings and splits import no torch and are imported with the package (registrations read FINE_TUNING); the names
of the modules that run the model are imported from them when first asked for, so that `from q2_mgm.core.training
import predict` imports torch and `from q2_mgm.core.training import FINE_TUNING` does not.
"""
import importlib

from .settings import FINE_TUNING, TASKS, TrainingError, TrainingSettings
from .splits import validation_split

_LAZY = {"train_sequence_model": "fitting", "sequence_model": "networks", "TrainedModel": "trained",
         "load_blended_forest": "trained", "load_trained_model": "trained", "predict": "trained",
         "read_training_record": "trained", "save_trained_model": "trained", "EpochProgress": "trainer",
         "epoch_history": "trainer"}

__all__ = ["FINE_TUNING", "TASKS", "EpochProgress", "TrainedModel", "TrainingError", "TrainingSettings",
           "epoch_history", "load_blended_forest", "load_trained_model", "predict", "read_training_record",
           "save_trained_model", "sequence_model", "train_sequence_model", "validation_split"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
