"""Ranks -> abundances: give the genera of a (generated) sentence relative abundances summing to 1.

A sentence ranks genera by MGnify z-score, not by abundance, so rank alone says little; the genus says more.
A default that needs no data, MGnifyMeanReconstructor (each genus' MGnify mean, renormalised), and two
reconstructors fitted on real profiles and their own sentences:
- RankMedianReconstructor: the median relative abundance of each rank in the training corpus, renormalised.
- NeuralReconstructor: upstream's Reconstructor idea (a sentence in, a masked softmax over its genera out, trained
  on Bray-Curtis loss with Adam, early stopping and gradient clipping at 1.0), on a compact network: upstream's is
  three dense layers over all 9,665 genera (about 470 million weights) and codes rank as 1 + sin(rank); here each
  genus is an embedding plus its MGnify mean and std, ranks are learned embeddings, and a pooled sentence vector
  gives context.
Both save as JSON (+ safetensors weights for the neural one); nothing is pickled.
"""
import dataclasses
import functools
import json
import math
import pathlib

import numpy as np
import pandas as pd
import safetensors
import safetensors.torch
import torch
from sklearn.model_selection import ShuffleSplit
from torch import nn

from .models import versions
from .settings import LoopSettings
from .pretraining import is_label_token
from .tokenizer import assign_genera
from .vocab import SPECIAL_TOKENS, genus_statistics

RECORD, WEIGHTS = "reconstructor.json", "model.safetensors"
MAX_RANK = 512
PREDICT_BATCH = 256


class ReconstructionError(ValueError):
    """Inputs that cannot fit or apply a reconstructor; the message names the problem and the fix."""


class ReconstructorFormatError(ValueError):
    """A saved reconstructor that is incomplete or inconsistent; the message names the file."""


# --- data ---

def genus_relative_abundance(table: pd.DataFrame, taxonomy=None, harmonize_names=False):
    """Samples x MGM genera relative abundance, as the tokenizer normalises (give it the tokenizer's taxonomy and
    harmonize_names): features summed per vocabulary genus, divided by the sample's total in the vocabulary.
    Features the taxonomy lacks and samples without any vocabulary genus are left out."""
    taxa = pd.Series(table.columns.astype(str), index=table.columns) if taxonomy is None else \
        taxonomy.reindex(table.columns).astype(str)
    column, genus, _ = assign_genera(taxa, harmonize_names)
    in_vocabulary = column >= 0
    summed = table.loc[:, in_vocabulary].T.groupby(genus[in_vocabulary].to_numpy()).sum().T.astype(float)
    totals = summed.sum(axis=1)
    return summed[totals > 0].div(totals[totals > 0], axis=0)


def sentence_genera(sentences):
    """Genus tokens of each sentence (text `<bos> g__A ... <eos>` or a token list), in rank order."""
    return [[token for token in (sentence.split() if isinstance(sentence, str) else sentence)
             if token not in SPECIAL_TOKENS and not is_label_token(token)] for sentence in sentences]


