"""The decision rule: which class a sample is called, from its class probabilities.

Calling the most probable class (argmax) collapses to the majority class when the probabilities lean towards it:
a RandomForest blended into the predictions is fit without class weights, and a small cohort's head is unsure.
Where probabilities are calibrated, the call that maximises balanced accuracy (the mean of the per-class recalls)
is argmax(probability / prior), the training share of each class (the Bayes rule for the balanced error rate; see
Menon et al. 2013, ICML, "On the statistical consistency of algorithms for binary classification under class
imbalance"). Blended probabilities are not calibrated alike, so the strength of that prior correction is chosen
where the model is validated, on the held-out validation share (never on test samples):

    the called class = argmax(probability x prior ** -alpha), alpha in PRIOR_EXPONENTS

alpha 0 is argmax, 1 the full prior correction. alpha is chosen by balanced accuracy on the validation share with
the one-standard-error rule (Breiman et al. 1984, Classification and Regression Trees, 3.4.3): of the alphas whose
balanced accuracy there is within one standard error of the best, the one nearest 1. One number is chosen rather
than one weight per class, and noise-sized gains do not move it from the Bayes rule, so that a validation share of a
few dozen samples does not fit the rule to its own noise. (On RandomForest probabilities of the 18 disease cohorts,
5-fold, the median balanced accuracy of the classes called was 0.675 for argmax, 0.710 for the best alpha on
validation and 0.712 with this rule.) For two classes the rule is a threshold on the
second class's probability, and is stored as one; for more, as one weight per class. The rule is stored in the
model (training.json's `decision`) and applied by predict-classification; the probabilities themselves, and so ROC
AUC, are unchanged. scikit-learn has no estimator-free threshold search in the versions both QIIME 2 lanes carry
(TunedThresholdClassifierCV is 1.5+ and refits the estimator), hence this module."""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from ..models import ModelFormatError

PRIOR_EXPONENTS = np.round(np.linspace(-1, 3, 81), 2)  # alpha, in steps of 0.05
FULL_CORRECTION = 1.0  # alpha preferred among ties: the Bayes rule for balanced accuracy
FEW_VALIDATION_SAMPLES = 20  # below this, the progress report says the rule rests on few samples


@dataclasses.dataclass
class DecisionRule:
    """Hard predictions from class probabilities: argmax(probabilities x weights); for two classes, the same as a
    threshold on the second class's probability, threshold = w0 / (w0 + w1)."""
    labels: List[str]  # class names in probability-column order
    weights: np.ndarray  # (n_classes,) positive
    # how it was chosen: alpha (prior_exponent), the class shares of the model's training samples, the validation
    # samples, and balanced accuracy there of this rule, of argmax and of the best alpha with its standard error
    validation: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def threshold(self) -> Optional[float]:
        """For two classes, the probability of labels[1] at or above which a sample is called labels[1]."""
        return float(self.weights[0] / self.weights.sum()) if len(self.labels) == 2 else None

    def classes(self, probabilities: np.ndarray) -> np.ndarray:
        """(n,) class indices of (n, n_classes) probabilities."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if len(self.labels) == 2:
            return (probabilities[:, 1] >= self.threshold).astype(int)
        return (probabilities * self.weights).argmax(1)

    def predict(self, probabilities: np.ndarray) -> np.ndarray:
        """(n,) class names of (n, n_classes) probabilities."""
        return np.asarray(self.labels, dtype=object)[self.classes(probabilities)]

    def summary(self) -> str:
        """One line for progress reports: the rule and its validation balanced accuracy beside argmax's."""
        if "validation_balanced_accuracy" not in self.validation:
            return f"decision rule: the most probable class ({self.validation.get('note', 'no validation share')})"
        chosen = (f"threshold {self.threshold:.3f} on P({self.labels[1]})" if self.threshold is not None else
                  "class weights " + ", ".join(f"{c} {w:.2f}" for c, w in zip(self.labels, self.weights)))
        v = self.validation
        few = (f"; chosen on only {v['validation_samples']} validation samples: a larger validation_fraction "
               "gives a steadier rule" if v["validation_samples"] < FEW_VALIDATION_SAMPLES else "")
        return (f"decision rule: {chosen} (prior correction alpha {v['prior_exponent']:g}); validation balanced "
                f"accuracy {v['validation_balanced_accuracy']:.3f} (most probable class: "
                f"{v['validation_balanced_accuracy_argmax']:.3f}; best alpha {v['validation_best_prior_exponent']:g}: "
                f"{v['validation_balanced_accuracy_best']:.3f} +/- {v['validation_standard_error']:.3f}){few}")

    @property
    def record(self) -> Dict[str, Any]:
        """training.json's `decision`."""
        rule = ({"rule": "threshold", "positive_class": self.labels[1], "threshold": self.threshold}
                if len(self.labels) == 2 else
                {"rule": "class weights", "class_weights": dict(zip(self.labels, map(float, self.weights)))})
        return {**rule, "chosen_on": "the validation share: balanced accuracy, one-standard-error rule",
                **self.validation}


