"""The linear head fit exactly on a frozen encoder's features: an L2 logistic regression (ridge for numbers) on the
final hidden state at the last token, validated, refit on every sample and folded into the network's score layer."""
from typing import Callable, List, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
import transformers
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..inference import sample_embeddings
from .settings import HEAD_C, RIDGE_ALPHAS, TrainingSettings
from .targets import validation_scores


def linear_head(task: str, settings: TrainingSettings) -> Pipeline:
    """An unfitted StandardScaler + RidgeCV (regression) or L2 LogisticRegression (classification) pipeline."""
    if task == "regression":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
    return make_pipeline(StandardScaler(), LogisticRegression(
        C=HEAD_C, max_iter=5000, class_weight="balanced" if settings.class_weighting else None))


def _head_outputs(head, task, features):
    return head.predict(features) if task == "regression" else head.predict_proba(features)


def fit_frozen_head(model: transformers.GPT2ForSequenceClassification, token_ids: Sequence[np.ndarray],
                    encoded: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, task: str, labels: List[str],
                    std: float, settings: TrainingSettings, report: Callable[[str], None]
                    ) -> Tuple[transformers.GPT2ForSequenceClassification, pd.DataFrame, int, np.ndarray]:
    """The frozen encoder's features never change, so the head is a convex fit on them: compute them once and fit
    it exactly, validate, then refit on every labelled sample. No epochs: one forward pass per sample.

    encoded: (n_samples,) targets (class indices or standardised values). Returns (model on the CPU, history,
    samples trained on, validation outputs: (n_validation, n_classes) probabilities or (n_validation,) values)."""
    report(f"encoder frozen: features of {len(token_ids)} samples, then an exactly fit linear head "
           f"(validated on {len(val_idx)} held-out samples, then refit on all {len(token_ids)})")
    model.eval()  # no dropout: the features are the ones the head will read at prediction
    features = sample_embeddings(model, token_ids, "last", settings.device)  # the token the head reads
    head = linear_head(task, settings).fit(features[train_idx], encoded[train_idx])
    train_out, validation = (_head_outputs(head, task, features[idx]) for idx in (train_idx, val_idx))
    loss = (mean_squared_error if task == "regression" else
            lambda truth, p: log_loss(truth, p, labels=np.arange(len(labels))))
    history = pd.DataFrame({"train_loss": [loss(encoded[train_idx], train_out)],
                            "validation_loss": [loss(encoded[val_idx], validation)],
                            **{f"validation_{k}": [v] for k, v in validation_scores(task, validation,
                                                                                      encoded[val_idx], std).items()}},
                           index=pd.Index(["1"], name="epoch"))
    report("head: " + ", ".join(f"{k} {v:.4f}" for k, v in history.iloc[0].items()))
    set_linear_head(model, linear_head(task, settings).fit(features, encoded), task)
    return model.cpu(), history, len(token_ids), validation


def set_linear_head(model: transformers.GPT2ForSequenceClassification, head: Pipeline, task: str) -> None:
    """Fold the scaler into the network's score layer (given a bias), so the artifact is one network."""
    scaler, linear = head[0], head[1]
    weight = np.atleast_2d(linear.coef_) / scaler.scale_
    bias = np.atleast_1d(linear.intercept_) - weight @ scaler.mean_
    if task == "classification" and weight.shape[0] == 1:  # binary: softmax([-z/2, z/2]) = sigmoid(z)
        weight, bias = np.vstack([-weight / 2, weight / 2]), np.concatenate([-bias / 2, bias / 2])
    model.config.score_bias = True
    model.score = torch.nn.Linear(model.config.n_embd, weight.shape[0], bias=True)
    with torch.no_grad():
        model.score.weight.copy_(torch.from_numpy(weight))
        model.score.bias.copy_(torch.from_numpy(bias))
    model.score.requires_grad_(False)
