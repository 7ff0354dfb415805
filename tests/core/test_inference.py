"""Batched forward passes: encoding through a vocabulary, length batching, and embeddings that equal one
unpadded forward pass per sample."""
import numpy as np
import pandas as pd
import pytest
import torch

from q2_mgm.core.inference import (TOKENS_PER_BATCH, VocabularyMismatch, encode, length_batches,
                                   sample_embeddings)
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.vocab import BOS_ID, EOS_ID, Vocabulary, mgm_vocabulary


@pytest.fixture(scope="module")
def sentences():
    """Twelve samples of 1 to 120 genera, made in code."""
    genera = mgm_vocabulary().tokens[4:]
    rng = np.random.default_rng(3)
    columns = [f"k__Bacteria; {g}; s__" for g in rng.choice(genera, 400, replace=False)]
    counts = np.zeros((12, 400))
    for row, width in enumerate([1, 2, 3, 5, 8, 13, 21, 34, 55, 70, 89, 120]):
        counts[row, rng.choice(400, width, replace=False)] = rng.integers(1, 1000, width)
    return tokenize_dataframe(pd.DataFrame(counts, columns=columns)).samples.sentence


def test_encode_through_the_vocabulary():
    vocabulary = mgm_vocabulary()
    ids = encode(["<bos> g__Bacteroides g__Prevotella <eos>", "<bos> g__Blautia"], vocabulary)
    assert ids[0].tolist() == [BOS_ID, vocabulary.index["g__Bacteroides"], vocabulary.index["g__Prevotella"], EOS_ID]
    assert ids[1].tolist() == [BOS_ID, vocabulary.index["g__Blautia"]]
    assert all(i.dtype == np.int64 for i in ids)


def test_tokens_outside_the_models_vocabulary_are_a_mismatch():
    small = Vocabulary(["<pad>", "<mask>", "<bos>", "<eos>", "g__Bacteroides"])
    with pytest.raises(VocabularyMismatch) as error:
        encode(["<bos> g__Bacteroides g__Prevotella g__Blautia <eos>"], small)
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    for words in ("2 tokens", "g__Blautia", "g__Prevotella", "different vocabularies", "general-model"):
        assert words in message


def test_length_batches_cover_every_sample_once_within_the_budget():
    lengths = np.random.default_rng(0).integers(2, 513, 500)
    batches = list(length_batches(lengths, tokens_per_batch=4096))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(500))
    assert [lengths[i] for i in flat] == sorted(lengths)  # packed by length
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 4096 or len(batch) == 1
    assert len(list(length_batches(lengths))) < len(batches)
    assert TOKENS_PER_BATCH >= 512


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_batched_embeddings_equal_one_unpadded_pass_per_sample(general_model, sentences, pooling):
    model, vocabulary, _ = general_model
    ids = encode(sentences, vocabulary)
    assert len({len(i) for i in ids}) == len(ids)  # all lengths differ, so batches are padded
    batched = sample_embeddings(model, ids, pooling)
    with torch.inference_mode():
        for row, sample in enumerate(ids):
            hidden = model.transformer(input_ids=torch.from_numpy(sample)[None]).last_hidden_state[0]
            single = hidden.mean(0) if pooling == "mean" else hidden[-1]
            np.testing.assert_allclose(batched[row], single.numpy(), atol=2e-5, rtol=1e-4,
                                       err_msg=f"sample {row} ({len(sample)} tokens)")


def test_embeddings_are_deterministic_and_poolings_differ(general_model, sentences):
    model, vocabulary, _ = general_model
    ids = encode(sentences, vocabulary)
    first, again = sample_embeddings(model, ids, "mean"), sample_embeddings(model, ids, "mean")
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.float32 and first.shape == (len(ids), 256) and np.isfinite(first).all()
    assert not np.allclose(first, sample_embeddings(model, ids, "last"))


def test_progress_reaches_the_total(general_model, sentences):
    model, vocabulary, _ = general_model
    calls = []
    sample_embeddings(model, encode(sentences, vocabulary), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(sentences), len(sentences))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_unknown_pooling(general_model):
    model, _, _ = general_model
    with pytest.raises(ValueError, match="pooling must be one of"):
        sample_embeddings(model, [np.array([BOS_ID, EOS_ID])], "max")


def test_sentence_longer_than_the_model_reads(general_model):
    model, _, _ = general_model
    with pytest.raises(ValueError, match="513 tokens but the model reads at most 512"):
        sample_embeddings(model, [np.full(513, 5, dtype=np.int64)])
