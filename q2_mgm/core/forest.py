"""A scikit-learn RandomForest stored as plain arrays and predicted by a NumPy traversal of those arrays.

Model artifacts hold numbers as safetensors and everything else as JSON, so a fitted forest is flattened into the
node arrays of all its trees, saved as `{stem}.safetensors` + `{stem}.json`, and never pickled or rebuilt into
sklearn objects. `Forest.predict` reproduces sklearn's `predict_proba` / `predict` bit for bit: it compares the
features cast to float32 (as sklearn does) and sums the trees in sklearn's order.
"""
import dataclasses
import json
import pathlib
from typing import List

import numpy as np
import safetensors.numpy
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from .vocab import PathLike

FORMAT = "q2-mgm-forest"
FORMAT_VERSION = 1
ESTIMATORS = {"classification": RandomForestClassifier, "regression": RandomForestRegressor}
ARRAY_DTYPES = {"feature": np.int32, "threshold": np.float64, "left": np.int32, "right": np.int32,
                "value": np.float64, "roots": np.int32}
LEAF = -1
# the fix of a damaged forest: the actions that fit one
RECREATE = ("re-create the model with q2-mgm: run fine-tune (forest_weight above 0), classify-samples or "
            "regress-samples again")
# samples per prediction chunk = CHUNK_CELLS // n_trees: keeps each (samples x trees) working array near 8 MB
CHUNK_CELLS = 1 << 20


class ForestFormatError(ValueError):
    """A stored forest that is incomplete, inconsistent or not safetensors; the message says what and how to fix."""


