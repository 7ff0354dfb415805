"""The neural reconstructor: upstream's Reconstructor idea on a compact network (see the package docstring)."""
import dataclasses
import functools
import math
import pathlib
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pandas as pd
import safetensors
import safetensors.torch
import torch
from sklearn.model_selection import ShuffleSplit
from torch import nn

from ..settings import NeuralSettings
from ..vocab import PathLike, genus_statistics
from .base import (MAX_RANK, MGM_SENTENCES, PREDICT_BATCH, RECORD, REFIT, WEIGHTS, ReconstructionError,
                   ReconstructorFormatError, Sentences, aligned_profiles, check_predictable, genera_to_predict,
                   load_kind, reconstructor_kind, write_record)


# --- neural ---

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


@reconstructor_kind
class NeuralReconstructor:
    """A small network from a sentence (genus, rank, MGnify statistics) to abundances along it."""

    kind = "neural"

    def __init__(self, settings: Optional[NeuralSettings] = None) -> None:
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
                                      f"{sorted(unknown)[0]}); give sentences made with MGM's vocabulary: "
                                      f"{MGM_SENTENCES}.")
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

    def fit(self, relative: pd.DataFrame, sentences: pd.Series,
            report: Callable[[str], None] = print) -> "NeuralReconstructor":
        """Fit on real relative abundance (samples x genera, e.g. genus_relative_abundance) and the samples'
        sentences (Series indexed by sample ID): Adam on Bray-Curtis loss, stopping when validation loss has not
        improved for `patience` epochs and keeping the best epoch's weights. The same random_state gives the same
        weights; the global torch RNG is untouched."""
        _, genera, profiles = aligned_profiles(relative, sentences)
        check_predictable(genera)
        settings = self.settings
        fraction = settings.validation_fraction
        n_validation = math.ceil(len(genera) * fraction)
        if not 0 < fraction < 1 or n_validation >= len(genera):
            fix = "give a validation_fraction strictly between 0 and 1" if not 0 < fraction < 1 else \
                f"give a table of at least {_fewest_samples(fraction)} samples that hold MGM genera"
            raise ReconstructionError(f"{len(genera)} samples with validation_fraction {fraction} leave none to "
                                      f"train or validate on; {fix}.")
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

    def predict(self, genera: Sentences) -> List[np.ndarray]:
        """One array per sentence (genus lists or sentence text): relative abundances along its genera."""
        genera = genera_to_predict(genera, fitted=self.net is not None)
        out = []
        with torch.no_grad():
            for start in range(0, len(genera), PREDICT_BATCH):
                chunk = genera[start:start + PREDICT_BATCH]
                predicted = self.net(*self._batch(chunk)[0]).numpy().astype(float)
                out += [row[:len(names)] / row[:len(names)].sum() for row, names in zip(predicted, chunk)]
        return out

    def save(self, directory: PathLike) -> None:
        """Write reconstructor.json (genera, settings, history) and model.safetensors into directory."""
        if self.net is None:
            raise ReconstructionError("The reconstructor is not fitted; call fit first.")
        write_record(directory, {"kind": self.kind, "genera": self.genera,
                                  "settings": dataclasses.asdict(self.settings),
                                  "history": self.history.reset_index().to_dict(orient="list")})
        safetensors.torch.save_file(self.net.state_dict(), str(pathlib.Path(directory) / WEIGHTS))

    @classmethod
    def load(cls, directory: PathLike) -> "NeuralReconstructor":
        """The neural reconstructor saved in directory, validated."""
        return load_kind(cls, directory)

    @classmethod
    def from_record(cls, record: Dict[str, Any], directory: PathLike) -> "NeuralReconstructor":
        try:
            genera, settings = record["genera"], NeuralSettings(**record["settings"])
        except (KeyError, TypeError) as error:
            raise ReconstructorFormatError(f"{RECORD} lacks a valid genera list or settings ({error}); {REFIT}.") \
                from None
        if not genera or not all(isinstance(g, str) for g in genera) or len(set(genera)) != len(genera):
            raise ReconstructorFormatError(f"{RECORD}'s genera must be a non-empty list of distinct genus names; "
                                           f"{REFIT}.")
        reconstructor = cls(settings)._build(genera)
        _load_weights(reconstructor.net, pathlib.Path(directory) / WEIGHTS)
        try:
            reconstructor.history = pd.DataFrame(record.get("history") or {"epoch": []}).set_index("epoch")
        except (KeyError, ValueError, TypeError) as error:
            raise ReconstructorFormatError(f"{RECORD}'s history is not a table with an epoch column ({error}); "
                                           f"{REFIT}.") from None
        return reconstructor


def _fewest_samples(fraction):
    """The fewest samples that leave at least one to train on and one to validate on at this validation_fraction."""
    n = 2
    while math.ceil(n * fraction) >= n:
        n += 1
    return n


def _load_weights(net, path):
    if not path.is_file():
        raise ReconstructorFormatError(f"The reconstructor is missing {WEIGHTS}; a neural reconstructor needs "
                                       f"{RECORD} and {WEIGHTS}: {REFIT}.")
    try:
        with safetensors.safe_open(str(path), framework="pt") as weights:
            stored = {name: weights.get_tensor(name) for name in weights.keys()}
    except Exception as error:  # safetensors raises its own error types for any malformed header
        raise ReconstructorFormatError(f"{WEIGHTS} is not a valid safetensors file ({error}); q2-mgm never "
                                       f"unpickles weights. {REFIT[0].upper()}{REFIT[1:]}.") from None
    expected = {name: tuple(t.shape) for name, t in net.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in stored.items()}
    if found != expected:
        wrong = sorted(set(expected.items()) ^ set(found.items()))[:2]
        raise ReconstructorFormatError(f"{WEIGHTS} does not match {RECORD} (the genera and width it records): "
                                       f"{', '.join(f'{n} {s}' for n, s in wrong)}; {REFIT}.")
    net.load_state_dict(stored)
    net.eval()


