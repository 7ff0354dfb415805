"""Labels as training targets (integer classes or standardised numbers) and the validation scores of outputs."""
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score, roc_auc_score

from .settings import TrainingError


def encode_targets(values: pd.Series, task: str) -> Tuple[np.ndarray, List[str], float, float]:
    """(n_samples,) integer classes (of the sorted class names) or standardised floats, the class names (empty for
    regression), and the mean and std the floats were standardised with (0 and 1 for classes); clear errors for
    unusable labels."""
    if task == "classification":
        counts = values.astype(str).value_counts()
        if len(counts) < 2:
            raise TrainingError(f"The label column has a single class ({counts.index[0]!r}); a classifier needs "
                                "at least two. Check the metadata column or filter.")
        rare = counts[counts < 2]
        if len(rare):
            raise TrainingError(f"Class {rare.index[0]!r} has a single sample; every class needs at least two "
                                "(one to train on, one to validate or test). Filter that sample out of the table "
                                "(qiime feature-table filter-samples) and tokenize it again, or merge the class "
                                "with a related one in the metadata.")
        labels = sorted(counts.index)
        return values.astype(str).map({c: i for i, c in enumerate(labels)}).to_numpy(), labels, 0.0, 1.0
    numbers = values.astype(float).to_numpy()
    mean, std = float(numbers.mean()), float(numbers.std()) or 1.0
    return (numbers - mean) / std, [], mean, std


def validation_scores(task: str, outputs: np.ndarray, truth: np.ndarray, target_std: float) -> Dict[str, float]:
    """Validation metrics of class probabilities (n x classes) or standardised predictions (n,), against the (n,)
    true classes or standardised values."""
    if task == "regression":
        return {"mae": mean_absolute_error(truth, outputs) * target_std, "r2": r2_score(truth, outputs)}
    accuracy = float((outputs.argmax(1) == truth).mean())
    if len(np.unique(truth)) < outputs.shape[1]:  # AUC needs every class among the validation samples
        return {"accuracy": accuracy}
    auc = (roc_auc_score(truth, outputs[:, 1]) if outputs.shape[1] == 2 else
           roc_auc_score(truth, outputs, multi_class="ovr", labels=np.arange(outputs.shape[1])))
    return {"auc": auc, "accuracy": accuracy}
