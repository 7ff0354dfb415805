"""Layers trained epoch by epoch with the transformers Trainer (upstream's fine-tuning): class-weighted loss,
validation each epoch, early stopping, the best epoch kept; progress and per-epoch curves."""
import tempfile
from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
import transformers

from ..datasets import SentenceDataset, collate
from .settings import TrainingSettings
from .targets import validation_scores
from .trained import network_outputs


class _WeightedTrainer(transformers.Trainer):
    """Class-weighted cross-entropy for imbalanced labels; plain MSE for regression."""

    def __init__(self, *args, class_weights=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        logits = model(**inputs).logits
        if model.config.problem_type == "regression":
            loss = torch.nn.functional.mse_loss(logits.squeeze(-1), labels)
        else:
            weight = None if self.class_weights is None else self.class_weights.to(logits.device)
            loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight)
        return (loss, {"logits": logits}) if return_outputs else loss


def _metrics(task, target_std):
    def compute(prediction):
        logits, truth = prediction.predictions, prediction.label_ids
        outputs = logits.ravel() if task == "regression" else torch.softmax(torch.from_numpy(logits), -1).numpy()
        return validation_scores(task, outputs, truth, target_std)
    return compute


class EpochProgress(transformers.TrainerCallback):
    """Reports each epoch's train and validation losses and scores through `report`."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        train = [e["loss"] for e in state.log_history if "loss" in e]
        shown = ", ".join(f"{k[5:]} {v:.4f}" for k, v in (metrics or {}).items()
                          if k.startswith("eval_") and not k.endswith(("runtime", "per_second", "epoch")))
        self.report(f"epoch {state.epoch:.0f}/{args.num_train_epochs:.0f}: train loss "
                    f"{train[-1] if train else float('nan'):.4f}, validation {shown}")


def epoch_history(log_history: Iterable[Dict[str, Any]]) -> pd.DataFrame:
    """Per epoch (index `epoch`, text), train_loss and the validation_* metrics, from Trainer's log_history."""
    rows = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        row = rows.setdefault(int(round(entry["epoch"])), {})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
        row.update({f"validation_{k[5:]}": v for k, v in entry.items()
                    if k.startswith("eval_") and not k.endswith(("runtime", "per_second", "epoch"))})
    history = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    history.index = pd.Index([str(e) for e in history.index], name="epoch")
    return history


def fit_with_trainer(model: transformers.GPT2ForSequenceClassification, token_ids: Sequence[np.ndarray],
                     encoded: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, task: str, labels: List[str],
                     std: float, settings: TrainingSettings, report: Callable[[str], None]
                     ) -> Tuple[transformers.GPT2ForSequenceClassification, pd.DataFrame, int, np.ndarray]:
    """Train with the transformers Trainer, keeping the best epoch; as fit_frozen_head, returns (model on the CPU,
    history, samples trained on, validation outputs: (n_validation, n_classes) probabilities or (n_validation,))."""
    class_weights = None
    if task == "classification" and settings.class_weighting:
        counts = np.bincount(encoded[train_idx], minlength=len(labels))
        class_weights = torch.tensor(len(train_idx) / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32)
    dtype = np.float32 if task == "regression" else np.int64
    datasets = [SentenceDataset([token_ids[i] for i in idx], encoded[idx].astype(dtype))
                for idx in (train_idx, val_idx)]
    report(f"training on {len(train_idx)} samples, validating on {len(val_idx)}; "
           f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,} trainable parameters")
    # AUC only where the validation samples hold every class (a grouped split can leave one out); else the loss
    best_metric = "auc" if task == "classification" and len(np.unique(encoded[val_idx])) == len(labels) else "loss"
    with tempfile.TemporaryDirectory() as scratch:
        args = transformers.TrainingArguments(
            output_dir=scratch, num_train_epochs=settings.epochs, learning_rate=settings.learning_rate,
            per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=64,
            weight_decay=settings.weight_decay, warmup_ratio=0.1, lr_scheduler_type="linear",
            eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch", save_total_limit=2,
            save_only_model=True, load_best_model_at_end=True, metric_for_best_model=best_metric,
            greater_is_better=best_metric != "loss", seed=settings.random_state, data_seed=settings.random_state,
            use_cpu=settings.device == "cpu", report_to=[], disable_tqdm=True, remove_unused_columns=False,
            dataloader_num_workers=0, group_by_length=True)  # batches of similar length: less padding
        trainer = _WeightedTrainer(
            model=model, args=args, train_dataset=datasets[0], eval_dataset=datasets[1], data_collator=collate,
            compute_metrics=_metrics(task, std), class_weights=class_weights,
            callbacks=[transformers.EarlyStoppingCallback(settings.patience), EpochProgress(report)])
        trainer.remove_callback(transformers.PrinterCallback)  # EpochProgress reports each epoch instead
        trainer.train()
    model = trainer.model.cpu().eval()
    validation = network_outputs(model, task, [token_ids[i] for i in val_idx])
    return model, epoch_history(trainer.state.log_history), len(train_idx), validation
