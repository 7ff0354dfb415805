"""Directory formats with validation. Everything is JSON, TSV, plain text or safetensors: no pickles.

QIIME 2 imports this module with the plugin, so it imports no torch: the formats that hold a model's weights check
them against its architecture with core.models (torch, transformers), imported inside their `_validate_`."""
import json
import pathlib

import qiime2.plugin.model as model
from qiime2.plugin import ValidationError

from .core import schemas
from .core.cross_validation_store import (CrossValidationFormatError, FoldsFormatError, load_cross_validation,
                                          load_fold_plan, load_fold_result)
from .core.forest import ForestFormatError
from .core.reconstruction import ReconstructorFormatError, load_reconstructor
from .core.vocab import SPECIAL_TOKENS

# The actions that write each artifact's files: a validation error names them, with the file, as the way to a valid
# one (the file restored as the action wrote it, or the action run again). A user meets these errors by importing
# or hand-editing an artifact.
CORPUS_ACTIONS = "tokenize (or generate, split-corpus)"
MODEL_ACTIONS = "general-model, pretrain, pretrain-generator, fine-tune or train"
SUPERVISED_ACTIONS = "fine-tune or train"
GENERATOR_ACTIONS = "pretrain-generator"
HISTORY_ACTIONS = "pretrain, pretrain-generator, fine-tune or train"
CV_ACTIONS = ("cross-validate-classification, cross-validate-regression, collate-classification-folds or "
              "collate-regression-folds")
FOLDS_ACTIONS = "prepare-cross-validation"
FOLD_ACTIONS = "cross-validate-fold"
FILE_WRITERS = {  # the files of the formats that several artifacts share, by name
    schemas.CORPUS_PARAMETERS_FILE: CORPUS_ACTIONS, "config.json": MODEL_ACTIONS, "versions.json": MODEL_ACTIONS,
    "vocab.txt": MODEL_ACTIONS, "model.safetensors": f"{MODEL_ACTIONS} (a reconstructor's: fit-reconstructor)",
    schemas.PRETRAINING_RECORD_FILE: "pretrain or pretrain-generator", schemas.TRAINING_RECORD_FILE:
    SUPERVISED_ACTIONS, "forest.json": SUPERVISED_ACTIONS, "forest.safetensors": SUPERVISED_ACTIONS,
    schemas.TRANSFER_FILE: SUPERVISED_ACTIONS, "reconstructor.json": "fit-reconstructor",
    schemas.CV_RECORD_FILE: CV_ACTIONS, schemas.CV_TRANSFER_FILE: CV_ACTIONS, schemas.CV_META_FILE: CV_ACTIONS,
    schemas.CV_PREDICTIONS_FILE: f"{CV_ACTIONS} (one fold's: {FOLD_ACTIONS})",
    schemas.CV_EFFECTS_FILE: f"{CV_ACTIONS} (one fold's: {FOLD_ACTIONS})",
    schemas.FOLDS_RECORD_FILE: FOLDS_ACTIONS, schemas.FOLDS_FEATURES_FILE: FOLDS_ACTIONS,
    schemas.FOLDS_SAMPLES_FILE: FOLDS_ACTIONS, schemas.FOLD_RECORD_FILE: FOLD_ACTIONS,
}


def remake(name, actions=None):
    """How to get a valid file `name`: restore it as the action that writes it wrote it, or run that again."""
    actions = actions or FILE_WRITERS.get(name, "the q2-mgm action that made the artifact")
    return (f"To get a valid one, restore {name} as qiime mgm {actions} wrote it (export that artifact again), or "
            "run that action again.")


def remake_artifact(actions):
    """How to get a valid artifact of a directory format whose files are checked together."""
    return (f"To get a valid one, restore the artifact's files as qiime mgm {actions} wrote them (export that "
            "artifact again), or run that action again.")


class JSONFormat(model.TextFileFormat):
    def _validate_(self, level):
        with self.open() as fh:
            try:
                json.load(fh)
            except json.JSONDecodeError as error:
                raise ValidationError(f"Not valid JSON: {error}. {remake(self.path.name)}") from None