def bray_curtis(a, b):
    """Bray-Curtis dissimilarity of two aligned non-negative profiles: sum|a - b| / sum(a + b)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    total = (a + b).sum()
    if total == 0:
        raise ReconstructionError("Bray-Curtis is undefined for two empty profiles.")
    return float(np.abs(a - b).sum() / total)


def _aligned(relative, sentences):
    """Genus lists and real profiles (as arrays along each sentence) of the samples in both."""
    if not isinstance(sentences, pd.Series):
        raise ReconstructionError("Give the sentences as a pandas Series indexed by sample ID (e.g. "
                                  "corpus.samples.sentence), so that they can be matched to the profiles.")
    shared = sentences.index.intersection(relative.index)
    if len(shared) == 0:
        raise ReconstructionError("No sample ID is both among the sentences and in the abundance table; they must "
                                  "come from the same samples.")
    genera = sentence_genera(sentences.loc[shared])
    rows = relative.loc[shared]
    profiles = [rows.loc[sample].reindex(names, fill_value=0.0).to_numpy(float)
                for sample, names in zip(shared, genera)]
    for sample, names, profile in zip(shared, genera, profiles):
        if not (profile > 0).all():
            raise ReconstructionError(
                f"Sample {sample}'s sentence names {names[int(np.argmin(profile > 0))]}, which has no abundance in "
                "the table: the sentences were not made from this table. Use genus_relative_abundance on the table "
                "that was tokenized, with the same taxonomy and harmonize_names.")
    return shared, genera, profiles


def _check_predictable(genera):
    empty = sum(1 for names in genera if not names)
    if empty:
        raise ReconstructionError(f"{empty} sentences hold no genus; a sentence needs at least one to reconstruct.")


# --- evaluation ---

def per_sample_bray_curtis(reconstructor, relative: pd.DataFrame, sentences: pd.Series):
    """Bray-Curtis between each sample's real profile (all its genera) and the reconstruction from its sentence."""
    shared, genera, _ = _aligned(relative, sentences)
    predicted = reconstructor.predict(genera)
    rows = relative.loc[shared]
    scores = []
    for sample, names, values in zip(shared, genera, predicted):
        real, reconstructed = rows.loc[sample], pd.Series(values, index=names)
        genera_of_both = real.index.union(reconstructed.index)
        scores.append(bray_curtis(real.reindex(genera_of_both, fill_value=0.0),
                                  reconstructed.reindex(genera_of_both, fill_value=0.0)))
    return pd.Series(scores, index=shared, name="bray_curtis")


def evaluate(reconstructor, relative: pd.DataFrame, sentences: pd.Series):
    """Mean Bray-Curtis between real profiles and their reconstructions (0: perfect, 1: nothing shared)."""
    return float(per_sample_bray_curtis(reconstructor, relative, sentences).mean())


# --- MGnify means: no training ---

class MGnifyMeanReconstructor:
    """Each genus gets its mean relative abundance over MGnify (MGM's own per-genus statistics), renormalised over
    the sentence: needs no training data, so `generate` can give abundances without a fitted reconstructor."""

    kind = "mgnify-mean"

    def fit(self, relative=None, sentences=None):
        return self

    def predict(self, genera):
        """One array per sentence (genus lists or sentence text): relative abundances along its genera."""
        genera = sentence_genera(genera)
        _check_predictable(genera)
        means = genus_statistics()["mean"]
        unknown = {g for names in genera for g in names} - set(means.index)
        if unknown:
            raise ReconstructionError(f"{len(unknown)} genera are not MGM genera (for example "
                                      f"{sorted(unknown)[0]}); give sentences made with MGM's vocabulary.")
        return [(values := means.loc[names].to_numpy(float)) / values.sum() for names in genera]

    def save(self, directory):
        _write_record(directory, {"kind": self.kind})

    @classmethod
    def from_record(cls, record, directory):
        return cls()


# --- rank medians ---

class RankMedianReconstructor:
    """Each rank gets the median relative abundance of that rank in the training corpus; ranks beyond the longest
    training sentence get the last rank's median."""

    kind = "rank-median"

    def __init__(self, medians=None):
        self.medians = None if medians is None else np.asarray(medians, dtype=float)

    def fit(self, relative: pd.DataFrame, sentences: pd.Series):
        """Fit on real relative abundance (samples x genera, e.g. genus_relative_abundance) and the samples'
        sentences (Series indexed by sample ID)."""
        _, _, profiles = _aligned(relative, sentences)
        longest = max(len(profile) for profile in profiles)
        padded = np.full((len(profiles), longest), np.nan)
        for row, profile in enumerate(profiles):
            padded[row, :len(profile)] = profile
        self.medians = np.nanmedian(padded, axis=0)
        return self

    def predict(self, genera):
        """One array per sentence (genus lists or sentence text): relative abundances along its genera."""
        if self.medians is None:
            raise ReconstructionError("The reconstructor is not fitted; call fit first.")
        genera = sentence_genera(genera)
        _check_predictable(genera)
        out = []
        for names in genera:
            values = self.medians[np.minimum(np.arange(len(names)), len(self.medians) - 1)]
            out.append(values / values.sum())
        return out

    def save(self, directory):
        """Write reconstructor.json (the medians) into directory."""
        if self.medians is None:
            raise ReconstructionError("The reconstructor is not fitted; call fit first.")
        _write_record(directory, {"kind": self.kind, "medians": self.medians.tolist()})

    @classmethod
    def load(cls, directory):
        """The rank-median reconstructor saved in directory, validated."""
        return _load_kind(cls, directory)

    @classmethod
    def from_record(cls, record, directory):
        medians = record.get("medians")
        if not isinstance(medians, list) or not medians or \
                not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in medians):
            raise ReconstructorFormatError(f"{RECORD} lists no valid medians: it needs a non-empty list of "
                                           "positive numbers.")
        return cls(medians)


