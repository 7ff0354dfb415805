"""What every training loop of q2-mgm is given (fine-tuning, pretraining, the neural reconstructor): one definition
of the shared fields; each loop's settings class sets its own defaults, which its actions' signatures read."""
import dataclasses


@dataclasses.dataclass
class LoopSettings:
    """epochs: most passes over the training samples (early stopping may end sooner); learning_rate: peak step size;
    batch_size: samples per step; validation_fraction: share held out to validate each epoch; patience: epochs
    without a better validation score before stopping; random_state: seed of the split, weights and batch order."""
    epochs: int = 20
    learning_rate: float = 1e-4
    batch_size: int = 32
    validation_fraction: float = 0.2
    patience: int = 5
    random_state: int = 0
