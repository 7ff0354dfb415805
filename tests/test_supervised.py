"""Supervised MGM through the Artifact API on real data: fine-tune (twins Lean vs Obese grouped by subject; ECAM
infant age in months grouped by child), train from random weights (ECAM delivery mode), predict into
q2-sample-classifier's types and visualizers, split-corpus, seeds, label errors, tampered models, and the
classify-samples and regress-samples pipelines. Budgets are small: head-only training (freeze_layers=8), 1-2 epochs."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import qiime2
import safetensors.torch
import scipy.stats
import torch
import transformers
from qiime2.plugin import ValidationError

import q2_mgm
from q2_mgm._formats import MGMSupervisedModelDirFmt
from q2_mgm.core.inference import VocabularyMismatch
from q2_mgm.core.models import ModelFormatError
from q2_mgm.core.schemas import TRAINING_RECORD_FILE
from q2_mgm.core.tokenizer import Corpus
from q2_mgm.core.training import (TrainedModel, TrainingError, load_blended_forest, save_trained_model,
                                  sequence_model)
from q2_mgm.core.vocab import Vocabulary

from .helpers import assert_refused, read_metadata, rewrite_qza, subset_corpus

pytestmark = [pytest.mark.filterwarnings("ignore:The least populated class in y:UserWarning"),
              pytest.mark.one_torch_thread]
HEAD_ONLY = {"freeze_layers": 8, "learning_rate": 1e-3}


def export(artifact, directory):
    artifact.export_data(str(directory))
    return directory


def training_record(model_artifact, directory):
    export(model_artifact, directory)
    return (json.loads((directory / TRAINING_RECORD_FILE).read_text()),
            json.loads((directory / "versions.json").read_text()))


@pytest.fixture(scope="module")
def classifier(mgm_plugin, twins_corpus_artifact, twins_metadata):
    """The default recipe on all 278 twins samples, of which 254 are Lean or Obese: the general model's encoder
    frozen, its head fit exactly, and a RandomForest on the abundances blended in."""
    return mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, task="classification",
                                        metadata=twins_metadata.get_column("bmi_category"),
                                        groups=twins_metadata.get_column("subject"))


@pytest.fixture(scope="module")
def epoch_classifier(mgm_plugin, twins_corpus_artifact, twins_metadata):
    """Upstream's way, epoch by epoch with the Trainer: two epochs of the last layer and the head, no forest."""
    return mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, task="classification",
                                        metadata=twins_metadata.get_column("bmi_category"),
                                        groups=twins_metadata.get_column("subject"), epochs=2, freeze_layers=7,
                                        forest_weight=0.0, learning_rate=1e-3)


@pytest.fixture(scope="module")
def labelled_twins_corpus(twins_corpus_artifact, twins_metadata):
    """The 254 Lean or Obese samples: q2-sample-classifier's visualizers want a truth for every prediction."""
    labelled = twins_metadata.get_column("bmi_category").drop_missing_values().to_series().index
    return subset_corpus(twins_corpus_artifact,
                         [s for s in twins_corpus_artifact.view(pd.DataFrame).index if s in set(labelled)])


@pytest.fixture(scope="module")
def classifier_predictions(mgm_plugin, labelled_twins_corpus, classifier):
    return mgm_plugin.actions.predict_classification(corpus=labelled_twins_corpus, model=classifier.trained_model)


@pytest.fixture(scope="module")
def regressor(mgm_plugin, ecam_subset_corpus_artifact, ecam_metadata):
    return mgm_plugin.actions.fine_tune(corpus=ecam_subset_corpus_artifact, task="regression",
                                        metadata=ecam_metadata.get_column("month"),
                                        groups=ecam_metadata.get_column("studyid"), epochs=2, freeze_layers=8,
                                        learning_rate=1e-2)


