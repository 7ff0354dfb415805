"""Views: a corpus as pd.DataFrame, qiime2.Metadata or the core Corpus; embeddings as pd.DataFrame; the labels of
generated samples as pd.Series or qiime2.Metadata; any MGM model as ModelFiles; a cross-validation as the core's
CrossValidation."""
import json

import numpy as np
import pandas as pd
import qiime2
import scipy.sparse as sp
import skbio
from q2_types.ordination import OrdinationFormat

from ._formats import (MGMCorpusDirFmt, MGMCrossValidationDirFmt, MGMCrossValidationFoldsDirFmt,
                       MGMFoldPredictionsDirFmt, MGMGeneratorDirFmt, MGMLabelsFormat, MGMModelDirFmt,
                       MGMSupervisedModelDirFmt, ModelFiles, TrainingHistoryFormat)
from .core import schemas
from .core.cross_validation_store import (CrossValidation, FoldPlan, FoldResult, load_cross_validation,
                                          load_fold_plan, load_fold_result, save_cross_validation, save_fold_plan,
                                          save_fold_result)
from .core.taxonomy import features_with_written_genera
from .core.tokenizer import Corpus
from .core.vocab import genus_statistics
from .plugin_setup import plugin


def _read_tsv(path, **kwargs):
    return pd.read_csv(str(path), sep="\t", index_col=0, dtype={0: str}, keep_default_na=False, **kwargs)


@plugin.register_transformer
def _corpus_to_format(corpus: Corpus) -> MGMCorpusDirFmt:
    fmt = MGMCorpusDirFmt()
    corpus.samples.to_csv(str(fmt.path / schemas.CORPUS_SAMPLES_FILE), sep="\t", index_label=schemas.SAMPLE_ID)
    corpus.features.to_csv(str(fmt.path / schemas.CORPUS_FEATURES_FILE), sep="\t", index_label=schemas.FEATURE_ID)
    corpus.dropped_samples.to_csv(str(fmt.path / schemas.CORPUS_DROPPED_FILE), sep="\t", index_label=schemas.SAMPLE_ID)
    (fmt.path / schemas.CORPUS_PARAMETERS_FILE).write_text(json.dumps(
        {"max_length": corpus.max_length, "harmonize_names": corpus.harmonize_names}, indent=2) + "\n")
    if corpus.abundances is not None:
        _write_abundances(corpus, fmt.path / schemas.CORPUS_ABUNDANCES_FILE)
    return fmt


def _write_abundances(corpus, path):
    entries = corpus.abundances.tocoo()
    genera = genus_statistics().index.to_numpy()
    pd.DataFrame({"genus": genera[entries.col], "relative_abundance": entries.data},
                 index=pd.Index(corpus.samples.index.to_numpy()[entries.row], name=schemas.SAMPLE_ID)).to_csv(
        str(path), sep="\t", float_format="%.9g")  # 9 digits read a float32 back bit for bit


def _read_abundances(path, sample_ids):
    """The long TSV back to a samples x MGM genera matrix; every sample and genus must be known."""
    long = pd.read_csv(str(path), sep="\t", dtype={schemas.SAMPLE_ID: str, "genus": str}, keep_default_na=False,
                       float_precision="round_trip")
    rows = pd.Index(sample_ids).get_indexer(long[schemas.SAMPLE_ID])
    columns = genus_statistics().index.get_indexer(long["genus"])
    for what, positions, names in (("samples", rows, long[schemas.SAMPLE_ID]), ("genera", columns, long["genus"])):
        if (positions < 0).any():
            raise ValueError(f"abundances.tsv names {int((positions < 0).sum())} entries of {what} the corpus "
                             f"does not hold (for example {names[positions < 0].iloc[0]!r}). To get a valid one, "
                             "restore abundances.tsv as qiime mgm tokenize wrote it (export that corpus again), or "
                             "tokenize the table again.")
    return sp.csr_matrix((long["relative_abundance"].to_numpy(np.float32), (rows, columns)),
                         shape=(len(sample_ids), len(genus_statistics())))


@plugin.register_transformer
def _format_to_corpus(fmt: MGMCorpusDirFmt) -> Corpus:
    parameters = json.loads((fmt.path / schemas.CORPUS_PARAMETERS_FILE).read_text())
    samples = _read_tsv(fmt.path / schemas.CORPUS_SAMPLES_FILE, na_values=[""])
    samples["truncated"] = samples["truncated"].astype(str) == "True"
    abundances = fmt.path / schemas.CORPUS_ABUNDANCES_FILE
    return Corpus(samples=samples,
                  features=features_with_written_genera(_read_tsv(fmt.path / schemas.CORPUS_FEATURES_FILE)),
                  dropped_samples=_read_tsv(fmt.path / schemas.CORPUS_DROPPED_FILE),
                  max_length=int(parameters["max_length"]),
                  harmonize_names=bool(parameters["harmonize_names"]),
                  abundances=_read_abundances(abundances, samples.index) if abundances.exists() else None)


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
    labels.rename(schemas.LABEL_COLUMN).to_csv(str(fmt), sep="\t", index_label=schemas.SAMPLE_ID)
    return fmt


@plugin.register_transformer
def _format_to_labels(fmt: MGMLabelsFormat) -> pd.Series:
    return pd.read_csv(str(fmt), sep="\t", index_col=0, dtype=str, keep_default_na=False)[schemas.LABEL_COLUMN]


@plugin.register_transformer
def _labels_to_metadata(fmt: MGMLabelsFormat) -> qiime2.Metadata:
    return qiime2.Metadata(_format_to_labels(fmt).to_frame())


@plugin.register_transformer
def _cross_validation_to_format(result: CrossValidation) -> MGMCrossValidationDirFmt:
    fmt = MGMCrossValidationDirFmt()
    save_cross_validation(result, fmt.path)
    return fmt


@plugin.register_transformer
def _format_to_cross_validation(fmt: MGMCrossValidationDirFmt) -> CrossValidation:
    return load_cross_validation(fmt.path)


@plugin.register_transformer
def _fold_plan_to_format(plan: FoldPlan) -> MGMCrossValidationFoldsDirFmt:
    fmt = MGMCrossValidationFoldsDirFmt()
    save_fold_plan(plan, fmt.path)
    return fmt


@plugin.register_transformer
def _format_to_fold_plan(fmt: MGMCrossValidationFoldsDirFmt) -> FoldPlan:
    return load_fold_plan(fmt.path)


@plugin.register_transformer
def _fold_result_to_format(result: FoldResult) -> MGMFoldPredictionsDirFmt:
    fmt = MGMFoldPredictionsDirFmt()
    save_fold_result(result, fmt.path)
    return fmt


@plugin.register_transformer
def _format_to_fold_result(fmt: MGMFoldPredictionsDirFmt) -> FoldResult:
    return load_fold_result(fmt.path)
