"""Recipes that predict samples of a study (cohort, batch) none of whose samples were trained on, and the
conventional baselines they are measured against.

Every recipe reads the same per-sample inputs (`SampleFeatures`): what the frozen general model makes of each
sentence (its mean and last-token final hidden states, and how likely it finds the sentence; one forward pass per
sample, computed once for every fold), the genus abundances that tokenization read, and each sample's batch. A
recipe is fit on some samples and predicts others; nothing in it reads the predicted samples' labels. Batch
correction (`standardise_within_batches`) centres and scales each batch's features on that batch's own samples,
labels unused, so a new cohort is corrected on itself at prediction time.

The default (`mgm-transfer`) and its settings come from a study of about 100 recipes leaving one study out on the 11
multi-study cohorts of ../shared/data/disease-benchmark, with every global setting chosen leaving one cohort out;
the recipes shipped here and their figures are in benchmarks/results/transfer.md (benchmarks/transfer.py).
"""
import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.preprocessing import StandardScaler

from .baselines import BASELINE_TREES, relative_abundance
from .training.settings import FINE_TUNING, HEAD_C, RIDGE_ALPHAS

# Inverse L2 strengths (C) of the logistic regressions on batch-standardised features, chosen leaving one cohort out
# from 0.001-0.3: every held-out cohort picked these
CLR_C = 0.003
MGM_C = 0.001
RIDGE_ALPHA = 100.0  # the regressions' L2 strength on the same standardised features
CLR_PREVALENCE = 0.05  # the CLR block keeps the genera present in at least this share of the samples given
# the two likelihood columns' weight beside the 512 hidden-state columns: a quarter of the hidden states' total
LIKELIHOOD_WEIGHT = 0.25
MIN_BATCH_SAMPLES = 3
# a standard deviation at most this share of the mean is rounding noise: the feature is constant (batch_moments)
CONSTANT_SPREAD = 1e-10


class TransferError(ValueError):
    """Inputs a recipe cannot fit or predict; the message names the problem and the fix."""


@dataclasses.dataclass
class SampleFeatures:
    """One row per sample, in the same order in every field.

    embeddings: (n_samples, 2 * hidden) float32, the frozen general model's final hidden states, mean-pooled over
        the sentence's tokens, then at its last token (core.inference.language_model_features).
    likelihood: (n_samples, 2): the mean log-probability the model gives each next token of the sentence, and the
        log of the number of those tokens (a richness measure).
    abundances: (n_samples, n_genera) relative abundances of the genera a recipe reads (columns: genus tokens; 0
        where a sample lacks one): the amounts the sentence leaves out.
    batches: (n_samples,) batch names (study, sequencing run), or None where no batches were given.

    The batch-standardised blocks are computed once, over every sample given here (each batch on all of its own
    samples, labels unused), then sliced by `rows`: cross-validation corrects each batch once, not per fold.
    """
    embeddings: np.ndarray
    likelihood: np.ndarray
    abundances: pd.DataFrame
    batches: Optional[np.ndarray] = None
    # the CLR's parts (by default the abundances' columns) and the genera of its block (by default those present in
    # CLR_PREVALENCE of these samples): a stored model gives its own, so a new cohort is read against them
    clr_parts: Optional[Sequence[str]] = None
    clr_genera: Optional[Sequence[str]] = None
    _blocks: dict = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self):
        n = len(self.abundances)
        if len(self.embeddings) != n or len(self.likelihood) != n or (self.batches is not None and
                                                                      len(self.batches) != n):
            raise TransferError(f"embeddings ({len(self.embeddings)}), likelihood ({len(self.likelihood)}), "
                                f"abundances ({n}) and batches must hold the same samples.")
        if self.batches is not None and not self._blocks:  # rows() of a checked set come with their blocks
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
        blocks = {name: self.block(name)[index] for name in BLOCKS}
        return SampleFeatures(self.embeddings[index], self.likelihood[index], self.abundances.iloc[index],
                              None if self.batches is None else self.batches[index], self.parts_read(),
                              self.genera_read(), blocks)

    def parts_read(self) -> list:
        """The CLR's parts: those given, or the abundances' columns."""
        if self.clr_parts is None:
            self.clr_parts = [str(g) for g in self.abundances.columns]
        return list(self.clr_parts)

    def genera_read(self) -> list:
        """The genera of the CLR block: those given, or those in at least CLR_PREVALENCE of these samples."""
        if self.clr_genera is None:
            present = (self.abundances.to_numpy() > 0).mean(axis=0) >= CLR_PREVALENCE
            self.clr_genera = [str(g) for g in self.abundances.columns[present]]
        return list(self.clr_genera)

    @property
    def hidden(self) -> int:
        return self.embeddings.shape[1] // 2

    def block(self, name: str) -> np.ndarray:
        """A feature block, standardised within each batch where batches were given, as is otherwise:
        'clr' (CLR abundances of the genera in at least CLR_PREVALENCE of these samples), 'mgm' (mean and last-token
        hidden states), 'likelihood' (mean next-token log-probability), 'length' (log number of those tokens).
        (n_samples, width) float64."""
        if name not in self._blocks:
            raw = self.raw_block(name)
            self._blocks[name] = raw if self.batches is None else standardise_within_batches(raw, self.batches)
        return self._blocks[name]

    def raw_block(self, name: str) -> np.ndarray:
        """A feature block before any standardisation (see `block`). (n_samples, width) float64."""
        if name == "clr":
            return clr(self.abundances, self.parts_read())[self.genera_read()].to_numpy()
        if name == "mgm":
            return np.asarray(self.embeddings, dtype=np.float64)
        return np.asarray(self.likelihood, dtype=np.float64)[:, [BLOCKS.index(name) - 2]]


