"""The generative area: pretrain, pretrain-generator, generate, fit-reconstructor and evaluate-generated, registered by
`register(plugin)`: MGM as a language model on QIIME 2 artifacts. Defaults come from the core's tables
(PRETRAINING, GENERAL_MODEL_SIZE, SAMPLING, NeuralSettings). The core modules that run the model (torch) are
imported by the functions that call them, when called (CONTRIBUTING)."""
import dataclasses
import json
import pathlib

import numpy as np
import pandas as pd
import qiime2
from q2_types.feature_data import FeatureData, Taxonomy
from q2_types.feature_table import FeatureTable, Frequency, RelativeFrequency
from q2_types.sample_data import SampleData
from qiime2.plugin import Bool, Categorical, Choices, Float, Int, List, MetadataColumn, Range, Str

from .._examples import usage as _examples
from .._formats import MGMGeneratorDirFmt, MGMModelDirFmt, MGMReconstructorDirFmt, ModelFiles
from .._progress import report
from .._types import Generator, MGMCorpus, MGMLabels, MGMModel, MGMReconstructor, MGMTrainingHistory, Pretrained
from ..core.reconstruction import (MGnifyMeanReconstructor, RankMedianReconstructor, genus_relative_abundance,
                                   load_reconstructor)
from ..core.samples import samples_with_values
from ..core.schemas import LABEL_COLUMN, LABEL_TEXTS_KEY, PRETRAINING_RECORD_FILE, SAMPLE_ID, strict_json
from ..core.settings import GENERAL_MODEL_SIZE as S, NEURAL as N, PRETRAINING as P, SAMPLING, NeuralSettings
from ..core.tokenizer import MAX_LENGTH, Corpus, tokenize_matrix
from ..core.vocab import EOS_ID, LABEL_PREFIX, LABEL_SUFFIX, is_label_token, label_ids, mgm_vocabulary
from ..visualizers.evaluate_generated import evaluate_generated
from ._parameters import DEVICE_DESCRIPTION, DEVICES, EVALUATION_PARAMETERS, SEED, citations

RECONSTRUCTORS = ("neural", "rank-median")

PRETRAINING_PARAMETERS = {
    "epochs": Int % Range(1, 10_000), "learning_rate": Float % Range(0, 1, inclusive_start=False),
    "batch_size": Int % Range(1, 4096), "validation_fraction": Float % Range(0.01, 0.5, inclusive_end=True),
    "patience": Int % Range(1, 1000), "random_state": SEED, "device": DEVICES,
}
PRETRAINING_DESCRIPTIONS = {
    "epochs": "Most passes over the sentences; training stops earlier when the validation loss stops improving.",
    "learning_rate": "Peak learning rate of AdamW (linear warm-up over the first 10% of steps, then linear decay); "
                     "upstream MGM pretrains at 1e-3.",
    "batch_size": "Sentences per step and process (under torchrun, per GPU or CPU process).",
    "validation_fraction": "Share of the sentences held out to measure the validation loss each epoch.",
    "patience": "Epochs without a lower validation loss before stopping; the best epoch's weights are kept.",
    "random_state": "Seed of the split, the initial weights and the batch order: the same seed gives the same model.",
    "device": DEVICE_DESCRIPTION,
}
CORPORA_DESCRIPTION = "One or more corpora (from `tokenize`) to learn from; a sample may appear in only one."
PRETRAINED_HISTORY = "Training and validation loss and perplexity per epoch (viewable as metadata)."


def _sentences(corpora):
    """All corpora's sentences, one Series; a sample ID in two corpora is a clear error."""
    from ..core.pretraining import PretrainingError
    sentences = pd.concat([corpus.samples.sentence for corpus in corpora])
    if sentences.index.has_duplicates:
        shared = sentences.index[sentences.index.duplicated()].unique()
        raise PretrainingError(f"Sample {shared[0]!r} is in more than one corpus ({len(shared)} shared sample(s)); "
                               "give each sample once: pass each corpus once, or filter the shared samples out of "
                               "one table (qiime feature-table filter-samples --p-exclude-ids) and tokenize it again "
                               "(or rename the samples of one corpus).")
    return sentences


