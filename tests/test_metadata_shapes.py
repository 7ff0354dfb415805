"""Degenerate metadata, drawn (Hypothesis), through every action that reads metadata, on a tiny model: each shape
of issue 19 (a target that never varies, one group, a class held by one group, groups that each hold one class left
out one by one, batches that each hold one class, a batch too small to standardise within, classes short of
keystone-report's min_samples) must end in the plugin's
own error, naming the column and an offending value, before the model runs (no call of GPT2Model.forward).
The actions: cross-validate-classification and -regression, classify-samples-cv, regress-samples-cv,
classify-samples, fine-tune, train, split-corpus, predict-classification with batches, keystone-report and
trajectory, each under the shapes it can meet. Then keystone-genera, pretrain-generator, generate and
evaluate-generated, for which some shapes are legitimate: each run either gives the correct output (one label makes
a generator of one label; keystone-genera explains the samples of the classes a classifier knows and lists the rest)
or ends in the plugin's own error naming the column and a value, before the model runs. Then every error of these
checks that advises a fix, with the fix applied (tests/test_fix_advice.py lists them)."""
import contextlib
import functools

import numpy as np
import pandas as pd
import pytest
import qiime2
from hypothesis import HealthCheck, given, settings, strategies as st

from .helpers import corpus_of

EXAMPLES = settings(max_examples=2, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
NAMES = st.sampled_from(["CD", "healthy control", "Case", "x1", "Obese"])


@contextlib.contextmanager
def forward_calls():
    """Counts calls of the real GPT2Model.forward (every MGM network, LM or classifier, runs through it)."""
    import transformers
    calls, original = [], transformers.GPT2Model.forward

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)
    transformers.GPT2Model.forward = counted
    try:
        yield calls
    finally:
        transformers.GPT2Model.forward = original


# --- one strategy per shape: (metadata frame over the samples, the column and value an error must name) ---

def _split(n, k):
    """k labels over n samples, at least 3 each, in blocks."""
    return np.repeat(np.arange(k), np.diff(np.linspace(0, n, k + 1).astype(int)))


@st.composite
def constant_target(draw):
    n = draw(st.integers(12, 20))
    label, age = draw(NAMES), draw(st.sampled_from([0.0, 30.0, 12.5]))
    frame = pd.DataFrame({"status": label, "age": age, "site": [f"site {i % 3}" for i in range(n)]},
                         index=[f"s{i:02d}" for i in range(n)])
    return frame, {"classification": ("status", label), "regression": ("age", f"{age:g}")}


def _two_classes(draw, n):
    a, b = draw(st.lists(NAMES, min_size=2, max_size=2, unique=True))
    return np.where(_split(n, 2) == 0, a, b), (a, b)


@st.composite
def one_group(draw):
    n = draw(st.integers(12, 20))
    status, _ = _two_classes(draw, n)
    group = draw(st.sampled_from(["S1", "study 7", "42"]))
    frame = pd.DataFrame({"status": status, "age": np.arange(n, dtype=float), "site": group},
                         index=[f"s{i:02d}" for i in range(n)])
    return frame, {"classification": ("site", group), "regression": ("site", group)}


@st.composite
def class_in_one_group(draw):
    n = draw(st.integers(12, 20))
    status, (a, b) = _two_classes(draw, n)
    lone = draw(st.sampled_from(["S1", "study 7"]))
    site = np.where(status == a, lone, [f"other {i % 2}" for i in range(n)])
    frame = pd.DataFrame({"status": status, "age": np.arange(n, dtype=float), "site": site},
                         index=[f"s{i:02d}" for i in range(n)])
    return frame, {"classification": ("site", lone)}


@st.composite
def groups_of_one_class(draw):
    n = draw(st.integers(12, 20))
    status, (a, b) = _two_classes(draw, n)
    site = np.where(status == a, [f"site {1 + i % 2}" for i in range(n)], [f"site {3 + i % 2}" for i in range(n)])
    frame = pd.DataFrame({"status": status, "age": np.arange(n, dtype=float), "site": site},
                         index=[f"s{i:02d}" for i in range(n)])
    return frame, {"classification": ("site", "site 1")}


