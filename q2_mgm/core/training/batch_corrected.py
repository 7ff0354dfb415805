"""fine-tune with batches: the across-study recipe (core.transfer.DEFAULT_RECIPE) on the frozen general model's
features, each batch standardised on its own samples, so that a new cohort is corrected on itself, labels unused,
when predict-* is given its batches. Validated leaving one batch out."""
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.stats
import transformers
from sklearn.metrics import mean_absolute_error, roc_auc_score

from ..cross_validation import make_folds, predict_fold
from ..inference import language_model_features
from ..metadata_checks import unvalidated_batches
from ..schemas import CV_PROBABILITY_PREFIX
from ..transfer import DEFAULT_RECIPE, SampleFeatures, make_recipe
from .decision import choose_decision_rule
from .settings import TrainingSettings
from .targets import encode_targets
from .trained import TrainedModel


def _leave_one_batch_out(data, targets, task, classes, settings, report):
    """({'validation_auc', or 'validation_mae' and 'validation_spearman' (the rank correlation of prediction and
    truth within a held-out batch; none for a batch whose values do not vary): mean over held-out batches, and one
    entry per batch; a NaN entry per batch that could not be validated}, samples validated, a classifier's decision
    rule chosen on the held-out batches' probabilities); nothing with one batch (the most probable class is then
    called). A batch is not validated where holding it out leaves a class without training samples
    (metadata_checks.unvalidated_batches): its samples are then only trained on. With more than two classes a
    batch's ROC AUC is one class against the rest, averaged over the classes. A held-out batch that lacks a class
    is predicted (the decision rule reads it) but has no ROC AUC: a NaN entry names it and the classes it lacks
    ('one class' with two)."""
    if len(np.unique(data.batches)) < 2:
        report("one batch only: no leave-one-batch-out validation")
        return {}, 0, None
    name = "validation_mae" if task == "regression" else "validation_auc"
    skipped = unvalidated_batches(data.batches, targets) if task == "classification" else []
    not_validated = {f"{name} ({batch} not validated)": float("nan") for batch in skipped}
    if skipped:
        report(f"leave-one-batch-out: not validated on {', '.join(skipped)}: holding it out leaves a class "
               "without training samples; its samples are trained on only")
    encoded, _, mean, std = encode_targets(targets, task)
    folds = [fold for fold in make_folds(encoded, data.batches, 0, "leave-one-group-out", task,
                                         settings.random_state) if fold.name not in skipped]
    if not folds:
        return not_validated, 0, None
    held_out = pd.concat([predict_fold(data, targets, encoded, task, classes, mean, std, fold, DEFAULT_RECIPE,
                                       settings.random_state) for fold in folds])
    # in input order, as a cross-validation returns its predictions
    validated = targets.index[targets.index.isin(held_out["sample_id"])]
    held_out = held_out.set_index("sample_id").loc[validated].reset_index()
    decision = None
    if task == "classification":
        truth = held_out["truth"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        decision = choose_decision_rule(held_out[[CV_PROBABILITY_PREFIX + c for c in classes]].to_numpy(), truth,
                                        classes, np.bincount(truth, minlength=len(classes)) / len(truth))
        report(decision.summary())
    scores, lacking, ranks = {}, {}, {}
    for batch, frame in held_out.groupby("fold"):
        if task == "regression":
            scores[batch] = mean_absolute_error(frame["truth"], frame["prediction"])
            # each batch is standardised on itself, so its predictions centre on the training targets' mean and the
            # MAE carries the batch's own offset; the rank correlation reads the order within it, as AUROC does
            if frame["truth"].nunique() > 1 and frame["prediction"].nunique() > 1:
                ranks[batch] = float(scipy.stats.spearmanr(frame["truth"], frame["prediction"])[0])
        elif frame["truth"].nunique() == len(classes) == 2:
            scores[batch] = roc_auc_score(frame["truth"] == classes[1], frame[CV_PROBABILITY_PREFIX + classes[1]])
        elif frame["truth"].nunique() == len(classes):  # one class against the rest, averaged over the classes
            scores[batch] = roc_auc_score(frame["truth"], frame[[CV_PROBABILITY_PREFIX + c for c in classes]],
                                          multi_class="ovr", labels=classes)
        else:  # held out and predicted (the decision rule reads it), but its ROC AUC needs every class
            lacking[batch] = [c for c in classes if c not in set(frame["truth"])]
    for batch, missing in lacking.items():
        reason = "one class" if len(classes) == 2 else f"lacks {', '.join(map(str, missing))}"
        report(f"leave-one-batch-out: batch {batch!r} held out but not scored ({reason}): its ROC AUC needs every "
               "class")
        not_validated[f"{name} ({batch} not scored: {reason})"] = float("nan")
    if not scores:
        return not_validated, len(held_out), decision
    metrics = {}
    for metric, values in ((name, scores), ("validation_spearman", ranks)):
        if values:
            report(f"leave-one-batch-out {metric}: " + ", ".join(f"{b} {s:.3f}" for b, s in values.items())
                   + f"; mean {np.mean(list(values.values())):.3f}")
            metrics.update({metric: float(np.mean(list(values.values()))),
                            **{f"{metric} ({batch} held out)": float(s) for batch, s in values.items()}})
    return {**metrics, **not_validated}, len(held_out), decision


def train_batch_corrected(model: transformers.GPT2ForSequenceClassification, token_ids: Sequence[np.ndarray],
                          targets: pd.Series, task: str, batches: np.ndarray, abundances: pd.DataFrame,
                          settings: TrainingSettings, report: Callable[[str], None] = print) -> TrainedModel:
    """The across-study recipe fit on every labelled sample: model (from sequence_model, its encoder frozen) gives
    the features; batches: (n_samples,) batch names, each standardised on its own samples; abundances: samples x
    genus tokens, rows in token_ids' order. The recipe is validated leaving one batch out where there are several,
    then fit on every sample; its arrays travel in the model (TrainedModel.transfer)."""
    encoded, labels, mean, std = encode_targets(targets, task)
    report(f"features of {len(token_ids)} samples from the frozen encoder, then {DEFAULT_RECIPE} with every batch "
           f"standardised on its own samples ({len(np.unique(batches))} batches)")
    embeddings, likelihood = language_model_features(model.eval(), token_ids, settings.device)
    data = SampleFeatures(embeddings, likelihood, abundances, np.asarray(batches))
    validation, n_validated, decision = _leave_one_batch_out(data, targets, task, labels, settings, report)
    recipe = make_recipe(DEFAULT_RECIPE, task, settings.random_state).fit(data, encoded)
    names, counts = np.unique(np.asarray(batches).astype(str), return_counts=True)
    recipe.record["training_batches"] = {str(n): int(c) for n, c in zip(names, counts)}
    history = pd.DataFrame({k: [v] for k, v in validation.items()} or {"samples": [len(token_ids)]},
                           index=pd.Index(["1"], name="epoch"))
    return TrainedModel(model.cpu(), task, labels, mean, std, history, len(token_ids), n_validated,
                        validation={"leave-one-batch-out": validation}, transfer=recipe, decision=decision)