def _starting_model(model):
    """The general model, or the given one, to continue pretraining from."""
    from ..core.models import load_general_model, load_model
    if model is None:
        network, vocabulary, provenance = load_general_model()
        return network, vocabulary, {"start": "the general model", **provenance}
    network, vocabulary, _ = load_model(model.path)
    return network, vocabulary, {"start": "the given model"}


def _settings(epochs, learning_rate, batch_size, validation_fraction, patience, random_state, device):
    from ..core.inference import resolve_device
    from ..core.settings import PretrainingSettings
    return PretrainingSettings(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                               validation_fraction=validation_fraction, patience=patience,
                               random_state=random_state, device=resolve_device(device))


def _check_size(n_head, n_embd):
    """A model from scratch splits its width among its heads: n_head must divide n_embd (transformers' own error
    names neither parameter's fix)."""
    from ..core.pretraining import PretrainingError
    if n_embd % n_head:
        up, down = n_head * -(-n_embd // n_head), n_head * (n_embd // n_head)
        width = up if up <= 4096 else down  # within n_embd's Range(8, 4096): down >= 4096 - 63 when up is not
        raise PretrainingError(f"n_head ({n_head}) must divide n_embd ({n_embd}): each head reads an equal share "
                               f"of the width. Give n_embd {width} (a multiple of n_head), or an n_head that "
                               f"divides {n_embd}.")


def _save(network, vocabulary, history, settings, record, out):
    from ..core.models import save_model
    save_model(network, vocabulary, out.path)
    record = {**record, "settings": dataclasses.asdict(settings),
              "history": history.reset_index().to_dict(orient="list")}
    (out.path / PRETRAINING_RECORD_FILE).write_text(
        json.dumps(strict_json(record), indent=2, allow_nan=False, default=float) + "\n")
    return out, history


def pretrain(corpora: Corpus, model: MGMModelDirFmt = None, from_scratch: bool = False, n_layer: int = S["n_layer"],
             n_head: int = S["n_head"], n_embd: int = S["n_embd"], n_positions: int = S["n_positions"],
             epochs: int = P.epochs, learning_rate: float = P.learning_rate, batch_size: int = P.batch_size,
             validation_fraction: float = P.validation_fraction, patience: int = P.patience,
             random_state: int = P.random_state, device: str = P.device) -> (MGMModelDirFmt, pd.DataFrame):
    from ..core.inference import encode
    from ..core.pretraining import new_model, new_model_config, pretrain as pretrain_model
    if from_scratch:  # MGM's vocabulary with random weights: the general model's weights are not read
        _check_size(n_head, n_embd)
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
                       epochs: int = P.epochs, learning_rate: float = P.learning_rate, batch_size: int = P.batch_size,
                       validation_fraction: float = P.validation_fraction, patience: int = P.patience,
                       random_state: int = P.random_state,
                       device: str = P.device) -> (MGMGeneratorDirFmt, pd.DataFrame):
    from ..core.inference import encode
    from ..core.pretraining import (PretrainingError, add_label_tokens, label_token, pretrain as pretrain_model,
                                    prompt_ids)
    network, vocabulary, start = _starting_model(model)
    sentences = _sentences(corpora)
    _, (labels,) = samples_with_values(sentences.index, [(metadata.name, metadata.to_series())], PretrainingError,
                                       report, where="the corpora's", missing_samples="ignore")
    network, vocabulary = add_label_tokens(network, vocabulary, labels)
    ids = prompt_ids(encode(sentences.loc[labels.index], vocabulary), labels, vocabulary,
                     network.config.n_positions)
    report(f"pretraining a generator from {start['start']} on {len(ids)} sentences prompted by "
           f"{labels.nunique()} labels of {metadata.name!r}")
    settings = _settings(epochs, learning_rate, batch_size, validation_fraction, patience, random_state, device)
    network, history = pretrain_model(network, ids, settings, report=report)
    texts = {**(label_texts(model.path) if model is not None else {}),
             **{label_token(label): str(label) for label in labels.unique()}}
    record = {**start, "n_sentences": len(ids), "n_corpora": len(corpora), "label_column": metadata.name,
              "label_counts": labels.astype(str).value_counts().sort_index().to_dict(),
              "label_tokens": [vocabulary.tokens[i] for i in label_ids(vocabulary)],
              LABEL_TEXTS_KEY: dict(sorted(texts.items()))}
    return _save(network, vocabulary, history, settings, record, MGMGeneratorDirFmt())


