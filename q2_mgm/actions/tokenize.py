import biom
import pandas as pd

from ..core.tokenizer import Corpus, tokenize_matrix
from ._util import report


def tokenize(table: biom.Table, taxonomy: pd.Series = None, max_length: int = 512,
             harmonize_names: bool = False) -> Corpus:
    corpus = tokenize_matrix(table.matrix_data.T, table.ids("sample"), table.ids("observation"), taxonomy,
                             max_length, harmonize_names)
    _report_corpus(corpus, table.shape[1])
    return corpus


def _report_corpus(corpus, n_input_samples):
    samples, features = corpus.samples, corpus.features
    report(f"tokenized {len(samples)} of {n_input_samples} samples; median sentence {samples.n_tokens.median():.0f} "
           f"tokens; median vocabulary coverage {samples.vocabulary_coverage.median():.1%}")
    for status, count in features.status.value_counts().items():
        report(f"features {status}: {count}")
    for reason, count in corpus.dropped_samples.reason.value_counts().items():
        report(f"dropped {count} samples: {reason}")
    if samples.truncated.any():
        report(f"{int(samples.truncated.sum())} samples were truncated to {corpus.max_length} tokens")
