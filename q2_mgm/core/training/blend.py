"""A RandomForest on the corpus's genus abundances, validated beside the network and blended into its predictions."""
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from ..forest import fit_forest
from .settings import TrainingSettings
from .targets import validation_scores

if TYPE_CHECKING:
    from .trained import TrainedModel


def forest_matrix(abundances: pd.DataFrame, genera: Sequence[str]) -> np.ndarray:
    """The forest's features: (n_samples, len(genera)) float64 abundances of these genera, 0 where absent."""
    return abundances.reindex(columns=genera, fill_value=0.0).to_numpy(dtype=np.float64)


def add_forest(trained: "TrainedModel", abundances: pd.DataFrame, encoded: np.ndarray, train_idx: np.ndarray,
               val_idx: np.ndarray, network_validation: np.ndarray, settings: TrainingSettings,
               report: Callable[[str], None]) -> np.ndarray:
    """Validate the forest and the blend on the held-out samples, then refit the forest on every sample (trained is
    updated in place); returns the blend's outputs on val_idx. abundances: samples x genus tokens, rows in
    encoded's order; encoded: (n_samples,) targets; network_validation: the network's outputs on val_idx,
    (n_validation, n_classes) or (n_validation,)."""
    task, weight = trained.task, settings.forest_weight
    genera = list(abundances.columns[(abundances.to_numpy() > 0).any(axis=0)])
    matrix = forest_matrix(abundances, genera)
    report(f"RandomForest of {settings.forest_trees} trees on {len(genera)} genera, {weight:g} of the blend")
    held_out = fit_forest(matrix[train_idx], encoded[train_idx], task, settings.forest_trees,
                          settings.random_state).predict(matrix[val_idx])
    blend = (1 - weight) * network_validation + weight * held_out
    truth, std = encoded[val_idx], trained.target_std
    trained.validation.update(forest=validation_scores(task, held_out, truth, std),
                              blend=validation_scores(task, blend, truth, std))
    report("validation: " + "; ".join(f"{part} " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
                                      for part, scores in trained.validation.items()))
    trained.forest = fit_forest(matrix, encoded, task, settings.forest_trees, settings.random_state)
    trained.forest_weight, trained.forest_genera = float(weight), genera
    trained.n_training = len(encoded)
    return blend