@st.composite
def batches_of_one_class(draw):
    n = draw(st.integers(12, 20))
    status, (a, b) = _two_classes(draw, n)
    run = np.where(status == a, "run A", "run B")
    frame = pd.DataFrame({"status": status, "age": np.arange(n, dtype=float), "run": run},
                         index=[f"s{i:02d}" for i in range(n)])
    return frame, {"classification": ("run", "run A")}


@st.composite
def small_batch(draw):
    n = draw(st.integers(12, 20))
    status, _ = _two_classes(draw, n)
    small = draw(st.integers(1, 2))
    run = np.array([f"run {i % 2}" for i in range(n)], dtype=object)
    run[:small] = "tiny run"
    frame = pd.DataFrame({"status": status, "age": np.arange(n, dtype=float), "run": run},
                         index=[f"s{i:02d}" for i in range(n)])
    return frame, {"classification": ("run", "tiny run"), "regression": ("run", "tiny run")}


@st.composite
def classes_short_of_min_samples(draw):
    n = draw(st.integers(8, 16))
    status, (a, _) = _two_classes(draw, n)
    frame = pd.DataFrame({"status": status}, index=[f"s{i:02d}" for i in range(n)])
    return frame, {"classification": ("status", a)}


def _column(frame, name):
    return qiime2.Metadata(frame.rename_axis("id")).get_column(name)


# --- each action that reads metadata, given a shape's columns: (task, the call) ---

def _cv(task, parameters=(), **columns):
    def call(mgm, corpus, model, frame):
        action = getattr(mgm.actions, f"cross_validate_{task}")
        return action(corpus=corpus, model=model, metadata=_column(frame, "status" if task == "classification"
                                                                   else "age"),
                      **{p: _column(frame, c) for p, c in columns.items()}, n_estimators=5, device="cpu",
                      **dict(parameters))
    return task, call


def _fit(name, task, **columns):
    def call(mgm, corpus, model, frame):
        extra = {"model": model} if name == "fine_tune" else {}
        return getattr(mgm.actions, name)(corpus=corpus, metadata=_column(frame, "status" if task ==
                                                                         "classification" else "age"),
                                          task=task, **{p: _column(frame, c) for p, c in columns.items()},
                                          **extra, epochs=1, device="cpu")
    return task, call


def _split_corpus(**columns):
    def call(mgm, corpus, model, frame):
        target = "age" if "groups" not in columns else "status"
        return mgm.actions.split_corpus(corpus=corpus, metadata=_column(frame, target),
                                        **{p: _column(frame, c) for p, c in columns.items()})
    return call


def _predict_with_batches(mgm, corpus, model, frame):
    return mgm.actions.predict_classification(corpus=corpus, model=model, batches=_column(frame, "run"))


def _keystone_report(mgm, corpus, model, frame):
    n_largest = int(frame["status"].value_counts().max())
    return mgm.actions.keystone_report(corpus=corpus, model=model, metadata=_column(frame, "status"),
                                       min_samples=n_largest + 1, n_bootstrap=10, device="cpu")


def _trajectory(mgm, corpus, model, frame, embeddings):
    return mgm.actions.trajectory(embeddings=embeddings, time=_column(frame, "age"), group=_column(frame, "site"))


def _table(mgm, corpus, model):
    from q2_mgm.core.tokenizer import Corpus
    from tests.helpers import frequency_table
    return frequency_table(corpus.view(Corpus).abundance_table())


def _pipeline(name, task, parameters=(), **columns):
    def call(mgm, corpus, model, frame, table):
        return getattr(mgm.actions, name)(table=table, metadata=_column(frame, "status" if task == "classification"
                                                                        else "age"),
                                          **{p: _column(frame, c) for p, c in columns.items()}, **dict(parameters))
    return task, call, _table


