"""keystone-genera and keystone-report on ECAM (every fourth sample), grouped by delivery mode: the importance
artifact as q2-sample-classifier and `metadata tabulate` read it, the groups a user can ask for, clear errors, and
the report's files and page in a real browser."""
import re

import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_mgm.core.inference import encode
from q2_mgm.core.keystone import KeystoneError, aggregate, genus_scores, token_scores
from q2_mgm.core.tokenizer import Corpus

from .helpers import subset_corpus
from .test_visualizers import assert_page_is_complete, assert_renders_in_a_browser, export

pytestmark = pytest.mark.one_torch_thread


@pytest.fixture(scope="module")
def delivery(ecam_metadata):
    return ecam_metadata.get_column("delivery")


@pytest.fixture(scope="module")
def classifier(mgm_plugin, ecam_subset_corpus_artifact, delivery, ecam_metadata):
    model, _ = mgm_plugin.actions.fine_tune(corpus=ecam_subset_corpus_artifact, metadata=delivery,
                                            task="classification",
                                            groups=ecam_metadata.get_column("studyid"), epochs=1, freeze_layers=7,
                                            learning_rate=1e-3)
    return model


@pytest.fixture(scope="module")
def importance(mgm_plugin, ecam_subset_corpus_artifact, classifier, delivery):
    importance, = mgm_plugin.actions.keystone_genera(corpus=ecam_subset_corpus_artifact, model=classifier,
                                                     metadata=delivery)
    return importance


def test_importance_per_delivery_mode(importance, classifier, ecam_subset_corpus_artifact, delivery):
    assert str(importance.type) == "FeatureData[Importance]"
    table = importance.view(pd.DataFrame)
    assert list(table.columns) == ["Cesarean", "Vaginal"]
    assert table.index.str.startswith("g__").all() and np.isfinite(table.to_numpy()).all()
    # the same figures as the core computes from the fine-tuned network
    from q2_mgm.core.training import load_trained_model
    trained, vocabulary, _ = load_trained_model(classifier._archiver.data_dir)
    samples = ecam_subset_corpus_artifact.view(Corpus).samples
    ids = encode(samples.sentence, vocabulary)
    matrix = genus_scores(ids, token_scores(trained.model, ids, "attention"), vocabulary, samples.index)
    expected = aggregate(matrix, delivery.to_series(), n_bootstrap=1).importance
    pd.testing.assert_frame_equal(table, expected, check_names=False, check_index_type=False)


def test_tabulate_and_sample_classifier_heatmap_read_it(importance, ecam_subset_counts, ecam_metadata):
    from qiime2.plugins import metadata, sample_classifier
    metadata.visualizers.tabulate(input=importance.view(qiime2.Metadata))
    table = qiime2.Artifact.import_data("FeatureTable[Frequency]", ecam_subset_counts.astype(float))
    heatmap, _ = sample_classifier.actions.heatmap(table=table, importance=importance, feature_count=10,
                                                   sample_metadata=ecam_metadata.get_column("delivery"),
                                                   group_samples=True)
    assert str(heatmap.type) == "Visualization"


def test_groups_default_to_the_predicted_classes(mgm_plugin, ecam_subset_corpus_artifact, classifier, capsys):
    importance, = mgm_plugin.actions.keystone_genera(corpus=ecam_subset_corpus_artifact, model=classifier)
    assert set(importance.view(pd.DataFrame).columns) <= {"Cesarean", "Vaginal"}
    assert "grouped by the classes the model predicts" in capsys.readouterr().out


def test_a_pretrained_model_with_a_column(mgm_plugin, ecam_subset_corpus_artifact, model_artifact, ecam_metadata,
                                          capsys):
    diet = ecam_metadata.get_column("diet")
    importance, = mgm_plugin.actions.keystone_genera(corpus=ecam_subset_corpus_artifact, model=model_artifact,
                                                     metadata=diet, method="rollout")
    assert list(importance.view(pd.DataFrame).columns) == ["bd", "fd"]


def test_integrated_gradients_explain_the_true_class(mgm_plugin, ecam_subset_corpus_artifact, classifier, delivery):
    few = subset_corpus(ecam_subset_corpus_artifact, ecam_subset_corpus_artifact.view(pd.DataFrame).index[:12])
    importance, = mgm_plugin.actions.keystone_genera(corpus=few, model=classifier, metadata=delivery,
                                                     method="gradient", min_samples=2)
    table = importance.view(pd.DataFrame)
    assert (table.to_numpy() != 0).any() and (table.to_numpy() < 0).any()  # signed attributions


