"""Generation and reconstruction in plain Python, on real data.

Generation: the sampling rules (no special or label token inside a sentence, no genus twice, no empty sentence)
tested on a rigged model that prefers every banned token; seeds; label prompts; lengths; and a realism check of the
pretrained general model. Reconstruction: both reconstructors fitted on ECAM children and scored on other children
against a uniform baseline; outputs are distributions along the sentence; JSON/safetensors round trips; tampered
files are refused without unpickling anything."""
import json

import numpy as np
import pytest
import safetensors.torch
import torch

from q2_mgm.core.generation import GenerationError, _SentenceRules, decode, generate, sentences_to_genera
from q2_mgm.core.pretraining import label_vocabulary, new_model, new_model_config
from q2_mgm.core.reconstruction import (NeuralReconstructor, NeuralSettings, RankMedianReconstructor,
                                        ReconstructionError, ReconstructorFormatError, bray_curtis, evaluate,
                                        genus_relative_abundance, load_reconstructor, per_sample_bray_curtis,
                                        sentence_genera)
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.vocab import (BOS_ID, EOS_ID, MASK_ID, PAD_ID, SPECIAL_TOKENS, genus_statistics, label_ids,
                               mgm_vocabulary)

from ..helpers import read_metadata, torch_pickle_bytes

pytestmark = pytest.mark.one_torch_thread

LABELS = ["Cesarean", "Vaginal"]
FAVOURITE = 100  # the genus the rigged model prefers after the banned tokens


def silent(message):
    pass


@pytest.fixture(scope="module")
def labelled_vocabulary():
    return label_vocabulary(mgm_vocabulary(), LABELS)


@pytest.fixture(scope="module")
def rigged_model(labelled_vocabulary):
    """A tiny GPT-2 whose next-token logits ignore the input: every banned token (specials but <eos>, labels) 20,
    one genus 12, <eos> 6, other genera 0. Unconstrained sampling would draw banned tokens almost always and the
    favourite genus again and again."""
    model = new_model(new_model_config(len(labelled_vocabulary), n_layer=1, n_head=2, n_embd=32, n_positions=64))
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(torch.eye(32)[0])  # final hidden state e_0 whatever the input
        logits = torch.zeros(len(labelled_vocabulary))
        logits[[PAD_ID, MASK_ID, BOS_ID, *label_ids(labelled_vocabulary)]] = 20.0
        logits[FAVOURITE], logits[EOS_ID] = 12.0, 6.0
        model.transformer.wte.weight[:, 0] = logits  # tied lm_head: logit = wte @ e_0
    return model.eval()


@pytest.fixture(scope="module")
def rigged_samples(rigged_model, labelled_vocabulary):
    return generate(rigged_model, labelled_vocabulary, 40, prompt_label="Vaginal", max_length=24, random_state=0)


