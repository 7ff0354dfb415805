"""The cross-study recipes, their explanations, markers and the meta-analysis: each error message with the test that
applies its fix (see tests/advice/__init__.py)."""
from . import NotInput

MODULES = (
    "q2_mgm/core/transfer.py",
    "q2_mgm/core/contributions.py",
    "q2_mgm/core/markers.py",
    "q2_mgm/core/meta_analysis.py",
    "q2_mgm/actions/cross_validation.py",
    "q2_mgm/visualizers/evaluate.py",
)

FIXES = "tests/test_fixes_cross_study.py::"
CV = "tests/test_cross_validation.py::"
META_CALLER = ("core.cross_validation._meta_analysis, the meta-analysis' only caller, passes the fold plan's "
               "abundances and targets (one row per kept sample, indexed alike; corpus IDs are unique), the batches "
               "or groups on that index and the default prevalence, and runs it only with two classes")

ADVICE = {
    # --- actions/cross_validation.py ---
    ("q2_mgm/actions/cross_validation.py", "_plan", "This corpus holds no genus abundances"):
        FIXES + "test_a_corpus_without_abundances_is_refused_and_the_table_tokenized_again_cross_validates",
    ("q2_mgm/actions/cross_validation.py", "prepare_cross_validation", "task is 'regression' but {} is categorical"):
        FIXES + "test_regression_of_a_categorical_column_is_refused_and_both_fixes_prepare",
    ("q2_mgm/actions/cross_validation.py", "_markers_model", "These folds' features were made with {}"):
        CV + "test_a_fold_explained_with_another_model_than_its_features_is_refused",
    ("q2_mgm/actions/cross_validation.py", "_check_task", "These folds were prepared for {}; collate them with"):
        FIXES + "test_folds_collated_by_the_other_tasks_action_are_refused_and_the_named_action_collates",
    ("q2_mgm/actions/cross_validation.py", "cross_validation_markers", "No genus was scored in any held-out group"):
        FIXES + "test_held_out_groups_of_one_sample_score_no_marker_and_the_advised_folds_rank_the_genera",
    # marker_table's and importance_method's messages, passed on as TransferError
    ("q2_mgm/actions/cross_validation.py", "cross_validation_markers", "str(error)"):
        CV + "test_without_mgm_markers_the_markers_output_holds_the_clr_baselines",
    ("q2_mgm/actions/cross_validation.py", "_pipeline", "Every group of {} holds one sample"):
        FIXES + "test_held_out_groups_of_one_sample_score_no_marker_and_the_advised_folds_rank_the_genera",
    # --- core/transfer.py ---
    ("q2_mgm/core/transfer.py", "load_recipe", "The stored recipe {} is not one q2-mgm stores as arrays"):
        FIXES + "test_a_batch_fit_models_recipe_edited_by_hand_is_refused_and_the_model_as_made_predicts",
    ("q2_mgm/core/transfer.py", "load_recipe", "The stored {} lacks {}; re-create the model"):
        FIXES + "test_a_batch_fit_models_recipe_edited_by_hand_is_refused_and_the_model_as_made_predicts",
    ("q2_mgm/core/transfer.py", "make_recipe", "Unknown recipe {}"): NotInput(
        "the registrations' Choices for recipe (RECIPES) refuse any other name, load_fold_plan refuses a folds "
        "artifact whose methods are not RECIPES, and fine-tune with batches asks for DEFAULT_RECIPE "
        "(tests/test_fixes_cross_study.py::test_an_unknown_recipe_is_refused_by_the_registration_and_by_the_fold_"
        "plan)"),
    ("q2_mgm/core/transfer.py", "__post_init__", "embeddings ({}), likelihood ({}), abundances ({}) and batches"):
        NotInput("every caller builds the four from the same samples (the actions from one corpus and one "
                 "metadata selection), and load_fold_plan checks a stored plan's array shapes against its "
                 "samples.tsv before building them"),
    ("q2_mgm/core/transfer.py", "__post_init__", "Batch {} holds {} sample(s); standardising within each batch"):
        FIXES + "test_a_fold_plan_with_a_batch_of_one_sample_is_refused_and_the_plan_without_batches_runs",
    # --- core/contributions.py: explain's callers are run_fold (cross-validate-fold, the cv actions) and
    # keystone_batches.explained_samples (keystone-genera of a batch-fit model) ---
    ("q2_mgm/core/contributions.py", "explain", "{} has no per-genus contributions"): NotInput(
        "core.cross_validation.fold_markers explains a recipe only where it has linear parts (`if not fitted.parts` "
        "returns first; the forest goes through importance_effects), and a batch-fit model's recipe comes from "
        "load_recipe, which refuses a recipe without parts"),
    ("q2_mgm/core/contributions.py", "explain", "{} reads the MGM model's features: explaining it needs"): NotInput(
        "fold_markers explains an MGM-reading recipe only with mgm_markers, where _markers_model loads the network "
        "(cross-validate-fold) or run_plan is given it (the cv actions), and load_fold_plan refuses a plan asking "
        "for mgm_markers without the sentences' tokens; keystone_batches passes the model, its vocabulary and every "
        "sample's sentence"),
    ("q2_mgm/core/contributions.py", "explain", "{}'s MGM blocks are not laid out as explain reads them"): NotInput(
        "the recipes' parts are class constants of core.transfer (load_recipe builds a stored recipe from RECIPES "
        "by name); this guards a new recipe written into the library"),
    # --- core/markers.py ---
    ("q2_mgm/core/markers.py", "marker_table", "This cross-validation holds no markers of {}"): NotInput(
        "its callers pass only a method the run explained: cross_validation_markers the one importance_method "
        "found in the effects, visualizers._markers.markers_section the methods it lists as explained"),
    ("q2_mgm/core/markers.py", "importance_method", "This cross-validation holds no markers"):
        CV + "test_without_mgm_markers_the_markers_output_holds_the_clr_baselines",
    # --- core/meta_analysis.py: shown as 'not run: ...' on the evaluation's page ---
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "abundances must be a non-empty pandas DataFrame"):
        NotInput(META_CALLER),
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "abundances lists a sample ID twice"): NotInput(META_CALLER),
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "abundances hold negative, missing or infinite values"):
        NotInput("a corpus's abundances are checked by its format (MGMCorpusDirFmt: 0 < value <= 1); a folds "
                 "artifact edited to hold negative abundances stops earlier, in cross-validate-fold's fit of the "
                 "CLR recipes, before collate runs the meta-analysis"),
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "prevalence is {}"): NotInput(META_CALLER),
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "The meta-analysis compares two classes"): NotInput(META_CALLER),
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "No batch holds at least {} samples of each class"):
        FIXES + "test_a_meta_analysis_over_groups_of_one_class_is_not_run_and_batches_of_both_classes_as_advised_"
                "run_it",
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "{} must be a pandas Series"): NotInput(META_CALLER),
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "{} lists a sample ID twice"): NotInput(META_CALLER),
    ("q2_mgm/core/meta_analysis.py", "_check_inputs", "{} of the {} samples have no value in {}"):
        NotInput(META_CALLER),
    # --- visualizers/evaluate.py ---
    ("q2_mgm/visualizers/evaluate.py", "_truth_for", "{} predicted samples have no value in {}"):
        FIXES + "test_predicted_samples_without_a_true_class_are_refused_and_the_advised_fixes_evaluate",
    ("q2_mgm/visualizers/evaluate.py", "_hard_predictions", "predictions and probabilities hold different samples"):
        FIXES + "test_predictions_and_probabilities_of_different_runs_are_refused_and_one_runs_outputs_evaluate",
    ("q2_mgm/visualizers/evaluate.py", "_hard_predictions", "predictions name classes the probabilities do not"):
        FIXES + "test_predictions_and_probabilities_of_different_runs_are_refused_and_one_runs_outputs_evaluate",
    ("q2_mgm/visualizers/evaluate.py", "evaluate_classification", "{} holds classes the model does not know"):
        FIXES + "test_a_truth_column_of_other_classes_is_refused_and_the_trained_column_evaluates",
}
