"""The metadata checks' errors (issue 19 item 3): each message with the test that applies its fix."""
from . import GUARDED, NotInput

F = "tests/test_fixes_metadata.py::"

MODULES = (
    "q2_mgm/core/metadata_checks.py",
    "q2_mgm/core/samples.py",
    "q2_mgm/core/training/splits.py",
    "q2_mgm/core/cross_validation.py",
    "q2_mgm/core/trajectories.py",
    "q2_mgm/core/keystone_samples.py",
    "q2_mgm/core/keystone_batches.py",
)

# (module, function, the message's first words) -> the test that applies the fix the message names
ADVICE = {
    ("q2_mgm/core/metadata_checks.py", "check_target_varies", "Metadata column {} holds one class"):
        "tests/test_metadata_shapes.py::test_the_advised_fix_runs",
    ("q2_mgm/core/metadata_checks.py", "check_target_varies", "Metadata column {} holds one value"):
        "tests/test_cases.py::TestRegressConstantTarget::test_the_fix_a_column_that_varies_runs",
    ("q2_mgm/core/metadata_checks.py", "check_groups", "Groups column {} holds one group"):
        "tests/test_cases.py::TestCvOneGroup::test_the_fix_without_groups_runs",
    ("q2_mgm/core/metadata_checks.py", "check_groups", "Every group of {} holds one class of {}"):
        "tests/test_metadata_shapes.py::test_the_advised_fix_runs",
    ("q2_mgm/core/metadata_checks.py", "check_groups", "Class {} of {} is held by one group"):
        "tests/test_cross_validation.py::test_a_class_absent_from_the_training_side_of_a_fold_is_a_clear_error",
    ("q2_mgm/core/metadata_checks.py", "check_batches", "Batch {} of {} holds {} sample(s)"):
        "tests/test_metadata_shapes.py::test_the_advised_fix_runs",
    ("q2_mgm/core/metadata_checks.py", "check_batches", "Every batch of {} holds one"):
        "tests/test_metadata_shapes.py::test_the_advised_fix_runs",
    ("q2_mgm/core/metadata_checks.py", "check_new_cohort", "{}; no batches were given"):
        "tests/test_cases.py::TestBatchModelOneNewSample::"
        "test_the_fix_predicting_with_other_samples_of_the_cohort_runs",
    ("q2_mgm/core/metadata_checks.py", "check_new_cohort", "{}; batch {} of {} holds"):
        "tests/test_metadata_shapes.py::test_a_small_new_batch_predicted_without_batches_as_advised",
    ("q2_mgm/core/metadata_checks.py", "check_min_samples", "No genus reaches min_samples"):
        "tests/test_cases.py::TestKeystoneReportSmallClasses::test_the_fix_lower_min_samples_gives_the_page",
    ("q2_mgm/core/samples.py", "samples_with_values", "missing_samples is {}"): GUARDED,
    ("q2_mgm/core/samples.py", "samples_with_values", "{} of {} {} samples are not in the metadata"):
        "tests/test_cases.py::TestMetadataIdMismatch::test_ignore_leaves_them_out_and_the_evaluation_lists_them",
    ("q2_mgm/core/samples.py", "samples_with_values", "None of {} {} samples has a value"):
        "tests/test_fix_advice.py::test_metadata_ids_matched_as_advised",
    ("q2_mgm/core/training/splits.py", "check_class_sizes", "Class {} of metadata column {} has"):
        "tests/test_metadata_shapes.py::test_a_class_too_rare_for_the_split_filtered_out_as_advised_fine_tunes",
    ("q2_mgm/core/cross_validation.py", "check_fold_settings", "cv_strategy must be one of"): GUARDED,
    ("q2_mgm/core/cross_validation.py", "check_fold_settings", "cv must be at least 2 folds"): GUARDED,
    ("q2_mgm/core/cross_validation.py", "check_fold_settings", "cv_strategy 'leave-one-group-out' needs a groups"):
        "tests/test_metadata_shapes.py::test_the_advised_fix_runs",
    ("q2_mgm/core/cross_validation.py", "check_fold_settings", "leave-one-group-out needs at least 2 groups"):
        "tests/test_cases.py::TestCvOneGroup::test_the_fix_without_groups_runs",
    ("q2_mgm/core/cross_validation.py", "check_fold_settings", "k-fold with groups needs at least"):
        "tests/test_metadata_shapes.py::test_the_advised_fix_runs",
    ("q2_mgm/core/cross_validation.py", "check_stratified_classes", "{}{} has {} samples, fewer than the cv"):
        "tests/test_metadata_shapes.py::test_the_advised_fix_runs",
    ("q2_mgm/core/cross_validation.py", "check_scored_folds", "Every held-out fold holds one class of {} only"):
        "tests/test_metadata_shapes.py::test_the_advised_fix_runs",
    ("q2_mgm/core/cross_validation.py", "check_training_classes", "Holding out {} leaves no training sample"):
        "tests/test_metadata_shapes.py::test_k_fold_groups_that_leave_a_class_untrained_stop_before_the_model_and_"
        "the_fixes_run",
    ("q2_mgm/core/trajectories.py", "align", "The time column {} holds no numbers"):
        "tests/test_trajectory.py::test_a_time_without_numbers_is_a_clear_error",
    ("q2_mgm/core/trajectories.py", "align", "Only {} samples have both an embedding"):
        "tests/test_trajectory.py::test_metadata_of_other_samples_is_a_clear_error",
    ("q2_mgm/core/trajectories.py", "align", "The time column {} holds one value"):
        "tests/test_trajectory.py::test_one_time_point_is_a_clear_error_and_a_time_that_varies_places_the_samples",
    ("q2_mgm/core/keystone_samples.py", "_known_classes", "None of the classes of {}"):
        "tests/test_keystone.py::test_no_class_the_model_knows_is_an_error_and_attention_as_advised_scores_them",
    ("q2_mgm/core/keystone_batches.py", "check_batch_inputs", "batches ({}) was given, but this model"):
        "tests/test_keystone.py::test_batches_for_a_model_fit_without_them_is_an_error_and_left_out_as_advised_scores",
    ("q2_mgm/core/keystone_batches.py", "check_batch_inputs", "This {} was fit with batches ({}): it"):
        "tests/test_keystone.py::"
        "test_attention_does_not_apply_to_a_batch_fit_model_and_gradient_as_advised_explains_it",
    ("q2_mgm/core/keystone_batches.py", "check_batch_inputs", "This {} was fit with batches ({}) and"):
        "tests/test_keystone.py::test_a_batch_fit_model_needs_its_batches_and_given_them_as_advised_explains",
    ("q2_mgm/core/keystone_batches.py", "check_batch_inputs", "This regressor was fit without batches"):
        F + "test_a_regressor_fit_without_batches_refused_and_one_fit_with_them_as_advised_explained",
    ("q2_mgm/core/keystone_batches.py", "higher_or_lower", "A regressor's genera are summarised by numbers"):
        "tests/test_keystone_regressor.py::"
        "test_a_categorical_column_for_a_regressor_is_an_error_and_the_numeric_column_as_advised_explains",
    ("q2_mgm/core/keystone_batches.py", "higher_or_lower", "No value of {} lies above its batch's median"):
        "tests/test_keystone_regressor.py::"
        "test_the_batches_column_as_the_values_is_an_error_and_a_column_varying_within_batches_explains",
    ("q2_mgm/core/keystone_batches.py", "check_batch_inputs", "attention_samples picks samples"):
        "tests/test_keystone.py::test_a_batch_fit_model_needs_its_batches_and_given_them_as_advised_explains",
    # predict-classification, predict-regression, keystone-genera and keystone-report read a batch-fit model's
    # batches here (tests/test_fixes_forest_training.py::test_samples_without_a_batch_are_refused_and_filtered_out_
    # as_advised_they_are_predicted applies the fix to predict)
    ("q2_mgm/core/metadata_checks.py", "batch_of_each_sample", "{} sample(s) have no batch in {}"):
        "tests/test_keystone.py::test_a_sample_without_a_batch_or_a_batch_too_small_is_an_error_and_the_fixes_explain",
    ("q2_mgm/core/keystone_batches.py", "_summarised_classes", "The samples of {} hold {} of the classifier's"):
        "tests/test_keystone.py::test_one_class_is_an_error_and_the_predicted_classes_as_advised_give_effects",
    ("q2_mgm/core/cross_validation.py", "plan_folds", "Unknown recipe {}; choose one of {}."): NotInput(
        "recipe's Choices(*RECIPES) in the registration of cross-validate-classification/-regression and "
        "prepare-cross-validation refuses any other name before _plan runs (" + F + "test_a_recipe_or_projection_"
        "outside_the_choices_is_refused_by_the_registration); guards direct use of core.cross_validation"),
    ("q2_mgm/core/cross_validation.py", "plan_folds", "Every sample must be held out by exactly one fold; some"):
        NotInput("the actions pass plan_folds the folds make_folds drew (actions.cross_validation._plan); a "
                 "FoldPlan artifact stores each sample's fold, so no fold list of a user's reaches it: guards "
                 "direct use of the core library"),
    ("q2_mgm/core/cross_validation.py", "plan_folds", "Every sample must be held out by exactly one fold; {}"):
        NotInput("the actions pass plan_folds the folds make_folds drew (actions.cross_validation._plan), each "
                 "sample in one: guards direct use of the core library"),
    ("q2_mgm/core/cross_validation.py", "plan_folds", "{} must train on every sample it does not hold out"):
        NotInput("the actions pass plan_folds the folds make_folds drew (actions.cross_validation._plan), which "
                 "train on every other sample in input order: guards direct use of the core library"),
    ("q2_mgm/core/cross_validation.py", "plan_folds", "mgm_markers needs each sample's sentence"): NotInput(
        "actions.cross_validation._plan always passes token_ids (every kept sample's sentence, encoded): guards "
        "direct use of the core library"),
    ("q2_mgm/core/cross_validation.py", "run_fold", "fold must be between 1 and {}"):
        F + "test_fold_numbers_and_fold_results_as_advised_collate",
    ("q2_mgm/core/cross_validation.py", "collate_folds", "Expected the results of folds {}-{} once each"):
        F + "test_fold_numbers_and_fold_results_as_advised_collate",
    ("q2_mgm/core/cross_validation.py", "collate_folds", "The result of fold {} was not made from these folds"):
        F + "test_fold_numbers_and_fold_results_as_advised_collate",
    ("q2_mgm/core/trajectories.py", "project", "projection must be one of {}, not {}."): NotInput(
        "projection's Choices(*PROJECTIONS) in trajectory's registration refuses any other name before the "
        "visualizer runs (" + F + "test_a_recipe_or_projection_outside_the_choices_is_refused_by_the_registration); "
        "guards direct use of core.trajectories"),
    ("q2_mgm/core/keystone_samples.py", "load_keystone_model", "score_samples scores genera per class; this model"):
        NotInput("keystone_batches.check_batch_inputs, which both actions call first, refuses a regressor fit "
                 "without batches and sends one fit with batches to keystone_batches.explain_samples"),
    ("q2_mgm/core/keystone_samples.py", "load_keystone_model", "This classifier was fit with batches: it predicts"):
        NotInput("keystone_batches.check_batch_inputs reads the same training.json transfer record first "
                 "(fit_with_batches) and sends a model fit with batches to keystone_batches.explain_samples, or "
                 "refuses it; score_samples, which loads the model here, sees only models fit without batches"),
    ("q2_mgm/core/keystone_samples.py", "sample_groups", "With a pretrained model, keystone-genera needs a"):
        F + "test_a_pretrained_model_without_metadata_and_with_it_as_advised",
    ("q2_mgm/core/keystone_batches.py", "explain_samples", "keystone-genera explains a model fit with batches here"):
        NotInput("keystone_batches.check_batch_inputs, which both actions call first, sends only a model fit with "
                 "batches here; the raise guards direct use of the core library"),
    ("q2_mgm/core/keystone_batches.py", "explain_samples", "The across-study recipe reads the corpus's genus"):
        F + "test_a_corpus_without_abundances_tokenized_again_as_advised_is_explained",
}
