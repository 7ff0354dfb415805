"""Fine-tuning, the forests and the supervised actions (issue 19 item 3): every error of theirs that advises a fix,
provoked the way a user meets it, then with the advised fix applied and the action (or the import) succeeding.
tests/advice/forest_training.py lists each message with its test. Real data (the twins) on the tiny model: the
encoder's one layer frozen, its head fit exactly and a small RandomForest blended in, in seconds."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import qiime2
from qiime2.plugin import ValidationError

from q2_mgm.core.tokenizer import Corpus
from q2_mgm.core.training import TrainingError

from .core.test_forest import first_inner, first_leaf, replaced, set_at, tamper
from .helpers import edit_json, frequency_table, subset_corpus

RECIPE = {"freeze_layers": 1, "forest_trees": 10}  # the tiny model's one layer frozen: its head is fit exactly


@pytest.fixture(scope="module")
def bmi(twins_metadata):
    return twins_metadata.get_column("bmi_category")


@pytest.fixture(scope="module")
def visit(twins_metadata):
    """The twins' time point as batches ('visit 1', 'visit 2'): two cohorts of the same people."""
    timepoint = twins_metadata.to_dataframe()["timepoint"]
    return qiime2.CategoricalMetadataColumn(("visit " + timepoint.astype(int).astype(str)).rename("visit"))


@pytest.fixture(scope="module")
def fit(mgm_plugin, twins_corpus_artifact, bmi, tiny_model, visit):
    """fit(kind): the twins classifier of that kind, fine-tuned anew at each call: 'forest' (the default recipe, a
    RandomForest blended in) or 'batches' (the across-study recipe, fit with batches)."""
    def fine_tune(kind):
        extra = {"batches": visit} if kind == "batches" else {}
        return mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, metadata=bmi, task="classification",
                                            model=tiny_model, **RECIPE, **extra).trained_model
    return fine_tune


@pytest.fixture(scope="module")
def forest_model(fit):
    return fit("forest")


@pytest.fixture(scope="module")
def batch_model(fit):
    return fit("batches")


@pytest.fixture(scope="module")
def ranks_only(twins_corpus_artifact):
    """The twins corpus as a generated corpus (or an older q2-mgm's) holds it: sentences, no genus abundances."""
    return qiime2.Artifact.import_data("SampleData[MGMCorpus]", dataclasses.replace(
        twins_corpus_artifact.view(Corpus), abundances=None))


def _probabilities(predicted):
    return predicted.probabilities.view(pd.DataFrame).to_numpy()


# --- the supervised actions ---

def test_regressing_a_categorical_column_is_refused_and_classifying_it_as_advised_fine_tunes(
        mgm_plugin, twins_corpus_artifact, bmi, tiny_model):
    with pytest.raises(TrainingError, match="task is 'regression' but 'bmi_category' is categorical; .*use task "
                                            "'classification'"):
        mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, metadata=bmi, task="regression",
                                     model=tiny_model, **RECIPE)
    model, _ = mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, metadata=bmi, task="classification",
                                            model=tiny_model, **RECIPE)
    assert str(model.type) == "MGMModel[Classifier]"


def test_batches_on_a_corpus_without_abundances_are_refused_and_the_table_tokenized_again_fits_and_predicts(
        mgm_plugin, ranks_only, twins_table_artifact, bmi, visit, tiny_model, batch_model):
    advice = "reads the corpus's genus abundances, and this corpus holds none .* Tokenize the table again"
    with pytest.raises(TrainingError, match=advice):
        mgm_plugin.actions.fine_tune(corpus=ranks_only, metadata=bmi, task="classification", model=tiny_model,
                                     batches=visit, **RECIPE)
    with pytest.raises(TrainingError, match=advice):
        mgm_plugin.actions.predict_classification(corpus=ranks_only, model=batch_model, batches=visit)
    corpus = mgm_plugin.actions.tokenize(table=twins_table_artifact).corpus
    model, _ = mgm_plugin.actions.fine_tune(corpus=corpus, metadata=bmi, task="classification", model=tiny_model,
                                            batches=visit, **RECIPE)
    for fitted in (model, batch_model):
        probabilities = _probabilities(mgm_plugin.actions.predict_classification(corpus=corpus, model=fitted,
                                                                                 batches=visit))
        assert probabilities.shape == (278, 2) and np.allclose(probabilities.sum(1), 1)


