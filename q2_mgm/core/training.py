"""Supervised MGM: fine-tune a pretrained model (or train one from random weights) to classify or regress samples.
Upstream's recipe: GPT2ForSequenceClassification, a linear head on the final hidden state at the last non-pad token,
trained with the transformers Trainer. With the whole encoder frozen the head is fit exactly instead (L2 logistic
regression or ridge), and a RandomForest on the corpus's genus abundances can be blended into the predictions."""
import copy
import dataclasses
import json
import pathlib
import tempfile

import numpy as np
import pandas as pd
import torch
import transformers
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, r2_score, roc_auc_score
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedGroupKFold, StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .forest import Forest, fit_forest, load_forest, save_forest
from .inference import length_batches, padded_batch, sample_embeddings
from .models import ModelFormatError, build_model, load_model, save_model
from .vocab import PAD_ID

TASKS = ("classification", "regression")
# L2 strength of the exactly fit head on standardised last-token features, from a probe on the accuracy
# benchmark's folds: 0.003 and 0.03 moved the blend's median AUC by less than 0.004
HEAD_C = 0.01
RIDGE_ALPHAS = np.logspace(-2, 5, 15)


class TrainingError(ValueError):
    """Labels or settings that cannot train a model; the message names the problem and the fix."""


@dataclasses.dataclass
class TrainingSettings:
    epochs: int = 20
    learning_rate: float = 1e-4
    batch_size: int = 32
    validation_fraction: float = 0.2
    patience: int = 5
    class_weighting: bool = True
    freeze_layers: int = 0
    weight_decay: float = 0.01
    random_state: int = 0
    device: str = "cpu"
    forest_weight: float = 0.0  # share of the RandomForest on genus abundances in the predictions; 0: MGM alone
    forest_trees: int = 500


@dataclasses.dataclass
class TrainedModel:
    model: transformers.GPT2ForSequenceClassification
    task: str
    labels: list  # class names in logit order; empty for regression
    target_mean: float
    target_std: float
    history: pd.DataFrame
    n_training: int
    n_validation: int
    forest: Forest = None
    forest_weight: float = 0.0
    forest_genera: list = dataclasses.field(default_factory=list)  # the forest's feature columns, genus tokens
    validation: dict = dataclasses.field(default_factory=dict)  # validation metrics: network, forest, blend

    def training_record(self):
        return {"task": self.task, "labels": self.labels, "target_mean": self.target_mean,
                "target_std": self.target_std, "n_training_samples": self.n_training,
                "n_validation_samples": self.n_validation, "validation": self.validation,
                "forest": None if self.forest is None else {"weight": self.forest_weight,
                                                             "genera": self.forest_genera}}


def sequence_model(task, n_labels, backbone=None, config=None, random_state=0):
    """A GPT2ForSequenceClassification on the backbone's weights, or randomly initialised from config."""
    config = copy.deepcopy(backbone.config if backbone is not None else config)
    config.architectures = ["GPT2ForSequenceClassification"]
    config.num_labels = n_labels if task == "classification" else 1
    config.problem_type = "single_label_classification" if task == "classification" else "regression"
    config.pad_token_id = PAD_ID
    if task == "classification":
        config.id2label = {i: str(i) for i in range(n_labels)}
        config.label2id = {str(i): i for i in range(n_labels)}
    transformers.set_seed(random_state)
    model = build_model(config)
    if backbone is not None:
        model.transformer.load_state_dict(backbone.transformer.state_dict())
    return model


def freeze(model, n_layers):
    """Freeze the embeddings and the first n_layers blocks (all of them, and ln_f, freezes the encoder; a larger
    n_layers freezes all of it, so the default 8 suits a smaller pretrained model too)."""
    encoder = model.transformer
    n_layers = min(n_layers, encoder.config.n_layer)
    frozen = [encoder.wte, encoder.wpe, *encoder.h[:n_layers]] if n_layers else []
    if n_layers == encoder.config.n_layer:
        frozen.append(encoder.ln_f)
    for module in frozen:
        module.requires_grad_(False)


def encode_targets(values: pd.Series, task):
    """Integer classes (sorted class names) or standardised floats; clear errors for unusable labels."""
    if task == "classification":
        counts = values.astype(str).value_counts()
        if len(counts) < 2:
            raise TrainingError(f"The label column has a single class ({counts.index[0]!r}); a classifier needs "
                                "at least two. Check the metadata column or filter.")
        rare = counts[counts < 2]
        if len(rare):
            raise TrainingError(f"Class {rare.index[0]!r} has a single sample; every class needs at least two "
                                "(one to train on, one to validate). Merge or drop rare classes first.")
        labels = sorted(counts.index)
        return values.astype(str).map({c: i for i, c in enumerate(labels)}).to_numpy(), labels, 0.0, 1.0
    numbers = values.astype(float).to_numpy()
    mean, std = float(numbers.mean()), float(numbers.std()) or 1.0
    return (numbers - mean) / std, [], mean, std


