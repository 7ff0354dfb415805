"""A RandomForest stored as safetensors + JSON and predicted by q2-mgm's own NumPy traversal: identical to
scikit-learn's predictions, identical after a round trip, free of pickles, and refused when tampered with."""
import json
import struct

import numpy as np
import pytest
import safetensors.numpy
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from q2_mgm.core import forest as forest_module
from q2_mgm.core.forest import ForestFormatError, fit_forest, load_forest, save_forest

from ..helpers import plain_pickle_bytes, read_metadata, unpickle_as_an_unsafe_loader_would

N_TREES = 100
ARRAYS = ("feature", "threshold", "left", "right", "value", "roots")


@pytest.fixture(scope="module")
def twins(twins_counts):
    """Relative abundances (278 samples x 130 genera) and bmi_category labels."""
    labels = read_metadata("twins")["bmi_category"].loc[twins_counts.index].to_numpy()
    counts = twins_counts.to_numpy(dtype=float)
    return counts / counts.sum(axis=1, keepdims=True), labels


def threshold_rows(forest, features, n_nodes=300):
    """Samples with one feature set exactly at, and one float64 step either side of, a split threshold: where a
    comparison in another precision than sklearn's would send a sample the other way."""
    rng = np.random.default_rng(0)
    nodes = rng.choice(np.flatnonzero(forest.feature >= 0), n_nodes, replace=False)
    rows = []
    for step in (None, np.inf, -np.inf):
        edge = features[rng.integers(len(features), size=n_nodes)].copy()
        at = forest.threshold[nodes] if step is None else np.nextafter(forest.threshold[nodes], step)
        edge[np.arange(n_nodes), forest.feature[nodes]] = at
        rows.append(edge)
    return np.vstack([features, *rows])


def fit_both(task, features, targets):
    """q2-mgm's forest and sklearn's, both fitted on every other sample with the same settings."""
    estimator = {"classification": RandomForestClassifier, "regression": RandomForestRegressor}[task]
    reference = estimator(n_estimators=N_TREES, random_state=0, n_jobs=1).fit(features[::2], targets[::2])
    return fit_forest(features[::2], targets[::2], task, n_trees=N_TREES), reference


@pytest.mark.parametrize("classes", [("Lean", "Obese", "Overwt"), ("Lean", "Obese")], ids=["3-class", "binary"])
def test_probabilities_equal_sklearn_predict_proba(twins, classes):
    features, labels = twins
    keep = np.isin(labels, classes)
    forest, reference = fit_both("classification", features[keep], labels[keep])
    assert forest.classes == list(classes) == list(reference.classes_)
    everything = threshold_rows(forest, features)
    np.testing.assert_array_equal(forest.predict(everything), reference.predict_proba(everything))


def test_regression_equals_sklearn_predict(twins):
    features, _ = twins
    genus = 20  # g__Bacteroides, predicted from the other genera
    others = np.delete(features, genus, axis=1)
    forest, reference = fit_both("regression", others, features[:, genus])
    assert forest.classes == [] and forest.value.shape[1] == 1
    everything = threshold_rows(forest, others)
    np.testing.assert_array_equal(forest.predict(everything), reference.predict(everything))


def test_arrays_follow_the_documented_layout(twins):
    forest = fit_forest(*twins, "classification", n_trees=10)
    leaf = forest.feature == -1
    assert forest.feature.dtype == forest.left.dtype == forest.right.dtype == forest.roots.dtype == np.int32
    assert forest.threshold.dtype == forest.value.dtype == np.float64
    assert leaf.any() and (forest.left[leaf] == -1).all() and (forest.right[leaf] == -1).all()
    assert (forest.left[~leaf] > np.flatnonzero(~leaf)).all()
    np.testing.assert_allclose(forest.value.sum(axis=1), 1, atol=1e-12)  # fractions, not counts
    assert forest.roots[0] == 0 and len(forest.roots) == forest.n_trees == 10 and forest.n_features == 130


def test_chunked_prediction_equals_one_chunk(twins, monkeypatch):
    forest = fit_forest(*twins, "classification", n_trees=10)
    whole = forest.predict(twins[0])
    monkeypatch.setattr(forest_module, "CHUNK_CELLS", 10 * 7)  # 7 samples a chunk, the last one partial
    np.testing.assert_array_equal(forest.predict(twins[0]), whole)