def test_unlabelled_samples_are_counted(mgm_plugin, ecam_subset_corpus_artifact, model_artifact, ecam_metadata,
                                        capsys):
    frame = ecam_metadata.to_dataframe()
    frame.loc[frame.index[:40], "delivery"] = np.nan
    column = qiime2.Metadata(frame).get_column("delivery")
    mgm_plugin.actions.keystone_genera(corpus=ecam_subset_corpus_artifact, model=model_artifact, metadata=column)
    labelled = column.to_series().reindex(ecam_subset_corpus_artifact.view(pd.DataFrame).index)
    assert f"left out {int(labelled.isna().sum())} of 219 samples with no 'delivery'" in capsys.readouterr().out


def test_a_pretrained_model_needs_a_column(mgm_plugin, ecam_subset_corpus_artifact, model_artifact):
    with pytest.raises(KeystoneError, match="pretrained model.*needs a categorical metadata column"):
        mgm_plugin.actions.keystone_genera(corpus=ecam_subset_corpus_artifact, model=model_artifact)


def test_a_regressor_fit_without_batches_is_refused(mgm_plugin, ecam_subset_corpus_artifact, ecam_metadata):
    """A regressor has no classes whose attention to compare: keystone-genera explains one fit with batches
    (tests/test_keystone_regressor.py applies the advice)."""
    regressor, _ = mgm_plugin.actions.fine_tune(corpus=ecam_subset_corpus_artifact, task="regression",
                                                metadata=ecam_metadata.get_column("month"), epochs=1,
                                                freeze_layers=8)
    with pytest.raises(KeystoneError, match="This regressor was fit without batches.*Fine-tune the regressor with "
                                            "batches"):
        mgm_plugin.actions.keystone_genera(corpus=ecam_subset_corpus_artifact, model=regressor,
                                           metadata=ecam_metadata.get_column("month"))


@pytest.fixture(scope="module")
def report(mgm_plugin, ecam_subset_corpus_artifact, classifier, delivery, tmp_path_factory):
    picked = ecam_subset_corpus_artifact.view(pd.DataFrame).index[[3, 100, 150]].tolist()
    visualization, = mgm_plugin.actions.keystone_report(corpus=ecam_subset_corpus_artifact, model=classifier,
                                                        metadata=delivery, n_bootstrap=200,
                                                        attention_samples=ids_as_metadata(picked))
    return export(visualization, tmp_path_factory.mktemp("keystone")), picked


def test_report_files(report):
    directory, picked = report
    html = assert_page_is_complete(directory, ["MGM keystone genera", "Top genera of each group",
                                               "Differences between groups", *picked])
    genera = pd.read_csv(directory / "keystone_genera.tsv", sep="\t")
    ranked = genera.dropna(subset=["rank"])
    assert (ranked.n_samples >= 10).all() and (genera[genera["rank"].isna()].n_samples < 10).all()
    assert ((ranked.ci_low <= ranked.mean_score) & (ranked.mean_score <= ranked.ci_high)).all()
    differences = pd.read_csv(directory / "class_differences.tsv", sep="\t", index_col=0)
    tested = differences.dropna(subset=["p_value"])
    assert ((tested.q_value >= tested.p_value - 1e-12) & (tested.q_value <= 1)).all()
    assert [f"attention_map_{i}.png" in html for i in (1, 2, 3)] == [True] * 3
    scores = pd.read_csv(directory / "genus_scores.tsv", sep="\t", index_col=0)
    assert len(scores) == 219


def test_report_renders_in_a_browser(report, tmp_path):
    assert_renders_in_a_browser(report[0] / "index.html", tmp_path)


def ids_as_metadata(sample_ids):
    """attention_samples as a user gives it: a metadata file of sample IDs alone."""
    return qiime2.Metadata(pd.DataFrame(index=pd.Index(sample_ids, name="sample-id")))