def _embeddings(mgm, corpus, model):
    return mgm.actions.embed(corpus=corpus, model=model).embeddings


CALLS = {
    "constant target": (constant_target(), {
        "trajectory": ("regression", _trajectory, _embeddings),
        "cross-validate-classification": _cv("classification"), "cross-validate-regression": _cv("regression"),
        "fine-tune classification": _fit("fine_tune", "classification"),
        "fine-tune regression": _fit("fine_tune", "regression"), "train": _fit("train", "classification"),
        "split-corpus": ("regression", _split_corpus()),
        "regress-samples-cv": _pipeline("regress_samples_cv", "regression"),
        "classify-samples": _pipeline("classify_samples", "classification")}),
    "one group": (one_group(), {
        "cross-validate-classification": _cv("classification", groups="site"),
        "cross-validate-regression": _cv("regression", groups="site"),
        "fine-tune": _fit("fine_tune", "classification", groups="site"),
        "train": _fit("train", "regression", groups="site"),
        "split-corpus": ("classification", _split_corpus(groups="site")),
        "classify-samples-cv": _pipeline("classify_samples_cv", "classification", groups="site")}),
    "class in one group": (class_in_one_group(), {
        "cross-validate-classification": _cv("classification", groups="site"),
        "fine-tune": _fit("fine_tune", "classification", groups="site"),
        "train": _fit("train", "classification", groups="site")}),
    "groups of one class each, left out one by one": (groups_of_one_class(), {
        "cross-validate-classification": _cv("classification", {"cv_strategy": "leave-one-group-out"},
                                             groups="site"),
        "classify-samples-cv": _pipeline("classify_samples_cv", "classification",
                                         {"cv_strategy": "leave-one-group-out"}, groups="site")}),
    "batches of one class": (batches_of_one_class(), {
        "cross-validate-classification": _cv("classification", batches="run"),
        "fine-tune": _fit("fine_tune", "classification", batches="run")}),
    "small batch": (small_batch(), {
        "cross-validate-classification": _cv("classification", batches="run"),
        "cross-validate-regression": _cv("regression", batches="run"),
        "fine-tune": _fit("fine_tune", "classification", batches="run"),
        "predict-classification": ("classification", _predict_with_batches)}),
    "classes short of min_samples": (classes_short_of_min_samples(), {
        "keystone-report": ("classification", _keystone_report)}),
}
PAIRS = [(shape, action) for shape, (_, actions) in CALLS.items() for action in actions]


@pytest.fixture(scope="module")
def batch_model(mgm_plugin, tiny_model, genera):
    """A batch-corrected classifier on the tiny model (fit before any counting)."""
    ids = [f"t{i:02d}" for i in range(12)]
    frame = pd.DataFrame({"status": np.where(np.arange(12) % 2, "a", "b"),
                          "run": [f"run {i // 6}" for i in range(12)]}, index=ids)
    model, _ = mgm_plugin.actions.fine_tune(corpus=corpus_of(genera, ids, 0), model=tiny_model,
                                            metadata=_column(frame, "status"), task="classification",
                                            batches=_column(frame, "run"), device="cpu")
    return model


@pytest.mark.one_torch_thread
@pytest.mark.parametrize("shape, action", PAIRS, ids=[f"{s}: {a}" for s, a in PAIRS])
def test_each_degenerate_shape_stops_each_action_before_the_model_runs(shape, action, mgm_plugin, tiny_model,
                                                                       batch_model, genera):
    strategy, actions = CALLS[shape]
    task, call, *prepare = actions[action]  # prepare: inputs made with the model before the count starts
    model = batch_model if action == "predict-classification" else tiny_model

    @EXAMPLES
    @given(strategy)
    def check(drawn):
        frame, offending = drawn
        column, value = offending[task]
        corpus = corpus_of(genera, list(frame.index), len(frame))
        inputs = [make(mgm_plugin, corpus, model) for make in prepare]
        with forward_calls() as calls, pytest.raises(ValueError) as error:
            call(mgm_plugin, corpus, model, frame, *inputs)
        assert type(error.value).__module__.startswith("q2_mgm."), repr(error.value)
        message = str(error.value)
        assert repr(column) in message and str(value) in message, (column, value, message)
        assert calls == [], f"the model ran {len(calls)} time(s) before: {message}"
    check()