class _TSVWithHeader(model.TextFileFormat):
    WRITTEN_BY = CORPUS_ACTIONS
    COLUMNS = ()
    OLDER_COLUMNS = ()  # headers that earlier q2-mgm versions wrote, still read

    def _validate_(self, level):
        with self.open() as fh:
            header = tuple(fh.readline().rstrip("\n").split("\t"))
            if header != self.COLUMNS and header not in self.OLDER_COLUMNS:
                raise ValidationError(f"Expected the columns {', '.join(self.COLUMNS)}; found {', '.join(header)}. "
                                      f"{self._remake()}")
            limit = {"min": 50, "max": None}[level]
            for number, line in enumerate(fh, start=2):
                self._validate_record(line.rstrip("\n").split("\t"), number, len(header))
                if limit is not None and number > limit:
                    break

    def _validate_record(self, cells, number, n_columns):
        if len(cells) != n_columns:
            raise ValidationError(f"Line {number} has {len(cells)} fields; expected {n_columns}. {self._remake()}")

    def _remake(self):
        return remake(self.path.name, self.WRITTEN_BY)


class CorpusSamplesFormat(_TSVWithHeader):
    COLUMNS = (schemas.SAMPLE_ID, *schemas.CORPUS_SAMPLE_COLUMNS)

    def _validate_record(self, cells, number, n_columns):
        super()._validate_record(cells, number, n_columns)
        tokens = cells[1].split(" ")
        if tokens[0] != "<bos>" or "<pad>" in tokens:
            raise ValidationError(f"Line {number}: a sentence must start with <bos> and hold no <pad>. "
                                  f"{self._remake()}")
        if str(len(tokens)) != cells[3]:
            raise ValidationError(f"Line {number}: n_tokens is {cells[3]} but the sentence has {len(tokens)} tokens. "
                                  f"{self._remake()}")


class CorpusFeaturesFormat(_TSVWithHeader):
    COLUMNS = (schemas.FEATURE_ID, *schemas.CORPUS_FEATURE_COLUMNS)
    OLDER_COLUMNS = ((schemas.FEATURE_ID, *schemas.CORPUS_FEATURE_COLUMNS_WITHOUT_WRITTEN_GENUS),)


class CorpusDroppedSamplesFormat(_TSVWithHeader):
    COLUMNS = (schemas.SAMPLE_ID, *schemas.CORPUS_DROPPED_COLUMNS)


class CorpusAbundancesFormat(_TSVWithHeader):
    """Long format: each sentence genus of each sample with its relative abundance among the vocabulary genera."""
    COLUMNS = (schemas.SAMPLE_ID, *schemas.CORPUS_ABUNDANCE_COLUMNS)

    def _validate_record(self, cells, number, n_columns):
        super()._validate_record(cells, number, n_columns)
        try:
            value = float(cells[2])
        except ValueError:
            value = float("nan")
        if not 0 < value <= 1:
            raise ValidationError(f"Line {number}: relative_abundance {cells[2]!r} is not a number in (0, 1]. "
                                  f"{self._remake()}")
        if not cells[1].startswith("g__"):
            raise ValidationError(f"Line {number}: genus {cells[1]!r} is not a genus token (g__Name). "
                                  f"{self._remake()}")


class MGMCorpusDirFmt(model.DirectoryFormat):
    samples = model.File(schemas.CORPUS_SAMPLES_FILE, format=CorpusSamplesFormat)
    features = model.File(schemas.CORPUS_FEATURES_FILE, format=CorpusFeaturesFormat)
    dropped_samples = model.File(schemas.CORPUS_DROPPED_FILE, format=CorpusDroppedSamplesFormat)
    parameters = model.File(schemas.CORPUS_PARAMETERS_FILE, format=JSONFormat)
    # a generated corpus has ranks only, no amounts
    abundances = model.File(schemas.CORPUS_ABUNDANCES_FILE, format=CorpusAbundancesFormat, optional=True)


class SafetensorsFormat(model.BinaryFileFormat):
    """Weights as safetensors: an 8-byte little-endian header length, then a JSON header. Never a pickle."""

    def _validate_(self, level):
        with self.open() as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 2 <= size <= 100_000_000 or fh.read(1) != b"{":
                raise ValidationError("Not a safetensors file (a pickle or other file is where weights belong). "
                                      f"{remake(self.path.name)}")


class VocabularyFormat(model.TextFileFormat):
    """One token per line, the special tokens first."""

    def _validate_(self, level):
        with self.open() as fh:
            head = [fh.readline().rstrip("\n") for _ in SPECIAL_TOKENS]
        if tuple(head) != SPECIAL_TOKENS:
            raise ValidationError(f"A vocabulary starts with {', '.join(SPECIAL_TOKENS)}; this one with "
                                  f"{', '.join(head)}. {remake(self.path.name)}")