class TestFineTuneClassifier:
    def test_types(self, classifier):
        model, history = classifier
        assert str(model.type) == "MGMModel[Classifier]"
        assert str(history.type) == "MGMTrainingHistory"
        model.validate(level="max")
        history.validate(level="max")

    def test_history_views(self, epoch_classifier):
        history = epoch_classifier.history
        frame = history.view(pd.DataFrame)
        assert frame.index.tolist() == ["1", "2"]
        assert list(frame.columns) == ["train_loss", "validation_loss", "validation_auc", "validation_accuracy"]
        assert np.isfinite(frame.to_numpy()).all() and frame.validation_auc.between(0, 1).all()
        metadata = history.view(qiime2.Metadata)
        assert list(metadata.ids) == ["1", "2"]
        assert isinstance(metadata.get_column("validation_auc"), qiime2.NumericMetadataColumn)
        pd.testing.assert_frame_equal(metadata.to_dataframe(), frame, check_names=False)
        from qiime2.plugins import metadata as metadata_plugin  # what `qiime metadata tabulate` runs
        visualization, = metadata_plugin.visualizers.tabulate(metadata)
        assert str(visualization.type) == "Visualization"

    def test_training_record(self, classifier, general_model, tmp_path):
        record, versions = training_record(classifier.trained_model, tmp_path)
        assert record["task"] == "classification" and record["labels"] == ["Lean", "Obese"]
        # the 24 Overwt samples have no label: left out; 20% of the 254 validate, then head and forest are refit
        assert record["n_training_samples"] == 254 and 0.1 < record["n_validation_samples"] / 254 < 0.3
        assert record["settings"] == {"epochs": 20, "learning_rate": 1e-4, "batch_size": 32,
                                      "validation_fraction": 0.2, "patience": 5, "class_weighting": True,
                                      "freeze_layers": 8, "weight_decay": 0.01, "random_state": 0, "device": "cpu",
                                      "forest_weight": 0.7, "forest_trees": 500}
        assert record["history"]["epoch"] == ["1"]  # the exactly fit head: one pass, no epochs
        assert set(record["validation"]) == {"network", "forest", "blend"}
        assert record["forest"]["weight"] == 0.7 and all(g.startswith("g__") for g in record["forest"]["genera"])
        assert {"forest.safetensors", "forest.json"} <= {p.name for p in tmp_path.iterdir()}
        assert versions["q2-mgm"] == q2_mgm.__version__
        assert versions["torch"] == torch.__version__ and versions["transformers"] == transformers.__version__
        assert versions["label_column"] == "bmi_category"
        assert versions["base_model"] == general_model[2]["source_sha256"]
        config = json.loads((tmp_path / "config.json").read_text())
        assert config["architectures"] == ["GPT2ForSequenceClassification"] and len(config["id2label"]) == 2

    def test_frozen_layers_keep_the_general_models_weights(self, classifier, general_model, tmp_path):
        export(classifier.trained_model, tmp_path)
        weights = safetensors.torch.load_file(str(tmp_path / "model.safetensors"))
        pretrained = general_model[0].state_dict()
        transformer = [name for name in weights if name.startswith("transformer.")]
        assert len(transformer) > 90
        for name in transformer:
            assert torch.equal(weights[name], pretrained[name]), name
        assert tuple(weights["score.weight"].shape) == (2, 256)

    def test_predict(self, classifier_predictions, labelled_twins_corpus):
        predictions, probabilities = classifier_predictions
        assert str(predictions.type) == "SampleData[ClassifierPredictions]"
        assert str(probabilities.type) == "SampleData[Probabilities]"
        series, frame = predictions.view(pd.Series), probabilities.view(pd.DataFrame)
        samples = labelled_twins_corpus.view(pd.DataFrame).index.tolist()
        assert len(samples) == 254
        assert series.index.tolist() == samples and frame.index.tolist() == samples
        assert list(frame.columns) == ["Lean", "Obese"]
        np.testing.assert_allclose(frame.sum(axis=1), 1.0, rtol=1e-6)
        assert set(series) <= {"Lean", "Obese"}  # the classes as the decision rule calls them (TestDecisionRule)

    def test_sample_classifier_confusion_matrix_reads_the_predictions(self, classifier_predictions, twins_metadata,
                                                                        tmp_path):
        from qiime2.plugins import sample_classifier
        predictions, probabilities = classifier_predictions
        visualization, = sample_classifier.visualizers.confusion_matrix(
            predictions=predictions, probabilities=probabilities, truth=twins_metadata.get_column("bmi_category"))
        files = {p.name for p in export(visualization, tmp_path / "confusion").iterdir()}
        assert {"index.html", "predictive_accuracy.tsv", "roc_plot.png"} <= files

    def test_a_regressor_is_not_a_classifier(self, mgm_plugin, regressor, twins_corpus_artifact):
        with pytest.raises(TypeError, match="MGMModel\\[Classifier\\]"):
            mgm_plugin.actions.predict_classification(corpus=twins_corpus_artifact, model=regressor.trained_model)