@pytest.mark.one_torch_thread
def test_k_fold_groups_that_leave_a_class_untrained_stop_before_the_model_and_the_fixes_run(
        mgm_plugin, tiny_model, genera):
    """Four sites, each of one class: k-fold with cv=2 drew a fold holding out both sites of class 'b' (the error
    came after the encoder's pass). It now comes before, and the fix it names for such sites, no groups, runs the
    model and predicts every sample (which also shows that the counter above sees the model run); leave-one-group-out,
    which it names only for groups that each hold several classes, is refused on these sites (the next test)."""
    fix = {"groups": None}
    from q2_mgm.core.transfer import TransferError
    ids = [f"s{i:02d}" for i in range(16)]
    frame = pd.DataFrame({"status": np.where(np.arange(16) % 2, "a", "b"),
                          "site": [f"site {i % 4}" for i in range(16)]}, index=ids)
    corpus = corpus_of(genera, ids, 1)
    parameters = dict(corpus=corpus, model=tiny_model, metadata=_column(frame, "status"),
                      groups=_column(frame, "site"), cv=2, n_estimators=5, device="cpu")
    with forward_calls() as calls, pytest.raises(TransferError) as error:
        mgm_plugin.actions.cross_validate_classification(**parameters)
    assert calls == []
    for words in ("Holding out fold 1 leaves no training sample of class 'b'", "leave the groups column 'site' out",
                  "where its groups each hold several classes, use cv_strategy 'leave-one-group-out'"):
        assert words in str(error.value), (words, str(error.value))
    with forward_calls() as calls:
        predictions, probabilities, _ = mgm_plugin.actions.cross_validate_classification(**{**parameters, **fix})
    assert calls and sorted(predictions.view(pd.Series).index) == ids
    assert np.allclose(probabilities.view(pd.DataFrame).sum(axis=1), 1)


@pytest.mark.one_torch_thread
def test_k_fold_over_groups_of_one_class_each_runs_and_the_evaluation_says_what_it_may_measure(
        mgm_plugin, tiny_model, genera, tmp_path):
    """Eight sites, each of one class, two folds that mix them: no error (subjects are groups of one class each,
    rightly), but the evaluation warns that of studies or sites the figures may measure the groups."""
    ids = [f"s{i:02d}" for i in range(16)]
    frame = pd.DataFrame({"status": np.where(np.arange(16) % 2, "a", "b"),
                          "site": [f"site {i % 8}" for i in range(16)]}, index=ids)
    *_, result = mgm_plugin.actions.cross_validate_classification(
        corpus=corpus_of(genera, ids, 6), model=tiny_model, metadata=_column(frame, "status"),
        groups=_column(frame, "site"), cv=2, n_estimators=5, device="cpu")
    page, = mgm_plugin.actions.evaluate_cross_validation(cross_validation=result)
    page.export_data(str(tmp_path / "page"))
    text = " ".join((tmp_path / "page" / "index.html").read_text().split())
    assert "Every group of 'site' holds one class of 'status'." in text
    assert "give a groups column whose groups each hold both classes" in text


# --- every error of the metadata checks that advises a fix, with the fix applied: the action then runs ---

def _frame(n=16, classes=("a", "b"), sites=4):
    ids = [f"s{i:02d}" for i in range(n)]
    return pd.DataFrame({"status": [classes[i % len(classes)] for i in range(n)],
                         "site": [f"site {i // (n // sites)}" for i in range(n)],
                         "run": [f"run {i // (n // 2)}" for i in range(n)]}, index=ids)


