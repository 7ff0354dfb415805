"""The corpus area: tokenize, general-model, embed and summarize-corpus, registered by `register(plugin)`.
Samples become MGM sentences, the general model becomes an artifact, sentences become embeddings. The core modules
that run the model (torch) are imported by the action functions when called (CONTRIBUTING)."""
import biom
import numpy as np
import pandas as pd
import skbio
from q2_sample_classifier import Classifier, Regressor
from q2_types.feature_data import FeatureData, Taxonomy
from q2_types.feature_table import FeatureTable, Frequency, RelativeFrequency
from q2_types.ordination import PCoAResults
from q2_types.sample_data import SampleData
from qiime2.plugin import Bool, Choices, Int, Range, Str

from .._examples import usage as _examples
from .._formats import MGMModelDirFmt, ModelFiles
from .._progress import report
from .._types import Generator, MGMCorpus, MGMModel, Pretrained
from ..core.settings import POOLINGS
from ..core.tokenizer import MAX_LENGTH, Corpus, tokenize_matrix
from ..visualizers.summarize_corpus import summarize_corpus
from ._parameters import CORPUS_DESCRIPTION, DEVICE_DESCRIPTION, DEVICES, MODEL_DESCRIPTION, citations


def tokenize(table: biom.Table, taxonomy: pd.Series = None, max_length: int = MAX_LENGTH,
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


def general_model() -> MGMModelDirFmt:
    from ..core.models import load_general_model, save_model
    model, vocabulary, provenance = load_general_model()
    report(f"general model: {model.config.n_layer} layers, {len(vocabulary)} tokens, "
           f"source sha256 {provenance['source_sha256']}")
    out = MGMModelDirFmt()
    save_model(model, vocabulary, out.path, **provenance)
    return out


def embed(corpus: Corpus, model: ModelFiles, pooling: str = "mean",
          device: str = "auto") -> skbio.OrdinationResults:
    from ..core.inference import encode, resolve_device, sample_embeddings
    from ..core.models import load_model
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


def register(plugin):
    plugin.methods.register_function(
        function=tokenize,
        inputs={"table": FeatureTable[Frequency | RelativeFrequency], "taxonomy": FeatureData[Taxonomy]},
        parameters={"max_length": Int % Range(2, None), "harmonize_names": Bool},
        outputs=[("corpus", SampleData[MGMCorpus])],
        input_descriptions={
            "table": "Feature table of counts or relative frequencies, at any taxonomic level.",
            "taxonomy": "Taxonomy of the table's features. Leave it out when the feature IDs are taxonomy strings "
                        "(a table collapsed by taxonomy, as q2-taxa's collapse action makes).",
        },
        parameter_descriptions={
            "max_length": "Longest sentence in tokens, <bos> and <eos> included; longer sentences keep their first "
                          "tokens (the general model reads at most 512).",
            "harmonize_names": "Recover genus names that upstream MGM misses: Greengenes brackets ([Ruminococcus]), "
                               "SILVA suffixes (_sensu_stricto_1), GTDB suffixes (_A), spaces and bare genus names. "
                               "Off by default, for token-for-token parity with upstream MGM 0.5.8.",
        },
        output_descriptions={"corpus": CORPUS_DESCRIPTION},
        name="Tokenize samples as MGM sentences",
        description="Collapse features to genera (the first `g__Name` of each taxonomy string), keep the genera in "
                    "MGM's vocabulary, z-score their relative abundances with MGnify's per-genus statistics and order "
                    "them by descending z, exactly as upstream MGM 0.5.8. Samples with no abundance in the vocabulary "
                    "are dropped and reported.",
        citations=[citations["zhang2026mgm"]],
        examples={"tokenize_a_table": _examples.tokenize_example},
    )

    plugin.methods.register_function(
        function=general_model,
        inputs={}, parameters={},
        outputs=[("model", MGMModel[Pretrained])],
        output_descriptions={"model": "The pretrained MGM general model (8 layers, 8 heads, 256 wide, 512 positions, "
                                      "9,669 tokens), with the sha256 of its source weights in versions.json."},
        name="The pretrained MGM general model",
        description="MGM's general model, pretrained on ~260,000 MGnify samples, taken from the installed "
                    "microformer-mgm 0.5.8 package (no download) and stored as safetensors.",
        citations=[citations["zhang2026mgm"], citations["radford2019gpt2"]],
        examples={"get_the_general_model": _examples.general_model_example},
    )

    plugin.methods.register_function(
        function=embed,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Pretrained | Generator | Classifier | Regressor]},
        parameters={"pooling": Str % Choices(*POOLINGS), "device": DEVICES},
        outputs=[("embeddings", PCoAResults)],
        input_descriptions={"corpus": CORPUS_DESCRIPTION,
                            "model": MODEL_DESCRIPTION + " A fine-tuned model embeds with its fine-tuned encoder."},
        parameter_descriptions={
            "pooling": "How a sample's token states become one vector: 'mean' over all its tokens, or the state at "
                       "its 'last' token (what upstream's classifier reads).",
            "device": DEVICE_DESCRIPTION,
        },
        output_descriptions={"embeddings": "One 256-dimensional vector per sample (the model's final hidden states), "
                                           "as ordination axes that Emperor can plot; views as a samples x 256 "
                                           "DataFrame."},
        name="Embed samples with an MGM model",
        description="Run the model over each sentence (batched by length, no gradients) and pool its final hidden "
                    "states into one vector per sample.",
        citations=[citations["zhang2026mgm"], citations["wolf2020transformers"]],
        examples={"embed_samples": _examples.embed_example},
    )

    plugin.visualizers.register_function(
        function=summarize_corpus,
        inputs={"corpus": SampleData[MGMCorpus]},
        parameters={},
        input_descriptions={"corpus": CORPUS_DESCRIPTION},
        name="Summarize MGM vocabulary coverage",
        description="How much of each sample MGM sees: vocabulary coverage, the genera and taxa dropped and why (no "
                    "genus rank, not in the vocabulary), sentence lengths and truncation, dropped samples; plots and "
                    "TSVs to download. Use it to judge whether MGM suits your data.",
        citations=[citations["zhang2026mgm"]],
        examples={"summarize_a_corpus": _examples.summarize_corpus_example},
    )