class TestFineTuneRegressor:
    def test_types_and_record(self, regressor, ecam_metadata, ecam_subset_counts, tmp_path):
        model, history = regressor
        assert str(model.type) == "MGMModel[Regressor]" and str(history.type) == "MGMTrainingHistory"
        record, versions = training_record(model, tmp_path)
        month = ecam_metadata.get_column("month").to_series().loc[ecam_subset_counts.index]
        assert record["task"] == "regression" and record["labels"] == []
        assert record["target_mean"] == pytest.approx(month.mean())
        assert record["target_std"] == pytest.approx(month.std(ddof=0))
        assert record["n_training_samples"] == 219  # validated on a held-out share, then refit on all
        assert versions["label_column"] == "month"
        frame = history.view(pd.DataFrame)
        assert {"validation_loss", "validation_mae", "validation_r2"} <= set(frame.columns)
        assert history.view(qiime2.Metadata).get_column("validation_mae").to_series().gt(0).all()

    def test_predictions_follow_age_and_scatterplot_reads_them(self, mgm_plugin, regressor,
                                                               ecam_subset_corpus_artifact, ecam_metadata):
        predictions, = mgm_plugin.actions.predict_regression(corpus=ecam_subset_corpus_artifact,
                                                             model=regressor.trained_model)
        assert str(predictions.type) == "SampleData[RegressorPredictions]"
        series = predictions.view(pd.Series)
        assert series.index.tolist() == ecam_subset_corpus_artifact.view(pd.DataFrame).index.tolist()
        month = ecam_metadata.get_column("month")
        assert np.isfinite(series).all()
        assert scipy.stats.spearmanr(series, month.to_series().loc[series.index]).correlation > 0.4
        from qiime2.plugins import sample_classifier
        visualization, = sample_classifier.visualizers.scatterplot(predictions=predictions, truth=month)
        assert str(visualization.type) == "Visualization"


def test_train_from_random_weights(mgm_plugin, ecam_subset_corpus_artifact, ecam_metadata, general_model, tmp_path):
    """ECAM delivery mode grouped by child, the whole 8-layer network trained from random weights: one epoch on 100
    samples."""
    corpus = subset_corpus(ecam_subset_corpus_artifact,
                           ecam_subset_corpus_artifact.view(pd.DataFrame).index[:100])
    model, history = mgm_plugin.actions.train(corpus=corpus, task="classification",
                                              metadata=ecam_metadata.get_column("delivery"),
                                              groups=ecam_metadata.get_column("studyid"), epochs=1)
    assert str(model.type) == "MGMModel[Classifier]"
    assert history.view(pd.DataFrame).index.tolist() == ["1"]
    record, versions = training_record(model, tmp_path)
    assert record["labels"] == ["Cesarean", "Vaginal"] and record["settings"]["freeze_layers"] == 0
    assert record["n_training_samples"] + record["n_validation_samples"] == 100
    assert versions["base_model"] == "random initialisation"
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["n_layer"], config["n_head"], config["n_embd"], config["vocab_size"]) == (8, 8, 256, 9669)
    weights = safetensors.torch.load_file(str(tmp_path / "model.safetensors"))
    name = "transformer.h.0.attn.c_attn.weight"
    assert not torch.allclose(weights[name], general_model[0].state_dict()[name], atol=1e-2)


class TestReproducibility:
    @pytest.fixture(scope="class")
    def small(self, twins_corpus_artifact):
        """Every fourth twins sample (70; 64 labelled), to keep three trainings cheap."""
        return subset_corpus(twins_corpus_artifact, twins_corpus_artifact.view(pd.DataFrame).index[::4])

    def test_same_seed_same_probabilities_other_seed_others(self, mgm_plugin, small, twins_metadata):
        def probabilities(seed):
            model, _ = mgm_plugin.actions.fine_tune(
                corpus=small, metadata=twins_metadata.get_column("bmi_category"), task="classification",
                groups=twins_metadata.get_column("subject"), epochs=1, random_state=seed, **HEAD_ONLY)
            return mgm_plugin.actions.predict_classification(corpus=small, model=model).probabilities \
                .view(pd.DataFrame)
        first, again, other = probabilities(7), probabilities(7), probabilities(8)
        pd.testing.assert_frame_equal(first, again, check_exact=True)
        assert np.abs(first.to_numpy() - other.to_numpy()).max() > 1e-3