def _cv_call(frame, **parameters):
    def call(mgm, corpus, model):
        columns = {p: _column(frame, c) for p, c in parameters.pop("columns", {}).items()}
        return mgm.actions.cross_validate_classification(corpus=corpus, model=model, metadata=_column(frame, "status"),
                                                         **columns, n_estimators=5, device="cpu", **parameters)
    return call


def _with(frame, **changes):
    return frame.assign(**changes)


FIXES = {  # the error's advice (words of its message), the call that raises it, and the call with the advice applied
    "one class: a column with two classes": (
        "Give a column with at least two classes", _cv_call(_with(_frame(), status="a")), _cv_call(_frame())),
    "a small batch: filter its samples out": (
        "filter-samples --p-where \"[run]!='tiny'\"",
        _cv_call(_with(_frame(), run=["tiny"] + [f"run {i % 3}" for i in range(15)]), columns={"batches": "run"}),
        _cv_call(_with(_frame(), run=["tiny"] + [f"run {i % 3}" for i in range(15)]).iloc[1:],
                 columns={"batches": "run"})),
    "batches of one class: leave batches out": (
        "Leave batches out", _cv_call(_with(_frame(), run=_frame().status), columns={"batches": "run"}),
        _cv_call(_with(_frame(), run=_frame().status))),
    "leave-one-group-out without groups: give one": (
        "give one, or use cv_strategy 'k-fold'", _cv_call(_frame(), cv_strategy="leave-one-group-out"),
        _cv_call(_frame(), cv_strategy="leave-one-group-out", columns={"groups": "site"})),
    "k-fold with fewer groups than cv: lower cv": (
        "lower cv to 4", _cv_call(_frame(), cv=5, columns={"groups": "site"}),
        _cv_call(_frame(), cv=4, columns={"groups": "site"})),
    "groups of one class each, leave-one-group-out: no groups, k-fold": (
        "leave groups out and use cv_strategy 'k-fold'",
        _cv_call(_with(_frame(), site=[f"site {i % 4}" for i in range(16)]), cv_strategy="leave-one-group-out",
                 columns={"groups": "site"}),
        _cv_call(_frame(), cv_strategy="k-fold")),
    "groups of one class each, k-fold: leave the groups out": (
        "Leave the groups column 'site' out",
        _cv_call(_with(_frame(), site=[f"site {i % 4}" for i in range(16)]), cv=4, columns={"groups": "site"}),
        _cv_call(_with(_frame(), site=[f"site {i % 4}" for i in range(16)]), cv=4)),
    "a class with fewer samples than cv: lower cv": (
        "lower cv to 3 (--p-cv 3)", _cv_call(_with(_frame(), status=["c"] * 3 + ["a", "b"] * 6 + ["a"]), cv=5),
        _cv_call(_with(_frame(), status=["c"] * 3 + ["a", "b"] * 6 + ["a"]), cv=3)),
}


@pytest.mark.one_torch_thread
@pytest.mark.parametrize("case", list(FIXES))
def test_the_advised_fix_runs(case, mgm_plugin, tiny_model, genera):
    advice, bad, fixed = FIXES[case]
    corpus = corpus_of(genera, [f"s{i:02d}" for i in range(16)], 2)
    with pytest.raises(ValueError) as error:
        bad(mgm_plugin, corpus, tiny_model)
    assert advice in str(error.value), (advice, str(error.value))
    if case.startswith("a small batch"):  # the filter, applied to the table's samples too
        from tests.helpers import subset_corpus
        corpus = subset_corpus(corpus, [f"s{i:02d}" for i in range(1, 16)])
    predictions = fixed(mgm_plugin, corpus, tiny_model)[0].view(pd.Series)
    assert len(predictions) == len(corpus.view(pd.DataFrame))