def test_report_refuses_samples_without_a_map(mgm_plugin, ecam_subset_corpus_artifact, classifier, ecam_metadata):
    samples = ecam_subset_corpus_artifact.view(pd.DataFrame).index
    delivery = ecam_metadata.to_dataframe().delivery.copy()
    delivery[samples[0]] = np.nan  # in the corpus, but without a group
    delivery = qiime2.CategoricalMetadataColumn(delivery)
    with pytest.raises(KeystoneError, match=(
            r"2 of the 3 samples of attention_samples have no attention map to show; not in the corpus: "
            rf"'no-such-sample'; in the corpus but without a group .*'{re.escape(samples[0])}'\. Give "
            "attention_samples metadata whose IDs are samples of the corpus with a group, or leave it out")):
        mgm_plugin.actions.keystone_report(corpus=ecam_subset_corpus_artifact, model=classifier, metadata=delivery,
                                           attention_samples=ids_as_metadata(["no-such-sample", samples[0],
                                                                              samples[1]]))


def test_subjects_are_the_units(mgm_plugin, ecam_subset_corpus_artifact, classifier, delivery, ecam_metadata,
                                tmp_path, capsys):
    visualization, = mgm_plugin.actions.keystone_report(
        corpus=ecam_subset_corpus_artifact, model=classifier, metadata=delivery,
        subjects=ecam_metadata.get_column("studyid"), n_bootstrap=100, min_samples=3)
    assert "within 42 subjects" in capsys.readouterr().out
    directory = export(visualization, tmp_path / "by-subject")
    units = pd.read_csv(directory / "subject_scores.tsv", sep="\t", index_col=0)
    assert len(units) == 42 and units.index.str.endswith(("(Cesarean)", "(Vaginal)")).all()
    genera = pd.read_csv(directory / "keystone_genera.tsv", sep="\t")
    assert genera.n_samples.max() <= 42  # counts subjects now
    samples = pd.read_csv(directory / "genus_scores.tsv", sep="\t", index_col=0)
    child = ecam_metadata.get_column("studyid").to_series().reindex(samples.index)
    first = units.index[0].split(" (")[0]
    np.testing.assert_allclose(units.iloc[0].dropna(), samples[child == first].mean().dropna(), rtol=1e-9)


def test_a_fine_tuned_model_embeds_with_its_own_encoder(mgm_plugin, ecam_subset_corpus_artifact, classifier,
                                                         model_artifact):
    """The classifier's encoder (layer 8 trained) embeds differently from the general model, same shape."""
    tuned, = mgm_plugin.actions.embed(corpus=ecam_subset_corpus_artifact, model=classifier)
    general, = mgm_plugin.actions.embed(corpus=ecam_subset_corpus_artifact, model=model_artifact)
    tuned, general = tuned.view(pd.DataFrame), general.view(pd.DataFrame)
    assert tuned.shape == general.shape == (219, 256)
    assert not np.allclose(tuned.to_numpy(), general.to_numpy(), atol=1e-4)


def test_a_class_the_model_does_not_know_changes_no_other_samples_scores(mgm_plugin, tiny_model, genera, tmp_path):
    """Samples of a class the classifier lacks: the gradient of their 'own class' explains nothing, and it used to
    switch every sample to the predicted class. They are left out and listed; the others' scores do not change."""
    from .helpers import corpus_of
    ids = [f"s{i:02d}" for i in range(16)]
    corpus = corpus_of(genera, ids, 7)
    labels = pd.Series(["a", "b"] * 8, index=pd.Index(ids, name="id"), name="status")
    model, _ = mgm_plugin.actions.fine_tune(corpus=subset_corpus(corpus, ids[:12]), model=tiny_model, epochs=1,
                                            metadata=qiime2.CategoricalMetadataColumn(labels[:12]),
                                            task="classification", device="cpu")
    labels.iloc[12:] = "c"  # a class the model never saw
    column = qiime2.CategoricalMetadataColumn(labels)
    everything, = mgm_plugin.actions.keystone_genera(corpus=corpus, model=model, metadata=column,
                                                     method="gradient", min_samples=1, device="cpu")
    known_only, = mgm_plugin.actions.keystone_genera(corpus=subset_corpus(corpus, ids[:12]), model=model,
                                                     metadata=column, method="gradient", min_samples=1, device="cpu")
    both, alone = everything.view(pd.DataFrame), known_only.view(pd.DataFrame)
    assert list(both.columns) == list(alone.columns) == ["a", "b"]
    assert np.allclose(both.loc[alone.index], alone, atol=1e-6)
    # min_samples 6: each explained class holds 6 samples; 'c', with 4, is not explained, so not counted either
    visualization, = mgm_plugin.actions.keystone_report(corpus=corpus, model=model, metadata=column,
                                                        method="gradient", min_samples=6, n_bootstrap=20,
                                                        device="cpu")
    html = (export(visualization, tmp_path) / "index.html").read_text()
    assert "samples not explained: their class is not the model" in html
    for sample in ids[12:]:
        assert f"{sample} (c)" in html