# --- neural ---

@dataclasses.dataclass
class NeuralSettings(LoopSettings):
    """Training settings, the defaults of fit-reconstructor; upstream's are Adam at 2e-4, batches of 64, up to 500
    epochs, patience 3."""
    epochs: int = 300
    learning_rate: float = 1e-3
    batch_size: int = 64
    validation_fraction: float = 0.1
    patience: int = 10
    width: int = 64
    genus_dropout: float = 0.1  # share of genera trained as `unseen`, so that row 0 learns from statistics alone


@functools.lru_cache(maxsize=1)
def _genus_features():
    """({genus: row}, each vocabulary genus' MGnify log mean and log std, standardised): statistics known for
    genera unseen in training."""
    stats = genus_statistics()
    logs = np.log(stats[["mean", "std"]].to_numpy())
    return {genus: i for i, genus in enumerate(stats.index)}, ((logs - logs.mean(0)) / logs.std(0)).astype(np.float32)


class _AbundanceNet(nn.Module):
    N_FEATURES = 4  # genus log mean, log std; rank / length; log length

    def __init__(self, n_genera, width):
        super().__init__()
        self.genus = nn.Embedding(n_genera + 1, width)  # row 0: a genus not seen in training
        self.rank = nn.Embedding(MAX_RANK, width)
        self.features = nn.Linear(self.N_FEATURES, width)
        self.token = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, genus, rank, features, mask):
        hidden = self.token(self.genus(genus) + self.rank(rank) + self.features(features))
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        context = (hidden * weights).sum(1) / weights.sum(1)  # what else is in the sample
        logits = self.head(torch.cat([hidden, context.unsqueeze(1).expand_as(hidden)], -1)).squeeze(-1)
        return torch.softmax(logits.masked_fill(~mask, -torch.inf), -1)


def _bray_curtis_loss(predicted, target):
    """Mean per-sample Bray-Curtis (padding is zero in both)."""
    return ((predicted - target).abs().sum(1) / (predicted + target).sum(1)).mean()