def test_a_forest_model_refuses_a_corpus_without_abundances_and_predicts_the_table_tokenized_again(
        mgm_plugin, ranks_only, twins_table_artifact, forest_model):
    with pytest.raises(TrainingError, match="blends in a RandomForest on genus abundances, and the corpus holds "
                                            "none .* Tokenize the table again"):
        mgm_plugin.actions.predict_classification(corpus=ranks_only, model=forest_model)
    corpus = mgm_plugin.actions.tokenize(table=twins_table_artifact).corpus
    probabilities = _probabilities(mgm_plugin.actions.predict_classification(corpus=corpus, model=forest_model))
    assert probabilities.shape == (278, 2) and np.allclose(probabilities.sum(1), 1)


def test_batches_for_a_model_fit_without_them_are_refused_and_left_out_as_advised_it_predicts(
        mgm_plugin, twins_corpus_artifact, forest_model, visit):
    with pytest.raises(TrainingError, match="This model was not fit with batches, so it corrects none: leave "
                                            "batches out"):
        mgm_plugin.actions.predict_classification(corpus=twins_corpus_artifact, model=forest_model, batches=visit)
    predicted = mgm_plugin.actions.predict_classification(corpus=twins_corpus_artifact, model=forest_model)
    assert set(predicted.predictions.view(pd.Series)) <= {"Lean", "Obese"}


def test_samples_without_a_batch_are_refused_and_filtered_out_as_advised_they_are_predicted(
        mgm_plugin, twins_corpus_artifact, batch_model, visit):
    batches = visit.to_series()
    unknown = batches.index[:3]
    partial = qiime2.CategoricalMetadataColumn(batches.where(~batches.index.isin(unknown)))
    with pytest.raises(TrainingError, match=rf"3 sample\(s\) have no batch in 'visit' \("
                                            rf"{unknown[0]}.*leave those samples out: qiime feature-table "
                                            "filter-samples"):
        mgm_plugin.actions.predict_classification(corpus=twins_corpus_artifact, model=batch_model, batches=partial)
    kept = [s for s in twins_corpus_artifact.view(Corpus).samples.index if s not in set(unknown)]
    predicted = mgm_plugin.actions.predict_classification(corpus=subset_corpus(twins_corpus_artifact, kept),
                                                          model=batch_model, batches=partial)
    assert predicted.predictions.view(pd.Series).index.tolist() == kept


def test_a_class_of_one_sample_is_refused_by_cross_validation_and_filtered_out_of_the_table_as_advised_runs(
        mgm_plugin, twins_counts, twins_metadata, tiny_model):
    """k-fold cross-validation reads the labels before any check of class sizes: a class of one sample is refused
    where the labels become targets; the sample filtered out of the table, tokenized again, cross-validates."""
    frame = twins_metadata.to_dataframe()
    frame.loc["TS1.2", "bmi_category"] = "Overwt"
    status = qiime2.Metadata(frame).get_column("bmi_category")
    common = dict(metadata=status, model=tiny_model, cv=3, n_estimators=10, mgm_markers=False)
    corpus = mgm_plugin.actions.tokenize(table=frequency_table(twins_counts)).corpus
    with pytest.raises(TrainingError, match="Class 'Overwt' has a single sample; .*Filter that sample out of the "
                                            "table .* and tokenize it again"):
        mgm_plugin.actions.cross_validate_classification(corpus=corpus, **common)
    filtered = mgm_plugin.actions.tokenize(table=frequency_table(twins_counts.drop(index="TS1.2"))).corpus
    predictions = mgm_plugin.actions.cross_validate_classification(corpus=filtered, **common).predictions
    assert len(predictions.view(pd.Series)) == 253 and "TS1.2" not in predictions.view(pd.Series).index


# three classes over 27 twins samples in 4 sites that mix them: at validation_fraction 0.5 (two group folds)
# every site of class 1 falls on the validation side; at 0.05 (20 folds) sklearn's split cannot run at all
SPLIT_CLASSES = "022122012200200012202200101"
SPLIT_GROUPS = "032221230200203010300303231"


