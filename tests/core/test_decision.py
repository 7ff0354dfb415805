"""The decision rule (core.training.decision): the prior correction chosen on validation probabilities, stored and
checked on load. On real data: the held-out probabilities of a RandomForest on the twins (Lean vs Obese, 1 in 5
lean), whose most probable class calls almost every sample obese."""
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold

from q2_mgm.core.models import ModelFormatError
from q2_mgm.core.training.decision import (PRIOR_EXPONENTS, argmax_rule, choose_decision_rule,
                                           load_decision_rule)

from ..helpers import read_genus_table, read_metadata


@pytest.fixture(scope="module")
def twins_held_out():
    """(probabilities of Lean and Obese, true class indices, training class shares) of 3 folds, grouped by
    subject: a majority-leaning classifier of real data."""
    table = read_genus_table("twins")
    table = table.div(table.sum(axis=1), axis=0)  # relative abundance
    metadata = read_metadata("twins").loc[table.index]
    keep = metadata["bmi_category"].isin(["Lean", "Obese"]).to_numpy()
    x, y = table.to_numpy()[keep], (metadata["bmi_category"].to_numpy()[keep] == "Obese").astype(int)
    subjects = metadata["subject"].astype(str).to_numpy()[keep]
    probabilities = np.zeros((len(y), 2))
    for train, test in StratifiedGroupKFold(3, shuffle=True, random_state=0).split(x, y, subjects):
        forest = RandomForestClassifier(200, random_state=0, n_jobs=1).fit(x[train], y[train])
        probabilities[test] = forest.predict_proba(x[test])
    return probabilities, y, np.bincount(y) / len(y)


def test_a_majority_leaning_classifier_calls_the_minority_again(twins_held_out):
    probabilities, truth, shares = twins_held_out
    validation, test = np.arange(0, len(truth), 2), np.arange(1, len(truth), 2)  # chosen on half, tested on half
    rule = choose_decision_rule(probabilities[validation], truth[validation], ["Lean", "Obese"], shares)
    argmax = probabilities[test].argmax(1)
    assert (argmax == 0).sum() < 0.25 * (truth[test] == 0).sum()  # the collapse: few lean twins called lean
    called = rule.classes(probabilities[test])
    assert balanced_accuracy_score(truth[test], called) > balanced_accuracy_score(truth[test], argmax) + 0.05
    assert rule.threshold > 0.5  # a sample is called obese only with more than even odds
    chosen, best = rule.validation["validation_balanced_accuracy"], rule.validation["validation_balanced_accuracy_best"]
    assert best - rule.validation["validation_standard_error"] - 1e-9 <= chosen <= best


def test_the_threshold_is_the_weights_two_class_argmax(twins_held_out):
    probabilities, truth, shares = twins_held_out
    rule = choose_decision_rule(probabilities, truth, ["Lean", "Obese"], shares)
    w = rule.weights
    assert rule.threshold == pytest.approx(w[0] / (w[0] + w[1]))
    strict = probabilities[:, 1] != rule.threshold
    assert (rule.classes(probabilities)[strict] == (probabilities * w).argmax(1)[strict]).all()
    assert rule.predict(probabilities[:3]).tolist() == [["Lean", "Obese"][k] for k in rule.classes(probabilities[:3])]


def test_ties_keep_the_full_prior_correction():
    """Perfectly separated validation probabilities: every alpha scores 1.0, and alpha 1 is kept."""
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    rule = choose_decision_rule(probabilities, np.array([0, 0, 1, 1]), ["a", "b"], np.array([0.5, 0.5]))
    assert rule.validation["prior_exponent"] == 1.0 and rule.threshold == pytest.approx(0.5)
    assert 1.0 in PRIOR_EXPONENTS and 0.0 in PRIOR_EXPONENTS