@pytest.mark.one_torch_thread
def test_a_class_too_rare_for_the_split_filtered_out_as_advised_fine_tunes(mgm_plugin, tiny_model, genera):
    from tests.helpers import subset_corpus
    from q2_mgm.core.training import TrainingError
    frame = _with(_frame(), status=["rare"] + ["a", "b"] * 7 + ["a"])
    corpus = corpus_of(genera, list(frame.index), 3)
    with pytest.raises(TrainingError, match=r"filter-samples --p-where \"\[status\]!='rare'\""):
        mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model, metadata=_column(frame, "status"),
                                     task="classification", epochs=1, device="cpu")
    kept = frame.index[frame.status != "rare"]
    model, _ = mgm_plugin.actions.fine_tune(corpus=subset_corpus(corpus, kept), model=tiny_model,
                                            metadata=_column(frame.loc[kept], "status"), task="classification",
                                            epochs=1, device="cpu")
    assert str(model.type) == "MGMModel[Classifier]"


@pytest.mark.one_torch_thread
def test_a_small_new_batch_predicted_without_batches_as_advised(mgm_plugin, batch_model, genera):
    from q2_mgm.core.training import TrainingError
    frame = pd.DataFrame({"run": ["new"] + ["old"] * 5}, index=[f"n{i}" for i in range(6)])
    corpus = corpus_of(genera, list(frame.index), 4)
    with pytest.raises(TrainingError, match=r"or leave batches out \(all 6 samples are then one cohort\)"):
        mgm_plugin.actions.predict_classification(corpus=corpus, model=batch_model, batches=_column(frame, "run"))
    probabilities = mgm_plugin.actions.predict_classification(corpus=corpus, model=batch_model).probabilities
    assert len(probabilities.view(pd.DataFrame)) == 6