def label_texts(model_dir) -> dict:
    """{label token: the label as the metadata wrote it} of a generator (its pretraining.json); empty for a model
    without labels or a generator from before q2-mgm kept the text, whose labels then read as their tokens do."""
    path = pathlib.Path(model_dir) / PRETRAINING_RECORD_FILE
    return json.loads(path.read_text()).get(LABEL_TEXTS_KEY, {}) if path.is_file() else {}


def _prompts(vocabulary, labels):
    """The label tokens to prompt with (all of the model's when none are asked for), or [None] for a model
    without labels."""
    from ..core.pretraining import PretrainingError, label_token
    known = [vocabulary.tokens[i] for i in label_ids(vocabulary)]
    if not known:
        if labels:
            raise PretrainingError("This model was pretrained without labels; leave `labels` out to generate "
                                   "unconditioned samples, or pretrain a generator with pretrain-generator.")
        return [None]
    if not labels:
        return known
    # a blank label names no label token: it is unknown, as is any label the generator was not pretrained on
    asked = [label if is_label_token(label) else label_token(label) if label.strip() else None for label in labels]
    unknown = [label for label, token in zip(labels, asked) if token not in known]
    if unknown:
        raise PretrainingError(f"The generator has no label {unknown[0]!r}; it knows "
                               f"{', '.join(map(_label_of, known))}. Give labels among these, or leave `labels` out "
                               "to generate for all of them.")
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
        index=pd.Index(names, name=SAMPLE_ID))
    counts = pd.Series([g for names_ in genera for g in names_]).value_counts()
    features = pd.DataFrame({"taxonomy": counts.index, "genus": counts.index, "status": "kept",
                             "n_samples": counts.to_numpy(), "mean_relative_abundance": np.nan},
                            index=pd.Index(counts.index, name="feature-id"))
    dropped = pd.DataFrame({"reason": pd.Series(dtype=str), "total": pd.Series(dtype=float)},
                           index=pd.Index([], name=SAMPLE_ID))
    return Corpus(samples, features, dropped, int(max_length), False)


def generate(model: ModelFiles, reconstructor: MGMReconstructorDirFmt = None, labels: list = None,
             n_per_label: int = 100, temperature: float = SAMPLING["temperature"], top_k: int = SAMPLING["top_k"],
             top_p: float = SAMPLING["top_p"], max_length: int = MAX_LENGTH, random_state: int = 0,
             device: str = "auto") -> (pd.DataFrame, Corpus, pd.Series):
    from ..core.generation import generate as sample_sentences, sentences_to_genera
    from ..core.inference import resolve_device
    from ..core.models import load_model
    network, vocabulary, _ = load_model(model.path)
    device = resolve_device(device)
    rebuild = MGnifyMeanReconstructor() if reconstructor is None else load_reconstructor(reconstructor.path)
    max_length = min(max_length, network.config.n_positions)
    texts = label_texts(model.path)  # labels as written ("healthy control"), so that they join the real metadata
    names, genera, ended, prompted = [], [], [], []
    for seed_offset, prompt in enumerate(_prompts(vocabulary, labels)):
        name = "unconditioned" if prompt is None else _label_of(prompt)  # sample IDs: no whitespace
        label = texts.get(prompt, name)
        report(f"generating {n_per_label} samples for {label}")
        ids = sample_sentences(network, vocabulary, n_per_label, prompt, temperature, top_k, top_p, max_length,
                               random_state + seed_offset, device)  # each label its own stream: adding one
        genera += sentences_to_genera(ids, vocabulary)               # leaves the others' samples unchanged
        ended += [bool(len(row)) and row[-1] == EOS_ID for row in ids]
        names += [f"{name}_{i}" for i in range(1, n_per_label + 1)]
        prompted += [label] * n_per_label
    report(f"ranks to abundances with the {rebuild.kind} reconstructor")
    abundances = rebuild.predict(genera)
    table = pd.DataFrame([dict(zip(g, a)) for g, a in zip(genera, abundances)], index=names).fillna(0.0)
    table.index.name = SAMPLE_ID
    return (table, _synthetic_corpus(names, genera, ended, max_length),
            pd.Series(prompted, index=pd.Index(names, name=SAMPLE_ID), name=LABEL_COLUMN))


