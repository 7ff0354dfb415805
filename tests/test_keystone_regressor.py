"""keystone-genera and keystone-report for a regressor fit with batches (the across-study recipe for numbers): its
genera scored by their contributions to the prediction, summarised in two groups within each batch, `higher`
(samples above the batch's median) and `lower`. Host age on Adenoma_Metagenomics of
../shared/data/disease-benchmark (three studies, each with ages), twenty samples of each study read by the tiny
model."""
import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_mgm.core.keystone import KeystoneError
from q2_mgm.core.markers import HIGHER, LOWER
from q2_mgm.core.transfer import clr

from .helpers import read_genus_table, read_metadata
from .test_visualizers import assert_page_is_complete, export

ADENOMA = "disease-benchmark/Adenoma_Metagenomics"


@pytest.fixture(scope="module")
def adenoma():
    """(corpus, metadata with host_age (numbers) and study) of the 60 samples."""
    from qiime2.plugins import mgm
    table = read_genus_table(ADENOMA, "genus_relative.tsv")
    metadata = read_metadata(ADENOMA).dropna(subset=["host_age"])
    metadata["study"] = "study " + metadata["pair_rank"].astype(str)
    ids = metadata.loc[metadata.index.intersection(table.index)].groupby("pair_rank").head(20).index
    corpus, = mgm.actions.tokenize(table=qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]",
                                                                     table.loc[ids]), max_length=32)
    return corpus, qiime2.Metadata(metadata.loc[ids, ["host_age", "study"]].rename_axis("sample-id"))


@pytest.fixture(scope="module")
def fitted(mgm_plugin, adenoma, tiny_model):
    """(the regressor, its history)."""
    corpus, metadata = adenoma
    return mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model, metadata=metadata.get_column("host_age"),
                                        task="regression", batches=metadata.get_column("study"), device="cpu")


@pytest.fixture(scope="module")
def regressor(fitted):
    return fitted[0]


def test_the_regressor_is_validated_by_the_order_within_each_held_out_study(fitted):
    """Each study is standardised on itself, so a held-out study's predictions centre on the training ages and its
    MAE carries the study's own offset; the rank correlation within it reads the order, as AUROC does."""
    history = fitted[1].view(pd.DataFrame)
    for metric in ("validation_mae", "validation_spearman"):
        per_study = history[[f"{metric} (study {n} held out)" for n in (1, 2, 3)]].iloc[0]
        assert np.isclose(history[metric].iloc[0], per_study.mean())
    assert history.filter(like="validation_spearman").iloc[0].between(-1, 1).all()


@pytest.fixture(scope="module")
def regressor_report(mgm_plugin, adenoma, regressor, tmp_path_factory):
    corpus, metadata = adenoma
    visualization, = mgm_plugin.actions.keystone_report(
        corpus=corpus, model=regressor, metadata=metadata.get_column("host_age"),
        batches=metadata.get_column("study"), method="gradient", min_samples=3, n_bootstrap=200, device="cpu")
    return export(visualization, tmp_path_factory.mktemp("keystone-regressor"))


def test_contributions_add_up_to_the_prediction_less_its_batch_average(mgm_plugin, adenoma, regressor,
                                                                       regressor_report):
    """Per sample: its genera's CLR and MGM parts, other and the completeness gap add up to the age that
    predict-regression gives it (with the same batches), less its batch's average, in years."""
    corpus, metadata = adenoma
    parts = pd.read_csv(regressor_report / "sample_scores.tsv", sep="\t", index_col=0)
    assert len(parts) == 60 and set(parts.output) == {"prediction"} and parts.summarised.all()
    predicted, = mgm_plugin.actions.predict_regression(corpus=corpus, model=regressor,
                                                       batches=metadata.get_column("study"))
    age = predicted.view(pd.Series).reindex(parts.index)
    np.testing.assert_allclose(parts.score, age - age.groupby(parts.batch).transform("mean"), atol=1e-6)
    np.testing.assert_allclose(parts.clr + parts.mgm + parts.other + parts.gap, parts.score, atol=1e-9)
    ages = metadata.get_column("host_age").to_series().reindex(parts.index)
    expected = np.where(ages > ages.groupby(parts.batch).transform("median"), HIGHER, LOWER)
    assert (parts.group == expected).all()  # split within each batch, as the scores are relative to its average
    assert (parts.groupby("batch").group.apply(lambda g: (g == HIGHER).mean()) >= 0.3).all()


def test_genera_point_to_higher_or_lower_as_their_contributions_move_with_abundance(adenoma, regressor_report):
    """Both groups get the same effect; a genus's importance sits in the column of the group a higher abundance
    of it points to: `higher` where its contribution to the predicted age rises with its CLR abundance."""
    corpus, _ = adenoma
    genera = pd.read_csv(regressor_report / "keystone_genera.tsv", sep="\t")
    importance = pd.read_csv(regressor_report / "importance.tsv", sep="\t", index_col=0)
    assert list(importance.columns) == [LOWER, HIGHER] and set(genera.points_to) == {LOWER, HIGHER}
    assert ((importance[LOWER] == 0) | (importance[HIGHER] == 0)).all()
    ranked = genera.dropna(subset=["rank"])
    assert (ranked.points_to == ranked.group).all() and ranked.groupby("group")["rank"].min().eq(1).all()
    lower, higher = (genera[genera.group == g].set_index("genus") for g in (LOWER, HIGHER))
    np.testing.assert_allclose(lower.effect, higher.effect.reindex(lower.index))
    np.testing.assert_allclose(genera.effect, genera.effect_clr + genera.effect_mgm, atol=1e-12)
    long = pd.read_csv(regressor_report / "contributions.tsv", sep="\t")
    total = long.pivot(index="sample-id", columns="genus", values="total")
    from q2_mgm.core.tokenizer import Corpus
    abundances = corpus.view(Corpus).abundance_table().reindex(total.index)
    for group in (HIGHER, LOWER):
        genus = ranked[ranked.group == group].sort_values("rank").genus.iloc[0]
        moves = np.cov(total[genus], clr(abundances)[genus])[0, 1]
        assert (moves > 0) == (group == HIGHER), (group, genus, moves)


