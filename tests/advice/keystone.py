"""Keystone genera: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput

MODULES = (
    "q2_mgm/core/keystone.py",
    "q2_mgm/visualizers/keystone.py",
)

_FIXES = "tests/test_fixes_keystone.py::"
# GUARDED: values only the registrations' Range/Choices refuse (method Choices(*METHODS); min_samples Range(1,
# None), n_bootstrap Range(1, 100_000), confidence Range(0.5, 1)); keystone-genera passes n_bootstrap=1 and REPORT's
# confidence. tests/test_fixes_keystone.py::test_values_the_core_refuses_are_outside_the_registrations_range shows
# QIIME 2 refuses each first.

ADVICE = {
    # checked by the action and the visualizer before any model loads
    ("q2_mgm/core/keystone.py", "check_corpus", "The corpus holds no samples"):
        _FIXES + "test_an_empty_corpus_refused_and_a_corpus_with_samples_scored",
    ("q2_mgm/core/keystone.py", "check_subjects", "No scored sample has both a group and a subject"):
        _FIXES + "test_subjects_of_other_ids_refused_before_the_model_and_the_corpus_ids_summarised",
    # scores per token
    ("q2_mgm/core/keystone.py", "_check_model_inputs", "No sentences to score: token_ids is empty"): NotInput(
        "check_corpus, called by keystone-genera and keystone-report before the model loads, refuses a corpus "
        "without samples; samples_with_values refuses a column that groups none of them, and "
        "keystone_samples._known_classes a gradient that explains none; attention_map scores one sentence"),
    ("q2_mgm/core/keystone.py", "_check_model_inputs", "A sentence has {} tokens but the model reads at most {}"):
        _FIXES + "test_sentences_longer_than_the_model_reads_tokenized_again_as_advised",
    ("q2_mgm/core/keystone.py", "_check_model_inputs", "The model computes attention with {}"): NotInput(
        "every model an action loads is built by core.models.build_model, which sets eager attention; the raise "
        "guards direct use of the core library with a network built elsewhere"),
    ("q2_mgm/core/keystone.py", "_check_target", "target names a class, but this model has no classifier"):
        NotInput("keystone_samples.score_samples passes a target only for a classifier (model.classifier); the "
                 "raise guards direct use of the core library"),
    ("q2_mgm/core/keystone.py", "_check_target", "target must hold one integer class index per sentence"):
        NotInput("keystone_samples.score_samples builds the target itself, one int64 class index per scored "
                 "sample; the raise guards direct use of the core library"),
    ("q2_mgm/core/keystone.py", "_check_target", "target holds class {}, but the model has classes 0 to {}"):
        NotInput("keystone_samples.score_samples maps only the classifier's own labels to indices "
                 "(_known_classes), and training.read_training_record refuses a training.json whose labels do "
                 "not match the network's outputs"),
    ("q2_mgm/core/keystone.py", "token_scores", "method must be one of {}, not {}"):
        GUARDED,
    ("q2_mgm/core/keystone.py", "token_scores", "steps must be at least 1"): NotInput(
        "steps is no parameter of any action: keystone_samples.score_samples scores with the default IG_STEPS; "
        "the raise guards direct use of the core library"),
    # per sample, per genus
    ("q2_mgm/core/keystone.py", "genus_scores", "scores must hold one array per sentence"): NotInput(
        "keystone_samples.score_samples passes token_scores's own result for the same token_ids; the raise guards "
        "direct use of the core library"),
    ("q2_mgm/core/keystone.py", "genus_scores", "sample_ids holds {} IDs for {} sentences"): NotInput(
        "keystone_samples.score_samples passes the IDs of the very samples it encoded; the raise guards direct "
        "use of the core library"),
    ("q2_mgm/core/keystone.py", "_align_groups", "groups must be a pandas Series"): NotInput(
        "the actions pass the metadata column's to_series() (or the predicted classes as a Series); the raise "
        "guards direct use of the core library"),
    ("q2_mgm/core/keystone.py", "_align_groups", "groups lists a sample ID twice"): NotInput(
        "the groups are indexed by the scored samples' IDs, which QIIME 2 metadata holds once each, and per "
        "subject by one label per (subject, group) of per_subject's groupby; the raise guards direct use of the "
        "core library"),
    ("q2_mgm/core/keystone.py", "_align_groups", "groups are not aligned to the samples"): NotInput(
        "keystone_samples.score_samples labels the score matrix with the IDs of its own groups, so every scored "
        "sample has a group; the raise guards direct use of the core library"),
    ("q2_mgm/core/keystone.py", "_align_groups", "No scored sample has a group"): NotInput(
        "core.samples.samples_with_values refuses a metadata column that gives none of the corpus's samples a "
        "value ('None of ... samples has a value') before any scoring"),
    ("q2_mgm/core/keystone.py", "_align_groups", "Group {} has no samples among the scored samples"): NotInput(
        "the actions' groups are text (keystone_samples.sample_groups casts them with astype(str)), never a "
        "categorical with unused categories, so every group is some scored sample's; the raise guards direct use "
        "of the core library"),
    ("q2_mgm/core/keystone.py", "per_subject", "subjects must be a pandas Series"): NotInput(
        "the actions pass the subjects column's to_series(); the raise guards direct use of the core library"),
    ("q2_mgm/core/keystone.py", "per_subject", "No scored sample has both a group and a subject"): NotInput(
        "check_subjects, called by keystone-genera and keystone-report (both recipes) before the model runs on the "
        "very samples they will explain (keystone_samples.explained_groups), refuses it first"),
    ("q2_mgm/core/keystone.py", "aggregate", "min_samples and n_bootstrap must be at least 1 and confidence"):
        GUARDED,
    # differences between classes
    ("q2_mgm/core/keystone.py", "class_differences", "min_samples must be at least 1"):
        GUARDED,
    ("q2_mgm/core/keystone.py", "class_differences", "class_differences needs at least two classes"): NotInput(
        "keystone_report calls class_differences only where the summary holds two groups or more, and shows no "
        "differences otherwise"),
    # the report's attention maps
    ("q2_mgm/visualizers/keystone.py", "_chosen_samples", "{} of the {} samples of attention_samples have no "
                                                          "attention map to show"):
        _FIXES + "test_attention_samples_without_a_map_then_as_advised",
}
