"""Token-for-token and hidden-state parity with upstream MGM 0.5.8 (../shared/parity, made by upstream itself)."""
import numpy as np
import pytest

from q2_mgm.core.inference import encode, sample_embeddings
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.vocab import PAD_ID, Vocabulary, mgm_vocabulary

from ..helpers import PARITY_CASES, parity_case, shared_path

TOLERANCE = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module", params=PARITY_CASES)
def case(request):
    reference = parity_case(request.param)
    return {"name": request.param, **reference, "corpus": tokenize_dataframe(reference["table"])}


def test_vocabulary_is_upstreams():
    upstream = Vocabulary.from_file(shared_path("parity", "vocab.txt"))
    assert len(upstream) == 9669
    assert mgm_vocabulary() == upstream


def test_sentences_match_upstream(case):
    samples, expected = case["corpus"].samples, case["sentences"]
    assert samples.index.tolist() == expected.index.tolist()  # same samples, same order
    assert samples.sentence.tolist() == expected.sentence.tolist()
    assert samples.length_before_truncation.tolist() == expected.length_before_truncation.tolist()
    assert samples.n_tokens.tolist() == expected.n_tokens_kept.tolist()


def test_token_ids_match_upstream(case):
    ids = encode(case["corpus"].samples.sentence, mgm_vocabulary())
    expected = case["tokens"]
    assert case["corpus"].samples.index.tolist() == expected.index.tolist()
    assert expected.shape[1] == 512
    for sample, row, upstream in zip(expected.index, ids, expected.to_numpy()):
        np.testing.assert_array_equal(row, upstream[upstream != PAD_ID], err_msg=f"sample {sample}")


def test_dropped_samples_match_upstream(case):
    table, corpus = case["table"], case["corpus"]
    upstream_dropped = [s for s in table.index if s not in set(case["tokens"].index)]
    assert corpus.dropped_samples.index.tolist() == upstream_dropped
    if case["name"] == "t3_random_counts":
        assert len(upstream_dropped) == 5
        # every dropped sample has nothing in the vocabulary (some are all-zero, the rest only out-of-vocabulary)
        assert set(corpus.dropped_samples.reason) == {"all-zero sample", "no abundance in MGM's vocabulary"}
        zero = corpus.dropped_samples.reason == "all-zero sample"
        assert (table.loc[corpus.dropped_samples.index[zero]].sum(axis=1) == 0).all()
        assert (table.loc[corpus.dropped_samples.index[~zero]].sum(axis=1) > 0).all()
    else:
        assert upstream_dropped == []


def test_odd_sample_ids_survive(case):
    if case["name"] == "t3_random_counts":
        # t3 names two samples '1001' and 'sample.with.dots': they must stay strings, in place
        assert {"1001", "sample.with.dots"} <= set(case["corpus"].samples.index)
    assert all(isinstance(s, str) for s in case["corpus"].samples.index)


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_hidden_states_match_upstream(case, pooling, general_model):
    model, vocabulary, _ = general_model
    ids = encode(case["corpus"].samples.sentence, vocabulary)
    hidden = sample_embeddings(model, ids, pooling)
    expected = case[f"h_{pooling}"]
    assert expected.index.tolist() == case["corpus"].samples.index.tolist()
    assert hidden.shape == expected.shape == (len(ids), 256)
    np.testing.assert_allclose(hidden, expected.to_numpy(), **TOLERANCE)


def test_harmonize_names_breaks_parity_so_it_is_off_by_default():
    """ECAM's Greengenes lineages hold bracketed genera ([Ruminococcus]) that upstream drops: recovering them
    changes the sentences, which is why parity needs harmonize_names off, the default."""
    reference = parity_case("t4_ecam_real_L7")
    assert any("g__[" in taxon for taxon in reference["table"].columns)
    default = tokenize_dataframe(reference["table"])
    harmonized = tokenize_dataframe(reference["table"], harmonize_names=True)
    assert default.samples.sentence.tolist() == reference["sentences"].sentence.tolist()
    assert (harmonized.samples.sentence != default.samples.sentence).sum() > 100
    assert harmonized.samples.vocabulary_coverage.mean() > default.samples.vocabulary_coverage.mean()
