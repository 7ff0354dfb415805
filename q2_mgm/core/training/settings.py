"""What a supervised training run is given: its task, its settings (the defaults of fine-tune, classify-samples
and regress-samples are these), the exactly fit head's constants (read by core.transfer too), and the error it
raises. Imports no torch: registrations read FINE_TUNING when QIIME 2 loads the plugin."""
import dataclasses

import numpy as np

from ..settings import LoopSettings

TASKS = ("classification", "regression")
# L2 strength of the exactly fit head (core.training.head) on standardised last-token features, from a probe on the
# accuracy benchmark's folds: 0.003 and 0.03 moved the blend's median AUC by less than 0.004
HEAD_C = 0.01
RIDGE_ALPHAS = np.logspace(-2, 5, 15)


class TrainingError(ValueError):
    """Labels or settings that cannot train a model; the message names the problem and the fix."""


@dataclasses.dataclass
class TrainingSettings(LoopSettings):
    """The one table of supervised defaults: fine-tune's signature, the pipelines' and the core read it. The
    default recipe freezes the general model's 8 layers (the head is then fit exactly) and takes 70% of each
    prediction from a RandomForest on genus abundances; freeze_layers 0 and forest_weight 0 give upstream's
    fine-tuning. weight_decay is AdamW's where layers are trained."""
    epochs: int = 20
    learning_rate: float = 1e-4
    batch_size: int = 32
    validation_fraction: float = 0.2
    patience: int = 5
    random_state: int = 0
    class_weighting: bool = True
    freeze_layers: int = 8
    weight_decay: float = 0.01
    device: str = "auto"  # 'auto' takes a CUDA GPU where torch sees one
    forest_weight: float = 0.7  # share of the RandomForest on genus abundances in the predictions; 0: MGM alone
    forest_trees: int = 500


FINE_TUNING = TrainingSettings()