class NeuralReconstructor:
    """A small network from a sentence (genus, rank, MGnify statistics) to abundances along it."""

    kind = "neural"

    def __init__(self, settings: NeuralSettings = None):
        self.settings = settings or NeuralSettings()
        self.genera, self.net = [], None
        self.history = pd.DataFrame(columns=["train_loss", "validation_loss"])

    def _build(self, genera):
        self.genera = list(genera)
        self.index = {genus: i + 1 for i, genus in enumerate(self.genera)}
        self.net = _AbundanceNet(len(self.genera), self.settings.width)
        return self

    def _batch(self, genera, targets=None):
        """Padded network inputs (genus, rank, features, mask) and targets for a list of genus lists."""
        rows, features = _genus_features()
        unknown = {g for names in genera for g in names} - rows.keys()
        if unknown:
            raise ReconstructionError(f"{len(unknown)} genera are not MGM genera (for example "
                                      f"{sorted(unknown)[0]}); give sentences made with MGM's vocabulary.")
        lengths = torch.tensor([len(names) for names in genera])
        width = int(lengths.max())
        mask = torch.arange(width) < lengths.unsqueeze(1)
        genus = torch.zeros(len(genera), width, dtype=torch.long)
        stats = torch.zeros(len(genera), width, _AbundanceNet.N_FEATURES)
        target = torch.zeros(len(genera), width)
        genus[mask] = torch.tensor([self.index.get(g, 0) for names in genera for g in names], dtype=torch.long)
        stats[mask, :2] = torch.from_numpy(features[[rows[g] for names in genera for g in names]])
        stats[..., 2] = torch.arange(width) / lengths.unsqueeze(1)
        stats[..., 3] = (lengths.log() / math.log(MAX_RANK)).unsqueeze(1)
        if targets is not None:
            target[mask] = torch.from_numpy(np.concatenate(targets).astype(np.float32))
        rank = torch.arange(width).clamp(max=MAX_RANK - 1).expand(len(genera), width)
        return (genus, rank, stats * mask.unsqueeze(-1), mask), target

    def fit(self, relative: pd.DataFrame, sentences: pd.Series, report=print):
        """Fit on real relative abundance (samples x genera, e.g. genus_relative_abundance) and the samples'
        sentences (Series indexed by sample ID): Adam on Bray-Curtis loss, stopping when validation loss has not
        improved for `patience` epochs and keeping the best epoch's weights. The same random_state gives the same
        weights; the global torch RNG is untouched."""
        _, genera, profiles = _aligned(relative, sentences)
        _check_predictable(genera)
        settings = self.settings
        n_validation = math.ceil(len(genera) * settings.validation_fraction)
        if not 0 < settings.validation_fraction < 1 or n_validation >= len(genera):
            raise ReconstructionError(f"{len(genera)} samples with validation_fraction "
                                      f"{settings.validation_fraction} leave none to train or validate on; give "
                                      "more samples or a validation_fraction strictly between 0 and 1.")
        train, val = next(ShuffleSplit(1, test_size=n_validation, random_state=settings.random_state)
                          .split(np.arange(len(genera))))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.random_state)
            self._build(sorted({g for i in train for g in genera[i]}))
            self._train([genera[i] for i in train], [profiles[i] for i in train],
                        self._batch([genera[i] for i in val], [profiles[i] for i in val]), report)
        return self

    def _train(self, genera, profiles, validation, report):
        settings, rng = self.settings, np.random.default_rng(self.settings.random_state)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=settings.learning_rate)
        best, best_state, waited, rows = math.inf, None, 0, []
        for epoch in range(settings.epochs):
            self.net.train()
            order, total = rng.permutation(len(genera)), 0.0
            for start in range(0, len(order), settings.batch_size):
                batch = order[start:start + settings.batch_size]
                (genus, *inputs), target = self._batch([genera[i] for i in batch], [profiles[i] for i in batch])
                genus = genus.masked_fill(torch.rand(genus.shape) < settings.genus_dropout, 0)
                loss = _bray_curtis_loss(self.net(genus, *inputs), target)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                optimizer.step()
                total += loss.item() * len(batch)
            self.net.eval()
            with torch.no_grad():
                val_loss = _bray_curtis_loss(self.net(*validation[0]), validation[1]).item()
            rows.append({"train_loss": total / len(genera), "validation_loss": val_loss})
            if val_loss < best:
                best, waited = val_loss, 0
                best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            elif (waited := waited + 1) >= settings.patience:
                break
        self.net.load_state_dict(best_state)
        self.net.eval()
        self.history = pd.DataFrame(rows, index=pd.Index([str(i) for i in range(1, len(rows) + 1)], name="epoch"))
        report(f"reconstructor: {len(rows)} epochs, best validation Bray-Curtis {best:.4f}")

    def predict(self, genera):
        """One array per sentence (genus lists or sentence text): relative abundances along its genera."""
        if self.net is None:
            raise ReconstructionError("The reconstructor is not fitted; call fit first.")
        genera = sentence_genera(genera)
        _check_predictable(genera)
        out = []
        with torch.no_grad():
            for start in range(0, len(genera), PREDICT_BATCH):
                chunk = genera[start:start + PREDICT_BATCH]
                predicted = self.net(*self._batch(chunk)[0]).numpy().astype(float)
                out += [row[:len(names)] / row[:len(names)].sum() for row, names in zip(predicted, chunk)]
        return out

    def save(self, directory):
        """Write reconstructor.json (genera, settings, history) and model.safetensors into directory."""
        if self.net is None:
            raise ReconstructionError("The reconstructor is not fitted; call fit first.")
        _write_record(directory, {"kind": self.kind, "genera": self.genera,
                                  "settings": dataclasses.asdict(self.settings),
                                  "history": self.history.reset_index().to_dict(orient="list")})
        safetensors.torch.save_file(self.net.state_dict(), str(pathlib.Path(directory) / WEIGHTS))

    @classmethod
    def load(cls, directory):
        """The neural reconstructor saved in directory, validated."""
        return _load_kind(cls, directory)

    @classmethod
    def from_record(cls, record, directory):
        try:
            genera, settings = record["genera"], NeuralSettings(**record["settings"])
        except (KeyError, TypeError) as error:
            raise ReconstructorFormatError(f"{RECORD} lacks a valid genera list or settings ({error}).") from None
        if not genera or not all(isinstance(g, str) for g in genera) or len(set(genera)) != len(genera):
            raise ReconstructorFormatError(f"{RECORD}'s genera must be a non-empty list of distinct genus names.")
        reconstructor = cls(settings)._build(genera)
        _load_weights(reconstructor.net, pathlib.Path(directory) / WEIGHTS)
        try:
            reconstructor.history = pd.DataFrame(record.get("history") or {"epoch": []}).set_index("epoch")
        except (KeyError, ValueError, TypeError) as error:
            raise ReconstructorFormatError(f"{RECORD}'s history is not a table with an epoch column ({error}).") \
                from None
        return reconstructor