class TestSplitCorpus:
    @pytest.mark.parametrize("seed", [0, 3])
    @pytest.mark.parametrize("dataset, column, groups, n_labelled", [
        ("twins", "bmi_category", "subject", 254),
        ("ecam", "delivery", "studyid", 219),
        ("ecam", "month", "studyid", 219),
    ], ids=["twins Lean/Obese by subject", "ECAM delivery by child", "ECAM month by child"])
    def test_no_group_in_both_corpora(self, mgm_plugin, twins_corpus_artifact, ecam_subset_corpus_artifact,
                                      twins_metadata, ecam_metadata, dataset, column, groups, n_labelled, seed):
        corpus, metadata = {"twins": (twins_corpus_artifact, twins_metadata),
                            "ecam": (ecam_subset_corpus_artifact, ecam_metadata)}[dataset]
        training, test = mgm_plugin.actions.split_corpus(corpus=corpus, metadata=metadata.get_column(column),
                                                         groups=metadata.get_column(groups), test_size=0.25,
                                                         random_state=seed)
        assert str(training.type) == str(test.type) == "SampleData[MGMCorpus]"
        training_ids, test_ids = (set(c.view(pd.DataFrame).index) for c in (training, test))
        assert not training_ids & test_ids and len(training_ids | test_ids) == n_labelled
        group = metadata.get_column(groups).to_series()
        assert not set(group[list(training_ids)]) & set(group[list(test_ids)])
        assert 0.12 < len(test_ids) / n_labelled < 0.4
        labels = metadata.get_column(column).to_series()
        if column != "month":  # stratified: both classes on both sides
            assert set(labels[list(training_ids)]) == set(labels[list(test_ids)]) == set(labels.dropna())
        # the sentences travel unchanged
        original = corpus.view(pd.DataFrame)
        pd.testing.assert_frame_equal(test.view(pd.DataFrame), original.loc[test.view(pd.DataFrame).index])

    def test_reports_left_out_samples(self, mgm_plugin, twins_corpus_artifact, twins_metadata, capsys):
        mgm_plugin.actions.split_corpus(corpus=twins_corpus_artifact,
                                        metadata=twins_metadata.get_column("bmi_category"))
        out = capsys.readouterr().out
        assert "left out 24 of 278 samples with no 'bmi_category'" in out
        assert "split 254 samples" in out


def _relabel(metadata, column, change):
    frame = metadata.to_dataframe()
    frame[column] = change(frame)
    return qiime2.Metadata(frame).get_column(column)