@dataclasses.dataclass
class Forest:
    """All trees' nodes concatenated; `left`/`right` are global node indices, -1 (and `feature` -1) at leaves.
    `value` holds per-node class fractions (classification) or the mean target (regression, one column).

    feature, left, right: (n_nodes,) int32; threshold: (n_nodes,) float64; value: (n_nodes, n_classes or 1)
    float64; roots: (n_trees,) int32, each tree's first node."""
    task: str
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    classes: List[str]
    n_features: int
    max_depth: int

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n_samples, n_classes) or regression predictions (n_samples,), float64, of
        (n_samples, n_features) features."""
        features = self._checked(features)
        out = np.zeros((len(features), self.value.shape[1]), dtype=np.float64)
        chunk = max(1, CHUNK_CELLS // self.n_trees)
        for start in range(0, len(features), chunk):
            leaves = self._leaves(features[start:start + chunk])
            for tree in range(self.n_trees):  # one tree at a time, in order: the float sum sklearn computes
                out[start:start + chunk] += self.value[leaves[:, tree]]
        out /= self.n_trees
        return out if self.task == "classification" else out[:, 0]

    def _checked(self, features):
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"The forest was trained on {self.n_features} features, but the table to predict has "
                             f"shape {features.shape}; give it the same feature columns, in the same order.")
        features = features.astype(np.float32)  # sklearn compares float32 features with float64 thresholds
        if not np.isfinite(features).all():
            raise ValueError("The table to predict holds NaN, infinite or float32-overflowing values; "
                             "the forest needs finite features.")
        return features

    def _leaves(self, features):
        """The leaf each sample reaches in each tree, (n_samples, n_trees), walking all trees one level a step."""
        node = np.broadcast_to(self.roots, (len(features), self.n_trees))
        for _ in range(self.max_depth):
            feature = self.feature[node]
            # at leaves feature is -1, which reads the last column; the result is discarded by the where below
            goes_left = np.take_along_axis(features, feature, axis=1) <= self.threshold[node]
            node = np.where(feature == LEAF, node, np.where(goes_left, self.left[node], self.right[node]))
        return node


def fit_forest(features: np.ndarray, targets: np.ndarray, task: str, n_trees: int = 500, random_state: int = 0,
               n_jobs: int = -1) -> Forest:
    """Fit sklearn's RandomForestClassifier or RandomForestRegressor (its other defaults) on (n_samples, n_features)
    features and (n_samples,) targets, and flatten it. n_jobs: threads fitting trees (-1: every CPU); the trees, each
    seeded from random_state before any is fit, are the same for any n_jobs."""
    if task not in ESTIMATORS:
        raise ValueError(f"task must be one of {', '.join(ESTIMATORS)}, not {task!r}.")
    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise ValueError(f"targets must be one value per sample (1-D), not shape {targets.shape}.")
    estimator = ESTIMATORS[task](n_estimators=n_trees, random_state=random_state, n_jobs=n_jobs)
    estimator.fit(features, targets)
    return _from_sklearn(estimator, task)


def _from_sklearn(estimator, task):
    trees = [tree.tree_ for tree in estimator.estimators_]
    offsets = np.cumsum([0] + [tree.node_count for tree in trees])

    def children(side):
        return np.concatenate([np.where(getattr(tree, side) < 0, LEAF, getattr(tree, side) + offset)
                               for tree, offset in zip(trees, offsets)]).astype(np.int32)

    feature = np.concatenate([tree.feature for tree in trees])
    value = np.concatenate([tree.value[:, 0, :] for tree in trees]).astype(np.float64)
    if task == "classification":
        value = _fractions(value)
    return Forest(
        task=task,
        feature=np.where(feature < 0, LEAF, feature).astype(np.int32),  # sklearn marks leaves with -2
        threshold=np.concatenate([tree.threshold for tree in trees]).astype(np.float64),
        left=children("children_left"), right=children("children_right"), value=value,
        roots=offsets[:-1].astype(np.int32),
        classes=[str(label) for label in getattr(estimator, "classes_", [])],
        n_features=int(estimator.n_features_in_), max_depth=max(int(tree.max_depth) for tree in trees))


def _fractions(value):
    """Per-node class fractions. sklearn stores counts or fractions depending on its version; normalising the same
    way its predict_proba does (an empty node stays all-zero) gives identical numbers either way."""
    total = value.sum(axis=1, keepdims=True)
    total[total == 0] = 1
    return value / total


# --- storage: {stem}.safetensors (arrays) + {stem}.json (everything else) ---

def save_forest(forest: Forest, directory: PathLike, stem: str = "forest") -> None:
    directory = pathlib.Path(directory)
    safetensors.numpy.save_file({name: np.ascontiguousarray(getattr(forest, name)) for name in ARRAY_DTYPES},
                                str(directory / f"{stem}.safetensors"))
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "task": forest.task, "classes": forest.classes,
            "n_features": forest.n_features, "max_depth": forest.max_depth, "n_trees": forest.n_trees}
    (directory / f"{stem}.json").write_text(json.dumps(meta, indent=2) + "\n")


def load_forest(directory: PathLike, stem: str = "forest") -> Forest:
    """Read a saved forest, refusing (ForestFormatError) anything that could not have come from `save_forest`."""
    directory = pathlib.Path(directory)
    meta = _read_meta(directory / f"{stem}.json")
    arrays = _read_arrays(directory / f"{stem}.safetensors")
    _check_arrays(arrays, meta)
    _check_trees(arrays, meta)
    return Forest(task=meta["task"], classes=meta["classes"], n_features=meta["n_features"],
                  max_depth=meta["max_depth"], **arrays)


def _error(problem):
    return ForestFormatError(f"The stored forest is unusable: {problem}; {RECREATE}.")


def _read_meta(path):
    if not path.is_file():
        raise _error(f"{path.name} is missing from {path.parent}")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise _error(f"{path.name} is not readable JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise _error(f"{path.name} is not a {FORMAT} version {FORMAT_VERSION} description")
    if meta.get("task") not in ESTIMATORS:
        raise _error(f"{path.name} names task {meta.get('task')!r}, not one of {', '.join(ESTIMATORS)}")
    classes = meta.get("classes")
    if not isinstance(classes, list) or not all(isinstance(label, str) for label in classes) \
            or len(set(classes)) != len(classes):
        raise _error(f"{path.name}'s classes are not a list of distinct labels")
    if (meta["task"] == "classification") != bool(classes):
        raise _error(f"{path.name} lists {len(classes)} classes for a {meta['task']} forest")
    for key, smallest in (("n_features", 1), ("max_depth", 0), ("n_trees", 1)):
        if type(meta.get(key)) is not int or meta[key] < smallest:
            raise _error(f"{path.name}'s {key} is {meta.get(key)!r}, not an integer >= {smallest}")
    return meta


def _read_arrays(path):
    if not path.is_file():
        raise _error(f"{path.name} is missing from {path.parent}")
    try:
        arrays = safetensors.numpy.load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for any malformed header
        raise _error(f"{path.name} is not a valid safetensors file ({error}), "
                     "and q2-mgm never unpickles a forest") from None
    missing, unknown = ARRAY_DTYPES.keys() - arrays.keys(), arrays.keys() - ARRAY_DTYPES.keys()
    if missing or unknown:
        raise _error(f"{path.name} lacks arrays {sorted(missing)} or has unknown arrays {sorted(unknown)}")
    return {name: arrays[name] for name in ARRAY_DTYPES}


def _check_arrays(arrays, meta):
    """dtypes, shapes, agreeing lengths, finite numbers and in-range feature indices."""
    for name, dtype in ARRAY_DTYPES.items():
        ndim = 2 if name == "value" else 1
        if arrays[name].dtype != dtype or arrays[name].ndim != ndim:
            raise _error(f"array {name} is {arrays[name].dtype} with shape {arrays[name].shape}, "
                         f"not {np.dtype(dtype)} with {ndim} dimension(s)")
    n_nodes = len(arrays["feature"])
    lengths = {name: len(arrays[name]) for name in ("feature", "threshold", "left", "right", "value")}
    if n_nodes == 0 or len(set(lengths.values())) != 1:
        raise _error(f"the node arrays have disagreeing or zero lengths {lengths}")
    width = len(meta["classes"]) or 1
    if arrays["value"].shape[1] != width:
        raise _error(f"array value has {arrays['value'].shape[1]} columns, "
                     f"but the {meta['task']} forest needs {width}")
    for name in ("threshold", "value"):
        if not np.isfinite(arrays[name]).all():
            raise _error(f"array {name} holds NaN or infinite values")
    if meta["task"] == "classification" and ((arrays["value"] < 0) | (arrays["value"] > 1)).any():
        raise _error("array value holds class fractions outside [0, 1]")
    if ((arrays["feature"] < LEAF) | (arrays["feature"] >= meta["n_features"])).any():
        raise _error(f"array feature holds indices outside -1 (leaf) .. {meta['n_features'] - 1}")


def _check_trees(arrays, meta):
    """Each tree is a proper tree within its own span of nodes, as deep as max_depth says: the traversal then
    always ends at a leaf, and reads no other tree's nodes."""
    feature, left, right, roots = arrays["feature"], arrays["left"], arrays["right"], arrays["roots"]
    n_nodes = len(feature)
    if len(roots) != meta["n_trees"] or roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= n_nodes:
        raise _error(f"array roots must be {meta['n_trees']} increasing node indices from 0, below {n_nodes}")
    leaf = feature == LEAF
    if ((left == LEAF) != leaf).any() or ((right == LEAF) != leaf).any():
        raise _error("some nodes have a feature but no children, or children but no feature")
    parents = np.flatnonzero(~leaf)
    children = np.concatenate([left[parents], right[parents]])
    parents = np.concatenate([parents, parents])
    if ((children < 0) | (children >= n_nodes)).any():
        raise _error(f"arrays left/right hold child indices outside 0 .. {n_nodes - 1}")
    # children after their parent (sklearn's depth-first layout) makes every tree acyclic
    if (children <= parents).any():
        raise _error("arrays left/right hold a child that does not come after its parent, so a tree could loop")
    tree_of = np.searchsorted(roots, np.arange(n_nodes), side="right") - 1
    n_parents = np.delete(np.bincount(children, minlength=n_nodes), roots)
    if (tree_of[children] != tree_of[parents]).any() or (n_parents != 1).any():
        raise _error("arrays left/right do not form separate trees: a child lies in another tree, "
                     "or a node has no parent or several")
    depth = _depth(left, right, roots)
    if depth != meta["max_depth"]:
        raise _error(f"max_depth is {meta['max_depth']} but the deepest tree has depth {depth}")


def _depth(left, right, roots):
    """Depth of the deepest tree (a lone root has depth 0), walking all trees one level a step."""
    level, depth = roots, -1
    while len(level):
        depth += 1
        children = np.concatenate([left[level], right[level]])
        level = children[children != LEAF]
    return depth