def test_same_random_state_gives_the_same_arrays(twins):
    first, again, other = (fit_forest(*twins, "classification", n_trees=5, random_state=seed) for seed in (1, 1, 2))
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.threshold, other.threshold)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_save_and_load_give_identical_predictions(twins, task, tmp_path):
    features, labels = twins
    targets = labels if task == "classification" else features[:, 0]
    forest = fit_forest(features, targets, task, n_trees=20)
    save_forest(forest, tmp_path, stem="model")
    loaded = load_forest(tmp_path, stem="model")
    np.testing.assert_array_equal(loaded.predict(features), forest.predict(features))
    assert (loaded.task, loaded.classes, loaded.n_features, loaded.max_depth) == \
        (forest.task, forest.classes, forest.n_features, forest.max_depth)


# --- the stored format: a small synthetic forest, so these run without ../shared ---

@pytest.fixture(scope="module")
def small_forest():
    rng = np.random.default_rng(0)
    features = rng.random((80, 4))
    labels = np.array(["a", "b", "c"])[(features[:, 0] * 3).astype(int)]
    return fit_forest(features, labels, "classification", n_trees=3), features


@pytest.fixture
def saved(small_forest, tmp_path):
    save_forest(small_forest[0], tmp_path)
    return tmp_path


def test_the_saved_files_are_safetensors_and_json_without_pickles(saved):
    raw = (saved / "forest.safetensors").read_bytes()
    header_length, = struct.unpack("<Q", raw[:8])  # safetensors: 8-byte header length, then a JSON header
    header = json.loads(raw[8:8 + header_length])
    assert {name: header[name]["dtype"] for name in ARRAYS} == {
        "feature": "I32", "threshold": "F64", "left": "I32", "right": "I32", "value": "F64", "roots": "I32"}
    meta = json.loads((saved / "forest.json").read_text())
    assert meta == {"format": "q2-mgm-forest", "format_version": 1, "task": "classification",
                    "classes": ["a", "b", "c"], "n_features": 4, "max_depth": meta["max_depth"], "n_trees": 3}
    data_end = max(entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__")
    assert len(raw) == 8 + header_length + data_end  # nothing but the header and the raw numbers
    assert sorted(path.name for path in saved.iterdir()) == ["forest.json", "forest.safetensors"]


def test_a_pickle_planted_as_the_arrays_is_never_unpickled(saved, tmp_path):
    marker = tmp_path / "UNPICKLED"
    payload = plain_pickle_bytes(marker)
    (saved / "forest.safetensors").write_bytes(payload)
    with pytest.raises(ForestFormatError, match="not a valid safetensors file.*never unpickles"):
        load_forest(saved)
    assert not marker.exists(), "load_forest unpickled the planted file"
    unpickle_as_an_unsafe_loader_would(payload)  # the control: the planted pickle does run code
    assert marker.exists()


def tamper(arrays=None, meta=None, remove=None):
    """A change to a saved forest: edit the arrays and/or forest.json in place, or remove one of the files."""
    def change(directory):
        if remove:
            (directory / remove).unlink()
            return
        stored = safetensors.numpy.load_file(str(directory / "forest.safetensors"))
        described = json.loads((directory / "forest.json").read_text())
        safetensors.numpy.save_file(arrays(stored) if arrays else stored, str(directory / "forest.safetensors"))
        (directory / "forest.json").write_text(json.dumps(meta(described) if meta else described))
    return change


def replaced(name, new):
    """Replace one array by new(old array, all arrays)."""
    return lambda stored: {**stored, name: new(stored[name], stored)}


def set_at(index, value):
    """Copy an array with one element changed; index(arrays) picks the element."""
    def new(old, stored):
        old = old.copy()
        old[index(stored)] = value(stored) if callable(value) else value
        return old
    return new


def first_inner(stored):
    """An internal node other than a root (sklearn's layout: node 1 is the root's left child)."""
    return np.flatnonzero(stored["feature"][1:] >= 0)[0] + 1


def last_inner_of_tree_0(stored):
    return np.flatnonzero(stored["feature"][:stored["roots"][1]] >= 0)[-1]


def first_leaf(stored):
    return np.flatnonzero(stored["feature"] == -1)[0]


TAMPERINGS = {
    "safetensors file missing": (tamper(remove="forest.safetensors"), "forest.safetensors is missing"),
    "json file missing": (tamper(remove="forest.json"), "forest.json is missing"),
    "json not json": (lambda directory: (directory / "forest.json").write_text("{task"), "not readable JSON"),
    "unknown format version": (tamper(meta=lambda m: {**m, "format_version": 2}), "forest version 1"),
    "unknown task": (tamper(meta=lambda m: {**m, "task": "ranking"}), "names task 'ranking'"),
    "n_features not an int": (tamper(meta=lambda m: {**m, "n_features": "4"}), "n_features is '4'"),
    "array missing": (tamper(arrays=lambda s: {k: v for k, v in s.items() if k != "value"}),
                      r"lacks arrays \['value'\]"),
    "feature int64": (tamper(arrays=replaced("feature", lambda old, s: old.astype(np.int64))),
                      "array feature is int64"),
    "threshold float32": (tamper(arrays=replaced("threshold", lambda old, s: old.astype(np.float32))),
                          "array threshold is float32"),
    "value one-dimensional": (tamper(arrays=replaced("value", lambda old, s: old[:, 0].copy())),
                              r"array value is float64 with shape \(\d+,\), not float64 with 2"),
    "lengths disagree": (tamper(arrays=replaced("threshold", lambda old, s: old[:-1].copy())),
                         "disagreeing or zero lengths"),
    "value width is not the classes": (tamper(arrays=replaced("value", lambda old, s: old[:, :2].copy())),
                                       "value has 2 columns, but the classification forest needs 3"),
    "threshold NaN": (tamper(arrays=replaced("threshold", set_at(lambda s: 0, np.nan))), "threshold holds NaN"),
    "value infinite": (tamper(arrays=replaced("value", set_at(lambda s: (0, 0), np.inf))), "value holds NaN or inf"),
    "value not a fraction": (tamper(arrays=replaced("value", set_at(lambda s: (0, 0), 3.0))), r"outside \[0, 1\]"),
    "feature index too large": (tamper(arrays=replaced("feature", set_at(lambda s: 0, 4))),
                                r"feature holds indices outside -1 \(leaf\) .. 3"),
    "root out of range": (tamper(arrays=replaced("roots", set_at(lambda s: -1, lambda s: len(s["feature"])))),
                          "roots must be 3 increasing node indices"),
    "roots not one per tree": (tamper(meta=lambda m: {**m, "n_trees": 4}), "roots must be 4"),
    "leaf with a feature": (tamper(arrays=replaced("feature", set_at(first_leaf, 0))), "a feature but no children"),
    "child out of range": (tamper(arrays=replaced("left", set_at(lambda s: 0, lambda s: len(s["feature"])))),
                           "child indices outside"),
    "child points back to the root": (tamper(arrays=replaced("left", set_at(first_inner, 0))),
                                      "does not come after its parent"),
    "child is its own parent": (tamper(arrays=replaced("right", set_at(first_inner, first_inner))),
                                "does not come after its parent"),
    "child shared by two parents": (tamper(arrays=replaced("right", set_at(lambda s: 0, lambda s: s["left"][0]))),
                                    "do not form separate trees"),
    "child in the next tree": (tamper(arrays=replaced("left", set_at(last_inner_of_tree_0, lambda s: s["roots"][1]))),
                               "do not form separate trees"),
    "max_depth too small": (tamper(meta=lambda m: {**m, "max_depth": m["max_depth"] - 1}),
                            "but the deepest tree has depth"),
}


@pytest.mark.parametrize("name", TAMPERINGS)
def test_a_tampered_forest_is_refused_with_a_clear_error(saved, name):
    change, words = TAMPERINGS[name]
    change(saved)
    with pytest.raises(ForestFormatError,
                       match=rf"{words}.*; re-create the model with q2-mgm: run fine-tune .*again\.$"):
        load_forest(saved)


def test_predicting_the_wrong_number_of_columns_is_a_clear_error(small_forest):
    forest, features = small_forest
    with pytest.raises(ValueError, match=r"trained on 4 features, but the table to predict has shape \(80, 3\)"):
        forest.predict(features[:, :3])


def test_an_unknown_task_is_a_clear_error(small_forest):
    with pytest.raises(ValueError, match="task must be one of classification, regression, not 'ranking'"):
        fit_forest(small_forest[1], small_forest[1][:, 0], "ranking")