def _split_groups_by_their_class(targets, groups, fraction, random_state):
    """Where every group holds one class (a child's delivery mode), hold out a stratified share of the groups:
    StratifiedGroupKFold balances samples, not groups, and on ECAM left one caesarean child of nine in validation.
    None where a group mixes classes or a class has fewer than two groups."""
    names, first, inverse = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    group_classes = np.asarray(targets)[first]
    classes, groups_per_class = np.unique(group_classes, return_counts=True)  # labels may be strings (split-corpus)
    if not (np.asarray(targets) == group_classes[inverse]).all() or groups_per_class.min() < 2:
        return None
    n_validation = min(max(round(fraction * len(names)), len(classes)), len(names) - len(classes))
    _, held_out = next(StratifiedShuffleSplit(1, test_size=n_validation, random_state=random_state)
                       .split(names, group_classes))
    validation = np.isin(inverse, held_out)
    return np.flatnonzero(~validation), np.flatnonzero(validation)


def validation_split(targets, groups, fraction, task, random_state):
    """Train/validation indices; with groups, no group is on both sides; classification is stratified."""
    index = np.arange(len(targets))
    if groups is not None:
        if task == "classification":
            by_group = _split_groups_by_their_class(targets, groups, fraction, random_state)
            if by_group is not None:
                return by_group
            splitter = StratifiedGroupKFold(n_splits=max(2, round(1 / fraction)), shuffle=True,
                                            random_state=random_state)
            return next(splitter.split(index, targets, groups))
        return next(GroupShuffleSplit(1, test_size=fraction, random_state=random_state).split(index, groups=groups))
    if task == "classification":
        return next(StratifiedShuffleSplit(1, test_size=fraction, random_state=random_state).split(index, targets))
    return next(ShuffleSplit(1, test_size=fraction, random_state=random_state).split(index))


class _SentenceDataset(torch.utils.data.Dataset):
    def __init__(self, token_ids, targets):
        self.token_ids, self.targets = token_ids, targets

    def __len__(self):
        return len(self.token_ids)

    def __getitem__(self, i):
        return {"input_ids": self.token_ids[i], "labels": self.targets[i]}


def _collate(items):
    input_ids, mask = padded_batch([item["input_ids"] for item in items])
    labels = torch.tensor(np.array([item["labels"] for item in items]))
    return {"input_ids": input_ids, "attention_mask": mask,
            "labels": labels.float() if labels.is_floating_point() else labels.long()}


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


def _scores(task, outputs, truth, target_std):
    """Validation metrics of class probabilities (n x classes) or standardised predictions (n,)."""
    if task == "regression":
        return {"mae": mean_absolute_error(truth, outputs) * target_std, "r2": r2_score(truth, outputs)}
    accuracy = float((outputs.argmax(1) == truth).mean())
    if len(np.unique(truth)) < outputs.shape[1]:  # AUC needs every class among the validation samples
        return {"accuracy": accuracy}
    auc = (roc_auc_score(truth, outputs[:, 1]) if outputs.shape[1] == 2 else
           roc_auc_score(truth, outputs, multi_class="ovr", labels=np.arange(outputs.shape[1])))
    return {"auc": auc, "accuracy": accuracy}


def _metrics(task, target_std):
    def compute(prediction):
        logits, truth = prediction.predictions, prediction.label_ids
        outputs = logits.ravel() if task == "regression" else torch.softmax(torch.from_numpy(logits), -1).numpy()
        return _scores(task, outputs, truth, target_std)
    return compute


class EpochProgress(transformers.TrainerCallback):
    def __init__(self, report):
        self.report = report

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        train = [e["loss"] for e in state.log_history if "loss" in e]
        shown = ", ".join(f"{k[5:]} {v:.4f}" for k, v in (metrics or {}).items()
                          if k.startswith("eval_") and not k.endswith(("runtime", "per_second", "epoch")))
        self.report(f"epoch {state.epoch:.0f}/{args.num_train_epochs:.0f}: train loss "
                    f"{train[-1] if train else float('nan'):.4f}, validation {shown}")


def epoch_history(log_history):
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


def _encoder_frozen(model, settings):
    return settings.freeze_layers >= model.config.n_layer