def test_a_validation_split_that_leaves_a_class_untrained_is_refused_and_a_lower_fraction_fine_tunes(
        mgm_plugin, twins_corpus_artifact, tiny_model):
    ids = twins_corpus_artifact.view(Corpus).samples.index[:27]
    index = pd.Index(ids, name="id")
    status = qiime2.CategoricalMetadataColumn(pd.Series([f"class {c}" for c in SPLIT_CLASSES], index=index,
                                                        name="status"))
    site = qiime2.CategoricalMetadataColumn(pd.Series([f"site {g}" for g in SPLIT_GROUPS], index=index,
                                                      name="site"))
    corpus = subset_corpus(twins_corpus_artifact, ids)
    common = dict(corpus=corpus, metadata=status, groups=site, task="classification", model=tiny_model, **RECIPE)
    with pytest.raises(TrainingError, match=r"The validation split left class 'class \d' without training samples "
                                            r"\(validation_fraction 0.5 .*lower validation_fraction to 0.25,"):
        mgm_plugin.actions.fine_tune(validation_fraction=0.5, **common)
    model, _ = mgm_plugin.actions.fine_tune(validation_fraction=0.25, **common)
    predicted = mgm_plugin.actions.predict_classification(corpus=corpus, model=model)
    assert predicted.probabilities.view(pd.DataFrame).columns.tolist() == ["class 0", "class 1", "class 2"]


def test_a_baseline_table_of_the_test_samples_alone_is_refused_and_the_whole_table_evaluates(
        mgm_plugin, twins_corpus_artifact, twins_counts, twins_table_artifact, forest_model, bmi):
    labelled = bmi.drop_missing_values().to_series().index
    test_ids = [s for s in twins_corpus_artifact.view(Corpus).samples.index if s in set(labelled)][:40]
    predicted = mgm_plugin.actions.predict_classification(corpus=subset_corpus(twins_corpus_artifact, test_ids),
                                                          model=forest_model)
    common = dict(probabilities=predicted.probabilities, predictions=predicted.predictions, truth=bmi,
                  n_estimators=10)
    with pytest.raises(ValueError, match="The RandomForest baseline needs labelled training samples in the table "
                                         "besides the test samples, and finds 0; pass as table the whole table"):
        mgm_plugin.actions.evaluate_classification(table=frequency_table(twins_counts.loc[test_ids]), **common)
    evaluation, = mgm_plugin.actions.evaluate_classification(table=twins_table_artifact, **common)
    assert str(evaluation.type) == "Visualization"


# --- a damaged supervised model (hand-edited or broken files): refused on import, naming the file, the problem and
# the action to run again; the model re-created by that action imports and predicts ---

def _training(change):
    return edit_json("training.json", change)


def _remove(name):
    return lambda directory: (directory / name).unlink()


def _truncate(name):
    def truncate(directory):
        data = (directory / name).read_bytes()
        (directory / name).write_bytes(data[:len(data) - 100])  # the header kept, the numbers cut short
    return truncate


def _meta(change):
    return tamper(meta=change)


def _arrays(name, new):
    return tamper(arrays=replaced(name, new))


