"""Models, vocabularies, tokenization and inference: each error message with the test that applies its fix (see
tests/advice/__init__.py)."""
from . import GUARDED, NotInput

MODULES = (
    "q2_mgm/core/models.py",
    "q2_mgm/core/vocab.py",
    "q2_mgm/core/tokenizer.py",
    "q2_mgm/core/inference.py",
    "q2_mgm/core/memory.py",
    "q2_mgm/distributed.py",
    "q2_mgm/core/taxonomy.py",
)

_FIXES = "tests/test_fixes_models.py::"
_DAMAGED_MODEL = _FIXES + "test_a_damaged_model_file_is_refused_and_restored_as_advised_the_model_embeds"
_INSTALLATION = ("raised while reading microformer-mgm's installed resources (the general model, phylogeny.csv): the "
                 "installation, which no action's input changes; the message names the pip command that repairs it")

ADVICE = {
    # a model's files, validated on import and whenever QIIME 2 loads the artifact (_ModelDirFmt._validate_)
    ("q2_mgm/core/models.py", "build_model", "config.json names architecture {}; q2-mgm knows {}"): _DAMAGED_MODEL,
    ("q2_mgm/core/models.py", "_read_config", "config.json is not a readable GPT-2 configuration"): _DAMAGED_MODEL,
    ("q2_mgm/core/models.py", "_stored_shapes", "model.safetensors is not a valid safetensors file"): _DAMAGED_MODEL,
    ("q2_mgm/core/models.py", "validate_model_dir", "The model is missing {}"): NotInput(
        "QIIME 2's DirectoryFormat validation of _ModelDirFmt (its required model.File entries) refuses a model "
        "directory without config.json, model.safetensors, vocab.txt or versions.json first ('Missing one or more "
        "files'); actions receive only validated directories"),
    ("q2_mgm/core/models.py", "validate_model_dir", "vocab.txt lists {} tokens but config.json's vocab_size"):
        _DAMAGED_MODEL,
    ("q2_mgm/core/models.py", "validate_model_dir", "model.safetensors does not match config.json"): _DAMAGED_MODEL,
    ("q2_mgm/core/models.py", "validate_model_dir", "vocab.txt is not a valid vocabulary"): _DAMAGED_MODEL,
    ("q2_mgm/core/models.py", "validate_model_dir", "versions.json is not valid JSON"): NotInput(
        "_formats.JSONFormat._validate_ (the versions.json file of _ModelDirFmt) parses the same text with json and "
        "refuses it first, before the directory's _validate_ calls validate_model_dir"),
    ("q2_mgm/core/models.py", "load_model", "model.safetensors lacks weights for"): NotInput(
        "load_model calls validate_model_dir first, which refuses weights absent from or unknown to config.json's "
        "architecture (tied weights aside), so loading cannot miss or meet an unexpected tensor"),
    # microformer-mgm's installed files
    ("q2_mgm/core/vocab.py", "upstream_resource", "{} is installed but {} is missing"): NotInput(_INSTALLATION),
    ("q2_mgm/core/vocab.py", "upstream_resource", "The MGM general model and vocabulary come from"):
        NotInput(_INSTALLATION),
    ("q2_mgm/core/vocab.py", "_read_statistics", "{} is not a plain CSV table"): NotInput(_INSTALLATION),
    ("q2_mgm/core/vocab.py", "__init__", "A vocabulary must start with"): NotInput(
        "_formats.VocabularyFormat._validate_ (vocab.txt of every model format) refuses a vocab.txt whose first "
        "lines are not the special tokens first; the other vocabularies are built by q2-mgm (MGM's own, plus label "
        "tokens)"),
    ("q2_mgm/core/vocab.py", "__init__", "The vocabulary lists a token twice"): _DAMAGED_MODEL,
    # inference
    ("q2_mgm/core/inference.py", "resolve_device", "device must be one of"): GUARDED,
    ("q2_mgm/core/inference.py", "resolve_device", "device is cuda but torch sees no CUDA GPU"):
        _FIXES + "test_cuda_without_a_gpu_then_cpu_as_advised_embeds",
    ("q2_mgm/core/inference.py", "encode", "The corpus holds {} tokens that the model's vocabulary lacks"):
        _FIXES + "test_a_model_with_another_vocabulary_then_the_general_model_as_advised_embeds",
    ("q2_mgm/core/inference.py", "_forward_pass", "pooling must be one of"): GUARDED,
    ("q2_mgm/core/inference.py", "_forward_pass", "A sentence has {} tokens but the model reads at most"):
        _FIXES + "test_sentences_longer_than_the_model_reads_then_tokenized_with_its_max_length_as_advised",
    # memory
    ("q2_mgm/core/memory.py", "check_tokenize_fits", "Tokenizing {} samples with {} non-zero values needs"):
        _FIXES + "test_a_table_too_big_for_the_memory_then_split_into_parts_as_advised_tokenizes",
    # tokenize
    ("q2_mgm/core/tokenizer.py", "_validate_values", "The table holds {} non-finite values"):
        _FIXES + "test_non_finite_values_then_the_sample_removed_as_advised_tokenizes",
    ("q2_mgm/core/tokenizer.py", "_validate_values", "The table holds {} negative values"):
        _FIXES + "test_a_clr_transformed_table_then_the_untransformed_one_as_advised_tokenizes",
    ("q2_mgm/core/tokenizer.py", "_check_taxonomy_covers", "The taxonomy does not cover {} of the table's"):
        _FIXES + "test_a_taxonomy_short_of_features_then_the_table_filtered_to_it_as_advised_tokenizes",
    ("q2_mgm/core/tokenizer.py", "tokenize_matrix", "max_length must be at least 2"): GUARDED,
    ("q2_mgm/core/tokenizer.py", "tokenize_matrix", "The table is empty ({} samples x {} features)"):
        _FIXES + "test_a_table_emptied_by_a_filter_then_a_lower_threshold_as_advised_tokenizes",
    ("q2_mgm/core/tokenizer.py", "tokenize_matrix", "_nothing_read_message(taxonomy, status)"):
        _FIXES + "test_features_without_readable_genera_then_the_taxonomy_or_harmonize_names_as_advised_tokenize",
    ("q2_mgm/core/tokenizer.py", "tokenize_matrix", "_no_abundance_message("):
        _FIXES + "test_samples_without_abundance_in_the_vocabulary_then_harmonize_names_as_advised_tokenizes",
    ("q2_mgm/core/tokenizer.py", "tokenize_matrix", "The table has {} duplicated {} IDs"): NotInput(
        "every action tokenizes a FeatureTable, viewed as a biom.Table, whose constructor refuses duplicate sample "
        "or observation IDs ('Duplicate observation IDs') on import; the check guards direct use of the core's "
        "tokenize_matrix and tokenize_dataframe"),
    # pretraining under torchrun
    ("q2_mgm/distributed.py", "_typed", "{} has no parameter {}; it has {}"):
        _FIXES + "test_an_unknown_parameter_of_distributed_pretraining_then_the_one_it_names_as_advised_runs",
}