def test_predicted_classes_short_of_min_samples_stop_before_the_bootstrap(mgm_plugin, ecam_subset_corpus_artifact,
                                                                          classifier, tmp_path):
    """Without metadata the classes are the model's calls, known once it ran: a class that ranks no genus is an
    error naming min_samples and the value that ranks genera in every class, and that value gives the page."""
    few = subset_corpus(ecam_subset_corpus_artifact, ecam_subset_corpus_artifact.view(pd.DataFrame).index[:12])
    with pytest.raises(KeystoneError, match=r"No genus reaches min_samples=13 samples in any class of 'the "
                                            r"predicted classes'.*Lower min_samples to (\d+)") as error:
        mgm_plugin.actions.keystone_report(corpus=few, model=classifier, min_samples=13, n_bootstrap=20)
    lowest = int(re.search(r"Lower min_samples to (\d+)", str(error.value)).group(1))
    visualization, = mgm_plugin.actions.keystone_report(corpus=few, model=classifier, min_samples=lowest,
                                                        n_bootstrap=20)
    genera = pd.read_csv(export(visualization, tmp_path) / "keystone_genera.tsv", sep="\t")
    assert genera.groupby("group")["rank"].min().eq(1).all()


def test_no_class_the_model_knows_is_an_error_and_attention_as_advised_scores_them(
        mgm_plugin, ecam_subset_corpus_artifact, classifier):
    ids = ecam_subset_corpus_artifact.view(pd.DataFrame).index[:8]
    few = subset_corpus(ecam_subset_corpus_artifact, ids)
    column = qiime2.CategoricalMetadataColumn(pd.Series("home birth", index=pd.Index(ids, name="id"),
                                                        name="delivery"))
    with pytest.raises(KeystoneError, match=r"None of the classes of metadata column 'delivery' \(home birth\).*"
                                            r"use method 'attention'"):
        mgm_plugin.actions.keystone_genera(corpus=few, model=classifier, metadata=column, method="gradient")
    importance, = mgm_plugin.actions.keystone_genera(corpus=few, model=classifier, metadata=column,
                                                     method="attention", min_samples=1)
    assert list(importance.view(pd.DataFrame).columns) == ["home birth"]


# --- a classifier fine-tuned with batches (the across-study recipe): genera by their contributions to its decision ---
# UC_Amplicon of ../shared/data/disease-benchmark, ten cases and ten controls of each of its three studies, read by
# the tiny model (sentences of at most 32 tokens, so that a forward pass costs little; many are truncated, and a
# batch whose sentences all are has a constant length, which the explanation must still add up with)

UC = "disease-benchmark/UC_Amplicon"


@pytest.fixture(scope="module")
def uc():
    """(corpus, metadata with Group and study) of the 60 samples."""
    from .helpers import read_genus_table, read_metadata
    table = read_genus_table(UC, "genus_relative.tsv")
    metadata = read_metadata(UC)
    metadata["study"] = "study " + metadata["pair_rank"].astype(str)
    ids = metadata.loc[table.index].groupby(["pair_rank", "Group"]).head(10).index
    from qiime2.plugins import mgm
    corpus, = mgm.actions.tokenize(table=qiime2.Artifact.import_data("FeatureTable[RelativeFrequency]",
                                                                     table.loc[ids]), max_length=32)
    assert len(corpus.view(Corpus).samples) == 60
    return corpus, qiime2.Metadata(metadata.loc[ids, ["Group", "study"]].rename_axis("sample-id"))


@pytest.fixture(scope="module")
def batch_model(mgm_plugin, uc, tiny_model):
    corpus, metadata = uc
    model, _ = mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model, metadata=metadata.get_column("Group"),
                                            task="classification", batches=metadata.get_column("study"),
                                            device="cpu")
    return model


@pytest.fixture(scope="module")
def batch_importance(mgm_plugin, uc, batch_model):
    corpus, metadata = uc
    importance, = mgm_plugin.actions.keystone_genera(corpus=corpus, model=batch_model,
                                                     metadata=metadata.get_column("Group"),
                                                     batches=metadata.get_column("study"), method="gradient",
                                                     min_samples=3, device="cpu")
    return importance.view(pd.DataFrame)