def test_a_gain_within_one_standard_error_keeps_the_full_prior_correction(twins_held_out):
    """The one-standard-error rule: an alpha that beats alpha 1 on the validation share by less than the standard
    error of balanced accuracy there is noise; the Bayes rule is kept."""
    probabilities, truth, shares = twins_held_out
    rule = choose_decision_rule(probabilities, truth, ["Lean", "Obese"], shares)
    record = rule.validation
    full = np.exp(-np.log(shares))  # alpha 1
    full_score = balanced_accuracy_score(truth, (probabilities * full).argmax(1))
    assert 0 < record["validation_standard_error"] < 0.1
    if record["validation_balanced_accuracy_best"] - full_score <= record["validation_standard_error"]:
        assert record["prior_exponent"] == 1.0
    else:  # alpha 1 is more than a standard error worse: the nearest alpha within one is kept, short of 1
        assert record["prior_exponent"] != 1.0
        assert record["validation_balanced_accuracy"] >= \
            record["validation_balanced_accuracy_best"] - record["validation_standard_error"] - 1e-9


def test_a_validation_share_without_a_class_keeps_the_most_probable_class():
    probabilities = np.array([[0.3, 0.3, 0.4], [0.6, 0.2, 0.2]])
    rule = choose_decision_rule(probabilities, np.array([2, 0]), ["a", "b", "c"], np.array([0.4, 0.3, 0.3]))
    assert (rule.weights == 1).all() and "lacks a class" in rule.summary()
    assert rule.predict(probabilities).tolist() == ["c", "a"]


def test_more_classes_get_one_weight_each():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], [60, 25, 15])
    logits = rng.normal(size=(100, 3)) + np.eye(3)[truth] * 1.5 + np.log([0.6, 0.25, 0.15])  # leans to class 0
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    shares = np.array([0.6, 0.25, 0.15])
    rule = choose_decision_rule(probabilities, truth, ["x", "y", "z"], shares)
    assert rule.threshold is None and rule.weights[2] > rule.weights[1] > rule.weights[0]
    assert np.exp(np.log(rule.weights).mean()) == pytest.approx(1)
    assert balanced_accuracy_score(truth, rule.classes(probabilities)) > \
        balanced_accuracy_score(truth, probabilities.argmax(1))


@pytest.mark.parametrize("labels", [["Lean", "Obese"], ["x", "y", "z"]])
def test_the_record_reloads_as_the_same_rule(twins_held_out, labels):
    probabilities, truth, shares = twins_held_out
    if len(labels) == 3:
        probabilities = np.column_stack([probabilities * 0.8, np.full(len(truth), 0.2)])
        truth, shares = np.where(np.arange(len(truth)) % 7 == 0, 2, truth), np.array([0.2, 0.65, 0.15])
    rule = choose_decision_rule(probabilities, truth, labels, shares)
    again = load_decision_rule(rule.record, labels)
    assert (again.classes(probabilities) == rule.classes(probabilities)).all()
    assert again.validation == rule.validation


@pytest.mark.parametrize("record, labels", [
    ({"rule": "threshold", "positive_class": "Obese", "threshold": 0.0}, ["Lean", "Obese"]),
    ({"rule": "threshold", "positive_class": "Lean", "threshold": 0.6}, ["Lean", "Obese"]),
    ({"rule": "threshold", "positive_class": "Obese", "threshold": "0.6"}, ["Lean", "Obese"]),
    ({"rule": "class weights", "class_weights": {"x": 1.0, "y": -1.0, "z": 1.0}}, ["x", "y", "z"]),
    ({"rule": "class weights", "class_weights": {"x": 1.0, "y": 1.0}}, ["x", "y", "z"]),
    ({"rule": "class weights", "class_weights": {"x": 1.0, "y": float("nan"), "z": 1.0}}, ["x", "y", "z"]),
    ({"rule": "vote"}, ["x", "y"]),
], ids=["threshold 0", "another class", "text", "negative weight", "a class without a weight", "nan", "unknown"])
def test_a_record_that_does_not_fit_is_refused(record, labels):
    with pytest.raises(ModelFormatError, match="decision rule .* Re-create the model"):
        load_decision_rule(record, labels)


def test_no_record_is_the_most_probable_class():
    assert (load_decision_rule(None, ["a", "b"]).weights == argmax_rule(["a", "b"]).weights).all()