class TestSamplingRules:
    def test_rules_on_scores(self):
        rules = _SentenceRules(torch.tensor([PAD_ID, MASK_ID, BOS_ID, 9]), prompt_length=2)
        scores = rules(torch.tensor([[BOS_ID, 9]]), torch.zeros(1, 12))
        assert torch.isinf(scores[0, [PAD_ID, MASK_ID, BOS_ID, EOS_ID, 9]]).all()  # no <eos> before a genus
        assert torch.isfinite(scores[0, [4, 5, 6, 7, 8, 10, 11]]).all()
        scores = rules(torch.tensor([[BOS_ID, 9, 5]]), torch.zeros(1, 12))
        assert torch.isinf(scores[0, 5]) and torch.isfinite(scores[0, EOS_ID])

    def test_sentences_hold_only_genera_between_prompt_and_eos(self, rigged_samples, labelled_vocabulary):
        vaginal = labelled_vocabulary.index["<label:Vaginal>"]
        for ids in rigged_samples:
            assert ids[0] == BOS_ID and ids[1] == vaginal
            body = ids[2:-1] if ids[-1] == EOS_ID else ids[2:]
            assert len(body) >= 1 and (body >= len(SPECIAL_TOKENS)).all() and (body < 9669).all()

    def test_no_genus_twice_though_the_model_prefers_one(self, rigged_samples):
        assert all(len(set(ids.tolist())) == len(ids) for ids in rigged_samples)
        firsts = [ids[2] for ids in rigged_samples]
        assert np.mean(np.equal(firsts, FAVOURITE)) > 0.8  # it is still drawn, once

    def test_lengths_and_truncation(self, rigged_samples):
        lengths = [len(ids) for ids in rigged_samples]
        assert max(lengths) <= 24
        assert all(ids[-1] == EOS_ID for ids in rigged_samples if len(ids) < 24)  # a shorter one ended itself
        assert len(set(lengths)) > 3

    def test_same_seed_same_sentences_other_seed_others(self, rigged_model, labelled_vocabulary, rigged_samples):
        again = generate(rigged_model, labelled_vocabulary, 40, prompt_label="<label:Vaginal>", max_length=24,
                         random_state=0)
        assert decode(again, labelled_vocabulary) == decode(rigged_samples, labelled_vocabulary)
        other = generate(rigged_model, labelled_vocabulary, 40, prompt_label="Vaginal", max_length=24,
                         random_state=1)
        assert decode(other, labelled_vocabulary) != decode(rigged_samples, labelled_vocabulary)

    def test_the_global_random_state_is_untouched(self, rigged_model, labelled_vocabulary):
        before = torch.get_rng_state()
        generate(rigged_model, labelled_vocabulary, 2, max_length=8)
        assert torch.equal(before, torch.get_rng_state())

    def test_batches_beyond_one_and_no_prompt(self, rigged_model, labelled_vocabulary):
        samples = generate(rigged_model, labelled_vocabulary, 70, max_length=6)
        assert len(samples) == 70 and all(ids[0] == BOS_ID and ids[1] >= 4 for ids in samples)

    def test_decode_and_genera(self, rigged_samples, labelled_vocabulary):
        text = decode(rigged_samples[:3], labelled_vocabulary)
        assert text[0].startswith("<bos> <label:Vaginal> g__")
        genera = sentences_to_genera(rigged_samples[:3], labelled_vocabulary)
        assert genera == sentence_genera(text)
        assert [len(g) for g in genera] == [len(ids) - 2 - (ids[-1] == EOS_ID) for ids in rigged_samples[:3]]
        assert all(g.startswith("g__") for names in genera for g in names)


class TestGenerationErrors:
    def test_an_unknown_label(self, rigged_model, labelled_vocabulary):
        with pytest.raises(GenerationError, match="no label token '<label:Preterm>'.*<label:Cesarean>"):
            generate(rigged_model, labelled_vocabulary, 1, prompt_label="Preterm")

    def test_a_label_for_a_model_without_labels(self, general_model):
        model, vocabulary, _ = general_model
        with pytest.raises(GenerationError, match="pretrained without labels"):
            generate(model, vocabulary, 1, prompt_label="Vaginal")

    def test_a_vocabulary_of_another_model(self, rigged_model):
        with pytest.raises(GenerationError, match="9671 token embeddings but the vocabulary 9669"):
            generate(rigged_model, mgm_vocabulary(), 1)

    @pytest.mark.parametrize("changes, words", [
        ({"n_samples": 0}, "at least one"), ({"temperature": 0}, "positive"), ({"top_k": -1}, "top_k"),
        ({"top_p": 0.0}, "top_p"), ({"max_length": 65}, "at most the model's 64"), ({"max_length": 1}, "exceed"),
    ])
    def test_settings(self, rigged_model, labelled_vocabulary, changes, words):
        with pytest.raises(GenerationError, match=words):
            generate(rigged_model, labelled_vocabulary, **{"n_samples": 1, **changes})


