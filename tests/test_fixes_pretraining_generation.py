"""Issue 19 item 3 for pretrain, pretrain-generator and generate: each error a user's input reaches is provoked the
way a user meets it, through the Artifact API on real ECAM samples and tiny models, then the fix the message names
is applied and the action succeeds (tests/advice/pretraining_generation.py lists them). Values the registrations'
Ranges refuse before an action runs are checked to lie outside those Ranges."""
import json

import pandas as pd
import pytest
import qiime2

from q2_mgm.core.generation import GenerationError
from q2_mgm.core.pretraining import PretrainingError
from q2_mgm.core.schemas import PRETRAINING_RECORD_FILE

from .helpers import frequency_table

pytestmark = pytest.mark.one_torch_thread

SENTENCE = 16  # tokens per sentence: the tiny models read 16 (or 64) positions
TINY = {"from_scratch": True, "n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": SENTENCE, "epochs": 1,
        "batch_size": 8}


def record_of(model):
    return json.loads((model._archiver.data_dir / PRETRAINING_RECORD_FILE).read_text())


def save_network(network, vocabulary, semantic_type, **files):
    """A model directory as q2-mgm writes it, imported as semantic_type (a user's hand-made or edited artifact)."""
    from q2_mgm._formats import MGMModelDirFmt
    from q2_mgm.core.models import save_model
    directory = MGMModelDirFmt()
    save_model(network, vocabulary, directory.path, source="a test")
    for name, text in files.items():
        (directory.path / name).write_text(text)
    return qiime2.Artifact.import_data(semantic_type, directory.path)


@pytest.fixture(scope="module")
def ecam(ecam_subset_counts):
    """The first 24 samples of the ECAM subset."""
    return ecam_subset_counts.iloc[:24]


@pytest.fixture(scope="module")
def short_corpus(mgm_plugin, ecam):
    """Their sentences cut to 16 tokens (tokenize --p-max-length 16)."""
    return mgm_plugin.actions.tokenize(table=frequency_table(ecam), max_length=SENTENCE).corpus


@pytest.fixture(scope="module")
def delivery(ecam_metadata):
    return ecam_metadata.get_column("delivery")


@pytest.fixture(scope="module")
def generator(mgm_plugin, tiny_model, short_corpus, delivery):
    """The tiny model (64 positions) grown by the delivery modes, one epoch on 24 ECAM samples."""
    model, _ = mgm_plugin.actions.pretrain_generator(corpora=[short_corpus], metadata=delivery, model=tiny_model,
                                                     epochs=1, batch_size=8)
    return model


# --- pretrain ---

def test_samples_in_two_corpora_filtered_out_of_one_table_as_advised_pretrain(mgm_plugin, ecam):
    """Two tables that share 4 samples: the advice filters them out of one table (feature-table filter-samples
    --p-exclude-ids) and tokenizes it again; pretraining then reads each of the 24 samples once."""
    from qiime2.plugins import feature_table
    first, second = frequency_table(ecam.iloc[:14]), frequency_table(ecam.iloc[10:])
    corpora = [mgm_plugin.actions.tokenize(table=t, max_length=SENTENCE).corpus for t in (first, second)]
    with pytest.raises(PretrainingError, match=rf"Sample '{ecam.index[10]}' is in more than one corpus \(4 shared "
                                               r"sample\(s\)\); .*filter the shared samples out of one table "
                                               r"\(qiime feature-table filter-samples --p-exclude-ids\)"):
        mgm_plugin.actions.pretrain(corpora=corpora, **TINY)
    shared = qiime2.Metadata(pd.DataFrame(index=pd.Index(ecam.index[10:14], name="id")))
    filtered, = feature_table.methods.filter_samples(table=second, metadata=shared, exclude_ids=True)
    corpora[1] = mgm_plugin.actions.tokenize(table=filtered, max_length=SENTENCE).corpus
    model, history = mgm_plugin.actions.pretrain(corpora=corpora, **TINY)
    assert record_of(model)["n_sentences"] == 24 and len(history.view(pd.DataFrame)) == 1