def fit_reconstructor(table: pd.DataFrame, taxonomy: pd.Series = None, kind: str = "neural",
                      harmonize_names: bool = False, epochs: int = N.epochs, learning_rate: float = N.learning_rate,
                      batch_size: int = N.batch_size, validation_fraction: float = N.validation_fraction,
                      patience: int = N.patience, random_state: int = N.random_state) -> MGMReconstructorDirFmt:
    corpus = tokenize_matrix(table.to_numpy(), table.index, table.columns, taxonomy, harmonize_names=harmonize_names)
    relative = genus_relative_abundance(table, taxonomy, harmonize_names)
    report(f"fitting a {kind} reconstructor on {len(corpus.samples)} samples")
    if kind == "neural":
        from ..core.reconstruction.neural import NeuralReconstructor
        rebuild = NeuralReconstructor(NeuralSettings(
            epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
            validation_fraction=validation_fraction, patience=patience, random_state=random_state))
        rebuild.fit(relative, corpus.samples.sentence, report=report)
    else:
        rebuild = RankMedianReconstructor().fit(relative, corpus.samples.sentence)
    out = MGMReconstructorDirFmt()
    rebuild.save(out.path)
    return out


def register(plugin):
    plugin.methods.register_function(
        function=pretrain,
        inputs={"corpora": List[SampleData[MGMCorpus]], "model": MGMModel[Pretrained]},
        parameters={"from_scratch": Bool, "n_layer": Int % Range(1, 64), "n_head": Int % Range(1, 64),
                    "n_embd": Int % Range(8, 4096), "n_positions": Int % Range(8, 4096), **PRETRAINING_PARAMETERS},
        outputs=[("pretrained_model", MGMModel[Pretrained]), ("history", MGMTrainingHistory)],
        input_descriptions={"corpora": CORPORA_DESCRIPTION,
                            "model": "The model to continue pretraining; the general model when left out."},
        parameter_descriptions={
            "from_scratch": "Start from random weights of the size below instead of from a model.",
            "n_layer": "Transformer layers of a model from scratch (upstream: 8).",
            "n_head": "Attention heads per layer of a model from scratch (upstream: 8); must divide n_embd.",
            "n_embd": "Width of a model from scratch (upstream: 256).",
            "n_positions": "Longest sentence a model from scratch reads, in tokens (upstream: 512).",
            **PRETRAINING_DESCRIPTIONS},
        output_descriptions={"pretrained_model": "The pretrained language model, with its corpus size, settings and "
                                                 "training curves in pretraining.json.",
                             "history": PRETRAINED_HISTORY},
        name="Pretrain MGM on your own corpora",
        description="Causal language modelling over genus sentences, as MGM's general model was trained: continue "
                    "from a model (domain adaptation) or start from scratch. The transformers Trainer runs it, so the "
                    "same action scales out under torchrun (q2-mgm's README: `python -m q2_mgm.distributed`).",
        citations=[citations["zhang2026mgm"], citations["radford2019gpt2"], citations["wolf2020transformers"]],
        examples={"pretrain_from_scratch": _examples.pretrain_example},
    )

    plugin.methods.register_function(
        function=pretrain_generator,
        inputs={"corpora": List[SampleData[MGMCorpus]], "model": MGMModel[Pretrained | Generator]},
        parameters={"metadata": MetadataColumn[Categorical], **PRETRAINING_PARAMETERS},
        outputs=[("generator", MGMModel[Generator]), ("history", MGMTrainingHistory)],
        input_descriptions={"corpora": CORPORA_DESCRIPTION,
                            "model": "The model to start from (the general model when left out); a generator's labels "
                                     "are kept and new labels added."},
        parameter_descriptions={"metadata": "The labels to prompt with (e.g. delivery mode or disease state): each "
                                            "sentence becomes <bos> <label> genera <eos>. Samples without a value are "
                                            "left out and counted.",
                                **PRETRAINING_DESCRIPTIONS},
        output_descriptions={"generator": "A label-prompted language model for `generate`.",
                             "history": PRETRAINED_HISTORY},
        name="Pretrain a label-prompted MGM generator",
        description="Upstream's `pretrain --with-label`: the vocabulary grows by one token per label, and the model "
                    "learns sentences that follow their label, so that `generate` can be prompted with one.",
        citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
        examples={"pretrain_a_delivery_mode_generator": _examples.pretrain_generator_example},
    )

    plugin.methods.register_function(
        function=generate,
        inputs={"model": MGMModel[Generator | Pretrained], "reconstructor": MGMReconstructor},
        parameters={"labels": List[Str], "n_per_label": Int % Range(1, 1_000_000),
                    "temperature": Float % Range(0, None, inclusive_start=False), "top_k": Int % Range(0, None),
                    "top_p": Float % Range(0, 1, inclusive_start=False, inclusive_end=True),
                    "max_length": Int % Range(3, 4096), "random_state": SEED, "device": DEVICES},
        outputs=[("table", FeatureTable[RelativeFrequency]), ("corpus", SampleData[MGMCorpus]),
                 ("sample_metadata", SampleData[MGMLabels])],
        input_descriptions={"model": "A generator (from pretrain-generator), or a pretrained model for unconditioned "
                                     "samples.",
                            "reconstructor": "Gives the generated genera abundances (from fit-reconstructor). Left "
                                             "out, each genus gets its MGnify mean abundance, renormalised: no "
                                             "training, but far less realistic (benchmarks/results/generation.md); "
                                             "fit one on your real table."},
        parameter_descriptions={
            "labels": "Labels to prompt with, each one label as written in the metadata the generator was "
                      "pretrained on (default: all of the generator's); not for a model without labels.",
            "n_per_label": "Samples to generate per label.",
            "temperature": "Softmax temperature: below 1 sharpens towards likely genera, above 1 flattens.",
            "top_k": "Sample among the k most likely next tokens only (0: no limit).",
            "top_p": "Sample among the most likely tokens that make up this probability (1: no limit).",
            "max_length": "Longest sentence in tokens (capped at the model's positions).",
            "random_state": "Seed of the sampling: the same seed gives the same samples.",
            "device": DEVICE_DESCRIPTION},
        output_descriptions={"table": "Synthetic profiles (relative abundance of genus tokens), samples named "
                                      "LABEL_INDEX.",
                             "corpus": "The synthetic sentences, without label tokens, for embed or predict.",
                             "sample_metadata": "The label each sample was prompted with (column `label`); use it as "
                                                "metadata."},
        name="Generate synthetic microbial profiles",
        description="Sample sentences from the model (a label token after <bos> prompts each one; label tokens are "
                    "never generated after it, nor is a genus repeated), then give their genera abundances with a "
                    "reconstructor. Evaluate them with evaluate-generated.",
        citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
        examples={"generate_profiles": _examples.generate_example},
    )

    plugin.methods.register_function(
        function=fit_reconstructor,
        inputs={"table": FeatureTable[Frequency | RelativeFrequency], "taxonomy": FeatureData[Taxonomy]},
        parameters={"kind": Str % Choices(*RECONSTRUCTORS), "harmonize_names": Bool,
                    "epochs": Int % Range(1, 100_000), "learning_rate": Float % Range(0, 1, inclusive_start=False),
                    "batch_size": Int % Range(1, 4096), "validation_fraction": Float % Range(0.01, 0.5),
                    "patience": Int % Range(1, 1000), "random_state": SEED},
        outputs=[("reconstructor", MGMReconstructor)],
        input_descriptions={"table": "Real profiles to learn abundances from (counts or relative frequencies).",
                            "taxonomy": "Taxonomy of the table's features; leave out when feature IDs are taxonomy "
                                        "strings."},
        parameter_descriptions={
            "kind": "'neural': a small network from each genus, its rank and MGnify statistics to its abundance, "
                    "trained on Bray-Curtis loss (upstream's reconstructor idea); 'rank-median': each rank's median "
                    "abundance in the table.",
            "harmonize_names": "Recover bracketed, SILVA and GTDB genus names (see tokenize).",
            "epochs": "Most epochs of the neural reconstructor (it stops early on its validation loss).",
            "learning_rate": "Adam learning rate of the neural reconstructor.",
            "batch_size": "Samples per step of the neural reconstructor.",
            "validation_fraction": "Share of samples held out for early stopping (neural).",
            "patience": "Epochs without a better validation Bray-Curtis before stopping (neural).",
            "random_state": "Seed of the split and the weights (neural)."},
        output_descriptions={"reconstructor": "The fitted reconstructor, with its training curve (neural), for "
                                              "generate."},
        name="Fit a ranks-to-abundances reconstructor",
        description="A sentence orders genera but holds no amounts: learn, from real tables, the relative abundances "
                    "that go with a sentence's genera, so that generated sentences become profiles.",
        citations=[citations["zhang2026mgm"]],
        examples={"fit_a_reconstructor": _examples.fit_reconstructor_example},
    )

    plugin.visualizers.register_function(
        function=evaluate_generated,
        inputs={"real_table": FeatureTable[Frequency | RelativeFrequency],
                "synthetic_table": FeatureTable[Frequency | RelativeFrequency], "taxonomy": FeatureData[Taxonomy]},
        parameters={"real_labels": MetadataColumn[Categorical], "synthetic_labels": MetadataColumn[Categorical],
                    **EVALUATION_PARAMETERS},
        input_descriptions={
            "real_table": "Real samples, counts or relative frequencies, at any taxonomic level; collapsed to MGM's "
                          "genera as tokenize does.",
            "synthetic_table": "Synthetic samples whose feature IDs are MGM genus tokens (g__Name), e.g. from "
                               "generate.",
            "taxonomy": "Taxonomy of the real table's features; leave out when its feature IDs are taxonomy strings."},
        parameter_descriptions={
            "real_labels": "The label of each real sample.",
            "synthetic_labels": "The label each synthetic sample was generated for (generate's sample_metadata). "
                                "Only labels on both sides are compared; each needs at least 5 real and 5 synthetic "
                                "samples.",
            "n_estimators": "Trees in each RandomForest (two-sample test, train-on-synthetic and train-on-real).",
            "random_state": "Seed of the subsampling, folds, forests and PERMANOVA permutations."},
        name="How realistic are generated samples?",
        description="Real and synthetic samples side by side, per label: genus prevalence and mean abundance, alpha "
                    "diversity, a Bray-Curtis PCoA of both together (with PERMANOVA), a RandomForest two-sample test "
                    "(ROC AUC of telling real from synthetic; 0.5 is perfect realism), and whether a classifier "
                    "trained on synthetic samples predicts the real labels (train-on-synthetic, test-on-real AUC, "
                    "beside train-on-real). Compare generators at matched sample counts: near-copies of real samples "
                    "also raise the two-sample AUC.",
        citations=[citations["zhang2026mgm"]],
        examples={"evaluate_generated_profiles": _examples.evaluate_generated_example},
    )