def _load_weights(net, path):
    if not path.is_file():
        raise ReconstructorFormatError(f"The reconstructor is missing {WEIGHTS}; a neural reconstructor needs "
                                       f"{RECORD} and {WEIGHTS}.")
    try:
        with safetensors.safe_open(str(path), framework="pt") as weights:
            stored = {name: weights.get_tensor(name) for name in weights.keys()}
    except Exception as error:  # safetensors raises its own error types for any malformed header
        raise ReconstructorFormatError(f"{WEIGHTS} is not a valid safetensors file ({error}); q2-mgm never "
                                       "unpickles weights. Fit the reconstructor again.") from None
    expected = {name: tuple(t.shape) for name, t in net.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in stored.items()}
    if found != expected:
        wrong = sorted(set(expected.items()) ^ set(found.items()))[:2]
        raise ReconstructorFormatError(f"{WEIGHTS} does not match {RECORD} (the genera and width it records): "
                                       f"{', '.join(f'{n} {s}' for n, s in wrong)}.")
    net.load_state_dict(stored)
    net.eval()


# --- saving and loading ---

KINDS = {cls.kind: cls for cls in (MGnifyMeanReconstructor, RankMedianReconstructor, NeuralReconstructor)}


def _write_record(directory, record):
    record = {"format": "q2-mgm reconstructor", **record, "versions": versions()}
    (pathlib.Path(directory) / RECORD).write_text(json.dumps(record, indent=2, default=float) + "\n")


def load_reconstructor(directory):
    """A reconstructor saved with .save(directory), validated; ReconstructorFormatError names what is wrong."""
    path = pathlib.Path(directory) / RECORD
    if not path.is_file():
        raise ReconstructorFormatError(f"The reconstructor is missing {RECORD}; save it with .save(directory).")
    try:
        record = json.loads(path.read_text())
    except ValueError as error:
        raise ReconstructorFormatError(f"{RECORD} is not valid JSON: {error}") from None
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in KINDS:
        raise ReconstructorFormatError(f"{RECORD} names reconstructor kind {kind!r}; q2-mgm knows "
                                       f"{', '.join(KINDS)}.")
    return KINDS[kind].from_record(record, directory)


def _load_kind(cls, directory):
    reconstructor = load_reconstructor(directory)
    if not isinstance(reconstructor, cls):
        raise ReconstructorFormatError(f"The reconstructor in {directory} is {reconstructor.kind}, not {cls.kind}; "
                                       "load it with load_reconstructor.")
    return reconstructor
