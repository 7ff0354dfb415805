"""Markers across held-out groups (core.markers) on real cohorts of ../shared/data/disease-benchmark: an effect is
the coefficient for a CLR model, the ranking is consistent over the held-out studies and points the way the
published cross-study meta-analyses found (benchmarks/published_markers.tsv), and the markers table has the layout
the evaluation's markers.tsv promises."""
import pathlib

import numpy as np
import pandas as pd
import pytest

from q2_mgm.core import schemas
from q2_mgm.core.contributions import explain
from q2_mgm.core.cross_validation import make_folds, plan_folds, run_plan
from q2_mgm.core.inference import encode, language_model_features
from q2_mgm.core.markers import abundance_effects, agreement, marker_table
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.training.targets import encode_targets
from q2_mgm.core.transfer import SampleFeatures, make_recipe

from ..helpers import REPO, read_genus_table, read_metadata

PUBLISHED = REPO / "benchmarks" / "published_markers.tsv"


def _loso(cohort, general_model, recipe="batch-clr-logistic", baselines=("random-forest",)):
    """A leave-one-study-out cross-validation of the cohort with markers, studies as batches."""
    model, vocabulary = general_model[:2]
    table = read_genus_table(f"disease-benchmark/{cohort}", "genus_relative.tsv")
    metadata = read_metadata(f"disease-benchmark/{cohort}")
    corpus = tokenize_dataframe(table)
    kept = corpus.samples.index
    token_ids = encode(corpus.samples.sentence, vocabulary)
    embeddings, likelihood = language_model_features(model, token_ids)
    studies = metadata.loc[kept, "pair_rank"].astype(str).to_numpy()
    data = SampleFeatures(embeddings, likelihood, corpus.abundance_table(kept), studies)
    labels = metadata.loc[kept, "Group"].astype(str)
    encoded, classes, _, _ = encode_targets(labels, "classification")
    folds = make_folds(encoded, studies, 0, "leave-one-group-out", "classification", 0)
    plan = plan_folds(data, labels, "classification", folds, recipe, baselines, n_estimators=50, groups=studies,
                      mgm_markers=False, token_ids=token_ids, cv_strategy="leave-one-group-out")
    return run_plan(plan, lambda message: None, (model, vocabulary)), data, encoded, classes


@pytest.fixture(scope="module")
def crc(general_model):
    return _loso("CRC_Metagenomics", general_model)


def test_a_clr_models_effect_is_its_coefficient(general_model):
    table = read_genus_table("disease-benchmark/CD_Amplicon", "genus_relative.tsv")
    metadata = read_metadata("disease-benchmark/CD_Amplicon")
    corpus = tokenize_dataframe(table)
    kept = corpus.samples.index
    studies = metadata.loc[kept, "pair_rank"].astype(str).to_numpy()
    n = len(kept)
    data = SampleFeatures(np.zeros((n, 4), np.float32), np.zeros((n, 2)), corpus.abundance_table(kept), studies)
    encoded, classes, _, _ = encode_targets(metadata.loc[kept, "Group"].astype(str), "classification")
    held = np.flatnonzero(studies == studies[0])
    fitted = make_recipe("batch-clr-logistic", "classification").fit(
        data.rows(np.flatnonzero(studies != studies[0])), encoded[studies != studies[0]])
    parts = next(iter(explain(fitted, data, held, classes).values()))
    held_out = data.rows(held)
    effects = abundance_effects([parts.total], held_out.abundances, [classes[1]], held_out.batches)[classes[1]]
    coefficients = pd.Series(fitted.arrays["part0.coef"][0] / fitted.arrays["part0.scale"],
                             index=data.genera_read())
    np.testing.assert_allclose(effects[coefficients.index], coefficients, rtol=1e-9, atol=1e-12)


def test_the_markers_table_has_the_promised_layout(crc):
    result, _, _, classes = crc
    table, record = marker_table(result)
    assert tuple(table.columns[:3]) == ("genus", "points_to", "rank")
    assert tuple(table.columns[:len(schemas.MARKER_COLUMNS)]) == schemas.MARKER_COLUMNS
    others = table.columns[3:]
    assert not [c for c in others if "rank" in c or "points" in c]
    assert table["rank"].tolist() == list(range(1, len(table) + 1))
    assert set(table["points_to"]) <= set(classes)
    assert table["genus"].str.startswith("g__").all() and table["genus"].is_unique
    assert (table["groups_agreeing"] <= table["groups"]).all() and table["groups"].max() <= 7
    assert record["groups_scored"] == 7 and record["genera_below_prevalence"] > 0
    assert (table["ci_low"] <= table["mean_effect"]).all()
    assert not table["meta_hedges_g"].isna().all()
    forest, _ = marker_table(result, "random-forest")
    assert forest["mgm_share"].isna().all() and len(forest)


def test_crc_markers_point_the_way_published_meta_analyses_found(crc):
    """Most genera the CRC meta-analyses name (of those the cohort holds) are in their class's top 10, pointing
    the right way, by the model's ranking and by the meta-analysis beside it."""
    result, _, _, classes = crc
    published = pd.read_csv(PUBLISHED, sep="\t")
    published = published[published["cohort"] == "CRC_Metagenomics"]
    table, _ = marker_table(result)
    found = 0
    for genus, points_to in zip(published["genus"], published["points_to"]):
        top = table[table["points_to"] == points_to].head(10)
        found += genus in set(top["genus"])
    assert found > len(published) / 2, table.head(20)
    together = agreement(table, classes)
    assert together["spearman"] > 0.5 and together["overlap"] >= 10


def test_the_published_markers_file_names_genera_with_a_direction():
    published = pd.read_csv(PUBLISHED, sep="\t")
    assert list(published.columns) == ["cohort", "genus", "points_to", "source"]
    assert published["genus"].str.startswith("g__").all() and set(published["points_to"]) <= {"Case", "Control"}
    assert pathlib.Path(PUBLISHED).is_file()
