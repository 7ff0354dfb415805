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
"""
from .fitting import train_sequence_model
from .networks import sequence_model
from .settings import FINE_TUNING, TASKS, TrainingError, TrainingSettings
from .splits import validation_split
from .trained import (TrainedModel, load_blended_forest, load_trained_model, predict, read_training_record,
                      save_trained_model)
from .trainer import EpochProgress, epoch_history

__all__ = ["FINE_TUNING", "TASKS", "EpochProgress", "TrainedModel", "TrainingError", "TrainingSettings",
           "epoch_history", "load_blended_forest", "load_trained_model", "predict", "read_training_record",
           "save_trained_model", "sequence_model", "train_sequence_model", "validation_split"]