@pytest.mark.one_torch_thread
def test_study_ids_written_as_numbers_are_taken_as_ids(mgm_plugin, tiny_model, genera, tmp_path):
    """QIIME 2 reads a study column of 1, 2, 3, 4 as Numeric: groups and batches take it, named as written."""
    import json
    frame = _frame()
    frame["study"] = [float(i // 4 + 1) for i in range(16)]
    metadata = qiime2.Metadata(frame.rename_axis("id"))
    assert isinstance(metadata.get_column("study"), qiime2.NumericMetadataColumn)
    corpus = corpus_of(genera, list(frame.index), 5)
    _, _, result = mgm_plugin.actions.cross_validate_classification(
        corpus=corpus, model=tiny_model, metadata=metadata.get_column("status"), groups=metadata.get_column("study"),
        batches=metadata.get_column("study"), cv_strategy="leave-one-group-out", n_estimators=5, device="cpu")
    from q2_mgm._formats import MGMSupervisedModelDirFmt
    from q2_mgm.core.cross_validation_store import CrossValidation
    assert sorted(set(result.view(CrossValidation).predictions.fold)) == ["1", "2", "3", "4"]
    model, _ = mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model, metadata=metadata.get_column("status"),
                                            task="classification", batches=metadata.get_column("study"), device="cpu")
    record = json.loads((model.view(MGMSupervisedModelDirFmt).path / "training.json").read_text())
    assert set(record["transfer"]["training_batches"]) == {"1", "2", "3", "4"}
    # subjects too: keystone-report's subject units and trajectory's subject paths are named as written
    report, = mgm_plugin.actions.keystone_report(corpus=corpus, model=tiny_model, metadata=metadata.get_column(
        "status"), subjects=metadata.get_column("study"), min_samples=1, n_bootstrap=10, device="cpu")
    report.export_data(str(tmp_path / "keystone"))
    units = pd.read_csv(tmp_path / "keystone" / "subject_scores.tsv", sep="\t", index_col=0).index
    assert {unit.split(" ")[0] for unit in units} == {"1", "2", "3", "4"}
    embeddings = mgm_plugin.actions.embed(corpus=corpus, model=tiny_model).embeddings
    frame["day"] = np.arange(16.0) % 4
    metadata = qiime2.Metadata(frame.rename_axis("id"))
    paths, = mgm_plugin.actions.trajectory(embeddings=embeddings, time=metadata.get_column("day"),
                                           group=metadata.get_column("status"), subject=metadata.get_column("study"))
    paths.export_data(str(tmp_path / "trajectory"))
    placed = pd.read_csv(tmp_path / "trajectory" / "samples.tsv", sep="\t", index_col=0)
    assert set(placed.subject.astype(str)) == {"1", "2", "3", "4"}


# --- keystone-genera, pretrain-generator, generate and evaluate-generated under each shape that applies: a shape
# is an error for some (none of the classes known to the classifier, a batch too small for the batch-fit model, a
# label with fewer real samples than the realism tests need), and legitimate for others (one label makes a
# generator of one label; keystone-genera scores whatever classes it is given, and with method 'gradient'
# explains the samples of a class the classifier knows and lists the rest), whose output is then checked ---

KNOWN = ("CD", "Case")  # the classes of the named classifier below, two of NAMES


@pytest.fixture(scope="module")
def named_classifier(mgm_plugin, tiny_model, genera):
    """A classifier on the tiny model whose classes are KNOWN (fit before any counting)."""
    ids = [f"k{i:02d}" for i in range(12)]
    frame = pd.DataFrame({"status": [KNOWN[i % 2] for i in range(12)]}, index=ids)
    model, _ = mgm_plugin.actions.fine_tune(corpus=corpus_of(genera, ids, 7), model=tiny_model,
                                            metadata=_column(frame, "status"), task="classification", epochs=1,
                                            device="cpu")
    return model


def _refused(call, column, value):
    """The plugin's own error, naming the column and the value, before the model runs."""
    with forward_calls() as calls, pytest.raises(ValueError) as error:
        call()
    assert type(error.value).__module__.startswith("q2_mgm."), repr(error.value)
    message = str(error.value)
    assert repr(column) in message and str(value) in message, (column, value, message)
    assert calls == [], f"the model ran {len(calls)} time(s) before: {message}"


def _classes(frame):
    return sorted(frame["status"].unique())


def _importance(importance, columns):
    table = importance.view(pd.DataFrame)
    assert list(table.columns) == columns and table.index.str.startswith("g__").all()
    assert np.isfinite(table.to_numpy()).all()


def _keystone_attention(mgm, models, frame, corpus, capsys):
    """A pretrained model and a column: every class is scored, one column each (one class: one column)."""
    importance, = mgm.actions.keystone_genera(corpus=corpus, model=models["tiny"], metadata=_column(frame, "status"),
                                              device="cpu")
    _importance(importance, _classes(frame))


def _keystone_gradient(mgm, models, frame, corpus, capsys):
    """A classifier and method 'gradient': the samples of the classes it knows are explained, the rest listed; no
    class it knows is the plugin's error, naming the column and a class."""
    known = [c for c in _classes(frame) if c in KNOWN]
    call = functools.partial(mgm.actions.keystone_genera, corpus=corpus, model=models["classifier"],
                             metadata=_column(frame, "status"), method="gradient", min_samples=1, device="cpu")
    if not known:
        return _refused(call, "status", _classes(frame)[0])
    capsys.readouterr()
    importance, = call()
    _importance(importance, known)
    unknown = frame.status[~frame.status.isin(KNOWN)]
    if len(unknown):
        assert (f"left out {len(unknown)} of {len(frame)} samples whose class the model does not know "
                f"({', '.join(sorted(set(unknown)))})") in capsys.readouterr().out


def _keystone_batches(mgm, models, frame, corpus, capsys):
    """A classifier fit with batches, explained with a batch too small to standardise within."""
    _refused(lambda: mgm.actions.keystone_genera(corpus=corpus, model=models["batch"], batches=_column(frame, "run"),
                                                 method="gradient", min_samples=1, device="cpu"),
             "run", "tiny run")


def _generator(mgm, models, frame, corpus):
    generator, _ = mgm.actions.pretrain_generator(corpora=[corpus], metadata=_column(frame, "status"),
                                                  model=models["tiny"], epochs=1, device="cpu")
    return generator


def _pretrain_generator(mgm, models, frame, corpus, capsys):
    """Every label of the column, one included, becomes a label the generator knows, as written."""
    from q2_mgm._formats import MGMGeneratorDirFmt
    from q2_mgm.actions.generative import label_texts
    generator = _generator(mgm, models, frame, corpus)
    assert sorted(label_texts(generator.view(MGMGeneratorDirFmt).path).values()) == _classes(frame)


def _generate(mgm, models, frame, corpus, capsys):
    """The generator of the shape's labels prompts each label as written, n_per_label samples each."""
    generator = _generator(mgm, models, frame, corpus)
    table, _, labels = mgm.actions.generate(model=generator, labels=_classes(frame), n_per_label=3, max_length=16,
                                            device="cpu")
    prompted = labels.view(pd.Series)
    assert sorted(prompted.unique()) == _classes(frame) and (prompted.value_counts() == 3).all()
    assert len(table.view(pd.DataFrame)) == 3 * len(_classes(frame))


def _evaluate_generated(mgm, models, frame, corpus, capsys):
    """The shape's labels as the real labels: a label with fewer than 5 real (or synthetic) samples is the plugin's
    error naming the column and the label; otherwise the page is made."""
    from q2_mgm.core.realism import MIN_SAMPLES
    from tests.helpers import frequency_table
    generator = _generator(mgm, models, frame, corpus)
    table, _, labels = mgm.actions.generate(model=generator, labels=_classes(frame), n_per_label=8, max_length=16,
                                            device="cpu")
    synthetic = table.view(pd.DataFrame)
    synthetic = synthetic[synthetic.sum(axis=1) > 0]  # a sentence with no genus holds no abundance
    prompted = labels.view(qiime2.Metadata).to_dataframe().loc[synthetic.index].rename_axis("id")
    real_table = frequency_table(_table(mgm, corpus, None).view(pd.DataFrame))
    call = functools.partial(mgm.actions.evaluate_generated, real_table=real_table,
                             synthetic_table=qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]",
                                                                         synthetic),
                             real_labels=_column(frame, "status"),
                             synthetic_labels=qiime2.Metadata(prompted).get_column("label"), n_estimators=5)
    for column, counts in (("status", frame.status.value_counts()), ("label", prompted.label.value_counts())):
        small = counts[counts < MIN_SAMPLES].sort_index()
        if len(small):
            return _refused(call, column, small.index[0])
    visualization, = call()
    assert str(visualization.type) == "Visualization"