@pytest.fixture(scope="module")
def batch_report(mgm_plugin, uc, batch_model, tmp_path_factory):
    corpus, metadata = uc
    visualization, = mgm_plugin.actions.keystone_report(corpus=corpus, model=batch_model,
                                                        metadata=metadata.get_column("Group"),
                                                        batches=metadata.get_column("study"), method="gradient",
                                                        min_samples=3, n_bootstrap=200, device="cpu")
    return export(visualization, tmp_path_factory.mktemp("keystone-batches"))


def test_contributions_add_up_to_the_decision_predict_gives_relative_to_the_batch(mgm_plugin, uc, batch_model,
                                                                                 batch_report):
    """Per sample: its genera's CLR and MGM parts, other and the completeness gap add up to the log-odds that
    predict-classification gives it (with the same batches), less its batch's average."""
    corpus, metadata = uc
    parts = pd.read_csv(batch_report / "sample_scores.tsv", sep="\t", index_col=0)
    assert len(parts) == 60 and set(parts.output) == {"log-odds of Control"} and parts.summarised.all()
    probabilities = mgm_plugin.actions.predict_classification(
        corpus=corpus, model=batch_model, batches=metadata.get_column("study")).probabilities.view(pd.DataFrame)
    log_odds = np.log(probabilities["Control"] / probabilities["Case"]).reindex(parts.index)
    expected = log_odds - log_odds.groupby(parts.batch).transform("mean")
    np.testing.assert_allclose(parts.score, expected, atol=1e-6)
    np.testing.assert_allclose(parts.clr + parts.mgm + parts.other + parts.gap, parts.score, atol=1e-9)
    long = pd.read_csv(batch_report / "contributions.tsv", sep="\t")
    sums = long.groupby("sample-id")[["clr", "mgm"]].sum().reindex(parts.index)
    np.testing.assert_allclose(sums.clr, parts.clr, atol=1e-9)
    np.testing.assert_allclose(sums.mgm, parts.mgm, atol=1e-9)
    assert (parts.relative_gap < 0.05).median() and parts.groupby("batch").score.mean().abs().max() < 1e-9


def test_each_class_ranks_the_genera_pointing_to_it(batch_importance, batch_report):
    """Both classes get the same effect (each against the other on its own log-odds); a genus's importance sits in
    the column of the class a higher abundance of it points to, and each class ranks those genera."""
    assert list(batch_importance.columns) == ["Case", "Control"]
    assert batch_importance.index.str.startswith("g__").all() and np.isfinite(batch_importance.to_numpy()).all()
    assert ((batch_importance.Case == 0) | (batch_importance.Control == 0)).all()
    assert (batch_importance.Case != 0).any() and (batch_importance.Control != 0).any()
    genera = pd.read_csv(batch_report / "keystone_genera.tsv", sep="\t")
    assert set(genera.points_to) <= {"Case", "Control"}
    assert (genera.dropna(subset=["rank"]).points_to == genera.dropna(subset=["rank"]).group).all()
    page = pd.read_csv(batch_report / "importance.tsv", sep="\t", index_col=0)
    pd.testing.assert_frame_equal(page, batch_importance, check_names=False)  # the bootstrap changes no effect
    assert genera.mgm_share.dropna().between(0, 1).all()
    np.testing.assert_allclose(genera.effect, genera.effect_clr + genera.effect_mgm, atol=1e-12)
    ranked = genera.dropna(subset=["rank"])
    assert (ranked.n_samples >= 3).all() and ranked.groupby("group")["rank"].min().eq(1).all()
    for group, rows in ranked.groupby("group"):
        assert rows.sort_values("rank").effect.abs().is_monotonic_decreasing
    inside = (ranked.ci_low <= ranked.effect + 1e-12) & (ranked.effect <= ranked.ci_high + 1e-12)
    assert inside.mean() > 0.9
    case, control = (genera[genera.group == g].set_index("genus") for g in ("Case", "Control"))
    np.testing.assert_allclose(case.effect, control.effect.reindex(case.index))
    np.testing.assert_allclose(case.ci_low, control.ci_low.reindex(case.index))


