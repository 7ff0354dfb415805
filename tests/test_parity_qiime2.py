"""Parity with upstream MGM 0.5.8 through the QIIME 2 path: Artifact API import, mgm.actions.tokenize,
mgm.actions.general_model, mgm.actions.embed, embeddings viewed as a DataFrame."""
import numpy as np
import pandas as pd
import pytest
import qiime2

from .helpers import PARITY_CASES, parity_case

# t4 holds relative frequencies (QIIME 2's FeatureTable[RelativeFrequency]); t3 holds counts, some samples all-zero
TABLE_TYPES = {"t3_random_counts": "FeatureTable[Frequency]", "t4_ecam_real_L7": "FeatureTable[RelativeFrequency]"}


@pytest.fixture(scope="module", params=PARITY_CASES)
def qiime2_case(request, mgm_plugin):
    reference = parity_case(request.param)
    # taxonomy strings are the feature IDs, as after `qiime taxa collapse`: no FeatureData[Taxonomy] needed
    table = qiime2.Artifact.import_data(TABLE_TYPES[request.param], reference["table"])
    corpus, = mgm_plugin.actions.tokenize(table=table)
    return reference, corpus


def test_corpus_matches_upstream(qiime2_case):
    reference, corpus = qiime2_case
    samples = corpus.view(pd.DataFrame)
    expected = reference["sentences"]
    assert samples.index.tolist() == expected.index.tolist()
    assert samples.sentence.tolist() == expected.sentence.tolist()
    assert samples.length_before_truncation.tolist() == expected.length_before_truncation.tolist()


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_embeddings_match_upstream(qiime2_case, pooling, mgm_plugin, model_artifact):
    reference, corpus = qiime2_case
    embeddings, = mgm_plugin.actions.embed(corpus=corpus, model=model_artifact, pooling=pooling, device="cpu")
    assert str(embeddings.type) == "PCoAResults"
    observed = embeddings.view(pd.DataFrame)
    expected = reference[f"h_{pooling}"]
    assert observed.index.tolist() == expected.index.tolist()
    np.testing.assert_allclose(observed.to_numpy(), expected.to_numpy(), atol=1e-4, rtol=1e-4)