OUTCOMES = {
    "constant target": (constant_target(), {
        "keystone-genera": _keystone_attention, "keystone-genera gradient": _keystone_gradient,
        "pretrain-generator": _pretrain_generator, "generate": _generate,
        "evaluate-generated": _evaluate_generated}),
    "small batch": (small_batch(), {"keystone-genera with batches": _keystone_batches}),
    "classes short of min_samples": (classes_short_of_min_samples(), {
        "keystone-genera": _keystone_attention, "keystone-genera gradient": _keystone_gradient,
        "pretrain-generator": _pretrain_generator, "generate": _generate,
        "evaluate-generated": _evaluate_generated}),
}
OUTCOME_PAIRS = [(shape, action) for shape, (_, actions) in OUTCOMES.items() for action in actions]


@pytest.mark.one_torch_thread
@pytest.mark.parametrize("shape, action", OUTCOME_PAIRS, ids=[f"{s}: {a}" for s, a in OUTCOME_PAIRS])
def test_each_shape_through_keystone_and_the_generative_actions(shape, action, mgm_plugin, tiny_model, batch_model,
                                                                named_classifier, genera, capsys):
    strategy, actions = OUTCOMES[shape]
    models = {"tiny": tiny_model, "batch": batch_model, "classifier": named_classifier}

    @EXAMPLES
    @given(strategy)
    def check(drawn):
        frame, _ = drawn
        actions[action](mgm_plugin, models, frame, corpus_of(genera, list(frame.index), len(frame)), capsys)
    check()