BLOCKS = ("clr", "mgm", "likelihood", "length")


def clr(abundances: pd.DataFrame, parts: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Centred log-ratio of relative abundances: log(x + pseudocount) minus the sample's mean of those logs over
    `parts` (default: the columns), the pseudocount half the sample's smallest non-zero abundance. Each row is closed
    to 1 over all its columns first, so counts and relative abundances give the same. A model stores its parts, so
    that a new cohort, whose table holds other genera, is read against the same ones. (n_samples, len(parts))."""
    closed = relative_abundance(abundances)
    smallest = closed.where(closed > 0).min(axis=1).fillna(1e-6).to_numpy()
    if parts is not None:
        closed = closed.reindex(columns=list(parts), fill_value=0.0)
    logs = np.log(closed.to_numpy(dtype=np.float64) + smallest[:, None] / 2)
    return pd.DataFrame(logs - logs.mean(axis=1, keepdims=True), index=closed.index, columns=closed.columns)


def standardise_within_batches(features: np.ndarray, batches: Sequence[str]) -> np.ndarray:
    """Each batch's features centred to mean 0 and scaled to standard deviation 1 on that batch's own samples
    (a feature constant within a batch is only centred). No labels are read, so a new cohort is standardised on
    itself. (n_samples, n_features) float64."""
    mean, scale = batch_moments(features, batches)
    return (np.asarray(features, dtype=np.float64) - mean) / scale


def batch_moments(features: np.ndarray, batches: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of each row's batch, each (n_samples, n_features) float64: the batch's mean over its own
    samples, and its standard deviation (1 for a feature constant within the batch), which
    standardise_within_batches divides by. A feature is constant where its standard deviation is rounding noise
    (CONSTANT_SPREAD of its mean or less): the mean of n equal values can differ from them in the last bit, and
    dividing that difference by its own size would turn a constant (e.g. the length of a batch whose sentences are
    all truncated) into a feature of +-1."""
    features = np.asarray(features, dtype=np.float64)
    mean, scale = np.empty_like(features), np.empty_like(features)
    batches = np.asarray(batches)
    for batch in np.unique(batches):
        rows = batches == batch
        std, centre = features[rows].std(axis=0), features[rows].mean(axis=0)
        mean[rows], scale[rows] = centre, np.where(std > CONSTANT_SPREAD * np.abs(centre), std, 1.0)
    return mean, scale


class Recipe:
    """A way to predict samples from SampleFeatures: fit on labelled samples, predict others. Subclasses set
    `name`, `description` and `uses_mgm`, and `parts`: each part is a linear model (L2 logistic regression of
    strength C, ridge for numbers) on some SampleFeatures blocks, each block standardised on the training samples
    and weighted. One part predicts by itself. Several parts are blended late: each part's decision function is
    standardised within each batch (on the training scores' mean and spread where no batches were given), the
    standardised scores are summed, and a logistic calibration fit on the training samples' summed scores reads
    them as probabilities; for numbers, the parts' predictions are averaged.

    scikit-learn fits; what a fit leaves is plain arrays (`arrays`, `record`), and predictions are computed from
    them alone, so a model stored in an artifact (safetensors and JSON) predicts exactly as the fit one does."""
    name = ""
    description = ""
    uses_mgm = True
    parts: Tuple[Tuple[Tuple[Tuple[str, float], ...], float], ...] = ()  # (((block, weight), ...), C) per part
    without_mgm: Optional[str] = None  # the recipe that is this one without its MGM part (its ablation)
    mgm_only: Optional[str] = None  # the recipe that is this one's MGM part alone

    def __init__(self, task: str, random_state: int = 0, n_estimators: int = BASELINE_TREES):
        self.task, self.random_state, self.n_estimators = task, random_state, n_estimators

    def _features(self, data: SampleFeatures, part: int) -> np.ndarray:
        return np.hstack([data.block(name) for name, _ in self.parts[part][0]])

    def _decision(self, data: SampleFeatures, part: int) -> np.ndarray:
        """(n_samples, n_outputs) linear scores of one part, from the fitted arrays."""
        a = self.arrays
        standardised = (self._features(data, part) - a[f"part{part}.mean"]) / a[f"part{part}.scale"]
        return standardised @ a[f"part{part}.coef"].T + a[f"part{part}.intercept"]

    def _summed_scores(self, data: SampleFeatures) -> np.ndarray:
        total = 0.0
        for part in range(len(self.parts)):
            score = self._decision(data, part)
            if data.batches is None:
                total = total + (score - self.arrays[f"part{part}.score_mean"]) / self.arrays[f"part{part}.score_std"]
            else:
                total = total + standardise_within_batches(score, data.batches)
        return total

    def fit(self, data: SampleFeatures, targets: np.ndarray) -> "Recipe":
        """targets: (n_samples,) class indices (0..n_classes-1, every class present) or standardised values."""
        self.arrays, self.record = {}, {"recipe": self.name, "task": self.task, "clr_parts": data.parts_read(),
                                        "clr_genera": data.genera_read()}
        for part, (blocks, c) in enumerate(self.parts):
            features = self._features(data, part)
            scaler = StandardScaler().fit(features)
            weights = np.concatenate([np.full(data.block(name).shape[1], weight) for name, weight in blocks])
            model = (Ridge(alpha=RIDGE_ALPHA) if self.task == "regression" else LogisticRegression(C=c, max_iter=3000))
            model.fit(scaler.transform(features) * weights, targets)
            self.arrays.update({f"part{part}.mean": scaler.mean_, f"part{part}.scale": scaler.scale_ / weights,
                                f"part{part}.coef": np.atleast_2d(model.coef_),
                                f"part{part}.intercept": np.atleast_1d(model.intercept_)})
            score = self._decision(data, part)
            self.arrays.update({f"part{part}.score_mean": score.mean(axis=0),
                                f"part{part}.score_std": score.std(axis=0) + 1e-12})
        if self.task == "classification" and len(self.parts) > 1:
            calibration = LogisticRegression(max_iter=3000).fit(self._summed_scores(data), targets)
            self.arrays.update({"calibration.coef": np.atleast_2d(calibration.coef_),
                                "calibration.intercept": np.atleast_1d(calibration.intercept_)})
        return self

    def decision(self, data: SampleFeatures) -> np.ndarray:
        """(n_samples, n_outputs) the scores predict reads: for classification the log-odds of the second class
        (one column) or each class's logit (several), for regression the values (standardised, as the targets
        were; one column)."""
        if self.task == "regression":
            return np.mean([self._decision(data, part) for part in range(len(self.parts))], axis=0)
        if len(self.parts) == 1:
            return self._decision(data, 0)
        a = self.arrays
        return self._summed_scores(data) @ a["calibration.coef"].T + a["calibration.intercept"]

    def predict(self, data: SampleFeatures) -> np.ndarray:
        """(n_samples, n_classes) probabilities or (n_samples,) values (standardised, as the targets were)."""
        decision = self.decision(data)
        return decision[:, 0] if self.task == "regression" else _probabilities(decision)


def _probabilities(decision: np.ndarray) -> np.ndarray:
    """Class probabilities of linear scores, as scikit-learn's LogisticRegression reads them: one column is the
    second class's log-odds, several are a softmax's logits."""
    if decision.shape[1] == 1:
        positive = 1 / (1 + np.exp(-decision[:, 0]))
        return np.column_stack([1 - positive, positive])
    shifted = np.exp(decision - decision.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def load_recipe(arrays: Dict[str, np.ndarray], record: dict) -> Recipe:
    """The fitted recipe that `arrays` and `record` (from a fit Recipe) describe; TransferError where they do not
    fit together."""
    if record.get("recipe") not in RECIPES or not RECIPES[record["recipe"]].parts:
        raise TransferError(f"The stored recipe {record.get('recipe')!r} is not one q2-mgm stores as arrays.")
    recipe = RECIPES[record["recipe"]](record["task"])
    needed = [f"part{p}.{k}" for p in range(len(recipe.parts)) for k in ("mean", "scale", "coef", "intercept")]
    if record["task"] == "classification" and len(recipe.parts) > 1:
        needed += ["calibration.coef", "calibration.intercept"]
    missing = [key for key in needed if key not in arrays]
    if missing:
        raise TransferError(f"The stored {record['recipe']} lacks {', '.join(missing[:3])}; re-create the model.")
    recipe.arrays, recipe.record = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}, record
    return recipe


CLR_PART = ((("clr", 1.0),), CLR_C)


class BatchCLR(Recipe):
    name = "batch-clr-logistic"
    description = ("conventional batch correction, no MGM: an L2 logistic regression (ridge for numbers) on CLR "
                   "abundances standardised within each batch")
    uses_mgm = False
    parts = (CLR_PART,)


def _mgm_blocks(hidden_width: int = 512):
    weight = np.sqrt(hidden_width / 2) * LIKELIHOOD_WEIGHT  # the two likelihood columns beside 512 hidden states
    return (("mgm", 1.0), ("likelihood", weight), ("length", weight))


class BatchMGM(Recipe):
    name = "batch-mgm-logistic"
    description = ("MGM alone: an L2 logistic regression (ridge for numbers) on the frozen general model's mean "
                   "and last-token hidden states and the sentence's likelihood, standardised within each batch")
    parts = ((_mgm_blocks(), MGM_C),)


class MGMTransfer(Recipe):
    name = "mgm-transfer"
    description = ("MGM beside batch-corrected abundances, blended late: one L2 logistic regression (ridge for "
                   "numbers) on CLR abundances and one on the frozen general model's mean and last-token hidden "
                   "states and the sentence's likelihood, every feature standardised within each batch; the two "
                   "scores standardised within each batch and summed")
    parts = (CLR_PART, (_mgm_blocks(), MGM_C))


class TransferWithoutMGM(Recipe):
    name = "transfer-without-mgm"
    description = ("mgm-transfer without its MGM part (the ablation): the CLR model blended late with one on the "
                   "sentence length alone (log number of genera, a richness measure)")
    uses_mgm = False
    parts = (CLR_PART, ((("length", 1.0),), MGM_C))


MGMTransfer.without_mgm, MGMTransfer.mgm_only = TransferWithoutMGM.name, BatchMGM.name


class RandomForestBaseline(Recipe):
    name = "random-forest"
    description = "conventional: a RandomForest on relative abundance, no batch correction"
    uses_mgm = False

    def fit(self, data, targets):
        estimator = RandomForestClassifier if self.task == "classification" else RandomForestRegressor
        self.model_ = estimator(n_estimators=self.n_estimators, random_state=self.random_state,
                                n_jobs=1).fit(self._features(data), targets)
        return self

    def predict(self, data):
        features = self._features(data)
        return self.model_.predict(features) if self.task == "regression" else self.model_.predict_proba(features)

    @staticmethod
    def _features(data):
        return relative_abundance(data.abundances).to_numpy(dtype=np.float64)


class FrozenHead(Recipe):
    """fine-tune's frozen-encoder head alone (forest_weight 0): L2 logistic regression (C = HEAD_C, classes
    weighted) or ridge on the standardised last-token features, no batch correction."""
    name = "mgm-frozen-head"
    description = ("MGM alone, as fine-tune with forest_weight 0: a linear head on the frozen model's last-token "
                   "hidden state, no batch correction")

    def fit(self, data, targets):
        last = np.asarray(data.embeddings[:, data.hidden:], dtype=np.float64)
        self.scaler_ = StandardScaler().fit(last)
        self.model_ = (RidgeCV(alphas=RIDGE_ALPHAS) if self.task == "regression" else
                       LogisticRegression(C=HEAD_C, max_iter=5000, class_weight="balanced"))
        self.model_.fit(self.scaler_.transform(last), targets)
        return self

    def predict(self, data):
        features = self.scaler_.transform(np.asarray(data.embeddings[:, data.hidden:], dtype=np.float64))
        return self.model_.predict(features) if self.task == "regression" else self.model_.predict_proba(features)


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
    MGMTransfer, BatchMGM, FrozenHead, ClassifyDefault, TransferWithoutMGM, BatchCLR, RandomForestBaseline)}
BASELINES = (RandomForestBaseline.name, BatchCLR.name)  # shown beside every cross-validation
DEFAULT_RECIPE = MGMTransfer.name


def make_recipe(name: str, task: str, random_state: int = 0, n_estimators: int = BASELINE_TREES) -> Recipe:
    if name not in RECIPES:
        raise TransferError(f"Unknown recipe {name!r}; choose one of {', '.join(RECIPES)}.")
    return RECIPES[name](task, random_state, n_estimators)