class TestLabelErrors:
    def test_one_class(self, mgm_plugin, twins_corpus_artifact, twins_metadata, capsys):
        lean = _relabel(twins_metadata, "bmi_category", lambda f: f.bmi_category.where(f.bmi_category == "Lean"))
        with pytest.raises(TrainingError, match=r"Metadata column 'bmi_category' holds one class, 'Lean', in every "
                                                r"sample used.*at least two classes"):
            mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, metadata=lean, task="classification", epochs=1,
                                         **HEAD_ONLY)
        assert "left out 217 of 278 samples with no 'bmi_category'" in capsys.readouterr().out

    def test_a_class_with_one_sample(self, mgm_plugin, twins_corpus_artifact, twins_metadata):
        full = _relabel(twins_metadata, "bmi_category",
                        lambda f: f.bmi_category.where(f.index != "TS1.2", "Overwt"))
        # the class, its count, the column and the fix, before any work (issue 12: rare classes)
        with pytest.raises(TrainingError, match="Class 'Overwt' of metadata column 'bmi_category' has 1 sample; "
                                                ".*filter-samples"):
            mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, metadata=full, task="classification", epochs=1,
                                         **HEAD_ONLY)

    def test_no_sample_labelled(self, mgm_plugin, twins_corpus_artifact, ecam_metadata):
        # another cohort's metadata: by default (missing_samples 'error') its lack of every sample ID is the error
        with pytest.raises(TrainingError, match="278 of the corpus's 278 samples are not in the metadata: .* and 268 "
                                                "more. .*missing_samples='ignore'"):
            mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, task="classification",
                                         metadata=ecam_metadata.get_column("delivery"),
                                         epochs=1, **HEAD_ONLY)
        with pytest.raises(TrainingError, match="None of the corpus's 278 samples has a value in metadata column "
                                                "'delivery'"):
            mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, task="classification",
                                         metadata=ecam_metadata.get_column("delivery"), missing_samples="ignore",
                                         epochs=1, **HEAD_ONLY)

    def test_regression_needs_a_numeric_column(self, mgm_plugin, twins_corpus_artifact, twins_metadata):
        with pytest.raises(TrainingError, match="task is 'regression' but 'bmi_category' is categorical"):
            mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, task="regression",
                                         metadata=twins_metadata.get_column("bmi_category"), epochs=1, **HEAD_ONLY)

    def test_numeric_class_codes_classify(self, mgm_plugin, twins_corpus_artifact, twins_metadata, tmp_path):
        """A numeric column (time point 1 or 2) learnt as classes: the class names read 1 and 2, not 1.0 and 2.0."""
        model, _ = mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, task="classification",
                                                metadata=twins_metadata.get_column("timepoint"), epochs=1,
                                                **HEAD_ONLY)
        assert str(model.type) == "MGMModel[Classifier]"
        assert training_record(model, tmp_path)[0]["labels"] == ["1", "2"]

    def test_a_corpus_without_abundances_needs_forest_weight_0(self, mgm_plugin, twins_corpus_artifact,
                                                              twins_metadata):
        ranks_only = qiime2.Artifact.import_data("SampleData[MGMCorpus]", dataclasses.replace(
            twins_corpus_artifact.view(Corpus), abundances=None))
        with pytest.raises(TrainingError, match="Tokenize the table again, or set forest_weight to 0"):
            mgm_plugin.actions.fine_tune(corpus=ranks_only, task="classification",
                                         metadata=twins_metadata.get_column("bmi_category"))
        model, _ = mgm_plugin.actions.fine_tune(corpus=ranks_only, task="classification", forest_weight=0.0,
                                                metadata=twins_metadata.get_column("bmi_category"))
        probabilities = mgm_plugin.actions.predict_classification(corpus=ranks_only, model=model).probabilities
        assert np.isfinite(probabilities.view(pd.DataFrame).to_numpy()).all()

    def test_predict_with_another_vocabulary(self, mgm_plugin, twins_corpus_artifact):
        """A classifier over a six-token vocabulary cannot read twins sentences: VocabularyMismatch, no re-mapping."""
        vocabulary = Vocabulary(["<pad>", "<mask>", "<bos>", "<eos>", "g__Bacteroides", "g__Prevotella"])
        config = transformers.GPT2Config(vocab_size=len(vocabulary), n_positions=64, n_embd=16, n_layer=1, n_head=2)
        network = sequence_model("classification", 2, config=config)
        trained = TrainedModel(network, "classification", ["a", "b"], 0.0, 1.0,
                               pd.DataFrame({"train_loss": [1.0]}, index=pd.Index(["1"], name="epoch")), 10, 2)
        directory = MGMSupervisedModelDirFmt()
        save_trained_model(trained, vocabulary, directory.path)
        small = qiime2.Artifact.import_data("MGMModel[Classifier]", directory)
        with pytest.raises(VocabularyMismatch, match="different vocabularies"):
            mgm_plugin.actions.predict_classification(corpus=twins_corpus_artifact, model=small)


