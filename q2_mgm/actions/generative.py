"""pretrain, pretrain-generator, generate and fit-reconstructor: MGM as a language model on QIIME 2 artifacts."""
import dataclasses
import json
import pathlib

import numpy as np
import pandas as pd
import qiime2

from .._formats import MGMGeneratorDirFmt, MGMModelDirFmt, MGMReconstructorDirFmt, ModelFiles
from ..core.generation import generate as sample_sentences, sentences_to_genera
from ..core.inference import encode
from ..core.models import load_general_model, load_model, save_model
from ..core.pretraining import (LABEL_PREFIX, LABEL_SUFFIX, PretrainingError, PretrainingSettings, add_label_tokens,
                                is_label_token, label_ids, label_token, new_model, new_model_config,
                                pretrain as pretrain_model, prompt_ids)
from ..core.reconstruction import (MGnifyMeanReconstructor, NeuralReconstructor, NeuralSettings,
                                   RankMedianReconstructor, genus_relative_abundance, load_reconstructor)
from ..core.tokenizer import Corpus, tokenize_matrix
from ..core.vocab import EOS_ID, mgm_vocabulary
from ._util import report, resolve_device

RECONSTRUCTORS = ("neural", "rank-median")


def _sentences(corpora):
    """All corpora's sentences, one Series; a sample ID in two corpora is a clear error."""
    sentences = pd.concat([corpus.samples.sentence for corpus in corpora])
    if sentences.index.has_duplicates:
        raise PretrainingError(f"Sample {sentences.index[sentences.index.duplicated()][0]!r} is in more than one "
                               "corpus; give each sample once (or rename the samples of one corpus).")
    return sentences


def _starting_model(model):
    """The general model, or the given one, to continue pretraining from."""
    if model is None:
        network, vocabulary, provenance = load_general_model()
        return network, vocabulary, {"start": "the general model", **provenance}
    network, vocabulary, _ = load_model(model.path)
    return network, vocabulary, {"start": "the given model"}


def _settings(epochs, learning_rate, batch_size, validation_fraction, patience, random_state, device):
    return PretrainingSettings(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                               validation_fraction=validation_fraction, patience=patience,
                               random_state=random_state, device=resolve_device(device))


