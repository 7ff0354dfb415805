"""Realism of generated samples and the reconstructors: each error message with the test that applies its fix (see
tests/advice/__init__.py)."""
from . import NotInput

MODULES = (
    "q2_mgm/core/realism.py",
    "q2_mgm/core/reconstruction/__init__.py",
    "q2_mgm/core/reconstruction/base.py",
    "q2_mgm/core/reconstruction/neural.py",
    "q2_mgm/core/reconstruction/simple.py",
    "q2_mgm/visualizers/evaluate_generated.py",
)

T = "tests/test_fixes_realism_reconstruction.py::"
REALISM, BASE = "q2_mgm/core/realism.py", "q2_mgm/core/reconstruction/base.py"
NEURAL, SIMPLE = "q2_mgm/core/reconstruction/neural.py", "q2_mgm/core/reconstruction/simple.py"
LIBRARY = "; guards direct use of the core library"
DAMAGED = T + "test_damaged_reconstructor_restored_as_advised"
FITTED = NotInput("fit_reconstructor (fit-reconstructor) saves the reconstructor right after fitting it, and generate "
                  "only loads fitted ones" + LIBRARY)

ADVICE = {
    # evaluate-generated: core.realism on the tables evaluate_generated._genera collapses to MGM genera
    (REALISM, "check_abundances", "The {} table is empty ({})"): T + "test_bad_abundances_fixed_as_advised",
    (REALISM, "check_abundances", "The {} table holds {} non-finite values"):
        T + "test_bad_abundances_fixed_as_advised",
    (REALISM, "check_abundances", "The {} table holds {} negative values"): T + "test_bad_abundances_fixed_as_advised",
    (REALISM, "check_abundances", "The {} table holds non-numeric values"): NotInput(
        "a FeatureTable (BIOM) holds numbers only: evaluate_generated's tables reach check_abundances as float "
        "DataFrames through q2-types' transformers" + LIBRARY),
    (REALISM, "labelled_profiles", "The {} table lists sample {} more than once"): NotInput(
        "biom.Table refuses duplicate sample IDs (TableException) when a FeatureTable is made, and "
        "genus_relative_abundance keeps the table's IDs" + LIBRARY),
    (REALISM, "labelled_profiles", "None of the {} table's {} sample IDs has a {} label"):
        T + "test_labels_not_indexed_by_the_table_fixed_as_advised",
    (REALISM, "labelled_profiles", "{} {} samples hold no abundance"): NotInput(
        "evaluate_generated._genera passes genus_relative_abundance's table, which leaves out (and notes) every "
        "sample without an MGM genus" + LIBRARY),
    (REALISM, "pool", "Real and synthetic samples share no label"):
        T + "test_synthetic_labels_that_share_none_relabelled_as_advised",
    (REALISM, "pool", "Label {} has {} {} samples in {}; every label needs at least"):
        T + "test_a_label_short_of_samples_fixed_as_advised",
    (REALISM, "_check_max_samples", "max_samples must be at least"): NotInput(
        "evaluate-generated has no max_samples parameter: evaluate_generated calls realism_report with MAX_SAMPLES "
        "(1000)" + LIBRARY),
    ("q2_mgm/visualizers/evaluate_generated.py", "_genera", "No feature of the {} table names a genus"):
        T + "test_features_without_mgm_genera_fixed_as_advised",
    # the reconstructors
    ("q2_mgm/core/reconstruction/__init__.py", "__getattr__", "module {} has no attribute {}"): NotInput(
        "Python's module attribute protocol: code importing a name core.reconstruction lacks, never an action's "
        "input" + LIBRARY),
    (BASE, "bray_curtis", "Bray-Curtis is undefined for two empty profiles"): NotInput(
        "only per_sample_bray_curtis and evaluate call it, which no action runs (benchmarks, library use), and "
        "aligned_profiles gives every real profile its positive genera" + LIBRARY),
    (BASE, "aligned_profiles", "Give the sentences as a pandas Series"): NotInput(
        "fit_reconstructor passes corpus.samples.sentence, a Series indexed by sample ID" + LIBRARY),
    (BASE, "aligned_profiles", "No sample ID is both among the sentences"): NotInput(
        "fit_reconstructor makes the sentences (tokenize_matrix, which refuses a table without MGM genera first) and "
        "the profiles (genus_relative_abundance) from the same table, so they share their samples" + LIBRARY),
    (BASE, "aligned_profiles", "Sample {}'s sentence names {}, which has no abundance"): NotInput(
        "fit_reconstructor makes the sentences and the profiles from the same table, taxonomy and harmonize_names, "
        "so every sentence genus has abundance" + LIBRARY),
    (BASE, "check_predictable", "{} sentences hold no genus"): NotInput(
        "fit-reconstructor: aligned_profiles keeps samples with an MGM genus, whose sentences hold one; generate: "
        "core.generation's sampler bans <eos> before the first genus, and max_length's Range starts at 3" + LIBRARY),
    (BASE, "genera_to_predict", "The reconstructor is not fitted"): NotInput(
        "generate predicts with MGnifyMeanReconstructor or with one load_reconstructor read from a validated "
        "MGMReconstructor, always fitted" + LIBRARY),
    (BASE, "load_reconstructor", "The reconstructor is missing {}"): NotInput(
        "MGMReconstructorDirFmt declares reconstructor.json a required file: QIIME 2 refuses the directory "
        "('Missing one or more files') before its _validate_ calls load_reconstructor"),
    (BASE, "load_reconstructor", "{} names reconstructor kind {}"): DAMAGED,
    (BASE, "load_reconstructor", "{} is not valid JSON"): NotInput(
        "MGMReconstructorDirFmt's reconstructor.json is a JSONFormat, whose _validate_ refuses invalid JSON ('Not "
        "valid JSON') before the directory's _validate_ calls load_reconstructor (import, and viewing a tampered "
        ".qza, both validate)"),
    (BASE, "load_kind", "The reconstructor in {} is {}, not {}"): NotInput(
        "only the classes' .load call it; every action reads reconstructors with load_reconstructor, which reads "
        "any kind" + LIBRARY),
    (NEURAL, "_load_weights", "The reconstructor is missing {}; a neural reconstructor needs"): DAMAGED,
    (NEURAL, "_load_weights", "{} does not match {} (the genera and width it records)"): DAMAGED,
    (NEURAL, "_load_weights", "{} is not a valid safetensors file"): DAMAGED,
    (NEURAL, "_batch", "{} genera are not MGM genera"):
        T + "test_sentences_of_another_vocabulary_generated_again_as_advised",
    (NEURAL, "fit", "{} samples with validation_fraction {} leave none to train or validate on"):
        T + "test_a_table_of_one_sample_fit_as_advised",
    (NEURAL, "save", "The reconstructor is not fitted"): FITTED,
    (NEURAL, "from_record", "{}'s genera must be a non-empty list"): DAMAGED,
    (NEURAL, "from_record", "{} lacks a valid genera list or settings"): DAMAGED,
    (NEURAL, "from_record", "{}'s history is not a table with an epoch column"): DAMAGED,
    (SIMPLE, "predict", "{} genera are not MGM genera"):
        T + "test_sentences_of_another_vocabulary_generated_again_as_advised",
    (SIMPLE, "save", "The reconstructor is not fitted"): FITTED,
    (SIMPLE, "from_record", "{} lists no valid medians"): DAMAGED,
}