def train_sequence_model(model, token_ids, targets: pd.Series, task, settings: TrainingSettings, groups=None,
                         report=print, abundances: pd.DataFrame = None) -> TrainedModel:
    """Train `model` (from sequence_model) on sentences and their labels. With the encoder frozen, fit its
    linear head exactly; otherwise train with the Trainer, stopping when validation stops improving and keeping the
    best epoch's weights. With settings.forest_weight > 0, also fit a RandomForest on `abundances` (samples x genus
    tokens, rows in token_ids' order) and blend it into the predictions."""
    encoded, labels, mean, std = encode_targets(targets, task)
    train_idx, val_idx = validation_split(encoded, None if groups is None else np.asarray(groups),
                                          settings.validation_fraction, task, settings.random_state)
    if task == "classification" and len(np.unique(encoded[train_idx])) < len(labels):
        raise TrainingError("The validation split left a class without training samples; lower "
                            "validation_fraction or add samples of the rare class.")
    if settings.forest_weight > 0 and abundances is None:
        raise TrainingError("forest_weight needs the genus abundances of the corpus, and this corpus holds none "
                            "(it was generated, or made by an older q2-mgm). Tokenize the table again, or set "
                            "forest_weight to 0.")
    freeze(model, settings.freeze_layers)
    fit = _fit_frozen_head if _encoder_frozen(model, settings) else _fit_with_trainer
    model, history, n_training, network_validation = fit(model, token_ids, encoded, train_idx, val_idx, task,
                                                         labels, std, settings, report)
    trained = TrainedModel(model, task, labels, mean, std, history, n_training, len(val_idx),
                           validation={"network": _scores(task, network_validation, encoded[val_idx], std)})
    if settings.forest_weight > 0:
        _add_forest(trained, abundances, encoded, train_idx, val_idx, network_validation, settings, report)
    return trained


def _fit_with_trainer(model, token_ids, encoded, train_idx, val_idx, task, labels, std, settings, report):
    class_weights = None
    if task == "classification" and settings.class_weighting:
        counts = np.bincount(encoded[train_idx], minlength=len(labels))
        class_weights = torch.tensor(len(train_idx) / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32)
    dtype = np.float32 if task == "regression" else np.int64
    datasets = [_SentenceDataset([token_ids[i] for i in idx], encoded[idx].astype(dtype))
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
            model=model, args=args, train_dataset=datasets[0], eval_dataset=datasets[1], data_collator=_collate,
            compute_metrics=_metrics(task, std), class_weights=class_weights,
            callbacks=[transformers.EarlyStoppingCallback(settings.patience), EpochProgress(report)])
        trainer.remove_callback(transformers.PrinterCallback)  # EpochProgress reports each epoch instead
        trainer.train()
    model = trainer.model.cpu().eval()
    validation = _network_outputs(model, task, [token_ids[i] for i in val_idx])
    return model, epoch_history(trainer.state.log_history), len(train_idx), validation


def _linear_head(task, settings):
    if task == "regression":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
    return make_pipeline(StandardScaler(), LogisticRegression(
        C=HEAD_C, max_iter=5000, class_weight="balanced" if settings.class_weighting else None))


def _head_outputs(head, task, features):
    return head.predict(features) if task == "regression" else head.predict_proba(features)


def _fit_frozen_head(model, token_ids, encoded, train_idx, val_idx, task, labels, std, settings, report):
    """The frozen encoder's features never change, so the head is a convex fit on them: compute them once and fit
    it exactly, validate, then refit on every labelled sample. No epochs: one forward pass per sample."""
    report(f"encoder frozen: features of {len(token_ids)} samples, then an exactly fit linear head "
           f"(validated on {len(val_idx)} held-out samples, then refit on all {len(token_ids)})")
    model.eval()  # no dropout: the features are the ones the head will read at prediction
    features = sample_embeddings(model, token_ids, "last", settings.device)  # the token the head reads
    head = _linear_head(task, settings).fit(features[train_idx], encoded[train_idx])
    train_out, validation = (_head_outputs(head, task, features[idx]) for idx in (train_idx, val_idx))
    loss = (mean_squared_error if task == "regression" else
            lambda truth, p: log_loss(truth, p, labels=np.arange(len(labels))))
    history = pd.DataFrame({"train_loss": [loss(encoded[train_idx], train_out)],
                            "validation_loss": [loss(encoded[val_idx], validation)],
                            **{f"validation_{k}": [v] for k, v in _scores(task, validation, encoded[val_idx],
                                                                            std).items()}},
                           index=pd.Index(["1"], name="epoch"))
    report("head: " + ", ".join(f"{k} {v:.4f}" for k, v in history.iloc[0].items()))
    _set_linear_head(model, _linear_head(task, settings).fit(features, encoded), task)
    return model.cpu(), history, len(token_ids), validation


def _set_linear_head(model, head, task):
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


