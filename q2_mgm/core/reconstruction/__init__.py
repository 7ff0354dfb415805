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

`neural` imports torch: NeuralReconstructor is imported from it when first asked for (NEURAL and NeuralSettings,
fit-reconstructor's defaults, live in core.settings), so that the formats and registrations need no torch.
"""
import importlib

from .base import (KINDS, MAX_RANK, RECORD, WEIGHTS, ReconstructionError, ReconstructorFormatError, bray_curtis,
                   evaluate, genus_relative_abundance, load_reconstructor, per_sample_bray_curtis, sentence_genera)
from .simple import MGnifyMeanReconstructor, RankMedianReconstructor
from ..settings import NEURAL, NeuralSettings

__all__ = ["KINDS", "MAX_RANK", "NEURAL", "RECORD", "WEIGHTS", "MGnifyMeanReconstructor", "NeuralReconstructor",
           "NeuralSettings", "RankMedianReconstructor", "ReconstructionError", "ReconstructorFormatError",
           "bray_curtis", "evaluate", "genus_relative_abundance", "load_reconstructor", "per_sample_bray_curtis",
           "sentence_genera"]


def __getattr__(name):
    if name == "NeuralReconstructor":
        return importlib.import_module(".neural", __name__).NeuralReconstructor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