class TestDecisionRule:
    """The class a sample is called: a threshold on P(Obese) chosen on the validation share to maximise balanced
    accuracy (core.training.decision), stored in training.json and applied by predict-classification."""

    def test_chosen_on_the_validation_share_and_stored(self, classifier, tmp_path):
        record, _ = training_record(classifier.trained_model, tmp_path)
        decision = record["decision"]
        assert decision["rule"] == "threshold" and decision["positive_class"] == "Obese"
        assert 0 < decision["threshold"] < 1 and -1 <= decision["prior_exponent"] <= 3
        assert decision["validation_samples"] == record["n_validation_samples"]
        # the alpha nearest 1 within one standard error of the best balanced accuracy on the validation share
        best, error = decision["validation_balanced_accuracy_best"], decision["validation_standard_error"]
        assert best - error - 1e-9 <= decision["validation_balanced_accuracy"] <= best
        # the training share of each class, from which the prior correction is made
        shares = decision["class_shares"]  # of the 254 samples the model is refit on: 61 Lean, 193 Obese
        assert shares == pytest.approx({"Lean": 61 / 254, "Obese": 193 / 254})

    def test_predictions_apply_it_and_probabilities_are_untouched(self, classifier, classifier_predictions,
                                                                  tmp_path):
        threshold = training_record(classifier.trained_model, tmp_path)[0]["decision"]["threshold"]
        predictions = classifier_predictions.predictions.view(pd.Series)
        probabilities = classifier_predictions.probabilities.view(pd.DataFrame)
        called = np.where(probabilities["Obese"] >= threshold, "Obese", "Lean")
        assert (predictions.to_numpy() == called).all()
        assert np.allclose(probabilities.sum(axis=1), 1)

    def test_a_model_without_one_calls_the_most_probable_class(self, mgm_plugin, classifier,
                                                               labelled_twins_corpus, classifier_predictions,
                                                               tmp_path):
        """A model made before q2-mgm chose a rule has no `decision` in training.json."""
        classifier.trained_model.save(str(tmp_path / "model.qza"))
        record = json.loads((export(classifier.trained_model, tmp_path / "model") / TRAINING_RECORD_FILE).read_text())
        record.pop("decision")
        older = qiime2.Artifact.load(str(rewrite_qza(tmp_path / "model.qza", tmp_path / "older.qza",
                                                     {TRAINING_RECORD_FILE: json.dumps(record).encode()})))
        predictions, probabilities = mgm_plugin.actions.predict_classification(corpus=labelled_twins_corpus,
                                                                               model=older)
        probabilities = probabilities.view(pd.DataFrame)
        pd.testing.assert_frame_equal(probabilities, classifier_predictions.probabilities.view(pd.DataFrame))
        assert (predictions.view(pd.Series) == probabilities.idxmax(axis=1)).all()

    def test_every_class_of_three_gets_a_weight(self, mgm_plugin, ecam_subset_corpus_artifact, ecam_metadata,
                                                tmp_path):
        """ECAM's diet in three classes (eb, fd, bd; bd the rarest): one weight per class, the prior correction of
        the training shares."""
        model, _ = mgm_plugin.actions.fine_tune(corpus=ecam_subset_corpus_artifact, task="classification",
                                                metadata=ecam_metadata.get_column("diet_3"),
                                                groups=ecam_metadata.get_column("studyid"), forest_trees=50)
        record, _ = training_record(model, tmp_path)
        decision = record["decision"]
        assert decision["rule"] == "class weights"
        weights, shares = decision["class_weights"], decision["class_shares"]
        assert set(weights) == set(shares) == {"bd", "eb", "fd"}
        alpha = decision["prior_exponent"]
        expected = {c: shares[c] ** -alpha for c in shares}
        scale = np.exp(np.mean(np.log(list(expected.values()))))
        assert weights == pytest.approx({c: v / scale for c, v in expected.items()})


def _edit_training_json(change):
    def edit(directory):
        path = directory / "training.json"
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    return edit


SUPERVISED_TAMPERINGS = {
    "training.json missing": (lambda d: (d / TRAINING_RECORD_FILE).unlink(), ["training.json"]),
    "three labels, two outputs": (_edit_training_json(lambda r: r["labels"].append("Overwt")),
                                  ["3 classes", "2 outputs"]),
    "one label, two outputs": (_edit_training_json(lambda r: r["labels"].pop()), ["1 classes", "2 outputs"]),
    "no labels key": (_edit_training_json(lambda r: r.pop("labels")), ["training.json", "'labels'"]),
    "no task key": (_edit_training_json(lambda r: r.pop("task")), ["training.json", "'task'"]),
    "training.json not JSON": (lambda d: (d / TRAINING_RECORD_FILE).write_text("{labels"), ["json"]),
    "threshold out of range": (_edit_training_json(lambda r: r["decision"].update(threshold=1.5)),
                               ["decision rule", "threshold in (0, 1)"]),
    "threshold on another class": (_edit_training_json(lambda r: r["decision"].update(positive_class="Overwt")),
                                   ["decision rule", "Lean, Obese"]),
    "unknown rule": (_edit_training_json(lambda r: r["decision"].update(rule="vote")), ["decision rule"]),
}


