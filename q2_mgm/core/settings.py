"""What every training loop of q2-mgm is given (fine-tuning, pretraining, the neural reconstructor): one definition
of the shared fields, with no defaults of its own; each loop's settings class sets its defaults, and one instance of
it is the table its actions' signatures read (core.training.FINE_TUNING, core.pretraining.PRETRAINING,
core.reconstruction.NEURAL)."""
import dataclasses


@dataclasses.dataclass
class LoopSettings:
    """epochs: most passes over the training samples (early stopping may end sooner); learning_rate: peak step size;
    batch_size: samples per step; validation_fraction: share held out to validate each epoch; patience: epochs
    without a better validation score before stopping; random_state: seed of the split, weights and batch order."""
    epochs: int
    learning_rate: float
    batch_size: int
    validation_fraction: float
    patience: int
    random_state: int
