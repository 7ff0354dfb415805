"""Views: a corpus as pd.DataFrame, qiime2.Metadata or the core Corpus; embeddings as pd.DataFrame; the labels of
generated samples as pd.Series or qiime2.Metadata; any MGM model as ModelFiles."""
import json

import pandas as pd
import qiime2
import skbio
from q2_types.ordination import OrdinationFormat

from ._formats import (MGMCorpusDirFmt, MGMGeneratorDirFmt, MGMLabelsFormat, MGMModelDirFmt, MGMSupervisedModelDirFmt,
                       ModelFiles, TrainingHistoryFormat)
from .core.tokenizer import Corpus
from .plugin_setup import plugin


def _read_tsv(path, **kwargs):
    return pd.read_csv(str(path), sep="\t", index_col=0, dtype={0: str}, keep_default_na=False, **kwargs)


@plugin.register_transformer
def _corpus_to_format(corpus: Corpus) -> MGMCorpusDirFmt:
    fmt = MGMCorpusDirFmt()
    corpus.samples.to_csv(str(fmt.path / "samples.tsv"), sep="\t", index_label="sample-id")
    corpus.features.to_csv(str(fmt.path / "features.tsv"), sep="\t", index_label="feature-id")
    corpus.dropped_samples.to_csv(str(fmt.path / "dropped_samples.tsv"), sep="\t", index_label="sample-id")
    (fmt.path / "corpus.json").write_text(json.dumps(
        {"max_length": corpus.max_length, "harmonize_names": corpus.harmonize_names}, indent=2) + "\n")
    return fmt


@plugin.register_transformer
def _format_to_corpus(fmt: MGMCorpusDirFmt) -> Corpus:
    parameters = json.loads((fmt.path / "corpus.json").read_text())
    samples = _read_tsv(fmt.path / "samples.tsv", na_values=[""])
    samples["truncated"] = samples["truncated"].astype(str) == "True"
    return Corpus(samples=samples,
                  features=_read_tsv(fmt.path / "features.tsv"),
                  dropped_samples=_read_tsv(fmt.path / "dropped_samples.tsv"),
                  max_length=int(parameters["max_length"]),
                  harmonize_names=bool(parameters["harmonize_names"]))


@plugin.register_transformer
def _format_to_dataframe(fmt: MGMCorpusDirFmt) -> pd.DataFrame:
    return _format_to_corpus(fmt).samples


@plugin.register_transformer
def _format_to_metadata(fmt: MGMCorpusDirFmt) -> qiime2.Metadata:
    samples = _format_to_corpus(fmt).samples
    samples["truncated"] = samples["truncated"].map({True: "yes", False: "no"})
    return qiime2.Metadata(samples)


@plugin.register_transformer
def _ordination_to_dataframe(fmt: OrdinationFormat) -> pd.DataFrame:
    return skbio.OrdinationResults.read(str(fmt)).samples


@plugin.register_transformer
def _history_to_format(history: pd.DataFrame) -> TrainingHistoryFormat:
    fmt = TrainingHistoryFormat()
    history.to_csv(str(fmt), sep="\t", index_label="epoch", na_rep="")
    return fmt


@plugin.register_transformer
def _format_to_history(fmt: TrainingHistoryFormat) -> pd.DataFrame:
    return pd.read_csv(str(fmt), sep="\t", index_col=0, dtype={0: str})


@plugin.register_transformer
def _history_to_metadata(fmt: TrainingHistoryFormat) -> qiime2.Metadata:
    history = _format_to_history(fmt)
    history.index.name = "id"  # QIIME 2 metadata takes only its own ID headers (id, sample-id, ...), not `epoch`
    return qiime2.Metadata(history)


@plugin.register_transformer
def _model_to_files(fmt: MGMModelDirFmt) -> ModelFiles:
    return ModelFiles(fmt.path)


@plugin.register_transformer
def _supervised_to_files(fmt: MGMSupervisedModelDirFmt) -> ModelFiles:
    return ModelFiles(fmt.path)


@plugin.register_transformer
def _generator_to_files(fmt: MGMGeneratorDirFmt) -> ModelFiles:
    return ModelFiles(fmt.path)


@plugin.register_transformer
def _labels_to_format(labels: pd.Series) -> MGMLabelsFormat:
    fmt = MGMLabelsFormat()
    labels.rename("label").to_csv(str(fmt), sep="\t", index_label="sample-id")
    return fmt


@plugin.register_transformer
def _format_to_labels(fmt: MGMLabelsFormat) -> pd.Series:
    return pd.read_csv(str(fmt), sep="\t", index_col=0, dtype=str, keep_default_na=False)["label"]


@plugin.register_transformer
def _labels_to_metadata(fmt: MGMLabelsFormat) -> qiime2.Metadata:
    return qiime2.Metadata(_format_to_labels(fmt).to_frame())
