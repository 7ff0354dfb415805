"""Recipes that predict samples of a study (cohort, batch) none of whose samples were trained on, and the
conventional baselines they are measured against.

Every recipe reads the same per-sample inputs (`SampleFeatures`): the frozen general model's final hidden states
(mean and last-token pooling, one forward pass per sample, computed once for every fold), the genus abundances that
tokenization read, and each sample's batch. A recipe is fit on some samples and predicts others; nothing in it reads
the predicted samples' labels. Batch correction (`standardise_within_batches`) centres and scales each batch's
features on that batch's own samples, labels unused, so a new cohort is corrected on itself at prediction time.

The recipes and their figures across studies are in benchmarks/results/transfer.md (benchmarks/transfer.py).
"""
import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.preprocessing import StandardScaler

from .baselines import BASELINE_TREES, relative_abundance
from .training.head import HEAD_C, RIDGE_ALPHAS
from .training.settings import FINE_TUNING

# L2 strength of the logistic regressions on batch-standardised features (inverse C; the same for every cohort)
TRANSFER_C = 0.01
RIDGE_ALPHA = 100.0
# added to every relative abundance before the log of the centred log-ratio: half the smallest non-zero relative
# abundance that common 16S depths resolve (1 read in 20,000), so an absent genus sits below every present one
CLR_PSEUDOCOUNT = 2.5e-5



class TransferError(ValueError):
    """Inputs a recipe cannot fit or predict; the message names the problem and the fix."""


@dataclasses.dataclass
class SampleFeatures:
    """One row per sample, in the same order in every field.

    embeddings: (n_samples, 2 * hidden) float32, the frozen general model's final hidden states, mean-pooled over
        the sentence's tokens, then at its last token (core.inference.pooled_embeddings).
    abundances: (n_samples, n_genera) relative abundances of the genera a recipe reads (columns: genus tokens; 0
        where a sample lacks one): the amounts the sentence leaves out.
    batches: (n_samples,) batch names (study, sequencing run), or None where no batches were given.

    The batch-standardised blocks are computed once, over every sample given here (each batch on all of its own
    samples, labels unused), then sliced by `rows`: cross-validation corrects each batch once, not per fold.
    """
    embeddings: np.ndarray
    abundances: pd.DataFrame
    batches: Optional[np.ndarray] = None
    _blocks: dict = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self):
        n = len(self.abundances)
        if len(self.embeddings) != n or (self.batches is not None and len(self.batches) != n):
            raise TransferError(f"embeddings ({len(self.embeddings)}), abundances ({n}) and batches must hold the "
                                "same samples.")
        if self.batches is not None:
            self.batches = np.asarray(self.batches).astype(str)
            names, counts = np.unique(self.batches, return_counts=True)
            if counts.min() < MIN_BATCH_SAMPLES:
                raise TransferError(
                    f"Batch {names[counts.argmin()]!r} holds {counts.min()} sample(s); standardising within each "
                    f"batch needs at least {MIN_BATCH_SAMPLES} samples of every batch (a few dozen for stable "
                    "figures). Merge small batches with related ones, or leave batches out.")

    def __len__(self) -> int:
        return len(self.abundances)

    def rows(self, index: np.ndarray) -> "SampleFeatures":
        """The samples at these positions, with their blocks already corrected on every sample of their batch."""
        sliced = SampleFeatures(self.embeddings[index], self.abundances.iloc[index],
                                None if self.batches is None else self.batches[index])
        sliced._blocks = {name: block[index] for name, block in self._blocks.items()}
        for name in BLOCKS:  # blocks never computed here are computed on the whole set, then sliced
            if name not in sliced._blocks:
                sliced._blocks[name] = self.block(name)[index]
        return sliced

    @property
    def hidden(self) -> int:
        return self.embeddings.shape[1] // 2

    def block(self, name: str) -> np.ndarray:
        """A feature block: 'clr' (CLR abundances) or 'mgm' (mean and last-token features), standardised within
        each batch where batches were given, as is otherwise. (n_samples, width) float64."""
        if name not in self._blocks:
            raw = (clr(self.abundances) if name == "clr" else np.asarray(self.embeddings, dtype=np.float64))
            self._blocks[name] = raw if self.batches is None else standardise_within_batches(raw, self.batches)
        return self._blocks[name]


BLOCKS = ("clr", "mgm")
MIN_BATCH_SAMPLES = 3


def clr(abundances: pd.DataFrame, pseudocount: float = CLR_PSEUDOCOUNT) -> np.ndarray:
    """Centred log-ratio of relative abundances: log(x + pseudocount) minus the sample's mean of those logs.
    (n_samples, n_genera) float64; rows are closed to 1 first, so counts and relative abundances give the same."""
    logs = np.log(relative_abundance(abundances).to_numpy(dtype=np.float64) + pseudocount)
    return logs - logs.mean(axis=1, keepdims=True)


