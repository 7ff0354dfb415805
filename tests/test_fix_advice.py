"""Every error of the metadata checks names a fix, and a test applies it (issue 19): this walks the `raise`
statements of the code that checks metadata (SCOPE) and fails where a raise has no entry in ADVICE, or where an
entry's test does not exist. An entry is the test that applies the fix, or GUARDED where the registration's Range
or Choices refuses the value before the action runs (so the fix is the registration's own message).
The same list is the note the issue asks for: every such error message with the test that applies its fix."""
import ast

import pytest

from .helpers import REPO

# the functions that check metadata (None: every function of the module)
SCOPE = {"q2_mgm/core/metadata_checks.py": None, "q2_mgm/core/samples.py": None,
         "q2_mgm/core/training/splits.py": None,
         "q2_mgm/core/cross_validation.py": {"check_fold_settings", "make_folds", "check_training_classes",
                                             "check_scored_folds"},
         "q2_mgm/core/trajectories.py": {"align"}, "q2_mgm/core/keystone_samples.py": {"_known_classes"},
         "q2_mgm/core/keystone_batches.py": {"check_batch_inputs", "batch_of_each_sample", "_summarised_classes"}}
GUARDED = "refused first by the registration's Range/Choices"
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
    ("q2_mgm/core/cross_validation.py", "make_folds", "{}{} has {} samples, fewer than the cv={} folds"):
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
    ("q2_mgm/core/keystone_batches.py", "check_batch_inputs", "This classifier was fit with batches ({}): it"):
        "tests/test_keystone.py::"
        "test_attention_does_not_apply_to_a_batch_fit_model_and_gradient_as_advised_explains_it",
    ("q2_mgm/core/keystone_batches.py", "check_batch_inputs", "This classifier was fit with batches ({}) and"):
        "tests/test_keystone.py::test_a_batch_fit_model_needs_its_batches_and_given_them_as_advised_explains",
    ("q2_mgm/core/keystone_batches.py", "check_batch_inputs", "attention_samples picks samples"):
        "tests/test_keystone.py::test_a_batch_fit_model_needs_its_batches_and_given_them_as_advised_explains",
    ("q2_mgm/core/keystone_batches.py", "batch_of_each_sample", "{} sample(s) have no batch in {}"):
        "tests/test_keystone.py::test_a_sample_without_a_batch_or_a_batch_too_small_is_an_error_and_the_fixes_explain",
    ("q2_mgm/core/keystone_batches.py", "batch_of_each_sample", "Batch {} of {} holds {} sample(s); the model"):
        "tests/test_keystone.py::test_a_sample_without_a_batch_or_a_batch_too_small_is_an_error_and_the_fixes_explain",
    ("q2_mgm/core/keystone_batches.py", "_summarised_classes", "The samples of {} hold {} of the classifier's"):
        "tests/test_keystone.py::test_one_class_is_an_error_and_the_predicted_classes_as_advised_give_effects",
}


def _first_words(node):
    """The message's opening as written, with {} for every interpolated value."""
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return ast.unparse(node)


def raises_in_scope():
    """(module, function, message) of every `raise X(message)` in SCOPE."""
    found = []
    for module, functions in SCOPE.items():
        for function in ast.walk(ast.parse((REPO / module).read_text())):
            if not isinstance(function, ast.FunctionDef) or (functions and function.name not in functions):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                    found.append((module, function.name, _first_words(node.exc.args[0])))
    return found


def _entry(module, function, message):
    return [key for key in ADVICE if key[:2] == (module, function) and message.startswith(key[2])]


def _test_exists(node_id):
    path, *names = node_id.split("::")
    tree = ast.parse((REPO / path).read_text())
    scope = tree.body
    for name in names:
        match = [n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name]
        if not match:
            return False
        scope = match[0].body
    return True


def test_every_raise_of_the_metadata_checks_has_a_test_that_applies_its_fix():
    found = raises_in_scope()
    assert len(found) >= len(SCOPE)
    missing = [r for r in found if len(_entry(*r)) != 1]
    assert not missing, f"raises with no (or several) ADVICE entries: {missing}"
    stale = [key for key in ADVICE if not any(_entry(*r) == [key] for r in found)]
    assert not stale, f"ADVICE entries that match no raise: {stale}"
    absent = [test for test in ADVICE.values() if test != GUARDED and not _test_exists(test)]
    assert not absent, f"ADVICE names tests that do not exist: {absent}"


@pytest.mark.parametrize("module, function, words", [k for k, v in ADVICE.items() if v == GUARDED])
def test_guarded_values_are_refused_by_the_registration(module, function, words):
    """What GUARDED claims: the value that raises is outside every action's Range or Choices."""
    from q2_mgm.actions.cross_validation import PARAMETERS
    from q2_mgm.actions._parameters import MISSING_SAMPLES
    guards = {"missing_samples is {}": MISSING_SAMPLES, "cv_strategy must be one of": PARAMETERS["cv_strategy"],
              "cv must be at least 2 folds": PARAMETERS["cv"]}
    bad = {"missing_samples is {}": "drop", "cv_strategy must be one of": "leave-one-out",
           "cv must be at least 2 folds": 1}
    assert bad[words] not in guards[words]


def test_metadata_ids_matched_as_advised(mgm_plugin):
    """None of the samples has a value (the metadata's IDs are written otherwise): the advice is to make them match
    the table's; with matching IDs the samples are split."""
    import numpy as np
    import pandas as pd
    import qiime2
    from q2_mgm.core.tokenizer import tokenize_dataframe
    from q2_mgm.core.training import TrainingError
    ids = [f"P{i:02d}" for i in range(12)]
    corpus = qiime2.Artifact.import_data("SampleData[MGMCorpus]", tokenize_dataframe(pd.DataFrame(
        np.arange(1.0, 25.0).reshape(12, 2), index=ids, columns=["g__Bacteroides", "g__Prevotella"])))
    written = pd.Series(["a", "b"] * 6, index=pd.Index([f"P-{i:02d}" for i in range(12)], name="id"), name="status")
    with pytest.raises(TrainingError, match="None of the corpus's 12 samples has a value.*match the table's"):
        mgm_plugin.actions.split_corpus(corpus=corpus, metadata=qiime2.CategoricalMetadataColumn(written),
                                        missing_samples="ignore")
    matched = qiime2.CategoricalMetadataColumn(written.rename(lambda s: s.replace("-", "")))
    training, test = mgm_plugin.actions.split_corpus(corpus=corpus, metadata=matched, missing_samples="ignore")
    assert len(training.view(pd.DataFrame)) + len(test.view(pd.DataFrame)) == 12
