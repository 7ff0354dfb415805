"""keystone-genera: score each genus by the attention (or attribution) an MGM model gives it, per class."""
import pandas as pd
import qiime2

from .._formats import ModelFiles
from ..core.keystone import aggregate
from ..core.keystone_samples import score_samples
from ..core.tokenizer import Corpus
from ._util import report


def keystone_genera(corpus: Corpus, model: ModelFiles, metadata: qiime2.CategoricalMetadataColumn = None,
                    subjects: qiime2.CategoricalMetadataColumn = None, method: str = "attention",
                    min_samples: int = 10, device: str = "auto") -> pd.DataFrame:
    scored = score_samples(corpus, model.path, None if metadata is None else metadata.to_series(), method, device,
                           report)
    summary = aggregate(*scored.units(None if subjects is None else subjects.to_series(), report),
                        min_samples=min_samples, n_bootstrap=1)
    for group, n in summary.n_excluded.items():
        report(f"{group}: {n} genera in fewer than {min_samples} samples are scored but not ranked")
    importance = summary.importance
    importance.index.name = "feature-id"
    return importance
