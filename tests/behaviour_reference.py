"""What q2-mgm computes on real data, captured once so that a change meant to keep behaviour (a redesign, a
refactor) can be checked against it: tokens, embeddings, seeded predictions and keystone scores, through the
Artifact API on ECAM (../shared/data/ecam).

`python -m tests.behaviour_reference write` (from the repository root, with the venv's python) records them in
tests/data/behaviour-reference.{json,safetensors}; tests/test_behaviour_reference.py recomputes and compares them.
The reference was written on commit d1cf5d0, the last commit before the redesign of issue 14. The two classifiers'
hard predictions (classify_*_predictions) were re-recorded when the decision rule (core.training.decision) changed
them on purpose, and their thresholds (classify_*_threshold, which tests/test_behaviour_reference.py reads to name a
call near the threshold) were added afterwards; their probabilities, and every other output, are still d1cf5d0's.
`python -m tests.behaviour_reference add` records only the outputs the reference lacks, leaving the others as
recorded.
Arrays are stored as safetensors (no pickles); sentences as their sha256 and a few in full, to read on failure."""
import hashlib
import json
import pathlib
import sys

import numpy as np
import scipy
import sklearn

HERE = pathlib.Path(__file__).resolve().parent
REFERENCE = HERE / "data" / "behaviour-reference"
# the Debian 12 lane the reference was recorded on; torch (2.13.0) and transformers are pinned alike in both lanes
RECORDED_WITH = {"numpy": "1.24.2", "scipy": "1.10.1", "scikit-learn": "1.2.1"}
SOLVER_FITTED = {"classify_default_probabilities", "regress_default_predictions"}  # L2 logistic head, RidgeCV
SOLVER_TOLERANCE = 1e-4  # scikit-learn's LogisticRegression `tol`, which RidgeCV's solutions also stay within
UNIT_ROUNDOFF = 2.0 ** -24  # float32


def float32_tolerance(reference, config):
    """Absolute tolerance for a float32 output of the general model whose recorded values are `reference`.

    One float32 sum of K terms is off by about sqrt(K) * u of its magnitude (u = 2**-24; the probabilistic bound,
    Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., 2002, sec. 2.8 and 4.2); another summation order
    (another matrix-multiply kernel, instruction set or thread split) differs from it by about as much. Each of the
    model's n_layer blocks adds such an error to the residual stream, the longest sum of a block being the MLP's
    down-projection (n_inner terms, 4 x n_embd when unset; attention sums over at most n_positions keys, fewer for
    this model). So an output is held to u * sqrt(K) * n_layer * max|output|: for the general model (8 layers,
    K = 1024) 1.5e-5 of the output's scale. Outputs of a fit on those features (the scikit-learn heads, float64;
    one epoch of fine-tuning, whose few Adam steps do not amplify such differences) are held to the same."""
    reduction = max(config.n_inner or 4 * config.n_embd, config.n_embd)
    return UNIT_ROUNDOFF * np.sqrt(reduction) * config.n_layer * float(np.abs(reference).max())


def tolerance(name, reference, config):
    """The absolute tolerance the output `name` (recorded values `reference`) is held to, on this stack."""
    same_stack = {"numpy": np.__version__, "scipy": scipy.__version__,
                  "scikit-learn": sklearn.__version__} == RECORDED_WITH
    held = float32_tolerance(reference, config)
    return held if same_stack or name not in SOLVER_FITTED else max(held, SOLVER_TOLERANCE)


def compute():
    """{name: array or str}: every output that must not change, under the machine's own defaults (threads,
    instruction sets, kernels)."""
    import pandas as pd
    import qiime2
    import skbio
    from qiime2.plugins import mgm
    from q2_mgm._formats import MGMSupervisedModelDirFmt
    from q2_mgm.core.tokenizer import Corpus

    from .helpers import read_genus_table, read_metadata, subset_corpus

    counts = read_genus_table("ecam")
    metadata = qiime2.Metadata(read_metadata("ecam"))
    table = qiime2.Artifact.import_data("FeatureTable[Frequency]", counts.astype(float))
    corpus, = mgm.actions.tokenize(table=table)
    sentences = corpus.view(Corpus).samples.sentence
    out = {"sentences_sha256": hashlib.sha256("\n".join(sentences.index + "\t" + sentences).encode()).hexdigest(),
           "sentences_first": "\n".join(sentences.iloc[:3]), "n_sentences": str(len(sentences))}

    ids = list(sentences.index[::8])  # 110 samples from every child
    small = subset_corpus(corpus, ids)
    model, = mgm.actions.general_model()
    for pooling in ("mean", "last"):
        embeddings, = mgm.actions.embed(corpus=small, model=model, pooling=pooling, device="cpu")
        out[f"embed_{pooling}"] = embeddings.view(skbio.OrdinationResults).samples.to_numpy()

    train_ids, test_ids = ids[::2], ids[1::2]
    train, test = subset_corpus(corpus, train_ids), subset_corpus(corpus, test_ids)
    delivery, child, month = (metadata.get_column(c) for c in ("delivery", "studyid", "month"))
    recipes = {"default": {"forest_trees": 50},
               "upstream": {"freeze_layers": 0, "forest_weight": 0.0, "epochs": 1, "batch_size": 16}}
    for name, settings in recipes.items():
        classifier, _ = mgm.actions.fine_tune(corpus=train, metadata=delivery, task="classification", groups=child,
                                              random_state=3, device="cpu", **settings)
        predictions, probabilities = mgm.actions.predict_classification(corpus=test, model=classifier,
                                                                        device="cpu")
        out[f"classify_{name}_probabilities"] = probabilities.view(pd.DataFrame).to_numpy()
        out[f"classify_{name}_predictions"] = "\n".join(predictions.view(pd.Series))
        record = json.loads((classifier.view(MGMSupervisedModelDirFmt).path / "training.json").read_text())
        out[f"classify_{name}_threshold"] = np.array([record["decision"]["threshold"]])
    regressor, _ = mgm.actions.fine_tune(corpus=train, metadata=month, task="regression", groups=child,
                                         random_state=3, device="cpu", forest_trees=50)
    values, = mgm.actions.predict_regression(corpus=test, model=regressor, device="cpu")
    out["regress_default_predictions"] = values.view(pd.Series).to_numpy()
    importance, = mgm.actions.keystone_genera(corpus=small, model=model, metadata=delivery, method="attention",
                                              min_samples=2, device="cpu")
    frame = importance.view(pd.DataFrame).sort_index()
    out["keystone_attention"] = frame.to_numpy()
    out["keystone_genera"] = "\n".join(frame.index)
    return out


def _split(values):
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in values.items() if not isinstance(v, str)}
    texts = {k: v for k, v in values.items() if isinstance(v, str)}
    return arrays, texts


def write(values):
    from safetensors.numpy import save_file
    arrays, texts = _split(values)
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(REFERENCE.with_suffix(".safetensors")))
    REFERENCE.with_suffix(".json").write_text(json.dumps(texts, indent=1, sort_keys=True) + "\n")


def read():
    from safetensors.numpy import load_file
    return load_file(str(REFERENCE.with_suffix(".safetensors"))), json.loads(REFERENCE.with_suffix(".json").read_text())


if __name__ == "__main__":
    if sys.argv[1:] not in (["write"], ["add"]):
        sys.exit("usage: python -m tests.behaviour_reference write|add")
    now = compute()
    if sys.argv[1] == "add":
        arrays, texts = read()
        now = {**now, **arrays, **texts}
    write(now)