def test_a_width_the_heads_do_not_divide_given_a_multiple_as_advised_pretrains(mgm_plugin, short_corpus):
    """From scratch, 3 heads cannot share a width of 16: the advice names n_embd 18, which pretrains (within
    n_embd's Range)."""
    size = {**TINY, "n_head": 3}
    with pytest.raises(PretrainingError, match=r"n_head \(3\) must divide n_embd \(16\).*Give n_embd 18 \(a "
                                               r"multiple of n_head\), or an n_head that divides 16"):
        mgm_plugin.actions.pretrain(corpora=[short_corpus], **size)
    assert 18 in mgm_plugin.actions.pretrain.signature.parameters["n_embd"].qiime_type
    model, _ = mgm_plugin.actions.pretrain(corpora=[short_corpus], **{**size, "n_embd": 18})
    config = json.loads((model._archiver.data_dir / "config.json").read_text())
    assert (config["n_head"], config["n_embd"]) == (3, 18)


def test_sentences_longer_than_the_model_tokenized_to_its_positions_as_advised_pretrain(mgm_plugin, ecam,
                                                                                        short_corpus):
    """A corpus tokenized at the default 512 tokens, for a model from scratch of 16 positions: the advice is
    tokenize --p-max-length 16, which then pretrains."""
    long_corpus = mgm_plugin.actions.tokenize(table=frequency_table(ecam)).corpus
    assert long_corpus.view(pd.DataFrame).n_tokens.max() > SENTENCE
    with pytest.raises(PretrainingError, match=r"A sentence has \d+ tokens but the model reads at most 16; "
                                               r"tokenize with max_length <= 16"):
        mgm_plugin.actions.pretrain(corpora=[long_corpus], **TINY)
    model, _ = mgm_plugin.actions.pretrain(corpora=[short_corpus], **TINY)  # short_corpus: tokenize max_length=16
    assert record_of(model)["n_sentences"] == 24


def test_one_sentence_given_more_samples_as_advised_pretrains(mgm_plugin, ecam):
    """A corpus of one sample leaves none to validate on: a second corpus, as advised, pretrains on both."""
    one = mgm_plugin.actions.tokenize(table=frequency_table(ecam.iloc[:1]), max_length=SENTENCE).corpus
    with pytest.raises(PretrainingError, match=r"at least two sentences \(one to validate on\); got 1\. Give "
                                               r"corpora that hold more samples .*or pass more corpora"):
        mgm_plugin.actions.pretrain(corpora=[one], **TINY)
    other = mgm_plugin.actions.tokenize(table=frequency_table(ecam.iloc[1:3]), max_length=SENTENCE).corpus
    model, _ = mgm_plugin.actions.pretrain(corpora=[one, other], **TINY)
    assert record_of(model)["n_sentences"] == 3 and record_of(model)["n_corpora"] == 2


