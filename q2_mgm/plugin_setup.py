"""The `mgm` plugin: registrations only."""
import importlib

from qiime2.plugin import Bool, Choices, Citations, Int, Plugin, Range, Str
from q2_types.feature_data import FeatureData, Taxonomy
from q2_types.feature_table import FeatureTable, Frequency, RelativeFrequency
from q2_types.ordination import PCoAResults
from q2_types.sample_data import SampleData

from . import __version__, _examples
from ._formats import (CorpusDroppedSamplesFormat, CorpusFeaturesFormat, CorpusSamplesFormat, JSONFormat,
                       MGMCorpusDirFmt, MGMModelDirFmt, SafetensorsFormat, VocabularyFormat)
from ._types import MGMCorpus, MGMModel, Pretrained
from .actions.embed import embed
from .actions.models import general_model
from .actions.tokenize import tokenize
from .core.inference import POOLINGS
from .visualizers.summarize_corpus import summarize_corpus

citations = Citations.load("citations.bib", package="q2_mgm")

plugin = Plugin(
    name="mgm",
    version=__version__,
    website="https://github.com/q2-mgm/q2-mgm",
    package="q2_mgm",
    description="MGM, the Microbial General Model: a GPT-2 language model pretrained on ~260,000 MGnify samples, "
                "where each sample is a sentence of genus tokens ranked by normalised abundance. Tokenize tables, "
                "embed samples with the pretrained general model, and check how well MGM's vocabulary covers your "
                "data.",
    short_description="MGM, the Microbial General Model, for QIIME 2.",
    citations=[citations["zhang2026mgm"]],
)

plugin.register_semantic_types(MGMModel, Pretrained, MGMCorpus)
plugin.register_formats(MGMModelDirFmt, MGMCorpusDirFmt, CorpusSamplesFormat, CorpusFeaturesFormat,
                        CorpusDroppedSamplesFormat, JSONFormat, SafetensorsFormat, VocabularyFormat)
plugin.register_artifact_class(MGMModel[Pretrained], directory_format=MGMModelDirFmt,
                               description="An MGM GPT-2 language model over genus tokens: config.json, weights as "
                                           "model.safetensors, vocab.txt and versions.json.")
plugin.register_artifact_class(SampleData[MGMCorpus], directory_format=MGMCorpusDirFmt,
                               description="Samples tokenized as MGM sentences, with the tokenization report.")

CORPUS_DESCRIPTION = ("Samples as MGM sentences (<bos> genera by descending normalised abundance <eos>), with the "
                      "per-sample and per-feature tokenization report.")
MODEL_DESCRIPTION = "An MGM model. `qiime mgm general-model` gives the pretrained general model."
DEVICE_DESCRIPTION = "Where to run the model: 'auto' picks a CUDA GPU when torch sees one, else the CPU."
DEVICES = Str % Choices("auto", "cpu", "cuda")

plugin.methods.register_function(
    function=tokenize,
    inputs={"table": FeatureTable[Frequency | RelativeFrequency], "taxonomy": FeatureData[Taxonomy]},
    parameters={"max_length": Int % Range(2, None), "harmonize_names": Bool},
    outputs=[("corpus", SampleData[MGMCorpus])],
    input_descriptions={
        "table": "Feature table of counts or relative frequencies, at any taxonomic level.",
        "taxonomy": "Taxonomy of the table's features. Leave it out when the feature IDs are taxonomy strings "
                    "(a table from `qiime taxa collapse`).",
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
    inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Pretrained]},
    parameters={"pooling": Str % Choices(*POOLINGS), "device": DEVICES},
    outputs=[("embeddings", PCoAResults)],
    input_descriptions={"corpus": CORPUS_DESCRIPTION, "model": MODEL_DESCRIPTION},
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

importlib.import_module("q2_mgm._transformers")