class TestTamperedSupervisedModel:
    @pytest.mark.parametrize("name", list(SUPERVISED_TAMPERINGS))
    def test_fails_validation(self, classifier, tmp_path, name):
        tamper, words = SUPERVISED_TAMPERINGS[name]
        directory = export(classifier.trained_model, tmp_path / "model")
        tamper(directory)
        assert_refused(MGMSupervisedModelDirFmt, "MGMModel[Classifier]", directory, words)

    def test_a_tampered_qza_is_refused_before_predicting(self, mgm_plugin, classifier, twins_corpus_artifact,
                                                         tmp_path):
        classifier.trained_model.save(str(tmp_path / "model.qza"))
        directory = export(classifier.trained_model, tmp_path / "model")
        record = json.loads((directory / TRAINING_RECORD_FILE).read_text())
        record["labels"] = ["Lean", "Obese", "Overwt"]
        tampered = rewrite_qza(tmp_path / "model.qza", tmp_path / "tampered.qza",
                               {TRAINING_RECORD_FILE: json.dumps(record).encode()})
        artifact = qiime2.Artifact.load(str(tampered))
        with pytest.raises(ValidationError, match="3 classes but the model has 2 outputs"):
            artifact.validate(level="min")
        with pytest.raises((ValidationError, ValueError), match="3 classes but the model has 2 outputs"):
            mgm_plugin.actions.predict_classification(corpus=twins_corpus_artifact, model=artifact)

    @pytest.mark.parametrize("change, words", [
        (lambda forest: forest.update(genera=forest["genera"][:-1]), "forest genera but the forest reads"),
        (lambda forest: forest.update(weight=1.5), "forest weight must be in"),
    ], ids=["genera", "weight"])
    def test_a_forest_that_does_not_fit_training_json_is_refused(self, classifier, tmp_path, change, words):
        """The format's validation and the loader share one check of the forest against training.json."""
        classifier.trained_model.save(str(tmp_path / "model.qza"))
        record = json.loads((export(classifier.trained_model, tmp_path / "model") / TRAINING_RECORD_FILE).read_text())
        change(record["forest"])
        tampered = rewrite_qza(tmp_path / "model.qza", tmp_path / "tampered.qza",
                               {TRAINING_RECORD_FILE: json.dumps(record).encode()})
        with pytest.raises(ValidationError, match=words):
            qiime2.Artifact.load(str(tampered)).validate(level="min")
        with pytest.raises(ModelFormatError, match=words):
            load_blended_forest(tmp_path / "model", record)


class TestClassifySamples:
    def test_outputs(self, twins_classify_samples, tmp_path):
        model, history, predictions, probabilities, evaluation = twins_classify_samples
        assert [str(a.type) for a in twins_classify_samples] == [
            "MGMModel[Classifier]", "MGMTrainingHistory", "SampleData[ClassifierPredictions]",
            "SampleData[Probabilities]", "Visualization"]
        assert history.view(pd.DataFrame).index.tolist() == ["1"]
        record, _ = training_record(model, tmp_path)
        test_ids = predictions.view(pd.Series).index
        assert probabilities.view(pd.DataFrame).index.equals(test_ids)
        # the model learnt from the training corpus, the predictions are of the test corpus
        assert record["n_training_samples"] + len(test_ids) == 254
        assert 0.1 < len(test_ids) / 254 < 0.3

    def test_evaluation(self, twins_classify_samples, twins_metadata, tmp_path):
        directory = export(twins_classify_samples.evaluation, tmp_path / "evaluation")
        assert {"index.html", "roc_pr.png", "confusion_matrix.png", "summary.tsv",
                "predictions.tsv", "per_class_metrics.tsv", "confusion_matrix.tsv", "training_history.tsv"} <= \
            {p.name for p in directory.iterdir()}
        summary = pd.read_csv(directory / "summary.tsv", sep="\t", index_col=0)
        assert summary.index.tolist() == ["MGM", "RandomForest"]
        assert summary["ROC AUC"].between(0, 1).all() and summary["accuracy"].between(0, 1).all()
        n_test = len(twins_classify_samples.predictions.view(pd.Series))
        assert (summary["test samples"] == n_test).all()
        # the evaluation's ROC AUC is the AUC of the pipeline's own probabilities
        from sklearn.metrics import roc_auc_score
        probabilities = twins_classify_samples.probabilities.view(pd.DataFrame)
        truth = twins_metadata.get_column("bmi_category").to_series().loc[probabilities.index]
        assert summary.at["MGM", "ROC AUC"] == pytest.approx(roc_auc_score(truth == "Obese", probabilities["Obese"]))
        confusion = pd.read_csv(directory / "confusion_matrix.tsv", sep="\t", index_col=0)
        assert confusion.to_numpy().sum() == n_test
        # accuracy, balanced accuracy and the confusion matrix are those of the classes the model calls
        called = twins_classify_samples.predictions.view(pd.Series)
        table = pd.read_csv(directory / "predictions.tsv", sep="\t", index_col=0)
        assert (table.loc[called.index, "MGM_prediction"] == called).all()
        from sklearn.metrics import balanced_accuracy_score
        assert summary.at["MGM", "balanced accuracy"] == pytest.approx(balanced_accuracy_score(truth, called))
        assert summary.at["MGM", "accuracy"] == pytest.approx((truth == called).mean())
        assert "decision rule" in (directory / "index.html").read_text()