def test_the_general_model_generates_common_genera(general_model):
    """The pretrained model, unprompted, should mostly name genera that are abundant across MGnify: 500 genera
    are 5% of the vocabulary but about 70% of what it generates (measured over seeds 0-2)."""
    model, vocabulary, _ = general_model
    samples = generate(model, vocabulary, 16, max_length=48, top_k=50, random_state=0)
    common = set(genus_statistics()["mean"].nlargest(500).index)
    genera = sentences_to_genera(samples, vocabulary)
    assert all(len(set(names)) == len(names) >= 1 for names in genera)
    assert np.mean([g in common for names in genera for g in names]) > 0.4
    assert np.mean([names[0] in common for names in genera]) > 0.4


# --- reconstruction ---

class Uniform:
    """The trivial baseline: every genus of a sentence gets the same share."""

    def predict(self, genera):
        return [np.full(len(names), 1 / len(names)) for names in sentence_genera(genera)]


@pytest.fixture(scope="module")
def ecam_profiles(ecam_counts):
    """ECAM relative abundance and sentences, split by child: a quarter of the 43 children held out."""
    metadata = read_metadata("ecam").reindex(ecam_counts.index)
    children = np.sort(metadata.studyid.unique())
    held_out = np.random.default_rng(0).choice(children, len(children) // 4, replace=False)
    test = metadata.index[metadata.studyid.isin(held_out)]
    return {"relative": genus_relative_abundance(ecam_counts),
            "sentences": tokenize_dataframe(ecam_counts).samples.sentence,
            "train": metadata.index.difference(test), "test": test}


def fitted(reconstructor, data, samples="train"):
    ids = data[samples]
    return reconstructor.fit(data["relative"].loc[ids], data["sentences"].loc[ids], **(
        {"report": silent} if isinstance(reconstructor, NeuralReconstructor) else {}))


@pytest.fixture(scope="module")
def rank_median(ecam_profiles):
    return fitted(RankMedianReconstructor(), ecam_profiles)


@pytest.fixture(scope="module")
def neural(ecam_profiles):
    return fitted(NeuralReconstructor(NeuralSettings(epochs=60, patience=5)), ecam_profiles)


class TestReconstructionData:
    def test_relative_abundance_is_per_vocabulary_genus(self, ecam_profiles, ecam_counts):
        relative = ecam_profiles["relative"]
        np.testing.assert_allclose(relative.sum(axis=1), 1.0)
        assert set(relative.columns) <= set(mgm_vocabulary().index)
        assert len(relative) == len(ecam_profiles["sentences"]) == len(ecam_counts)

    def test_every_sentence_genus_has_abundance(self, ecam_profiles):
        relative, sentences = ecam_profiles["relative"], ecam_profiles["sentences"]
        for sample in sentences.index[:50]:
            names = sentence_genera([sentences[sample]])[0]
            present = relative.loc[sample]
            assert set(names) == set(present[present > 0].index)  # ECAM sentences are never truncated

    def test_bray_curtis(self):
        assert bray_curtis([0.5, 0.5], [0.5, 0.5]) == 0.0
        assert bray_curtis([1, 0], [0, 1]) == 1.0
        assert bray_curtis([0.6, 0.4], [0.4, 0.6]) == pytest.approx(0.2)
        with pytest.raises(ReconstructionError, match="undefined"):
            bray_curtis([0, 0], [0, 0])


@pytest.mark.parametrize("which", ["rank_median", "neural"])
class TestReconstructors:
    def test_outputs_are_distributions_along_the_sentence(self, which, request, ecam_profiles):
        reconstructor = request.getfixturevalue(which)
        sentences = ecam_profiles["sentences"].loc[ecam_profiles["test"]]
        predicted = reconstructor.predict(list(sentences))
        for values, names in zip(predicted, sentence_genera(sentences)):
            assert len(values) == len(names) and (values >= 0).all()
            assert values.sum() == pytest.approx(1.0)

    def test_beats_the_uniform_baseline_on_children_it_never_saw(self, which, request, ecam_profiles):
        relative, sentences = (ecam_profiles[key].loc[ecam_profiles["test"]] for key in ("relative", "sentences"))
        uniform = evaluate(Uniform(), relative, sentences)
        assert 0.6 < uniform < 0.7  # measured 0.651
        assert evaluate(request.getfixturevalue(which), relative, sentences) < uniform - 0.1

    def test_save_and_load_give_the_same_predictions(self, which, request, ecam_profiles, tmp_path):
        reconstructor = request.getfixturevalue(which)
        reconstructor.save(tmp_path)
        loaded = type(reconstructor).load(tmp_path)
        assert type(load_reconstructor(tmp_path)) is type(reconstructor)
        sentences = list(ecam_profiles["sentences"].iloc[:20])
        for a, b in zip(reconstructor.predict(sentences), loaded.predict(sentences)):
            np.testing.assert_array_equal(a, b)
        assert json.loads((tmp_path / "reconstructor.json").read_text())["kind"] == reconstructor.kind

    def test_generated_sentences_with_unseen_genera(self, which, request, general_model):
        model, vocabulary, _ = general_model
        genera = sentences_to_genera(generate(model, vocabulary, 4, max_length=16, random_state=3), vocabulary)
        for values, names in zip(request.getfixturevalue(which).predict(genera), genera):
            assert len(values) == len(names) and values.sum() == pytest.approx(1.0) and (values >= 0).all()


class TestNeuralReconstructor:
    def test_beats_rank_medians(self, neural, rank_median, ecam_profiles):
        relative, sentences = (ecam_profiles[key].loc[ecam_profiles["test"]] for key in ("relative", "sentences"))
        assert evaluate(neural, relative, sentences) < evaluate(rank_median, relative, sentences) - 0.1

    def test_history_and_early_stopping(self, neural):
        assert list(neural.history.columns) == ["train_loss", "validation_loss"]
        assert len(neural.history) <= 60
        assert neural.history.validation_loss.iloc[-1] < neural.history.validation_loss.iloc[0]

    def test_same_seed_same_weights(self, ecam_profiles):
        settings = NeuralSettings(epochs=2, width=8)
        a, b = (fitted(NeuralReconstructor(settings), ecam_profiles, "test") for _ in range(2))
        assert all(torch.equal(a.net.state_dict()[k], v) for k, v in b.net.state_dict().items())
        assert a.history.equals(b.history)
        c = fitted(NeuralReconstructor(NeuralSettings(epochs=2, width=8, random_state=1)), ecam_profiles, "test")
        assert not torch.equal(a.net.genus.weight, c.net.genus.weight)

    def test_per_sample_scores(self, neural, ecam_profiles):
        ids = ecam_profiles["test"]
        relative, sentences = ecam_profiles["relative"].loc[ids], ecam_profiles["sentences"].loc[ids]
        scores = per_sample_bray_curtis(neural, relative, sentences)
        assert scores.index.equals(ids) and scores.between(0, 1).all()
        assert scores.mean() == evaluate(neural, relative, sentences)


class TestSavedReconstructorsAreValidated:
    @pytest.fixture
    def saved(self, neural, tmp_path):
        neural.save(tmp_path)
        return tmp_path

    def test_missing_weights(self, saved):
        (saved / "model.safetensors").unlink()
        with pytest.raises(ReconstructorFormatError, match="missing model.safetensors"):
            load_reconstructor(saved)

    def test_missing_record(self, saved):
        (saved / "reconstructor.json").unlink()
        with pytest.raises(ReconstructorFormatError, match="missing reconstructor.json"):
            NeuralReconstructor.load(saved)

    def test_truncated_weights(self, saved):
        data = (saved / "model.safetensors").read_bytes()
        (saved / "model.safetensors").write_bytes(data[:len(data) // 2])
        with pytest.raises(ReconstructorFormatError, match="not a valid safetensors"):
            load_reconstructor(saved)

    def test_a_pickle_in_place_of_the_weights_is_never_unpickled(self, saved, tmp_path_factory):
        marker = tmp_path_factory.mktemp("marker") / "unpickled"
        (saved / "model.safetensors").write_bytes(torch_pickle_bytes(marker))
        with pytest.raises(ReconstructorFormatError, match="never unpickles"):
            load_reconstructor(saved)
        assert not marker.exists()

    def test_weights_of_other_genera(self, saved):
        record = json.loads((saved / "reconstructor.json").read_text())
        record["genera"] = record["genera"][:-1]
        (saved / "reconstructor.json").write_text(json.dumps(record))
        with pytest.raises(ReconstructorFormatError, match="does not match reconstructor.json.*genus.weight"):
            load_reconstructor(saved)

    def test_weights_of_another_width(self, saved):
        state = safetensors.torch.load_file(str(saved / "model.safetensors"))
        state["head.2.weight"] = torch.zeros(1, 8)
        safetensors.torch.save_file(state, str(saved / "model.safetensors"))
        with pytest.raises(ReconstructorFormatError, match="head.2.weight"):
            load_reconstructor(saved)

    @pytest.mark.parametrize("text, words", [
        ("{not json", "not valid JSON"), ('{"kind": "magic"}', "kind 'magic'"),
        ('{"kind": "neural", "genera": ["g__A"]}', "lacks a valid genera list or settings"),
        ('{"kind": "rank-median", "medians": [0.5, -1]}', "positive numbers"),
        ('{"kind": "neural", "genera": ["g__A"], "settings": {"width": 2, "speed": 9}}', "speed"),
    ])
    def test_broken_records(self, saved, text, words):
        (saved / "reconstructor.json").write_text(text)
        with pytest.raises(ReconstructorFormatError, match=words):
            load_reconstructor(saved)

    def test_loading_the_wrong_kind(self, saved):
        with pytest.raises(ReconstructorFormatError, match="is neural, not rank-median"):
            RankMedianReconstructor.load(saved)


class TestReconstructionErrors:
    def test_unfitted(self):
        with pytest.raises(ReconstructionError, match="not fitted"):
            RankMedianReconstructor().predict([["g__Bacteroides"]])
        with pytest.raises(ReconstructionError, match="not fitted"):
            NeuralReconstructor().predict([["g__Bacteroides"]])

    def test_sentences_without_sample_ids(self, ecam_profiles):
        with pytest.raises(ReconstructionError, match="pandas Series indexed by sample ID"):
            RankMedianReconstructor().fit(ecam_profiles["relative"], list(ecam_profiles["sentences"]))

    def test_sentences_of_other_samples(self, ecam_profiles):
        sentences = ecam_profiles["sentences"].rename(lambda sample: f"other-{sample}")
        with pytest.raises(ReconstructionError, match="No sample ID"):
            RankMedianReconstructor().fit(ecam_profiles["relative"], sentences)

    def test_sentences_of_another_table(self, ecam_profiles):
        sample = ecam_profiles["sentences"].index[0]
        sentences = ecam_profiles["sentences"].loc[[sample]].str.replace("<eos>", "g__Notagenus <eos>")
        with pytest.raises(ReconstructionError, match=f"{sample}'s sentence names g__Notagenus.*not made from"):
            evaluate(Uniform(), ecam_profiles["relative"], sentences)

    def test_empty_sentences_and_foreign_genera(self, neural):
        with pytest.raises(ReconstructionError, match="hold no genus"):
            neural.predict(["<bos> <eos>"])
        with pytest.raises(ReconstructionError, match="not MGM genera.*g__Notagenus"):
            neural.predict([["g__Notagenus"]])

    def test_too_few_samples_to_validate(self, ecam_profiles):
        ids = ecam_profiles["train"][:1]
        with pytest.raises(ReconstructionError, match="leave none to train or validate"):
            NeuralReconstructor().fit(ecam_profiles["relative"].loc[ids], ecam_profiles["sentences"].loc[ids])