DAMAGES = {  # name: (the model, the damage, the words of the refusal)
    "forest.json missing": ("forest", _remove("forest.json"), "forest.json is missing from"),
    "forest.json of another version": ("forest", _meta(lambda m: {**m, "format_version": 2}),
                                       "forest.json is not a q2-mgm-forest version 1 description"),
    "forest.json's task unknown": ("forest", _meta(lambda m: {**m, "task": "ranking"}), "names task 'ranking'"),
    "forest.json's classes repeat": ("forest", _meta(lambda m: {**m, "classes": ["Lean", "Lean"]}),
                                     "classes are not a list of distinct labels"),
    "forest.json lists no classes": ("forest", _meta(lambda m: {**m, "classes": []}),
                                     "lists 0 classes for a classification forest"),
    "forest.json's n_features a string": ("forest", _meta(lambda m: {**m, "n_features": "4"}),
                                          "n_features is '4', not an integer >= 1"),
    "forest.safetensors missing": ("forest", _remove("forest.safetensors"), "forest.safetensors is missing from"),
    "forest.safetensors lacks an array": ("forest", tamper(arrays=lambda s: {k: v for k, v in s.items()
                                                                             if k != "value"}),
                                          r"lacks arrays \['value'\] or has unknown arrays \[\]"),
    "forest.safetensors truncated": ("forest", _truncate("forest.safetensors"),
                                     "forest.safetensors is not a valid safetensors file"),
    "an array of another dtype": ("forest", _arrays("feature", lambda old, s: old.astype(np.int64)),
                                  "array feature is int64 with shape"),
    "node arrays of different lengths": ("forest", _arrays("threshold", lambda old, s: old[:-1].copy()),
                                         "the node arrays have disagreeing or zero lengths"),
    "value one column short": ("forest", _arrays("value", lambda old, s: old[:, :1].copy()),
                               "array value has 1 columns, but the classification forest needs 2"),
    "value not a fraction": ("forest", _arrays("value", set_at(lambda s: (0, 0), 3.0)),
                             r"class fractions outside \[0, 1\]"),
    "feature index too large": ("forest", _arrays("feature", set_at(lambda s: 0, 10 ** 6)),
                                r"array feature holds indices outside -1 \(leaf\)"),
    "threshold NaN": ("forest", _arrays("threshold", set_at(lambda s: 0, np.nan)),
                      "array threshold holds NaN or infinite values"),
    "roots not one per tree": ("forest", _meta(lambda m: {**m, "n_trees": 11}),
                               "array roots must be 11 increasing node indices from 0"),
    "a leaf with a feature": ("forest", _arrays("feature", set_at(first_leaf, 0)),
                              "some nodes have a feature but no children"),
    "a child out of range": ("forest", _arrays("left", set_at(lambda s: 0, lambda s: len(s["feature"]))),
                             "arrays left/right hold child indices outside 0"),
    "a child pointing back to the root": ("forest", _arrays("left", set_at(first_inner, 0)),
                                          "a child that does not come after its parent"),
    "a child of two parents": ("forest", _arrays("right", set_at(lambda s: 0, lambda s: s["left"][0])),
                               "do not form separate trees"),
    "max_depth too small": ("forest", _meta(lambda m: {**m, "max_depth": m["max_depth"] - 1}),
                            "but the deepest tree has depth"),
    "a forest genus dropped": ("forest", _training(lambda r: r["forest"].update(genera=r["forest"]["genera"][:-1])),
                               "training.json names .* forest genera but the forest reads"),
    "forest weight above 1": ("forest", _training(lambda r: r["forest"].update(weight=1.5)),
                              r"training.json's forest weight must be in \(0, 1\]"),
    "a class more than outputs": ("forest", _training(lambda r: r["labels"].append("Overwt")),
                                  "training.json lists 3 classes but the model has 2 outputs"),
    "training.json lacks labels": ("forest", _training(lambda r: r.pop("labels")), "training.json lacks 'labels'"),
    "threshold out of range": ("forest", _training(lambda r: r["decision"].update(threshold=1.5)),
                               r"training.json's decision rule .* does not fit the model's classes \(Lean, Obese\)"),
    "transfer.safetensors missing": ("batches", _remove("transfer.safetensors"),
                                     "transfer.safetensors does not hold the recipe training.json names"),
}


@pytest.fixture(scope="module")
def re_created(mgm_plugin, twins_corpus_artifact, visit, fit, forest_model, batch_model):
    """re_created(kind): the fix, once per kind of model: the action that made it run again; the model validates
    and predicts every twins sample exactly as the undamaged model did (fine-tune is deterministic)."""
    done = {}

    def run(kind):
        if kind not in done:
            model = fit(kind)
            model.validate(level="max")
            batches = {"batches": visit} if kind == "batches" else {}
            predicted = [_probabilities(mgm_plugin.actions.predict_classification(
                corpus=twins_corpus_artifact, model=m, **batches)) for m in (model, ORIGINAL[kind](forest_model,
                                                                                                    batch_model))]
            assert predicted[0].shape == (278, 2) and np.isfinite(predicted[0]).all()
            assert np.array_equal(*predicted)
            done[kind] = model
        return done[kind]
    return run


ORIGINAL = {"forest": lambda forest, batches: forest, "batches": lambda forest, batches: batches}


@pytest.mark.parametrize("name", DAMAGES)
def test_a_damaged_model_is_refused_on_import_and_the_model_re_created_as_advised_predicts(
        forest_model, batch_model, re_created, tmp_path, name):
    kind, damage, words = DAMAGES[name]
    ORIGINAL[kind](forest_model, batch_model).export_data(str(tmp_path / "model"))
    damage(tmp_path / "model")
    advice = "re-create the model with q2-mgm: run (the action that made it \\()?fine-tune"
    with pytest.raises(ValidationError, match=f"(?is){words}.*{advice}.* again\\.$"):
        qiime2.Artifact.import_data("MGMModel[Classifier]", str(tmp_path / "model"))
    assert str(re_created(kind).type) == "MGMModel[Classifier]"