def test_the_page_of_a_batch_fit_model(batch_report, tmp_path):
    html = assert_page_is_complete(batch_report, ["contributions.tsv", "sample_scores.tsv", "keystone_genera.tsv"])
    text = " ".join(html.split())
    for words in ("fit with batches (study)", "Attention maps do not apply to this model",
                  "relative to the sample's geometric mean", "a genus the sample lacks still has a (low) CLR value",
                  "held fixed while differentiating", "median completeness gap", "no genus's", "mgm_share"):
        assert words in text, words
    assert "attention_map_1" not in html and "Differences between groups" not in html
    assert_renders_in_a_browser(batch_report / "index.html", tmp_path)


def test_attention_does_not_apply_to_a_batch_fit_model_and_gradient_as_advised_explains_it(
        mgm_plugin, uc, batch_model, batch_importance):
    corpus, metadata = uc
    with pytest.raises(KeystoneError, match=r"fit with batches \('study'\).*not with the attention of a classifier "
                                            r"head.*method 'attention'.*does not apply.*--p-method gradient"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=batch_model, metadata=metadata.get_column("Group"),
                                           batches=metadata.get_column("study"))
    with pytest.raises(KeystoneError, match="method 'rollout'"):
        mgm_plugin.actions.keystone_report(corpus=corpus, model=batch_model, batches=metadata.get_column("study"),
                                           method="rollout")
    # the advised fix, the same call with method 'gradient', is batch_importance
    assert batch_importance.shape[1] == 2


def test_a_batch_fit_model_needs_its_batches_and_given_them_as_advised_explains(mgm_plugin, uc, batch_model,
                                                                                batch_importance, batch_report):
    corpus, metadata = uc
    with pytest.raises(KeystoneError, match=r"needs each sample's batch.*--m-batches-column study"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=batch_model, metadata=metadata.get_column("Group"),
                                           method="gradient")
    with pytest.raises(KeystoneError, match="attention maps, which do not apply.*leave attention_samples out"):
        mgm_plugin.actions.keystone_report(corpus=corpus, model=batch_model, batches=metadata.get_column("study"),
                                           method="gradient", attention_samples=ids_as_metadata(["SRS4329805"]))
    # the advised fixes, the same calls with batches and without attention_samples: batch_importance, batch_report
    assert np.isfinite(batch_importance.to_numpy()).all() and (batch_report / "contributions.tsv").is_file()


def test_batches_for_a_model_fit_without_them_is_an_error_and_left_out_as_advised_scores(mgm_plugin, uc,
                                                                                        tiny_model):
    corpus, metadata = uc
    plain, _ = mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model, metadata=metadata.get_column("Group"),
                                            task="classification", device="cpu")
    with pytest.raises(KeystoneError, match=r"batches \('study'\) was given, but this model was not fit with "
                                            "batches.*leave batches out"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=plain, metadata=metadata.get_column("Group"),
                                           batches=metadata.get_column("study"), min_samples=3, device="cpu")
    importance, = mgm_plugin.actions.keystone_genera(corpus=corpus, model=plain, min_samples=1,
                                                     metadata=metadata.get_column("Group"), device="cpu")
    assert list(importance.view(pd.DataFrame).columns) == ["Case", "Control"]


@pytest.fixture(scope="module")
def few(uc):
    """Five samples of each study (enough to standardise each batch on), with their Group and study."""
    corpus, metadata = uc
    frame = metadata.to_dataframe()
    ids = frame.groupby("study").head(5).index
    return subset_corpus(corpus, ids), frame.loc[ids]


def test_a_sample_without_a_batch_or_a_batch_too_small_is_an_error_and_the_fixes_explain(mgm_plugin, few,
                                                                                       batch_model):
    corpus, frame = few
    group = qiime2.CategoricalMetadataColumn(frame.Group)
    unbatched = frame.study.copy()
    unbatched.iloc[0] = np.nan
    with pytest.raises(KeystoneError, match=rf"1 sample\(s\) have no batch in 'study' \({frame.index[0]}\).*leave "
                                            "those samples out: qiime feature-table filter-samples on the table"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=batch_model, metadata=group, method="gradient",
                                           batches=qiime2.CategoricalMetadataColumn(unbatched), min_samples=1)
    filtered = subset_corpus(corpus, frame.index[1:])
    small = frame.study.where(frame.index != frame.index[0], "study 9")  # one sample alone
    small.iloc[1] = "study 9"
    with pytest.raises(KeystoneError, match=r"batch 'study 9' of 'study' holds 2\. Explain it together.*merge it "
                                            "with a related batch"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=batch_model, metadata=group, method="gradient",
                                           batches=qiime2.CategoricalMetadataColumn(small), min_samples=1)
    merged = small.replace("study 9", "study 1")
    for fixed_corpus, batches in ((filtered, frame.study), (corpus, merged)):
        importance, = mgm_plugin.actions.keystone_genera(
            corpus=fixed_corpus, model=batch_model, metadata=group, method="gradient", min_samples=1,
            batches=qiime2.CategoricalMetadataColumn(batches), device="cpu")
        assert list(importance.view(pd.DataFrame).columns) == ["Case", "Control"]


