"""One definition of each file name, column list and JSON key that q2-mgm's artifacts hold. The core writes them,
the directory formats validate against them, the tests read them; and how their JSON is written (strict_json)."""
import math
import numbers
from typing import Any

SAMPLE_ID, FEATURE_ID = "sample-id", "feature-id"  # QIIME 2's ID headers

# SampleData[MGMCorpus]: one TSV each for the samples, the features and the dropped samples (ID column first),
# corpus.json with the tokenization parameters, and abundances.tsv (long format) where the corpus has amounts
CORPUS_SAMPLES_FILE = "samples.tsv"
CORPUS_FEATURES_FILE = "features.tsv"
CORPUS_DROPPED_FILE = "dropped_samples.tsv"
CORPUS_PARAMETERS_FILE = "corpus.json"
CORPUS_ABUNDANCES_FILE = "abundances.tsv"
CORPUS_SAMPLE_COLUMNS = ("sentence", "n_genera", "n_tokens", "length_before_truncation", "truncated",
                         "below_zero_threshold", "vocabulary_coverage", "no_genus_share", "out_of_vocabulary_share")
CORPUS_FEATURE_COLUMNS = ("taxonomy", "genus_as_written", "genus", "status", "n_samples", "mean_relative_abundance")
# features.tsv of corpora written before genus_as_written: still read (taxonomy.written_genera fills the column)
CORPUS_FEATURE_COLUMNS_WITHOUT_WRITTEN_GENUS = ("taxonomy", "genus", "status", "n_samples", "mean_relative_abundance")
CORPUS_DROPPED_COLUMNS = ("reason", "total")
CORPUS_ABUNDANCE_COLUMNS = ("genus", "relative_abundance")
CORPUS_PARAMETER_KEYS = ("max_length", "harmonize_names")

# MGMModel[Classifier | Regressor]: the model files plus training.json
TRAINING_RECORD_FILE = "training.json"
TRAINING_RECORD_KEYS = ("task", "labels", "target_mean", "target_std", "n_training_samples")  # required
TRANSFER_FILE = "transfer.safetensors"  # a model fit with batches: its across-study recipe's arrays
# MGMModel[Pretrained | Generator]: pretraining.json, whose label_tokens a generator needs
PRETRAINING_RECORD_FILE = "pretraining.json"
LABEL_TEXTS_KEY = "label_texts"  # a generator's {label token: the label as written}; tokens hold no whitespace

# SampleData[MGMLabels]: the label each generated sample was prompted with
LABELS_FILE = "labels.tsv"
LABEL_COLUMN = "label"

# MGMCrossValidation: every method's out-of-fold predictions, the transfer matrix, and what was run
CV_PREDICTIONS_FILE = "predictions.tsv"
CV_PREDICTION_COLUMNS = ("method", "sample_id", "fold", "truth", "prediction")  # then one probability column per class
CV_PROBABILITY_PREFIX = "probability:"
CV_TRANSFER_FILE = "transfer_matrix.tsv"
CV_TRANSFER_COLUMNS = ("method", "trained_on", "tested_on", "score")
CV_RECORD_FILE = "cross_validation.json"
# with markers (core.markers): each fold's effect of every genus, per method (fold_effects), and the field's
# meta-analysis on the same samples (core.meta_analysis' genus table, indexed by genus)
CV_EFFECTS_FILE = "effects.tsv"
CV_EFFECT_COLUMNS = ("method", "fold", "genus", "points_to", "effect", "present", "abs_mgm", "abs_clr")
CV_META_FILE = "meta_analysis.tsv"
# markers.tsv (the evaluation's data): its first three columns are fixed (genus, points_to, rank); no other column's
# name holds "rank" or "points"; the meta-analysis' columns follow, each prefixed "meta_"
MARKER_COLUMNS = ("genus", "points_to", "rank", "groups_agreeing", "groups", "median_position", "mean_effect",
                  "ci_low", "ci_high", "consistent_effect", "mgm_share", "prevalence")
CV_RECORD_KEYS = ("task", "classes", "methods", "descriptions", "uses_mgm", "seconds", "label_column", "groups_column",
                  "batches_column", "cv_strategy", "cv", "random_state", "left_out", "features_seconds")

# cross-validation run fold by fold (classify-samples-cv's parallel path): the shared features and fold plan, and one
# fold's out-of-fold predictions
FOLDS_FEATURES_FILE = "features.safetensors"  # embeddings, likelihood, abundances (float arrays)
FOLDS_FEATURE_ARRAYS = ("embeddings", "likelihood", "abundances")
FOLDS_TOKEN_ARRAYS = ("tokens", "token_lengths")  # every sample's sentence, concatenated, and each one's length
FOLDS_SAMPLES_FILE = "samples.tsv"
FOLDS_SAMPLE_COLUMNS = ("sample_id", "target", "fold", "group", "batch")  # fold: 1-based number it is held out in
FOLDS_RECORD_FILE = "folds.json"
FOLDS_RECORD_KEYS = ("task", "genera", "fold_names", "recipe", "methods", "random_state", "n_estimators",
                     "transfer_matrix", "has_groups", "has_batches", "record")
FOLD_RECORD_FILE = "fold.json"
FOLD_RECORD_KEYS = ("fold", "name", "n_folds", "task", "methods", "classes", "seconds")


def strict_json(value: Any) -> Any:
    """`value` as JSON can hold it: numpy scalars as Python numbers, NaN and infinities (a figure that could not
    be computed, such as the ROC AUC of a batch of one class) as null, which strict JSON readers accept where they
    refuse Python's bare NaN. Write it with json.dumps(..., allow_nan=False)."""
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    if isinstance(value, numbers.Number) and hasattr(value, "item"):  # numpy's scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