def _forest_matrix(abundances: pd.DataFrame, genera):
    return abundances.reindex(columns=genera, fill_value=0.0).to_numpy(dtype=np.float64)


def _add_forest(trained, abundances, encoded, train_idx, val_idx, network_validation, settings, report):
    """Validate the forest and the blend on the held-out samples, then refit the forest on every sample."""
    task, weight = trained.task, settings.forest_weight
    genera = list(abundances.columns[(abundances.to_numpy() > 0).any(axis=0)])
    matrix = _forest_matrix(abundances, genera)
    report(f"RandomForest of {settings.forest_trees} trees on {len(genera)} genera, {weight:g} of the blend")
    held_out = fit_forest(matrix[train_idx], encoded[train_idx], task, settings.forest_trees,
                          settings.random_state).predict(matrix[val_idx])
    blend = (1 - weight) * network_validation + weight * held_out
    truth, std = encoded[val_idx], trained.target_std
    trained.validation.update(forest=_scores(task, held_out, truth, std), blend=_scores(task, blend, truth, std))
    report("validation: " + "; ".join(f"{part} " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
                                      for part, scores in trained.validation.items()))
    trained.forest = fit_forest(matrix, encoded, task, settings.forest_trees, settings.random_state)
    trained.forest_weight, trained.forest_genera = float(weight), genera
    trained.n_training = len(encoded)


def _network_outputs(model, task, token_ids, device="cpu"):
    """Class probabilities (n x classes) or standardised predictions (n,) of the network alone."""
    model = model.to(device).eval()
    lengths = np.array([len(ids) for ids in token_ids])
    outputs = np.empty((len(token_ids), model.config.num_labels), dtype=np.float64)
    with torch.inference_mode():
        for batch in length_batches(lengths):
            input_ids, mask = padded_batch([token_ids[i] for i in batch], device)
            logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits.double()
            outputs[batch] = (torch.softmax(logits, -1) if task == "classification" else logits).cpu().numpy()
    return outputs[:, 0] if task == "regression" else outputs


def predict(trained_model, token_ids, device="cpu", abundances: pd.DataFrame = None):
    """Class probabilities (n x classes) or de-standardised predictions (n,); a model with a forest blends in its
    predictions from `abundances` (samples x genus tokens, rows in token_ids' order)."""
    outputs = _network_outputs(trained_model.model, trained_model.task, token_ids, device)
    if trained_model.forest is not None:
        if abundances is None:
            raise TrainingError("This model blends in a RandomForest on genus abundances, and the corpus holds "
                                "none (it was generated, or made by an older q2-mgm). Tokenize the table again.")
        forest = trained_model.forest.predict(_forest_matrix(abundances, trained_model.forest_genera))
        outputs = (1 - trained_model.forest_weight) * outputs + trained_model.forest_weight * forest
    if trained_model.task == "regression":
        return outputs * trained_model.target_std + trained_model.target_mean
    return outputs


def save_trained_model(trained: TrainedModel, vocabulary, directory, settings: TrainingSettings = None,
                       **provenance):
    directory = pathlib.Path(directory)
    save_model(trained.model, vocabulary, directory, **provenance)
    record = {**trained.training_record(),
              "settings": dataclasses.asdict(settings) if settings else None,
              "history": trained.history.reset_index().to_dict(orient="list")}
    (directory / "training.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    if trained.forest is not None:
        save_forest(trained.forest, directory)


def load_trained_model(directory):
    directory = pathlib.Path(directory)
    model, vocabulary, versions = load_model(directory)
    record = json.loads((directory / "training.json").read_text())
    history = pd.DataFrame(record.get("history") or {"epoch": []}).set_index("epoch")
    trained = TrainedModel(model, record["task"], record["labels"], record["target_mean"], record["target_std"],
                           history, record["n_training_samples"], record.get("n_validation_samples", 0),
                           validation=record.get("validation") or {})
    if record.get("forest"):
        trained.forest, trained.forest_weight, trained.forest_genera = load_blended_forest(directory, record)
    return trained, vocabulary, versions


def load_blended_forest(directory, record):
    """(forest, weight, genera) of a model whose training.json `record` names a forest, checked against each
    other; ForestFormatError or ModelFormatError where they do not fit."""
    forest = load_forest(directory)
    genera, weight = record["forest"].get("genera", []), record["forest"].get("weight", -1)
    if len(genera) != forest.n_features:
        raise ModelFormatError(f"training.json names {len(genera)} forest genera but the forest reads "
                               f"{forest.n_features}; re-create the model with q2-mgm.")
    if not 0 < weight <= 1:
        raise ModelFormatError("training.json's forest weight must be in (0, 1]; re-create the model with q2-mgm.")
    return forest, weight, genera