class _ModelDirFmt(model.DirectoryFormat):
    """The files every MGM model has, validated together (shapes against config, vocabulary size)."""
    config = model.File("config.json", format=JSONFormat)
    weights = model.File("model.safetensors", format=SafetensorsFormat)
    vocabulary = model.File("vocab.txt", format=VocabularyFormat)
    versions = model.File("versions.json", format=JSONFormat)
    WRITTEN_BY = MODEL_ACTIONS

    def _validate_(self, level):
        from .core import models
        try:
            models.validate_model_dir(self.path)
        except models.ModelFormatError as error:
            raise ValidationError(f"{error} {remake_artifact(self.WRITTEN_BY)}") from None


class MGMModelDirFmt(_ModelDirFmt):
    WRITTEN_BY = "general-model or pretrain"
    # what `pretrain` records: corpus size, settings, training curves (the general model has none)
    pretraining = model.File(schemas.PRETRAINING_RECORD_FILE, format=JSONFormat, optional=True)


class MGMSupervisedModelDirFmt(_ModelDirFmt):
    """A fine-tuned classifier or regressor: the model files plus training.json (task, label set, sample counts,
    target scaling, settings and the per-epoch history)."""
    training = model.File(schemas.TRAINING_RECORD_FILE, format=JSONFormat)
    # the RandomForest on genus abundances blended into the predictions, where one was fit
    forest_arrays = model.File("forest.safetensors", format=SafetensorsFormat, optional=True)
    forest_record = model.File("forest.json", format=JSONFormat, optional=True)
    # a model fit with batches: its across-study recipe's arrays (training.json holds the rest)
    transfer = model.File(schemas.TRANSFER_FILE, format=SafetensorsFormat, optional=True)
    WRITTEN_BY = SUPERVISED_ACTIONS

    def _validate_(self, level):
        super()._validate_(level)
        from .core.models import ModelFormatError
        from .core.training.trained import read_training_record
        try:
            read_training_record(self.path)
        except (ForestFormatError, ModelFormatError) as error:
            raise ValidationError(f"{error} {remake_artifact(self.WRITTEN_BY)}") from None


class MGMGeneratorDirFmt(_ModelDirFmt):
    """A label-prompted language model: the model files plus pretraining.json, whose `labels` name the label
    tokens of vocab.txt."""
    pretraining = model.File(schemas.PRETRAINING_RECORD_FILE, format=JSONFormat)
    WRITTEN_BY = GENERATOR_ACTIONS

    def _validate_(self, level):
        super()._validate_(level)
        record = json.loads((self.path / schemas.PRETRAINING_RECORD_FILE).read_text())
        tokens = set((self.path / "vocab.txt").read_text(encoding="utf-8").splitlines())
        labels = record.get("label_tokens")
        if not isinstance(labels, list) or not labels:
            raise ValidationError("pretraining.json lists no label_tokens; a generator is pretrained with labels. "
                                  f"{remake(schemas.PRETRAINING_RECORD_FILE, self.WRITTEN_BY)}")
        missing = [token for token in labels if token not in tokens]
        if missing:
            raise ValidationError("pretraining.json names label tokens that vocab.txt lacks "
                                  f"({', '.join(missing[:3])}). "
                                  f"{remake(schemas.PRETRAINING_RECORD_FILE, self.WRITTEN_BY)}")


class MGMLabelsFormat(_TSVWithHeader):
    """The label each generated sample was prompted with: sample-id, label."""
    COLUMNS = (schemas.SAMPLE_ID, schemas.LABEL_COLUMN)
    WRITTEN_BY = "generate"


MGMLabelsDirFmt = model.SingleFileDirectoryFormat("MGMLabelsDirFmt", schemas.LABELS_FILE, MGMLabelsFormat)


class MGMReconstructorDirFmt(model.DirectoryFormat):
    """Ranks -> abundances: reconstructor.json, plus model.safetensors for a neural reconstructor."""
    record = model.File("reconstructor.json", format=JSONFormat)
    weights = model.File("model.safetensors", format=SafetensorsFormat, optional=True)

    def _validate_(self, level):
        try:
            load_reconstructor(self.path)
        except ReconstructorFormatError as error:
            raise ValidationError(f"{error} {remake_artifact('fit-reconstructor')}") from None