def test_the_page_of_a_regressor_fit_with_batches(regressor_report):
    html = assert_page_is_complete(regressor_report, ["contributions.tsv", "sample_scores.tsv",
                                                      "keystone_genera.tsv"])
    text = " ".join(html.split())
    for words in ("This regressor was fit with batches (study)", "higher</b> and <b>lower</b>",
                  "metadata column 'host_age', split at each batch's median (study 1: ", "the prediction's units",
                  "predict-regression does with the same batches", "not from the attention of a regressor head"):
        assert words in text, words


def test_a_regressor_without_metadata_splits_the_values_it_predicts(mgm_plugin, adenoma, regressor):
    corpus, metadata = adenoma
    importance, = mgm_plugin.actions.keystone_genera(corpus=corpus, model=regressor, method="gradient",
                                                     batches=metadata.get_column("study"), min_samples=3,
                                                     device="cpu")
    table = importance.view(pd.DataFrame)
    assert list(table.columns) == [LOWER, HIGHER] and (table != 0).any().all()


def test_a_categorical_column_for_a_regressor_is_an_error_and_the_numeric_column_as_advised_explains(
        mgm_plugin, adenoma, regressor, regressor_report):
    corpus, metadata = adenoma
    frame = metadata.to_dataframe()
    words = qiime2.CategoricalMetadataColumn(frame.study.rename("age group"))
    with pytest.raises(KeystoneError, match=r"A regressor's genera are summarised by numbers split at their "
                                            r"batch's median.*"
                                            r"'age group' holds values that are not numbers.*Give the numeric "
                                            "column the regressor was fit on"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=regressor, metadata=words, method="gradient",
                                           batches=metadata.get_column("study"))
    # the advised fix, the numeric column host_age, is regressor_report
    assert (regressor_report / "keystone_genera.tsv").is_file()


def test_a_regressor_fit_without_batches_is_an_error_and_fit_with_them_as_advised_explains(
        mgm_plugin, adenoma, tiny_model, regressor_report):
    corpus, metadata = adenoma
    plain, _ = mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model, metadata=metadata.get_column("host_age"),
                                            task="regression", device="cpu")
    with pytest.raises(KeystoneError, match=r"This regressor was fit without batches.*Fine-tune the regressor with "
                                            r"batches \(qiime mgm fine-tune --p-task regression --m-batches-file"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=plain, metadata=metadata.get_column("host_age"),
                                           method="gradient")
    # the advised fix, the regressor fine-tuned with batches and explained with them, is regressor_report
    assert (regressor_report / "importance.tsv").is_file()


def test_the_batches_column_as_the_values_is_an_error_and_a_column_varying_within_batches_explains(
        mgm_plugin, adenoma, regressor, regressor_report):
    """The study number given as the values to split: within each study every sample has the same one, so there
    is nothing to compare (a split over all samples would have compared the studies)."""
    corpus, metadata = adenoma
    frame = metadata.to_dataframe()
    number = qiime2.NumericMetadataColumn(frame.study.str.split().str[1].astype(float).rename("study number"))
    with pytest.raises(KeystoneError, match=r"No value of metadata column 'study number' lies above its batch's "
                                            r"median.*not the batches column itself"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=regressor, metadata=number, method="gradient",
                                           batches=metadata.get_column("study"))
    assert (regressor_report / "importance.tsv").is_file()  # host_age, which varies within each study


def test_a_batch_whose_values_do_not_vary_is_explained_and_listed_not_summarised(mgm_plugin, adenoma, regressor,
                                                                                 regressor_report, tmp_path):
    corpus, metadata = adenoma
    frame = metadata.to_dataframe()
    flat = frame.host_age.where(frame.study != "study 3", 60.0)
    visualization, = mgm_plugin.actions.keystone_report(
        corpus=corpus, model=regressor, metadata=qiime2.NumericMetadataColumn(flat),
        batches=metadata.get_column("study"), method="gradient", min_samples=3, n_bootstrap=20, device="cpu")
    directory = export(visualization, tmp_path)
    parts = pd.read_csv(directory / "sample_scores.tsv", sep="\t", index_col=0)
    assert set(parts.index[~parts.summarised]) == set(frame.index[frame.study == "study 3"])
    before = pd.read_csv(regressor_report / "sample_scores.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(parts.score, before.score.reindex(parts.index))  # no sample's contributions change
    html = " ".join((directory / "index.html").read_text().split())
    assert "not summarised: their batch has no value above its median" in html
    assert f"{frame.index[frame.study == 'study 3'][0]} (60)" in html