def test_regress_samples(ecam_regress_samples, tmp_path):
    model, history, predictions, evaluation = ecam_regress_samples
    assert [str(a.type) for a in ecam_regress_samples] == [
        "MGMModel[Regressor]", "MGMTrainingHistory", "SampleData[RegressorPredictions]", "Visualization"]
    directory = export(evaluation, tmp_path / "evaluation")
    assert {"index.html", "scatter.png", "summary.tsv", "predictions.tsv"} <= \
        {p.name for p in directory.iterdir()}
    summary = pd.read_csv(directory / "summary.tsv", sep="\t", index_col=0)
    assert summary.index.tolist() == ["MGM", "RandomForest"]
    assert {"MAE", "R2"} <= set(summary.columns)
    assert (summary.MAE > 0).all() and (summary.MAE < 15).all()  # months; ages span 0-28
    assert np.isfinite(summary.R2).all() and (summary.R2 <= 1).all()
    assert (summary["test samples"] == len(predictions.view(pd.Series))).all()


def test_batches_validate_three_classes_one_against_the_rest_and_name_a_batch_lacking_one(
        mgm_plugin, tiny_model, twins_corpus_artifact):
    """fine-tune with batches gave no validation at all for more than two classes (a new user's trial). On the
    twins' three BMI classes with the time point as batch: each held-out batch holding every class is scored by
    one-class-against-the-rest ROC AUC, averaged; where batch 2 lacks Overwt, it is named as not scored (and batch
    1, whose holding out leaves Overwt untrained, as not validated)."""
    frame = read_metadata("twins")
    frame["timepoint"] = frame["timepoint"].astype(str)
    metadata = qiime2.Metadata(frame[["bmi_category", "timepoint"]])
    _, history = mgm_plugin.actions.fine_tune(corpus=twins_corpus_artifact, model=tiny_model,
                                              metadata=metadata.get_column("bmi_category"), task="classification",
                                              batches=metadata.get_column("timepoint"), epochs=1, device="cpu")
    scores = history.view(pd.DataFrame).iloc[-1]
    per_batch = [f"validation_auc ({t} held out)" for t in ("1", "2")]
    assert 0 <= scores["validation_auc"] <= 1 and scores[per_batch].notna().all()
    assert scores["validation_auc"] == pytest.approx(scores[per_batch].mean())
    fewer = frame[~((frame["timepoint"] == "2") & (frame["bmi_category"] == "Overwt"))]
    metadata = qiime2.Metadata(fewer[["bmi_category", "timepoint"]])
    corpus = subset_corpus(twins_corpus_artifact, fewer.index)
    _, history = mgm_plugin.actions.fine_tune(corpus=corpus, model=tiny_model,
                                              metadata=metadata.get_column("bmi_category"), task="classification",
                                              batches=metadata.get_column("timepoint"), epochs=1, device="cpu")
    columns = set(history.view(pd.DataFrame).columns)
    assert {"validation_auc (1 not validated)", "validation_auc (2 not scored: lacks Overwt)"} <= columns