def standardise_within_batches(features: np.ndarray, batches: Sequence[str]) -> np.ndarray:
    """Each batch's features centred to mean 0 and scaled to standard deviation 1 on that batch's own samples
    (a feature constant within a batch is only centred). No labels are read, so a new cohort is standardised on
    itself. (n_samples, n_features) float64."""
    features = np.asarray(features, dtype=np.float64)
    out = np.empty_like(features)
    batches = np.asarray(batches)
    for batch in np.unique(batches):
        rows = batches == batch
        block = features[rows]
        std = block.std(axis=0)
        out[rows] = (block - block.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return out


class Recipe:
    """A way to predict samples from SampleFeatures: fit on labelled samples, predict others. Subclasses set
    `name`, `description`, `uses_mgm` and `blocks` (the SampleFeatures blocks read, each standardised on the
    training samples and weighted to the same total variance, so no block outweighs another by its width); the
    model is an L2 logistic regression (ridge for numbers) on them, unless a subclass says otherwise."""
    name = ""
    description = ""
    uses_mgm = True
    blocks: Tuple[str, ...] = ()
    without_mgm: Optional[str] = None  # the recipe that is this one without its MGM part (its ablation)
    mgm_only: Optional[str] = None  # the recipe that is this one's MGM part alone

    def __init__(self, task: str, random_state: int = 0, n_estimators: int = BASELINE_TREES):
        self.task, self.random_state, self.n_estimators = task, random_state, n_estimators

    def features(self, data: SampleFeatures, fitting: bool) -> np.ndarray:
        matrices = [data.block(name) for name in self.blocks]
        if fitting:
            self.scalers_ = [StandardScaler().fit(m) for m in matrices]
        scaled = [s.transform(m) / np.sqrt(m.shape[1]) for s, m in zip(self.scalers_, matrices)]
        return np.hstack(scaled) * np.sqrt(sum(m.shape[1] for m in matrices) / len(matrices))

    def model(self):
        if self.task == "regression":
            return Ridge(alpha=RIDGE_ALPHA)
        return LogisticRegression(C=TRANSFER_C, max_iter=5000, class_weight="balanced")

    def fit(self, data: SampleFeatures, targets: np.ndarray) -> "Recipe":
        """targets: (n_samples,) class indices (0..n_classes-1, every class present) or standardised values."""
        self.model_ = self.model().fit(self.features(data, fitting=True), targets)
        return self

    def predict(self, data: SampleFeatures) -> np.ndarray:
        """(n_samples, n_classes) probabilities or (n_samples,) values."""
        features = self.features(data, fitting=False)
        return self.model_.predict(features) if self.task == "regression" else self.model_.predict_proba(features)


class BatchCLR(Recipe):
    name = "batch-clr-logistic"
    description = ("conventional batch correction, no MGM: an L2 logistic regression (ridge for numbers) on CLR "
                   "abundances standardised within each batch")
    uses_mgm = False
    blocks = ("clr",)


class BatchMGM(Recipe):
    name = "batch-mgm-logistic"
    description = ("MGM alone: an L2 logistic regression (ridge for numbers) on the frozen general model's mean "
                   "and last-token features, standardised within each batch")
    blocks = ("mgm",)


class BatchCLRWithMGM(Recipe):
    name = "mgm-transfer"
    description = ("MGM beside batch-corrected abundances: one L2 logistic regression (ridge for numbers) on the "
                   "frozen general model's mean and last-token features and on CLR abundances, each standardised "
                   "within each batch and weighted to equal total variance")
    blocks = ("clr", "mgm")
    without_mgm, mgm_only = BatchCLR.name, BatchMGM.name


class RandomForestBaseline(Recipe):
    name = "random-forest"
    description = "conventional: a RandomForest on relative abundance, no batch correction"
    uses_mgm = False

    def model(self):
        estimator = RandomForestClassifier if self.task == "classification" else RandomForestRegressor
        return estimator(n_estimators=self.n_estimators, random_state=self.random_state, n_jobs=1)

    def features(self, data, fitting):
        return relative_abundance(data.abundances).to_numpy(dtype=np.float64)


class FrozenHead(Recipe):
    """fine-tune's frozen-encoder head alone (forest_weight 0): L2 logistic regression (C = HEAD_C) or ridge on the
    standardised last-token features, no batch correction."""
    name = "mgm-frozen-head"
    description = ("MGM alone, as fine-tune with forest_weight 0: a linear head on the frozen model's last-token "
                   "features, no batch correction")

    def features(self, data, fitting):
        last = np.asarray(data.embeddings[:, data.hidden:], dtype=np.float64)
        if fitting:
            self.scaler_ = StandardScaler().fit(last)
        return self.scaler_.transform(last)

    def model(self):
        if self.task == "regression":
            return RidgeCV(alphas=RIDGE_ALPHAS)
        return LogisticRegression(C=HEAD_C, max_iter=5000, class_weight="balanced")


class ClassifyDefault(Recipe):
    """classify-samples' default: the frozen head blended with a RandomForest on relative abundance
    (FINE_TUNING.forest_weight of each prediction)."""
    name = "classify-default"
    description = ("classify-samples' default, no batch correction: the frozen head, 0.7 of each prediction from a "
                   "RandomForest on relative abundance")

    def fit(self, data, targets):
        self.head_ = FrozenHead(self.task, self.random_state).fit(data, targets)
        self.forest_ = RandomForestBaseline(self.task, self.random_state, self.n_estimators).fit(data, targets)
        return self

    def predict(self, data):
        return ((1 - FINE_TUNING.forest_weight) * self.head_.predict(data)
                + FINE_TUNING.forest_weight * self.forest_.predict(data))


RECIPES: Dict[str, type] = {recipe.name: recipe for recipe in (
    BatchCLRWithMGM, BatchMGM, FrozenHead, ClassifyDefault, BatchCLR, RandomForestBaseline)}
MGM_RECIPES = tuple(name for name, recipe in RECIPES.items() if recipe.uses_mgm)
BASELINES = (RandomForestBaseline.name, BatchCLR.name)  # shown beside every cross-validation
DEFAULT_RECIPE = BatchCLRWithMGM.name


def make_recipe(name: str, task: str, random_state: int = 0, n_estimators: int = BASELINE_TREES) -> Recipe:
    if name not in RECIPES:
        raise TransferError(f"Unknown recipe {name!r}; choose one of {', '.join(RECIPES)}.")
    return RECIPES[name](task, random_state, n_estimators)
