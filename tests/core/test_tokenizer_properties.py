"""Hypothesis properties of the tokenizer on generated integer count tables: agreement with a one-sample-at-a-time
reference, invariance to feature order and to scaling, sample order, vocabulary membership, lengths."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from q2_mgm.core.tokenizer import TokenizationError, tokenize_dataframe
from q2_mgm.core.vocab import genus_statistics, mgm_vocabulary

from ..helpers import reference_sentences


def _pool():
    stats = genus_statistics()
    tied = stats[stats.duplicated(keep=False)]
    first = tied.index[0]
    twin = tied.index[(tied == tied.loc[first]).all(axis=1).to_numpy()][1]
    common = ["g__Bacteroides", "g__Prevotella", "g__Faecalibacterium", "g__Bifidobacterium", "g__Escherichia",
              "g__Blautia", "g__Akkermansia", stats["std"].idxmin(), stats["mean"].idxmax()]
    # genera with identical statistics make exact ties; then one outside the vocabulary and one without a genus
    return common + [first, twin, "g__Notagenus", "g__"]


POOL = _pool()
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def count_tables(draw):
    n_samples = draw(st.integers(1, 6))
    n_features = draw(st.integers(1, 10))
    genera = draw(st.lists(st.sampled_from(POOL), min_size=n_features, max_size=n_features))
    counts = draw(arrays(np.int64, (n_samples, n_features),
                         elements=st.one_of(st.just(0), st.integers(1, 10_000), st.integers(1, 10**9))))
    columns = [f"k__Bacteria; f__F; {genus}; s__sp{i}" for i, genus in enumerate(genera)]
    index = draw(st.permutations([f"s{i}" for i in range(n_samples - 1)] + ["zero"]))
    return pd.DataFrame(counts.astype(float), index=index, columns=columns)


def tokenize_or_none(data, **kwargs):
    try:
        return tokenize_dataframe(data, **kwargs)
    except TokenizationError:
        return None


@PROPERTY_SETTINGS
@given(data=count_tables(), max_length=st.integers(2, 14))
def test_agrees_with_the_reference(data, max_length):
    corpus = tokenize_or_none(data, max_length=max_length)
    expected = reference_sentences(data, max_length=max_length)
    if not expected:
        assert corpus is None
        return
    assert corpus.samples.index.tolist() == list(expected)
    assert corpus.samples.sentence.tolist() == [sentence for sentence, _ in expected.values()]
    assert corpus.samples.length_before_truncation.tolist() == [length for _, length in expected.values()]
    assert corpus.dropped_samples.index.tolist() == [s for s in data.index if s not in expected]


@PROPERTY_SETTINGS
@given(data=count_tables(), order=st.randoms(use_true_random=False))
def test_feature_order_does_not_matter(data, order):
    columns = list(data.columns)
    order.shuffle(columns)
    a, b = tokenize_or_none(data), tokenize_or_none(data[columns])
    assert (a is None) == (b is None)
    if a is not None:
        pd.testing.assert_frame_equal(a.samples, b.samples)
        pd.testing.assert_frame_equal(a.dropped_samples, b.dropped_samples)
        pd.testing.assert_frame_equal(a.features.loc[columns], b.features)


@PROPERTY_SETTINGS
@given(data=count_tables(), power=st.integers(-20, 20))
def test_scaling_does_not_matter(data, power):
    # powers of two scale floats exactly, so counts and relative frequencies give the same sentences
    a, b = tokenize_or_none(data), tokenize_or_none(data * 2.0 ** power)
    assert (a is None) == (b is None)
    if a is not None:
        pd.testing.assert_frame_equal(a.samples, b.samples)
        assert a.dropped_samples.index.equals(b.dropped_samples.index)
        assert (a.dropped_samples.total * 2.0 ** power).tolist() == b.dropped_samples.total.tolist()


@PROPERTY_SETTINGS
@given(data=count_tables(), max_length=st.integers(2, 14))
def test_samples_keep_their_order_and_sentences_their_shape(data, max_length):
    corpus = tokenize_or_none(data, max_length=max_length)
    if corpus is None:
        return
    samples = corpus.samples
    kept = set(samples.index)
    assert samples.index.tolist() == [s for s in data.index if s in kept]
    assert sorted(kept | set(corpus.dropped_samples.index)) == sorted(data.index)
    assert not kept & set(corpus.dropped_samples.index)
    vocabulary = mgm_vocabulary().index
    for sample in samples.itertuples():
        tokens = sample.sentence.split(" ")
        genera = [t for t in tokens if t not in ("<bos>", "<eos>")]
        assert tokens[0] == "<bos>"
        assert all(genus in vocabulary and genus.startswith("g__") for genus in genera)
        assert len(set(genera)) == len(genera) == sample.n_genera
        assert len(tokens) == sample.n_tokens <= max_length
        assert sample.n_tokens == min(sample.length_before_truncation, max_length)
        assert sample.truncated == (sample.length_before_truncation > max_length)
        assert (tokens[-1] == "<eos>") == (not sample.truncated)
        assert sample.vocabulary_coverage + sample.no_genus_share + sample.out_of_vocabulary_share == \
            pytest.approx(1.0)
