"""What q2-mgm computes on real data, captured once so that a change meant to keep behaviour (a redesign, a
refactor) can be checked against it: tokens, embeddings, seeded predictions and keystone scores, through the
Artifact API on ECAM (../shared/data/ecam).

`python -m tests.behaviour_reference write` (from the repository root, with the venv's python) records them in
tests/data/behaviour-reference.{json,safetensors}; tests/test_behaviour_reference.py recomputes and compares them.
The reference was written on commit d1cf5d0, the last commit before the redesign of issue 14. The two classifiers'
hard predictions (classify_*_predictions) were re-recorded when the decision rule (core.training.decision) changed
them on purpose; their probabilities, and every other output, are still d1cf5d0's.
Arrays are stored as safetensors (no pickles); sentences as their sha256 and a few in full, to read on failure."""
import hashlib
import json
import pathlib
import sys

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
REFERENCE = HERE / "data" / "behaviour-reference"


def compute():
    """{name: array or str}: every output that must not change, on one torch thread."""
    import pandas as pd
    import qiime2
    import skbio
    from qiime2.plugins import mgm
    from q2_mgm.core.tokenizer import Corpus

    from .helpers import read_genus_table, read_metadata, subset_corpus

    torch.set_num_threads(1)
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
    if sys.argv[1:] != ["write"]:
        sys.exit("usage: python -m tests.behaviour_reference write")
    write(compute())