def test_one_class_is_an_error_and_the_predicted_classes_as_advised_give_effects(mgm_plugin, few, batch_model):
    corpus, frame = few
    cases = frame.Group.where(frame.Group == "Case")
    with pytest.raises(KeystoneError, match=r"hold 1 of the classifier's classes.*leave metadata out"):
        mgm_plugin.actions.keystone_genera(corpus=corpus, model=batch_model, method="gradient", min_samples=1,
                                           metadata=qiime2.CategoricalMetadataColumn(cases),
                                           batches=qiime2.CategoricalMetadataColumn(frame.study))
    importance, = mgm_plugin.actions.keystone_genera(corpus=corpus, model=batch_model, method="gradient",
                                                     min_samples=1, device="cpu",
                                                     batches=qiime2.CategoricalMetadataColumn(frame.study))
    table = importance.view(pd.DataFrame)
    assert ((table.Case == 0) | (table.Control == 0)).all() and (table != 0).any().all()


@pytest.fixture(scope="module")
def report_with_an_unknown_class(mgm_plugin, uc, batch_model, tmp_path_factory):
    """The report of batch_report with three samples' Group set to a class the model lacks, and subjects (pairs
    of samples of one class)."""
    corpus, metadata = uc
    frame = metadata.to_dataframe()
    frame.loc[frame.index[:3], "Group"] = "Indeterminate colitis"
    subjects = pd.Series([f"p{i // 2}" for i in range(len(frame))], index=frame.index, name="subject")
    visualization, = mgm_plugin.actions.keystone_report(
        corpus=corpus, model=batch_model, metadata=qiime2.CategoricalMetadataColumn(frame.Group),
        subjects=qiime2.CategoricalMetadataColumn(subjects), batches=metadata.get_column("study"),
        method="gradient", min_samples=2, n_bootstrap=50, device="cpu")
    return export(visualization, tmp_path_factory.mktemp("keystone-unknown")), frame, subjects


def test_a_class_the_model_does_not_know_changes_no_samples_contributions(batch_report,
                                                                         report_with_an_unknown_class):
    directory, frame, _ = report_with_an_unknown_class
    before, after = (pd.read_csv(d / "contributions.tsv", sep="\t") for d in (batch_report, directory))
    pd.testing.assert_frame_equal(before, after)
    parts = pd.read_csv(directory / "sample_scores.tsv", sep="\t", index_col=0)
    assert list(parts.index[~parts.summarised]) == list(frame.index[:3])
    html = (directory / "index.html").read_text()
    assert "samples explained, not summarised: their class is not the model" in html
    for sample in frame.index[:3]:
        assert f"{sample} (Indeterminate colitis)" in html


def test_subjects_average_their_samples_contributions_first(report_with_an_unknown_class):
    directory, frame, subjects = report_with_an_unknown_class
    units = pd.read_csv(directory / "subject_contributions.tsv", sep="\t", index_col=[0, 1])
    long = pd.read_csv(directory / "contributions.tsv", sep="\t")
    summarised = frame.index[3:]
    unit_names = {f"{subjects[s]} ({frame.Group[s]})" for s in summarised}
    assert set(units.index.get_level_values(0)) == unit_names
    first = sorted(unit_names)[0]
    members = [s for s in summarised if f"{subjects[s]} ({frame.Group[s]})" == first]
    expected = long[long["sample-id"].isin(members)].groupby("genus").total.mean()
    np.testing.assert_allclose(units.loc[first].iloc[:, 0].reindex(expected.index), expected, atol=1e-12)
    genera = pd.read_csv(directory / "keystone_genera.tsv", sep="\t")
    assert genera.n_samples.max() <= len(unit_names)
