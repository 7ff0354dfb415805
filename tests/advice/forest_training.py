"""Fine-tuning, the forests and the supervised actions: each error message with the test that applies its fix (see
tests/advice/__init__.py)."""
from . import NotInput

MODULES = (
    "q2_mgm/core/forest.py",
    "q2_mgm/core/baselines.py",
    "q2_mgm/core/training/__init__.py",
    "q2_mgm/core/training/batch_corrected.py",
    "q2_mgm/core/training/blend.py",
    "q2_mgm/core/training/decision.py",
    "q2_mgm/core/training/fitting.py",
    "q2_mgm/core/training/head.py",
    "q2_mgm/core/training/networks.py",
    "q2_mgm/core/training/settings.py",
    "q2_mgm/core/training/targets.py",
    "q2_mgm/core/training/trained.py",
    "q2_mgm/core/training/trainer.py",
    "q2_mgm/actions/supervised/methods.py",
)

F = "tests/test_fixes_forest_training.py::"
DAMAGED = F + "test_a_damaged_model_is_refused_on_import_and_the_model_re_created_as_advised_predicts"

ADVICE = {
    # the supervised actions
    ("q2_mgm/actions/supervised/methods.py", "_check_task", "task is 'regression' but {} is categorical"):
        F + "test_regressing_a_categorical_column_is_refused_and_classifying_it_as_advised_fine_tunes",
    ("q2_mgm/actions/supervised/methods.py", "_abundances", "The across-study recipe (batches) reads the corpus's"):
        F + "test_batches_on_a_corpus_without_abundances_are_refused_and_the_table_tokenized_again_fits_and_predicts",
    ("q2_mgm/actions/supervised/methods.py", "_predict", "This model was not fit with batches"):
        F + "test_batches_for_a_model_fit_without_them_are_refused_and_left_out_as_advised_it_predicts",
    # the RandomForest baseline of the evaluate visualizers
    ("q2_mgm/core/baselines.py", "random_forest_baseline", "The RandomForest baseline needs labelled training"):
        F + "test_a_baseline_table_of_the_test_samples_alone_is_refused_and_the_whole_table_evaluates",
    # the forest blended into a model: fitting, and its stored files (a hand-edited or damaged model artifact)
    ("q2_mgm/core/forest.py", "fit_forest", "task must be one of {}"): NotInput(
        "guards direct use of the core library: blend.add_forest passes the action's task, which the registration's "
        "Choices (classification, regression) limit"),
    ("q2_mgm/core/forest.py", "fit_forest", "targets must be one value per sample"): NotInput(
        "guards direct use of the core library: blend.add_forest passes encode_targets' one-dimensional targets"),
    ("q2_mgm/core/forest.py", "_read_meta", "{} is missing from {}"): DAMAGED,
    ("q2_mgm/core/forest.py", "_read_meta", "{} is not a {} version {} description"): DAMAGED,
    ("q2_mgm/core/forest.py", "_read_meta", "{} names task {}, not one of {}"): DAMAGED,
    ("q2_mgm/core/forest.py", "_read_meta", "{}'s classes are not a list of distinct labels"): DAMAGED,
    ("q2_mgm/core/forest.py", "_read_meta", "{} lists {} classes for a {} forest"): DAMAGED,
    ("q2_mgm/core/forest.py", "_read_meta", "{} is not readable JSON"): NotInput(
        "_formats.JSONFormat, forest.json's file format in MGMSupervisedModelDirFmt, refuses invalid JSON first, on "
        "import and whenever an action reads the model"),
    ("q2_mgm/core/forest.py", "_read_meta", "{}'s {} is {}, not an integer >= {}"): DAMAGED,
    ("q2_mgm/core/forest.py", "_read_arrays", "{} is missing from {}"): DAMAGED,
    ("q2_mgm/core/forest.py", "_read_arrays", "{} lacks arrays {} or has unknown arrays {}"): DAMAGED,
    ("q2_mgm/core/forest.py", "_read_arrays", "{} is not a valid safetensors file"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_arrays", "the node arrays have disagreeing or zero lengths"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_arrays", "array value has {} columns"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_arrays", "array value holds class fractions outside [0, 1]"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_arrays", "array feature holds indices outside -1 (leaf)"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_arrays", "array {} is {} with shape {}, not {}"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_arrays", "array {} holds NaN or infinite values"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_trees", "array roots must be {} increasing node indices"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_trees", "some nodes have a feature but no children"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_trees", "arrays left/right hold child indices outside"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_trees", "arrays left/right hold a child that does not come after"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_trees", "arrays left/right do not form separate trees"): DAMAGED,
    ("q2_mgm/core/forest.py", "_check_trees", "max_depth is {} but the deepest tree has depth {}"): DAMAGED,
    ("q2_mgm/core/forest.py", "_checked", "The forest was trained on {} features"): NotInput(
        "trained.load_blended_forest (run when the model is validated) refuses a forest whose n_features differs "
        "from training.json's forest genera, and blend.forest_matrix reindexes the corpus to exactly those genera"),
    ("q2_mgm/core/forest.py", "_checked", "The table to predict holds NaN, infinite"): NotInput(
        "_formats.CorpusAbundancesFormat refuses any relative_abundance that is not a number in (0, 1], and "
        "blend.forest_matrix fills the genera a sample lacks with 0"),
    # fine-tuning
    ("q2_mgm/core/training/__init__.py", "__getattr__", "module {} has no attribute {}"): NotInput(
        "guards Python's attribute lookup on the q2_mgm.core.training package (a programmer's misspelt name); no "
        "action input reaches it"),
    ("q2_mgm/core/training/decision.py", "load_decision_rule", "training.json's decision rule ({}) does not fit"):
        DAMAGED,
    ("q2_mgm/core/training/fitting.py", "train_sequence_model", "The validation split left class {} without"):
        F + "test_a_validation_split_that_leaves_a_class_untrained_is_refused_and_a_lower_fraction_fine_tunes",
    ("q2_mgm/core/training/fitting.py", "train_sequence_model", "forest_weight needs the genus abundances"):
        "tests/test_supervised.py::TestLabelErrors::test_a_corpus_without_abundances_needs_forest_weight_0",
    ("q2_mgm/core/training/targets.py", "encode_targets", "The label column has a single class"): NotInput(
        "metadata_checks.check_target_varies (through check_columns) refuses a one-class column first, in the "
        "supervised actions' _fit and cross-validation's _run, before the labels become targets"),
    ("q2_mgm/core/training/targets.py", "encode_targets", "Class {} has a single sample"):
        F + "test_a_class_of_one_sample_is_refused_by_cross_validation_and_filtered_out_of_the_table_as_advised_runs",
    ("q2_mgm/core/training/trained.py", "predict", "This model was fit with batches: predicting needs"): NotInput(
        "actions/supervised/methods._predict gives a batch-fit model the abundances (_abundances refuses a corpus "
        "without them) and every sample's batch (_batches_of); keystone-genera refuses a batch-fit classifier first "
        "(keystone_samples, keystone_batches.check_batch_inputs)"),
    ("q2_mgm/core/training/trained.py", "predict", "This model blends in a RandomForest on genus abundances"):
        F + "test_a_forest_model_refuses_a_corpus_without_abundances_and_predicts_the_table_tokenized_again",
    ("q2_mgm/core/training/trained.py", "read_training_record", "{} lists {} classes but the model has {} outputs"):
        DAMAGED,
    ("q2_mgm/core/training/trained.py", "read_training_record", "{} lacks {}; {}"): DAMAGED,
    ("q2_mgm/core/training/trained.py", "load_transfer", "{} does not hold the recipe training.json names"): DAMAGED,
    ("q2_mgm/core/training/trained.py", "load_blended_forest", "training.json names {} forest genera"): DAMAGED,
    ("q2_mgm/core/training/trained.py", "load_blended_forest", "training.json's forest weight must be in"): DAMAGED,
}
