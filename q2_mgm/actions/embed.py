import numpy as np
import pandas as pd
import skbio

from .._formats import ModelFiles
from ..core.inference import encode, sample_embeddings
from ..core.models import load_model
from ..core.tokenizer import Corpus
from ._util import report, resolve_device


def embed(corpus: Corpus, model: ModelFiles, pooling: str = "mean",
          device: str = "auto") -> skbio.OrdinationResults:
    network, vocabulary, _ = load_model(model.path)
    samples = corpus.samples
    token_ids = encode(samples.sentence, vocabulary)
    device = resolve_device(device)
    report(f"embedding {len(samples)} samples ({pooling} pooling) on {device}")
    vectors = sample_embeddings(network, token_ids, pooling, device,
                                progress=lambda done, total: report(f"embedded {done}/{total} samples"))
    return embeddings_as_ordination(vectors, samples.index, f"MGM-{pooling}")


def embeddings_as_ordination(vectors, sample_ids, method):
    """Raw hidden dimensions as ordination axes (Emperor can show them); eigvals are each axis' variance."""
    axes = [f"MGM{i + 1}" for i in range(vectors.shape[1])]
    variance = vectors.var(axis=0).astype(np.float64)
    total = variance.sum()  # zero for a single sample: no axis explains anything, rather than 0/0
    return skbio.OrdinationResults(
        short_method_name=method, long_method_name=f"MGM sample embeddings ({method})",
        eigvals=pd.Series(variance, index=axes),
        samples=pd.DataFrame(vectors.astype(np.float64), index=pd.Index(sample_ids, name=None), columns=axes),
        proportion_explained=pd.Series(variance / total if total > 0 else np.zeros_like(variance), index=axes))