class CrossValidationTSVFormat(model.TextFileFormat):
    """A TSV of the cross-validation; its columns are checked with the whole directory (they depend on the classes
    that cross_validation.json lists)."""

    def _validate_(self, level):
        with self.open() as fh:
            if "\t" not in fh.readline():
                raise ValidationError(f"Expected a tab-separated header line. {remake(self.path.name)}")


class MGMCrossValidationDirFmt(model.DirectoryFormat):
    """Out-of-fold predictions of MGM and the baselines (predictions.tsv), the transfer matrix (transfer_matrix.tsv)
    and what was run (cross_validation.json); with markers, each fold's genus effects (effects.tsv) and the
    meta-analysis (meta_analysis.tsv)."""
    predictions = model.File(schemas.CV_PREDICTIONS_FILE, format=CrossValidationTSVFormat)
    transfer = model.File(schemas.CV_TRANSFER_FILE, format=CrossValidationTSVFormat)
    record = model.File(schemas.CV_RECORD_FILE, format=JSONFormat)
    effects = model.File(schemas.CV_EFFECTS_FILE, format=CrossValidationTSVFormat, optional=True)
    meta = model.File(schemas.CV_META_FILE, format=CrossValidationTSVFormat, optional=True)

    def _validate_(self, level):
        try:
            load_cross_validation(self.path)
        except CrossValidationFormatError as error:
            raise ValidationError(f"{error} {remake_artifact(CV_ACTIONS)}") from None


class MGMCrossValidationFoldsDirFmt(model.DirectoryFormat):
    """What every fold of a cross-validation shares: the frozen encoder's features of every sample
    (features.safetensors: embeddings, likelihood, abundances, and the sentences where markers are asked for), each
    sample's target, fold, group and batch
    (samples.tsv), and the fold names, genera and settings (folds.json); checked together on load."""
    features = model.File(schemas.FOLDS_FEATURES_FILE, format=SafetensorsFormat)
    samples = model.File(schemas.FOLDS_SAMPLES_FILE, format=CrossValidationTSVFormat)
    record = model.File(schemas.FOLDS_RECORD_FILE, format=JSONFormat)

    def _validate_(self, level):
        try:
            load_fold_plan(self.path)
        except FoldsFormatError as error:
            raise ValidationError(f"{error} {remake_artifact(FOLDS_ACTIONS)}") from None


class MGMFoldPredictionsDirFmt(model.DirectoryFormat):
    """One fold's out-of-fold predictions by every method (predictions.tsv), what was run (fold.json) and, with
    markers, its genus effects (effects.tsv)."""
    predictions = model.File(schemas.CV_PREDICTIONS_FILE, format=CrossValidationTSVFormat)
    record = model.File(schemas.FOLD_RECORD_FILE, format=JSONFormat)
    effects = model.File(schemas.CV_EFFECTS_FILE, format=CrossValidationTSVFormat, optional=True)

    def _validate_(self, level):
        try:
            load_fold_result(self.path)
        except FoldsFormatError as error:
            raise ValidationError(f"{error} {remake_artifact(FOLD_ACTIONS)}") from None


class ModelFiles:
    """A view, not a format: the validated directory of any MGM model, pretrained or fine-tuned, for actions that
    take either (keystone genera)."""

    def __init__(self, path):
        self.path = pathlib.Path(path)


class TrainingHistoryFormat(model.TextFileFormat):
    """Per-epoch training curves: TSV, first column `epoch`, then numeric columns."""

    def _validate_(self, level):
        with self.open() as fh:
            header = fh.readline().rstrip("\n").split("\t")
            if header[0] != "epoch" or len(header) < 2:
                raise ValidationError("A training history starts with an `epoch` column and has metrics after it. "
                                      f"{remake(self.path.name, HISTORY_ACTIONS)}")
            for number, line in enumerate(fh, start=2):
                cells = line.rstrip("\n").split("\t")
                if len(cells) != len(header):
                    raise ValidationError(f"Line {number} has {len(cells)} fields; expected {len(header)}. "
                                          f"{remake(self.path.name, HISTORY_ACTIONS)}")


TrainingHistoryDirFmt = model.SingleFileDirectoryFormat("TrainingHistoryDirFmt", "history.tsv",
                                                        TrainingHistoryFormat)
