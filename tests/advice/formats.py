"""The artifact formats' validation and the transformers: each error message with the test that applies its fix (see
tests/advice/__init__.py).

A user meets these by importing or hand-editing an artifact, so every one is input: the message names the file, the
fault and the way to a valid one (the file restored as the action that writes it wrote it, or that action run
again; q2_mgm._formats adds the action to the loaders' errors of core.cross_validation_store, core.models,
core.forest and core.reconstruction). The tests damage one file of an artifact made by that action, assert the
message, restore the file and load the artifact."""
from . import NotInput

MODULES = (
    "q2_mgm/_formats.py",
    "q2_mgm/_transformers.py",
    "q2_mgm/core/cross_validation_store.py",
)

DAMAGED = "tests/test_fixes_formats.py::test_a_damaged_artifact_names_the_file_and_the_action_and_restored_loads"
FORMATS = "q2_mgm/_formats.py"
STORE = "q2_mgm/core/cross_validation_store.py"
NOT_JSON = NotInput(
    "the record is a required File of JSONFormat: JSONFormat._validate_ refuses one that is not JSON, and QIIME 2's "
    "DirectoryFormat.validate a missing one, before the directory's _validate_ calls this loader "
    "(tests/test_fixes_formats.py::test_a_record_that_is_not_json_is_refused_by_the_json_format_first); it guards "
    "the core's own use of the loader")

ADVICE = {
    # the files' formats
    (FORMATS, "_validate_", "Not valid JSON: {}"): DAMAGED,
    (FORMATS, "_validate_", "Expected the columns {}; found {}."): DAMAGED,
    (FORMATS, "_validate_record", "Line {} has {} fields; expected {}."): DAMAGED,
    (FORMATS, "_validate_record", "Line {}: a sentence must start with <bos> and hold no <pad>."): DAMAGED,
    (FORMATS, "_validate_record", "Line {}: n_tokens is {} but the sentence has {} tokens."): DAMAGED,
    (FORMATS, "_validate_record", "Line {}: relative_abundance {} is not a number in (0, 1]."): DAMAGED,
    (FORMATS, "_validate_record", "Line {}: genus {} is not a genus token (g__Name)."): DAMAGED,
    (FORMATS, "_validate_", "Not a safetensors file (a pickle or other file is where weights belong)."): DAMAGED,
    (FORMATS, "_validate_", "A vocabulary starts with {}; this one with {}."): DAMAGED,
    (FORMATS, "_validate_", "Expected a tab-separated header line."): DAMAGED,
    (FORMATS, "_validate_", "A training history starts with an `epoch` column and has metrics after it."): DAMAGED,
    (FORMATS, "_validate_", "Line {} has {} fields; expected {}."): DAMAGED,
    # the directories checked together: a model's, a reconstructor's, the cross-validation's, the fold plan's, a
    # fold result's loader error, with the action that writes the artifact
    (FORMATS, "_validate_", "{} {}"): DAMAGED,
    (FORMATS, "_validate_", "pretraining.json lists no label_tokens; a generator is pretrained with labels."): DAMAGED,
    (FORMATS, "_validate_", "pretraining.json names label tokens that vocab.txt lacks ({})."): DAMAGED,
    # read when a corpus is viewed
    ("q2_mgm/_transformers.py", "_read_abundances", "abundances.tsv names {} entries of {} the corpus does not hold"):
        "tests/test_fixes_formats.py::test_abundances_of_a_sample_the_corpus_lacks_restored_then_load",
    # the cross-validation's loaders, met through MGMCrossValidation, MGMCrossValidationFolds, MGMFoldPredictions
    (STORE, "_read_frame", "{} is not a TSV as q2-mgm writes it: {}"): DAMAGED,
    (STORE, "_read_effects", "{} has the columns {}; expected {}."): DAMAGED,
    (STORE, "load_cross_validation", "{} is missing or not JSON: {}"): NOT_JSON,
    (STORE, "load_cross_validation", "{} lacks {}."): DAMAGED,
    (STORE, "load_cross_validation", "{} has the columns {}; expected {}."): DAMAGED,
    (STORE, "load_cross_validation", "{} holds methods the record does not list: {}."): DAMAGED,
    (STORE, "load_cross_validation", "{} holds methods the record does not list."): DAMAGED,
    (STORE, "load_cross_validation", "{} has the columns {}; expected genus, {}."): DAMAGED,
    (STORE, "_read_json", "{} is missing or not JSON: {}"): NOT_JSON,
    (STORE, "_read_json", "{} lacks {}."): DAMAGED,
    (STORE, "_read_tsv", "{} is missing or not a TSV: {}"): DAMAGED,
    (STORE, "_read_tsv", "{} has the columns {}; expected {}."): DAMAGED,
    (STORE, "load_fold_plan", "{}: task {} is not classification or regression."): DAMAGED,
    (STORE, "load_fold_plan", "{}: methods must start with the recipe and name known recipes ({})."): DAMAGED,
    (STORE, "load_fold_plan", "{} is missing or not safetensors ({})."): DAMAGED,
    (STORE, "load_fold_plan", "{} holds {}; expected {}, and {} where mgm_markers are asked for."): DAMAGED,
    (STORE, "load_fold_plan", "{}'s arrays ({}) do not match the {} samples of {}"): DAMAGED,
    (STORE, "load_fold_plan", "{}: abundances must be relative abundances"): DAMAGED,
    (STORE, "load_fold_plan", "{}: every fold 1-{} of {} must hold out samples, and no other."): DAMAGED,
    (STORE, "load_fold_plan", "{}: {}"): DAMAGED,  # a batch of samples.tsv too small to standardise
    (STORE, "load_fold_plan", "{}: token_lengths must give each of the {} samples' sentence length"): DAMAGED,
    (STORE, "load_fold_plan", "{} asks for mgm_markers, and {} holds no sentences (tokens, token_lengths)."): DAMAGED,
    (STORE, "load_fold_result", "{} holds the methods {}; {} lists {}."): DAMAGED,
    (STORE, "load_fold_result", "{}: seconds must name each method once."): DAMAGED,
    (STORE, "load_fold_result", "{} holds methods or folds that {} does not list."): DAMAGED,
}
