"""Pretraining and generation: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput

MODULES = (
    "q2_mgm/core/pretraining.py",
    "q2_mgm/core/generation.py",
    "q2_mgm/core/baseline_generator.py",
    "q2_mgm/actions/generative.py",
)

T = "tests/test_fixes_pretraining_generation.py::"
# GUARDED: values the registrations' Ranges refuse before the action runs (generate's n_per_label Range(1,
# 1_000_000), temperature Range(0, None, inclusive_start=False), top_k Range(0, None), top_p Range(0, 1]; pretrain's
# and pretrain-generator's epochs Range(1, 10_000), patience Range(1, 1000), validation_fraction Range(0.01, 0.5]);
# T + test_values_the_core_refuses_are_outside_the_registrations_range checks these Ranges; the core's checks guard
# direct calls.
MODEL_FORMAT = "the model formats' validation (core.models.validate_model_dir: vocab.txt's length must equal " \
               "config.json's vocab_size, and the weights' shapes must match config.json) refuses a model whose " \
               "vocabulary does not fit its embeddings before any action loads it; the check guards direct calls"

ADVICE = {
    # actions/generative.py
    ("q2_mgm/actions/generative.py", "_sentences", "Sample {} is in more than one corpus"):
        T + "test_samples_in_two_corpora_filtered_out_of_one_table_as_advised_pretrain",
    ("q2_mgm/actions/generative.py", "_check_size", "n_head ({}) must divide n_embd ({})"):
        T + "test_a_width_the_heads_do_not_divide_given_a_multiple_as_advised_pretrains",
    ("q2_mgm/actions/generative.py", "_prompts", "The generator has no label {}; it knows {}."):
        T + "test_a_label_the_generator_lacks_given_known_labels_or_left_out_as_advised",
    ("q2_mgm/actions/generative.py", "_prompts", "This model was pretrained without labels"):
        T + "test_labels_for_a_model_without_labels_left_out_or_a_generator_as_advised",
    # core/baseline_generator.py: no action calls bootstrap_baseline (benchmarks/generation.py and tests do)
    ("q2_mgm/core/baseline_generator.py", "bootstrap_baseline", "concentration must be positive"):
        NotInput("bootstrap_baseline is called by no action (only benchmarks and tests call it): the check guards "
                 "direct use of the core library"),
    ("q2_mgm/core/baseline_generator.py", "bootstrap_baseline", "n_per_label must be at least 1"):
        NotInput("bootstrap_baseline is called by no action (only benchmarks and tests call it): the check guards "
                 "direct use of the core library"),
    # core/generation.py
    ("q2_mgm/core/generation.py", "_prompt", "The model has no label token {}"):
        NotInput("generate's _prompts (actions/generative.py) refuses a label the model lacks (or a blank one) "
                 "first and passes only the model's own label tokens; the check guards direct calls of "
                 "core.generation.generate"),
    ("q2_mgm/core/generation.py", "_check", "Generation needs a language model (GPT2LMHeadModel)"):
        T + "test_a_classifier_network_imported_as_pretrained_pretrains_from_scratch_as_advised",
    ("q2_mgm/core/generation.py", "_check", "The model has {} token embeddings but the vocabulary"):
        NotInput(MODEL_FORMAT),
    ("q2_mgm/core/generation.py", "_check", "n_samples is {}"):
        GUARDED,
    ("q2_mgm/core/generation.py", "_check", "temperature is {}"):
        GUARDED,
    ("q2_mgm/core/generation.py", "_check", "top_k ({}) must be >= 0"):
        GUARDED,
    ("q2_mgm/core/generation.py", "_check", "max_length is {}; it must exceed the prompt"):
        T + "test_a_generator_of_two_positions_made_from_a_larger_model_as_advised_generates",
    # core/pretraining.py
    ("q2_mgm/core/pretraining.py", "label_token", "A sample has an empty label"):
        NotInput("pretrain-generator's labels are never empty: QIIME 2's CategoricalMetadataColumn refuses empty "
                 "and blank strings and core.samples.samples_with_values leaves out missing values; generate's "
                 "_prompts treats a blank label as unknown before it makes a token"),
    ("q2_mgm/core/pretraining.py", "label_vocabulary", "The labels {} give the same label token {}"):
        T + "test_labels_that_give_one_token_renamed_as_advised_pretrain_a_generator",
    ("q2_mgm/core/pretraining.py", "prompt_ids", "There are {} sentences but {} labels"):
        NotInput("pretrain_generator (actions/generative.py) passes the sentences of exactly the labelled samples "
                 "(sentences.loc[labels.index]) with their labels; the check guards direct calls"),
    ("q2_mgm/core/pretraining.py", "prompt_ids", "The vocabulary has no token {}"):
        NotInput("pretrain_generator (actions/generative.py) grows the vocabulary with add_label_tokens for every "
                 "label before prompt_ids; the check guards direct calls"),
    ("q2_mgm/core/pretraining.py", "prompt_ids", "A sentence does not start with <bos>"):
        NotInput("the corpus format's validation (CorpusSamplesFormat._validate_record: a sentence must start with "
                 "<bos>) refuses such a corpus on import, and encode keeps the order; the check guards direct calls"),
    ("q2_mgm/core/pretraining.py", "add_label_tokens", "The model has {} token embeddings but the vocabulary"):
        NotInput(MODEL_FORMAT),
    ("q2_mgm/core/pretraining.py", "_check_settings", "epochs ({}) and patience ({}) must be at least 1"):
        GUARDED,
    ("q2_mgm/core/pretraining.py", "_check_settings", "validation_fraction is {}; it must lie strictly"):
        GUARDED,
    ("q2_mgm/core/pretraining.py", "_split", "{} sentences leave none to train on"):
        NotInput("_check_inputs refuses fewer than two sentences first, and the registrations' validation_fraction "
                 "Range(0.01, 0.5) then leaves at least one of two or more sentences to train on"),
    ("q2_mgm/core/pretraining.py", "_check_inputs", "Pretraining needs a language model (GPT2LMHeadModel)"):
        T + "test_a_classifier_network_imported_as_pretrained_pretrains_from_scratch_as_advised",
    ("q2_mgm/core/pretraining.py", "_check_inputs", "Pretraining needs at least two sentences"):
        T + "test_one_sentence_given_more_samples_as_advised_pretrains",
    ("q2_mgm/core/pretraining.py", "_check_inputs", "A sentence has {} tokens but the model reads at most {}"):
        T + "test_sentences_longer_than_the_model_tokenized_to_its_positions_as_advised_pretrain",
    ("q2_mgm/core/pretraining.py", "_check_inputs", "A sentence holds token id {} but the model has {}"):
        NotInput("encode (core.inference) maps a corpus only through the model's own vocabulary (VocabularyMismatch "
                 "for any other token), whose length the model formats' validation ties to the embeddings; "
                 "pretrain-generator grows both with add_label_tokens; the check guards direct calls"),
}