def test_a_classifier_network_imported_as_pretrained_pretrains_from_scratch_as_advised(mgm_plugin, short_corpus,
                                                                                      delivery):
    """A fine-tuned classifier's files (without training.json) imported as MGMModel[Pretrained]: its network is
    no language model, for pretrain, pretrain-generator or generate. The advice: a model from pretrain (whose
    from_scratch makes one) or a generator; pretrain from scratch, pretrain-generator from that model, and generate
    from either, all succeed."""
    import transformers
    from q2_mgm.core.vocab import mgm_vocabulary
    vocabulary = mgm_vocabulary()
    config = transformers.GPT2Config(vocab_size=len(vocabulary), n_positions=SENTENCE, n_embd=16, n_layer=1,
                                     n_head=2, num_labels=2, pad_token_id=0)
    classifier = save_network(transformers.GPT2ForSequenceClassification(config), vocabulary, "MGMModel[Pretrained]")
    plain = {key: value for key, value in TINY.items() if key not in ("from_scratch", "n_layer", "n_head", "n_embd",
                                                                      "n_positions")}
    with pytest.raises(PretrainingError, match=r"needs a language model \(GPT2LMHeadModel\), not a "
                                               r"GPT2ForSequenceClassification.*leave `model` out\) or a model "
                                               r"from pretrain "
                                               r"\(whose from_scratch makes one"):
        mgm_plugin.actions.pretrain(corpora=[short_corpus], model=classifier, **plain)
    with pytest.raises(PretrainingError, match=r"not a GPT2ForSequenceClassification"):
        mgm_plugin.actions.pretrain_generator(corpora=[short_corpus], metadata=delivery, model=classifier, **plain)
    with pytest.raises(GenerationError, match=r"Generation needs a language model \(GPT2LMHeadModel\), not a "
                                              r"GPT2ForSequenceClassification.*generate from a generator "
                                              r"\(pretrain-generator\), a model from pretrain"):
        mgm_plugin.actions.generate(model=classifier, n_per_label=2, max_length=12)
    model, _ = mgm_plugin.actions.pretrain(corpora=[short_corpus], **TINY)
    assert record_of(model)["start"] == "random weights"
    assert json.loads((model._archiver.data_dir / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]
    generator, _ = mgm_plugin.actions.pretrain_generator(corpora=[short_corpus], metadata=delivery, model=model,
                                                         **plain)
    assert record_of(generator)["label_tokens"] == ["<label:Cesarean>", "<label:Vaginal>"]
    _, _, labels = mgm_plugin.actions.generate(model=generator, n_per_label=2, max_length=12)
    assert labels.view(pd.Series).tolist() == ["Cesarean"] * 2 + ["Vaginal"] * 2
    _, _, labels = mgm_plugin.actions.generate(model=model, n_per_label=2, max_length=12)
    assert labels.view(pd.Series).tolist() == ["unconditioned"] * 2


# --- pretrain-generator ---

def test_labels_that_give_one_token_renamed_as_advised_pretrain_a_generator(mgm_plugin, tiny_model, short_corpus):
    """'healthy control' and 'healthy_control' would share <label:healthy_control>: renaming one in the metadata,
    as advised, gives a generator of two labels."""
    ids = short_corpus.view(pd.DataFrame).index
    written = pd.Series(["healthy control", "healthy_control"] * (len(ids) // 2), index=pd.Index(ids, name="id"),
                        name="status")
    with pytest.raises(PretrainingError, match="The labels 'healthy control' and 'healthy_control' give the same "
                                               "label token '<label:healthy_control>'.*rename one of them"):
        mgm_plugin.actions.pretrain_generator(corpora=[short_corpus], metadata=qiime2.CategoricalMetadataColumn(
            written), model=tiny_model, epochs=1)
    renamed = qiime2.CategoricalMetadataColumn(written.replace("healthy_control", "disease"))
    model, _ = mgm_plugin.actions.pretrain_generator(corpora=[short_corpus], metadata=renamed, model=tiny_model,
                                                     epochs=1)
    assert record_of(model)["label_tokens"] == ["<label:disease>", "<label:healthy_control>"]


# --- generate ---

@pytest.mark.parametrize("asked", [["Breech"], [" "], ["Vaginal", ""]])
def test_a_label_the_generator_lacks_given_known_labels_or_left_out_as_advised(mgm_plugin, generator, asked):
    """An unknown label, or a blank one (which names no label token), is refused with the generator's labels; a
    known label, or none at all, as advised, generates."""
    unknown = next(label for label in asked if label != "Vaginal")
    with pytest.raises(PretrainingError, match=rf"no label {unknown!r}; it knows Cesarean, Vaginal\. Give labels "
                                               r"among these, or leave `labels` out"):
        mgm_plugin.actions.generate(model=generator, labels=asked, n_per_label=2, max_length=12)
    table, _, labels = mgm_plugin.actions.generate(model=generator, labels=["Vaginal"], n_per_label=2, max_length=12)
    assert table.view(pd.DataFrame).index.tolist() == ["Vaginal_1", "Vaginal_2"]
    _, _, labels = mgm_plugin.actions.generate(model=generator, n_per_label=2, max_length=12)
    assert labels.view(pd.Series).tolist() == ["Cesarean"] * 2 + ["Vaginal"] * 2


def test_labels_for_a_model_without_labels_left_out_or_a_generator_as_advised(mgm_plugin, tiny_model, generator):
    """A model pretrained without labels, asked for one: leaving `labels` out gives unconditioned samples, and a
    generator from pretrain-generator (the other advice) generates for the label."""
    with pytest.raises(PretrainingError, match="pretrained without labels; leave `labels` out to generate "
                                               "unconditioned samples, or pretrain a generator with "
                                               "pretrain-generator"):
        mgm_plugin.actions.generate(model=tiny_model, labels=["Vaginal"], n_per_label=2, max_length=12)
    _, _, labels = mgm_plugin.actions.generate(model=tiny_model, n_per_label=2, max_length=12)
    assert labels.view(pd.Series).tolist() == ["unconditioned"] * 2
    _, _, labels = mgm_plugin.actions.generate(model=generator, labels=["Vaginal"], n_per_label=2, max_length=12)
    assert labels.view(pd.Series).tolist() == ["Vaginal"] * 2


def test_a_generator_of_two_positions_made_from_a_larger_model_as_advised_generates(mgm_plugin, short_corpus,
                                                                                     delivery):
    """A hand-made model of 2 positions, grown into a generator: <bos> and the label fill it, so it cannot
    generate a genus. The advice: pretrain from scratch with more positions, then pretrain-generator from it."""
    import transformers
    from q2_mgm.core.vocab import mgm_vocabulary
    vocabulary = mgm_vocabulary()
    config = transformers.GPT2Config(vocab_size=len(vocabulary), n_positions=2, n_embd=16, n_layer=1, n_head=2)
    cramped = save_network(transformers.GPT2LMHeadModel(config), vocabulary, "MGMModel[Pretrained]")
    small, _ = mgm_plugin.actions.pretrain_generator(corpora=[short_corpus], metadata=delivery, model=cramped,
                                                     epochs=1)
    with pytest.raises(GenerationError, match=r"max_length is 2; it must exceed the prompt \(2 tokens\).*generate "
                                              r"from a model of at least 3 positions \(pretrain from_scratch with a "
                                              r"larger n_positions, then pretrain-generator from it\)"):
        mgm_plugin.actions.generate(model=small, n_per_label=2)
    larger, _ = mgm_plugin.actions.pretrain(corpora=[short_corpus], **TINY)  # n_positions 16
    grown, _ = mgm_plugin.actions.pretrain_generator(corpora=[short_corpus], metadata=delivery, model=larger,
                                                     epochs=1)
    table, corpus, _ = mgm_plugin.actions.generate(model=grown, n_per_label=2)
    assert table.view(pd.DataFrame).shape[0] == 4 and (corpus.view(pd.DataFrame).n_genera >= 1).all()


# --- what the registrations refuse before an action runs (the core's own checks guard direct use) ---

GUARDS = [  # (action, parameter, a value the core refuses, a value within the Range)
    ("generate", "n_per_label", 0, 1), ("generate", "temperature", 0.0, 1.0), ("generate", "top_k", -1, 0),
    ("generate", "top_p", 0.0, 1.0), ("generate", "top_p", 1.5, 0.9),
    ("pretrain", "epochs", 0, 1), ("pretrain", "patience", 0, 1), ("pretrain", "validation_fraction", 0.0, 0.1),
    ("pretrain", "validation_fraction", 1.0, 0.5), ("pretrain_generator", "epochs", 0, 1),
    ("pretrain_generator", "patience", 0, 1), ("pretrain_generator", "validation_fraction", 1.0, 0.5),
]


@pytest.mark.parametrize("action, parameter, refused, allowed", GUARDS)
def test_values_the_core_refuses_are_outside_the_registrations_range(mgm_plugin, tiny_model, short_corpus, delivery,
                                                                     action, parameter, refused, allowed):
    """n_samples (n_per_label), temperature, top_k and top_p of core.generation._check, and epochs, patience and
    validation_fraction of core.pretraining._check_settings: the Range refuses them (the Artifact API, like q2cli,
    raises before the action's body), and admits a value the core accepts."""
    qiime_type = getattr(mgm_plugin.actions, action).signature.parameters[parameter].qiime_type
    assert refused not in qiime_type and allowed in qiime_type
    inputs = {"generate": {"model": tiny_model}, "pretrain": {"corpora": [short_corpus]},
              "pretrain_generator": {"corpora": [short_corpus], "metadata": delivery}}[action]
    with pytest.raises(TypeError, match=rf"Parameter '{parameter}' received {refused!r}"):
        getattr(mgm_plugin.actions, action)(**inputs, **{parameter: refused})