def argmax_rule(labels: Sequence[str]) -> DecisionRule:
    """The most probable class: what a model without a chosen rule (one made by an older q2-mgm) calls."""
    return DecisionRule(list(labels), np.ones(len(labels)))


def choose_decision_rule(probabilities: np.ndarray, truth: np.ndarray, labels: Sequence[str],
                         priors: np.ndarray, model_priors: Optional[np.ndarray] = None) -> DecisionRule:
    """The rule argmax(probability x prior ** -alpha), alpha chosen by balanced accuracy of (n_validation,
    n_classes) probabilities against (n_validation,) true class indices with the one-standard-error rule (the
    module's docstring). priors: (n_classes,) each class's share of the samples the validated model was fit on;
    model_priors: the shares of the samples the model that predicts is fit on (it is refit on every labelled sample
    after validation), from which the stored weights are made; priors where not given. Where the validation share
    lacks a class, balanced accuracy is not defined for alpha to be chosen by, and the most probable class is
    called."""
    probabilities, truth = np.asarray(probabilities, dtype=np.float64), np.asarray(truth)
    priors = np.asarray(priors, dtype=np.float64)
    model_priors = priors if model_priors is None else np.asarray(model_priors, dtype=np.float64)
    rule = argmax_rule(labels)
    if len(truth) == 0 or len(np.unique(truth)) < len(labels):
        rule.validation = {"note": "the validation share lacks a class: the most probable class is called"}
        return rule

    def called(alpha):
        return (probabilities * priors ** -alpha).argmax(1)

    scores = np.array([balanced_accuracy_score(truth, called(alpha)) for alpha in PRIOR_EXPONENTS])
    best = PRIOR_EXPONENTS[scores >= scores.max() - 1e-12]
    best = float(best[np.argmin(np.abs(best - FULL_CORRECTION))])
    error = _standard_error(truth, called(best), len(labels))
    near = PRIOR_EXPONENTS[scores >= scores.max() - error - 1e-12]
    alpha = float(near[np.argmin(np.abs(near - FULL_CORRECTION))])
    weights = model_priors ** -alpha
    rule.weights = weights / np.exp(np.log(weights).mean())  # geometric mean 1
    rule.validation = {
        "prior_exponent": alpha, "class_shares": dict(zip(labels, map(float, model_priors))),
        "validation_samples": int(len(truth)),
        "validation_balanced_accuracy": float(balanced_accuracy_score(truth, called(alpha))),
        "validation_balanced_accuracy_argmax": float(balanced_accuracy_score(truth, probabilities.argmax(1))),
        "validation_best_prior_exponent": best,
        "validation_balanced_accuracy_best": float(scores.max()), "validation_standard_error": float(error)}
    return rule


def _standard_error(truth, called, n_classes):
    """Standard error of balanced accuracy, the mean of n_classes per-class recalls, each a binomial proportion:
    sqrt(sum over classes of r (1 - r) / n) / n_classes."""
    variances = [np.mean(called[truth == c] == c) * (1 - np.mean(called[truth == c] == c)) / np.sum(truth == c)
                 for c in range(n_classes)]
    return float(np.sqrt(np.sum(variances)) / n_classes)


def load_decision_rule(record: Optional[Dict[str, Any]], labels: Sequence[str]) -> DecisionRule:
    """training.json's `decision` checked against the model's classes; argmax where the model has none (an older
    q2-mgm's). ModelFormatError names what does not fit."""
    if not record:
        return argmax_rule(labels)
    rule = record.get("rule")
    validation = {k: v for k, v in record.items() if k not in ("rule", "positive_class", "threshold",
                                                                 "class_weights", "chosen_on")}
    if rule == "threshold" and len(labels) == 2 and record.get("positive_class") == labels[1]:
        t = record.get("threshold")
        if isinstance(t, (int, float)) and 0 < t < 1:
            return DecisionRule(list(labels), np.array([t, 1 - t]) / max(t, 1 - t), validation)
    if rule == "class weights" and isinstance(record.get("class_weights"), dict):
        weights = record["class_weights"]
        if sorted(weights) == sorted(labels):
            values = np.array([weights[c] for c in labels], dtype=np.float64)
            if np.isfinite(values).all() and (values > 0).all():
                return DecisionRule(list(labels), values, validation)
    raise ModelFormatError(f"training.json's decision rule ({record!r}) does not fit the model's classes "
                           f"({', '.join(labels)}): a threshold in (0, 1) on the second class, or one positive "
                           "weight per class. Re-create the model with q2-mgm: run the action that made it (fine-tune, "
                           "train, classify-samples or regress-samples) again.")
