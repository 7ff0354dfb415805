"""Per-genus contributions of a batch-fit recipe (core.contributions) on a real three-study cohort, CD_Amplicon of
../shared/data/disease-benchmark: the parts add up to the decision score relative to the batch's average, the CLR
part is the coefficient times the batch-standardised CLR value, the MGM part is centred on its batch and its
completeness gap is small, and the recipes without linear parts or without the model are refused."""
import numpy as np
import pandas as pd
import pytest

from q2_mgm.core.contributions import explain, mgm_share, output_names
from q2_mgm.core.inference import encode, language_model_features
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.training.targets import encode_targets
from q2_mgm.core.transfer import SampleFeatures, TransferError, batch_moments, make_recipe

from ..helpers import read_genus_table, read_metadata

COHORT = "disease-benchmark/CD_Amplicon"
EXPLAINED = 8  # held-out samples explained by integrated gradients (the rest of the study sets its statistics)


@pytest.fixture(scope="module")
def cohort(general_model):
    """(features of every sample with studies as batches, token ids, classes, encoded labels, studies)."""
    model, vocabulary = general_model[:2]
    table = read_genus_table(COHORT, "genus_relative.tsv")
    studies = read_metadata(COHORT)["pair_rank"].astype(str)
    corpus = tokenize_dataframe(table)
    kept = corpus.samples.index
    token_ids = encode(corpus.samples.sentence, vocabulary)
    embeddings, likelihood = language_model_features(model, token_ids)
    data = SampleFeatures(embeddings, likelihood, corpus.abundance_table(kept), studies.loc[kept].to_numpy())
    encoded, classes, _, _ = encode_targets(read_metadata(COHORT).loc[kept, "Group"].astype(str), "classification")
    return data, token_ids, classes, encoded, studies.loc[kept].to_numpy()


def _held_out(cohort, recipe):
    data, token_ids, classes, encoded, studies = cohort
    held = studies == studies[0]
    fitted = make_recipe(recipe, "classification").fit(data.rows(np.flatnonzero(~held)), encoded[~held])
    return fitted, np.flatnonzero(held)


def test_the_parts_add_up_to_the_decision_relative_to_the_batch(cohort, general_model):
    data, token_ids, classes, _, _ = cohort
    fitted, rows = _held_out(cohort, "mgm-transfer")
    rows = rows[:EXPLAINED]
    result = explain(fitted, data, rows, classes, general_model[0], [token_ids[i] for i in rows], general_model[1])
    assert list(result) == output_names(fitted, classes) == [f"log-odds of {classes[1]}"]
    parts = result[f"log-odds of {classes[1]}"]
    decision = fitted.decision(data.rows(rows))[:, 0]
    assert np.allclose(parts.score, decision - decision.mean(), atol=1e-9)
    total = parts.clr.sum(axis=1) + parts.mgm.sum(axis=1) + parts.other + parts.gap
    assert np.allclose(total, parts.score, atol=1e-9)
    # the MGM part is centred on its batch, as the CLR part's standardised values are
    assert np.allclose(parts.mgm.mean(), 0.0, atol=1e-9)
    # integrated gradients account for most of the MGM part's change along the path (these sentences are long, up to
    # 125 tokens: benchmarks/results/markers.md measures the gap at several step counts)
    assert np.median(parts.relative_gap) < 0.15
    assert (parts.mgm.abs().sum().sum() > 0) and (parts.clr.abs().sum().sum() > 0)
    share = mgm_share(parts).dropna()
    assert len(share) and share.between(0, 1).all()


def test_the_clr_part_is_its_coefficient_times_the_standardised_clr(cohort):
    data, _, classes, _, _ = cohort
    fitted, rows = _held_out(cohort, "batch-clr-logistic")
    parts = next(iter(explain(fitted, data, rows, classes).values()))
    standardised = data.block("clr")[rows]
    expected = (standardised - standardised.mean(axis=0)) * (fitted.arrays["part0.coef"][0] /
                                                             fitted.arrays["part0.scale"])
    np.testing.assert_allclose(parts.clr[data.genera_read()].to_numpy(), expected, atol=1e-12)
    assert (parts.mgm.to_numpy() == 0).all() and np.allclose(parts.other, 0) and np.allclose(parts.gap, 0)


def test_a_recipe_without_linear_parts_or_without_the_model_is_refused(cohort):
    data, _, classes, encoded, _ = cohort
    forest = make_recipe("random-forest", "classification", n_estimators=5).fit(data, encoded)
    with pytest.raises(TransferError, match="only the recipes of linear parts"):
        explain(forest, data, np.arange(5), classes)
    fitted, rows = _held_out(cohort, "batch-mgm-logistic")
    with pytest.raises(TransferError, match="needs the model, its vocabulary"):
        explain(fitted, data, rows, classes)


def test_batch_moments_are_what_standardising_divides_by(cohort):
    data, *_ = cohort
    raw, batches = data.raw_block("clr"), data.batches
    mean, scale = batch_moments(raw, batches)
    np.testing.assert_allclose((raw - mean) / scale, data.block("clr"))
    first = batches == batches[0]
    np.testing.assert_allclose(mean[first][0], raw[first].mean(axis=0))
    assert isinstance(data.abundances, pd.DataFrame)
