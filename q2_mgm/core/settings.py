"""The defaults and choices of the code that runs models, kept apart from it: this module imports no torch, so that
registrations read them when QIIME 2 loads the plugin (CONTRIBUTING: where heavy imports live). Every training loop
(fine-tuning, pretraining, the neural reconstructor) shares one definition of its fields, LoopSettings, with no
defaults of its own; each loop's settings class sets its defaults, and one instance of it is the table its actions'
signatures read (core.training.FINE_TUNING, PRETRAINING, NEURAL). The actions' signatures and the modules that run
the models (core.pretraining, core.reconstruction, core.generation, core.keystone, core.inference) import them from
here."""
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


@dataclasses.dataclass
class PretrainingSettings(LoopSettings):
    """Upstream's `[pretrain]` recipe (config.ini), except warmup as a share of the steps: upstream's 1000 warmup
    steps exceed a small corpus' whole run, and validation_fraction, patience (upstream: --val-split 0.1,
    early_stopping_patience 3) that count epochs here rather than every 500 steps. batch_size is per process. The
    defaults of pretrain and pretrain-generator."""
    epochs: int = 50
    learning_rate: float = 1e-3
    batch_size: int = 32
    validation_fraction: float = 0.1
    patience: int = 3
    random_state: int = 0
    weight_decay: float = 0.001
    warmup_ratio: float = 0.1
    device: str = "auto"  # 'auto' takes a CUDA GPU where torch sees one


PRETRAINING = PretrainingSettings()

GENERAL_MODEL_SIZE = {"n_layer": 8, "n_head": 8, "n_embd": 256, "n_positions": 512}  # upstream's; pretrain's defaults


@dataclasses.dataclass
class NeuralSettings(LoopSettings):
    """Training settings, the defaults of fit-reconstructor; upstream's are Adam at 2e-4, batches of 64, up to 500
    epochs, patience 3."""
    epochs: int = 300
    learning_rate: float = 1e-3
    batch_size: int = 64
    validation_fraction: float = 0.1
    patience: int = 10
    random_state: int = 0
    width: int = 64
    genus_dropout: float = 0.1  # share of genera trained as `unseen`, so that row 0 learns from statistics alone


NEURAL = NeuralSettings()  # fit-reconstructor's defaults

SAMPLING = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}  # plain sampling from the model: generate's defaults

METHODS = ("attention", "rollout", "gradient")  # keystone scores (core.keystone)
# integrated-gradients steps (Gauss-Legendre nodes) of core.contributions; benchmarks/results/markers.md measures
# the completeness gap and the time of this and other step counts
CONTRIBUTION_STEPS = 32
MGM_BLOCKS = ("mgm", "likelihood")  # the SampleFeatures blocks that read the genus tokens' embeddings
# keystone-genera's and keystone-report's defaults: the paper's attention view, genera held by 10 samples ranked
REPORT = {"method": "attention", "min_samples": 10, "top_genera": 15, "n_bootstrap": 1000, "confidence": 0.95}

POOLINGS = ("mean", "last")  # sample embeddings (core.inference)
DEVICES = ("auto", "cpu", "cuda")