def _save(network, vocabulary, history, settings, record, out):
    save_model(network, vocabulary, out.path)
    record = {**record, "settings": dataclasses.asdict(settings),
              "history": history.reset_index().to_dict(orient="list")}
    (out.path / "pretraining.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    return out, history


def pretrain(corpora: Corpus, model: MGMModelDirFmt = None, from_scratch: bool = False, n_layer: int = 8,
             n_head: int = 8, n_embd: int = 256, n_positions: int = 512, epochs: int = 50,
             learning_rate: float = 1e-3, batch_size: int = 32, validation_fraction: float = 0.1, patience: int = 3,
             random_state: int = 0, device: str = "auto") -> (MGMModelDirFmt, pd.DataFrame):
    if from_scratch:  # MGM's vocabulary with random weights: the general model's weights are not read
        vocabulary = mgm_vocabulary()
        network = new_model(new_model_config(len(vocabulary), n_layer, n_head, n_embd, n_positions), random_state)
        start = {"start": "random weights"}
    else:
        network, vocabulary, start = _starting_model(model)
    sentences = _sentences(corpora)
    report(f"pretraining from {start['start']} on {len(sentences)} sentences from {len(corpora)} corpora")
    settings = _settings(epochs, learning_rate, batch_size, validation_fraction, patience, random_state, device)
    network, history = pretrain_model(network, encode(sentences, vocabulary), settings, report=report)
    return _save(network, vocabulary, history, settings,
                 {**start, "n_sentences": len(sentences), "n_corpora": len(corpora)}, MGMModelDirFmt())


def pretrain_generator(corpora: Corpus, metadata: qiime2.CategoricalMetadataColumn, model: ModelFiles = None,
                       epochs: int = 50, learning_rate: float = 1e-3, batch_size: int = 32,
                       validation_fraction: float = 0.1, patience: int = 3, random_state: int = 0,
                       device: str = "auto") -> (MGMGeneratorDirFmt, pd.DataFrame):
    network, vocabulary, start = _starting_model(model)
    sentences = _sentences(corpora)
    labels = metadata.to_series().reindex(sentences.index)
    if labels.isna().all():
        raise PretrainingError(f"None of the {len(sentences)} samples has a value in {metadata.name!r}; check that "
                               "the metadata's sample IDs match the corpora's.")
    if labels.isna().any():
        report(f"left out {int(labels.isna().sum())} of {len(labels)} samples with no {metadata.name!r}")
        labels = labels.dropna()
    network, vocabulary = add_label_tokens(network, vocabulary, labels)
    ids = prompt_ids(encode(sentences.loc[labels.index], vocabulary), labels, vocabulary,
                     network.config.n_positions)
    report(f"pretraining a generator from {start['start']} on {len(ids)} sentences prompted by "
           f"{labels.nunique()} labels of {metadata.name!r}")
    settings = _settings(epochs, learning_rate, batch_size, validation_fraction, patience, random_state, device)
    network, history = pretrain_model(network, ids, settings, report=report)
    record = {**start, "n_sentences": len(ids), "n_corpora": len(corpora), "label_column": metadata.name,
              "label_counts": labels.astype(str).value_counts().sort_index().to_dict(),
              "label_tokens": [vocabulary.tokens[i] for i in label_ids(vocabulary)]}
    return _save(network, vocabulary, history, settings, record, MGMGeneratorDirFmt())


def _prompts(vocabulary, labels):
    """The label tokens to prompt with (all of the model's when none are asked for), or [None] for a model
    without labels."""
    known = [vocabulary.tokens[i] for i in label_ids(vocabulary)]
    if not known:
        if labels:
            raise PretrainingError("This model was pretrained without labels; leave `labels` out to generate "
                                   "unconditioned samples, or pretrain a generator with pretrain-generator.")
        return [None]
    if not labels:
        return known
    asked = [label if is_label_token(label) else label_token(label) for label in labels]
    unknown = [label for label, token in zip(labels, asked) if token not in known]
    if unknown:
        raise PretrainingError(f"The generator has no label {unknown[0]!r}; it knows "
                               f"{', '.join(map(_label_of, known))}.")
    return asked


def _label_of(token):
    return token[len(LABEL_PREFIX):-len(LABEL_SUFFIX)]


def _synthetic_corpus(names, genera, ended, max_length):
    """Generated sentences as a corpus (without the label token), so they embed and classify as real ones; a
    sentence the model did not end (it reached max_length) has no <eos> and counts as truncated."""
    sentences = [" ".join(["<bos>", *g, "<eos>"] if done else ["<bos>", *g]) for g, done in zip(genera, ended)]
    n_tokens = [len(s.split()) for s in sentences]
    samples = pd.DataFrame({
        "sentence": sentences, "n_genera": [len(g) for g in genera], "n_tokens": n_tokens,
        "length_before_truncation": [n + (not done) for n, done in zip(n_tokens, ended)],
        "truncated": [not done for done in ended], "below_zero_threshold": 0,
        "vocabulary_coverage": 1.0, "no_genus_share": 0.0, "out_of_vocabulary_share": 0.0},
        index=pd.Index(names, name="sample-id"))
    counts = pd.Series([g for names_ in genera for g in names_]).value_counts()
    features = pd.DataFrame({"taxonomy": counts.index, "genus": counts.index, "status": "kept",
                             "n_samples": counts.to_numpy(), "mean_relative_abundance": np.nan},
                            index=pd.Index(counts.index, name="feature-id"))
    dropped = pd.DataFrame({"reason": pd.Series(dtype=str), "total": pd.Series(dtype=float)},
                           index=pd.Index([], name="sample-id"))
    return Corpus(samples, features, dropped, int(max_length), False)


def generate(model: ModelFiles, reconstructor: MGMReconstructorDirFmt = None, labels: list = None,
             n_per_label: int = 100, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
             max_length: int = 512, random_state: int = 0,
             device: str = "auto") -> (pd.DataFrame, Corpus, pd.Series):
    network, vocabulary, _ = load_model(model.path)
    device = resolve_device(device)
    rebuild = MGnifyMeanReconstructor() if reconstructor is None else load_reconstructor(reconstructor.path)
    max_length = min(max_length, network.config.n_positions)
    names, genera, ended, prompted = [], [], [], []
    for seed_offset, prompt in enumerate(_prompts(vocabulary, labels)):
        label = "unconditioned" if prompt is None else _label_of(prompt)
        report(f"generating {n_per_label} samples for {label}")
        ids = sample_sentences(network, vocabulary, n_per_label, prompt, temperature, top_k, top_p, max_length,
                               random_state + seed_offset, device)  # each label its own stream: adding one
        genera += sentences_to_genera(ids, vocabulary)               # leaves the others' samples unchanged
        ended += [bool(len(row)) and row[-1] == EOS_ID for row in ids]
        names += [f"{label}_{i}" for i in range(1, n_per_label + 1)]
        prompted += [label] * n_per_label
    report(f"ranks to abundances with the {rebuild.kind} reconstructor")
    abundances = rebuild.predict(genera)
    table = pd.DataFrame([dict(zip(g, a)) for g, a in zip(genera, abundances)], index=names).fillna(0.0)
    table.index.name = "sample-id"
    return (table, _synthetic_corpus(names, genera, ended, max_length),
            pd.Series(prompted, index=pd.Index(names, name="sample-id"), name="label"))


def fit_reconstructor(table: pd.DataFrame, taxonomy: pd.Series = None, kind: str = "neural",
                      harmonize_names: bool = False, epochs: int = 300, learning_rate: float = 1e-3,
                      batch_size: int = 64, validation_fraction: float = 0.1, patience: int = 10,
                      random_state: int = 0) -> MGMReconstructorDirFmt:
    corpus = tokenize_matrix(table.to_numpy(), table.index, table.columns, taxonomy, harmonize_names=harmonize_names)
    relative = genus_relative_abundance(table, taxonomy, harmonize_names)
    report(f"fitting a {kind} reconstructor on {len(corpus.samples)} samples")
    if kind == "neural":
        rebuild = NeuralReconstructor(NeuralSettings(
            epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
            validation_fraction=validation_fraction, patience=patience, random_state=random_state))
        rebuild.fit(relative, corpus.samples.sentence, report=report)
    else:
        rebuild = RankMedianReconstructor().fit(relative, corpus.samples.sentence)
    out = MGMReconstructorDirFmt()
    rebuild.save(out.path)
    return out
