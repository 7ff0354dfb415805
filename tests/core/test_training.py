"""Supervised training in plain Python, on real data: label encoding and its errors, group-aware validation splits
(twins subjects, ECAM children), freezing, the sequence model built on the general model, and the training loop on
a tiny GPT-2 (2 layers x 2 heads x 32 wide): history, best epoch kept, de-standardised regression, save and load,
seeds, and validation folds that miss a class. q2-mgm's default recipe on the general model: the frozen encoder's
exactly fit head and the RandomForest blended in."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
import transformers
from sklearn.metrics import mean_absolute_error, roc_auc_score

from q2_mgm.core.inference import encode, sample_embeddings
from q2_mgm.core.schemas import TRAINING_RECORD_FILE
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.training import (TrainingError, TrainingSettings, load_trained_model, predict, save_trained_model,
                                  sequence_model, train_sequence_model, validation_split)
from q2_mgm.core.training.head import linear_head
from q2_mgm.core.training.networks import freeze
from q2_mgm.core.training.splits import check_class_sizes
from q2_mgm.core.training.targets import encode_targets
from q2_mgm.core.training.trained import network_outputs
from q2_mgm.core.vocab import mgm_vocabulary

from ..helpers import read_metadata

# a sklearn warning whenever a class has fewer members than folds: expected for the deliberately rare classes below
pytestmark = [pytest.mark.filterwarnings("ignore:The least populated class in y:UserWarning"),
              pytest.mark.one_torch_thread]


def tiny_config():
    return transformers.GPT2Config(vocab_size=len(mgm_vocabulary()), n_positions=64, n_embd=32, n_layer=2,
                                   n_head=2)


def tiny_settings(**changes):
    """Upstream's recipe (every layer trained, no forest) on a small budget."""
    return TrainingSettings(**{"epochs": 1, "learning_rate": 3e-3, "batch_size": 64, "freeze_layers": 0,
                               "forest_weight": 0.0, **changes})


def state_of(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.fixture(scope="module")
def twins(twins_counts):
    """Lean vs Obese (254 samples; Overwt left out): token ids, labels, subjects, and every sample's metadata."""
    metadata = read_metadata("twins").reindex(twins_counts.index)
    sentences = tokenize_dataframe(twins_counts).samples.sentence
    labelled = metadata.index[metadata.bmi_category.isin(["Lean", "Obese"])]
    return {"ids": encode(sentences.loc[labelled], mgm_vocabulary()), "labels": metadata.bmi_category[labelled],
            "groups": metadata.subject[labelled].to_numpy(), "metadata": metadata, "sentences": sentences}


@pytest.fixture(scope="module")
def ecam(ecam_counts):
    """Every fourth ECAM sample (219, 42 children): token ids, delivery, month, child."""
    subset = ecam_counts.iloc[::4]
    metadata = read_metadata("ecam").reindex(subset.index)
    return {"ids": encode(tokenize_dataframe(subset).samples.sentence.loc[subset.index], mgm_vocabulary()),
            "delivery": metadata.delivery, "month": metadata.month.astype(float),
            "groups": metadata.studyid.to_numpy()}


class TestEncodeTargets:
    def test_classes_in_sorted_order(self, twins):
        encoded, labels, mean, std = encode_targets(twins["labels"], "classification")
        assert labels == ["Lean", "Obese"]
        assert (mean, std) == (0.0, 1.0)
        np.testing.assert_array_equal(encoded, (twins["labels"] == "Obese").astype(int).to_numpy())
        assert np.bincount(encoded).tolist() == [61, 193]  # data/twins/README.md

    def test_regression_is_standardised(self, ecam):
        encoded, labels, mean, std = encode_targets(ecam["month"], "regression")
        assert labels == []
        assert mean == pytest.approx(ecam["month"].mean()) and std == pytest.approx(ecam["month"].std(ddof=0))
        assert encoded.mean() == pytest.approx(0.0, abs=1e-9) and encoded.std() == pytest.approx(1.0)

    def test_a_constant_number_keeps_unit_scale(self):
        encoded, _, mean, std = encode_targets(pd.Series([3.0, 3.0, 3.0]), "regression")
        assert (mean, std) == (3.0, 1.0) and np.isfinite(encoded).all()

    def test_one_class_is_an_error(self, twins):
        lean = twins["labels"][twins["labels"] == "Lean"]
        with pytest.raises(TrainingError, match=r"single class \('Lean'\).*at least two"):
            encode_targets(lean, "classification")
        assert issubclass(TrainingError, ValueError)

    def test_a_class_with_one_sample_is_an_error(self, twins):
        labels = twins["labels"].copy()
        labels.iloc[0] = "Overwt"
        with pytest.raises(TrainingError, match="Class 'Overwt' has a single sample"):
            encode_targets(labels, "classification")


SPLITS = {
    "twins Lean/Obese by subject": ("twins", "labels", "classification"),
    "ECAM delivery by child": ("ecam", "delivery", "classification"),
    "ECAM month by child": ("ecam", "month", "regression"),
}


class TestValidationSplit:
    @pytest.fixture
    def case(self, request, twins, ecam):
        dataset, column, task = SPLITS[request.param]
        data = {"twins": twins, "ecam": ecam}[dataset]
        targets = data[column].to_numpy() if task == "regression" else \
            encode_targets(data[column], task)[0]
        return targets, data["groups"], task

    @pytest.mark.parametrize("case", list(SPLITS), indirect=True)
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_no_group_on_both_sides(self, case, seed):
        targets, groups, task = case
        train, validation = validation_split(targets, groups, 0.2, task, seed)
        assert len(np.intersect1d(train, validation)) == 0
        assert sorted(np.concatenate([train, validation]).tolist()) == list(range(len(targets)))
        shared = set(groups[train]) & set(groups[validation])
        assert not shared, f"groups on both sides: {sorted(shared)[:5]}"
        assert 0.08 <= len(validation) / len(targets) <= 0.4
        if task == "classification":  # stratified: every class on both sides
            assert set(targets[train]) == set(targets[validation]) == set(targets)

    def test_the_smallest_fraction_the_actions_take_splits_a_small_cohort_of_mixed_groups(self, twins):
        """validation_fraction 0.05 (fine-tuning's lower end) asked StratifiedGroupKFold for 20 folds, which it
        refuses where every class has fewer samples (a small cohort whose groups, sites or runs, mix the classes);
        the folds are capped so the split is made."""
        every = encode_targets(twins["labels"], "classification")[0]
        targets = every[np.sort(np.concatenate([np.flatnonzero(every == c)[:18] for c in (0, 1)]))]
        groups = np.repeat(np.arange(12), 3).astype(str)  # 18 of each class in 12 groups of 3: mixed classes
        assert pd.Series(targets).groupby(groups).nunique().max() == 2
        train, validation = validation_split(targets, groups, 0.05, "classification", 0)
        assert len(validation) and not set(groups[train]) & set(groups[validation])
        assert set(targets[train]) == set(targets)  # every class trains

    @pytest.mark.parametrize("seed", range(6))
    def test_groups_of_one_class_are_balanced(self, ecam, seed):
        """ECAM: each child has one delivery mode; validation holds children of both modes in proportion."""
        targets = encode_targets(ecam["delivery"], "classification")[0]
        _, validation = validation_split(targets, ecam["groups"], 0.2, "classification", seed)
        children = pd.Series(targets, index=ecam["groups"]).groupby(level=0).first()
        held_out = children[np.unique(ecam["groups"][validation])]
        expected = 0.2 * children.value_counts(normalize=True) * len(children)
        assert (abs(held_out.value_counts() - expected.reindex(held_out.value_counts().index)) <= 1).all()

    @pytest.mark.parametrize("case", list(SPLITS), indirect=True)
    def test_seeded(self, case):
        targets, groups, task = case
        first, again, other = (validation_split(targets, groups, 0.2, task, seed)[1] for seed in (0, 0, 1))
        np.testing.assert_array_equal(first, again)
        assert set(first) != set(other)

    def test_without_groups_stratified_by_class(self, twins):
        targets = encode_targets(twins["labels"], "classification")[0]
        train, validation = validation_split(targets, None, 0.2, "classification", 0)
        assert len(validation) == round(0.2 * len(targets)) or len(validation) == int(np.ceil(0.2 * len(targets)))
        assert abs(targets[validation].mean() - targets.mean()) < 2 / len(validation)
        # the same samples' two time points may sit on both sides here: that is what groups are for
        assert set(twins["groups"][train]) & set(twins["groups"][validation])


class TestModel:
    def test_freeze(self):
        model = sequence_model("classification", 2, config=tiny_config())
        freeze(model, 1)
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        assert trainable and all(name.startswith(("transformer.h.1.", "transformer.ln_f.", "score."))
                                 for name in trainable)
        freeze(model, 2)  # every layer: ln_f too, only the head trains
        assert {name for name, p in model.named_parameters() if p.requires_grad} == {"score.weight"}
        deeper = sequence_model("classification", 2, config=tiny_config())
        freeze(deeper, 8)  # more layers than the model has: the whole encoder, so the default suits small models
        assert {name for name, p in deeper.named_parameters() if p.requires_grad} == {"score.weight"}

    def test_starts_from_the_general_model(self, general_model):
        backbone, _, _ = general_model
        model = sequence_model("classification", 3, backbone=backbone)
        assert model.config.num_labels == 3 and model.config.pad_token_id == 0
        assert model.config.problem_type == "single_label_classification"
        assert tuple(model.score.weight.shape) == (3, 256)
        pretrained = backbone.transformer.state_dict()
        for name, tensor in model.transformer.state_dict().items():
            torch.testing.assert_close(tensor, pretrained[name], rtol=0, atol=0, msg=name)
        assert backbone.config.architectures == ["GPT2LMHeadModel"]  # the backbone's own config is left alone
        regressor = sequence_model("regression", 1, backbone=backbone)
        assert regressor.config.num_labels == 1 and regressor.config.problem_type == "regression"

    def test_random_initialisation_is_seeded(self):
        first, again, other = (state_of(sequence_model("regression", 1, config=tiny_config(), random_state=seed))
                               for seed in (5, 5, 6))
        assert all(torch.equal(first[name], again[name]) for name in first)
        assert not torch.equal(first["transformer.h.0.attn.c_attn.weight"], other["transformer.h.0.attn.c_attn.weight"])


@pytest.fixture(scope="module")
def tiny_classifier(twins):
    settings = tiny_settings(epochs=3)
    model = sequence_model("classification", 2, config=tiny_config(), random_state=settings.random_state)
    messages = []
    trained = train_sequence_model(model, twins["ids"], twins["labels"], "classification", settings,
                                   groups=twins["groups"], report=messages.append)
    return trained, settings, messages


class TestTrainClassifier:
    def test_history_and_counts(self, tiny_classifier):
        trained, _, messages = tiny_classifier
        assert trained.task == "classification" and trained.labels == ["Lean", "Obese"]
        assert trained.n_training + trained.n_validation == 254
        assert trained.history.index.tolist() == ["1", "2", "3"] and trained.history.index.name == "epoch"
        assert set(trained.history.columns) == {"train_loss", "validation_loss", "validation_auc",
                                                "validation_accuracy"}
        assert np.isfinite(trained.history.to_numpy()).all()
        assert trained.history.validation_auc.between(0, 1).all()
        assert messages[0].startswith(f"training on {trained.n_training} samples, validating on "
                                      f"{trained.n_validation}")
        assert sum(m.startswith("epoch ") for m in messages) == 3
        assert not trained.model.training

    def test_the_best_epoch_is_kept(self, tiny_classifier, twins):
        """The returned weights are the epoch with the best validation AUC, as load_best_model_at_end promises."""
        trained, settings, _ = tiny_classifier
        targets = encode_targets(twins["labels"], "classification")[0]
        _, validation = validation_split(targets, twins["groups"], settings.validation_fraction, "classification",
                                         settings.random_state)
        assert len(validation) == trained.n_validation
        probabilities = predict(trained, [twins["ids"][i] for i in validation])
        assert probabilities.shape == (len(validation), 2)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        auc = roc_auc_score(targets[validation], probabilities[:, 1])
        assert auc == pytest.approx(trained.history.validation_auc.max(), abs=1e-6)

    def test_save_and_load(self, tiny_classifier, twins, tmp_path):
        trained, settings, _ = tiny_classifier
        save_trained_model(trained, mgm_vocabulary(), tmp_path, settings, label_column="bmi_category")
        record = json.loads((tmp_path / TRAINING_RECORD_FILE).read_text())
        assert record["labels"] == ["Lean", "Obese"] and record["task"] == "classification"
        assert record["n_training_samples"] == trained.n_training
        assert record["settings"]["epochs"] == 3 and record["settings"]["random_state"] == 0
        assert record["history"]["epoch"] == ["1", "2", "3"]
        assert json.loads((tmp_path / "versions.json").read_text())["label_column"] == "bmi_category"
        loaded, vocabulary, versions = load_trained_model(tmp_path)
        assert vocabulary == mgm_vocabulary() and versions["transformers"] == transformers.__version__
        assert (loaded.labels, loaded.task, loaded.n_training, loaded.n_validation) == \
            (trained.labels, trained.task, trained.n_training, trained.n_validation)
        pd.testing.assert_frame_equal(loaded.history, trained.history, check_index_type=False)
        sample = twins["ids"][:40]
        np.testing.assert_allclose(predict(loaded, sample), predict(trained, sample), rtol=1e-6, atol=1e-7)

    def test_same_seed_same_model(self, twins):
        def weights(seed):  # every other sample, to keep three trainings cheap
            settings = tiny_settings(random_state=seed)
            model = sequence_model("classification", 2, config=tiny_config(), random_state=seed)
            trained = train_sequence_model(model, twins["ids"][::2], twins["labels"][::2], "classification",
                                           settings, groups=twins["groups"][::2], report=lambda message: None)
            return state_of(trained.model)
        first, again, other = weights(0), weights(0), weights(1)
        assert all(torch.equal(first[name], again[name]) for name in first)
        assert not torch.equal(first["score.weight"], other["score.weight"])


def test_regression_predicts_in_the_targets_units(ecam):
    settings = tiny_settings(epochs=2)
    model = sequence_model("regression", 1, config=tiny_config(), random_state=0)
    trained = train_sequence_model(model, ecam["ids"], ecam["month"], "regression", settings,
                                   groups=ecam["groups"], report=lambda message: None)
    assert trained.labels == [] and trained.task == "regression"
    assert trained.target_mean == pytest.approx(ecam["month"].mean())
    assert trained.target_std == pytest.approx(ecam["month"].std(ddof=0))
    assert {"validation_loss", "validation_mae", "validation_r2"} <= set(trained.history.columns)
    # the kept epoch (lowest validation loss) reports its MAE in months: predict() must give the same number
    _, validation = validation_split(ecam["month"].to_numpy(), ecam["groups"], settings.validation_fraction,
                                     "regression", settings.random_state)
    predicted = predict(trained, [ecam["ids"][i] for i in validation])
    assert predicted.shape == (len(validation),)
    best = trained.history.validation_loss.idxmin()
    assert mean_absolute_error(ecam["month"].to_numpy()[validation], predicted) == \
        pytest.approx(trained.history.at[best, "validation_mae"], rel=1e-4)


def _rare_lean_subject(twins, classes):
    """Real twins samples: every sample of `classes`, plus the two Lean samples of one subject (one group)."""
    metadata = twins["metadata"]
    lean = metadata[metadata.bmi_category == "Lean"]
    subject = lean.subject.value_counts().index[0]
    keep = metadata.index[metadata.bmi_category.isin(classes) |
                          ((metadata.subject == subject) & (metadata.bmi_category == "Lean"))]
    ids = encode(twins["sentences"].loc[keep], mgm_vocabulary())
    encoded, names, _, _ = encode_targets(metadata.bmi_category[keep], "classification")
    assert names.index("Lean") == 0 and (encoded == 0).sum() == 2
    return ids, metadata.bmi_category[keep], metadata.subject[keep].to_numpy(), encoded


def _seed_where(encoded, groups, lean_validates):
    """The first seed whose 20% validation split holds the Lean subject (or does not)."""
    for seed in range(50):
        validation = validation_split(encoded, groups, 0.2, "classification", seed)[1]
        if (0 in encoded[validation]) == lean_validates:
            return seed
    pytest.fail(f"no seed in 0-49 puts the Lean subject {'in' if lean_validates else 'out of'} validation")


@pytest.mark.parametrize("classes", [("Obese",), ("Obese", "Overwt")], ids=["2 classes", "3 classes"])
def test_a_validation_fold_without_a_class_still_trains(twins, classes):
    """A grouped split can leave a rare class out of validation; training goes on, keeping the best loss, instead
    of failing on an AUC that cannot be computed."""
    ids, labels, groups, encoded = _rare_lean_subject(twins, classes)
    settings = tiny_settings(random_state=_seed_where(encoded, groups, lean_validates=False))
    model = sequence_model("classification", len(classes) + 1, config=tiny_config())
    trained = train_sequence_model(model, ids, labels, "classification", settings, groups=groups,
                                   report=lambda message: None)
    assert "validation_auc" not in trained.history.columns
    assert {"validation_loss", "validation_accuracy"} <= set(trained.history.columns)
    assert trained.labels == ["Lean", *classes]


def test_a_split_that_leaves_a_class_untrained_is_an_error(twins):
    ids, labels, groups, encoded = _rare_lean_subject(twins, ("Obese",))
    settings = tiny_settings(random_state=_seed_where(encoded, groups, lean_validates=True))
    model = sequence_model("classification", 2, config=tiny_config())
    with pytest.raises(TrainingError, match="left class .* without training samples.*lower validation_fraction"):
        train_sequence_model(model, ids, labels, "classification", settings, groups=groups)


@pytest.fixture(scope="module")
def twins_corpus(twins_counts, twins):
    corpus = tokenize_dataframe(twins_counts)
    labelled = twins["labels"].index
    return corpus, corpus.abundance_table(labelled)


@pytest.fixture(scope="module")
def blended(general_model, twins, twins_corpus):
    """q2-mgm's default recipe on the real twins: the general model frozen, its head fit exactly, and a forest."""
    backbone, _, _ = general_model
    settings = TrainingSettings(freeze_layers=8, forest_weight=0.7, forest_trees=50)
    messages = []
    trained = train_sequence_model(sequence_model("classification", 2, backbone=backbone), twins["ids"],
                                   twins["labels"], "classification", settings, groups=twins["groups"],
                                   report=messages.append, abundances=twins_corpus[1])
    return trained, settings, messages


class TestFrozenEncoderAndForest:
    def test_the_head_is_the_exact_logistic_regression(self, blended, twins, general_model):
        """The folded score layer (bias included) reproduces the scikit-learn head on the last-token features."""
        trained, settings, messages = blended
        features = sample_embeddings(general_model[0], twins["ids"], "last")
        targets = encode_targets(twins["labels"], "classification")[0]
        head = linear_head("classification", settings).fit(features, targets)
        network = network_outputs(trained.model, "classification", twins["ids"])
        np.testing.assert_allclose(network, head.predict_proba(features), atol=1e-5)
        assert trained.model.score.bias is not None and trained.model.config.score_bias
        assert trained.history.index.tolist() == ["1"]
        assert {"train_loss", "validation_loss", "validation_auc"} <= set(trained.history.columns)
        assert trained.n_training == 254 and trained.n_validation > 0  # refit on every sample after validating
        assert messages[0].startswith("encoder frozen")

    def test_predictions_blend_network_and_forest(self, blended, twins, twins_corpus):
        trained, _, _ = blended
        abundances = twins_corpus[1]
        network = network_outputs(trained.model, "classification", twins["ids"])
        forest = trained.forest.predict(abundances.reindex(columns=trained.forest_genera, fill_value=0.0)
                                        .to_numpy())
        blend = predict(trained, twins["ids"], abundances=abundances)
        np.testing.assert_allclose(blend, 0.3 * network + 0.7 * forest, atol=1e-12)
        np.testing.assert_allclose(blend.sum(axis=1), 1.0)
        assert set(trained.validation) == {"network", "forest", "blend"}
        assert all(0 <= scores["auc"] <= 1 for scores in trained.validation.values())

    def test_save_and_load_keeps_the_forest(self, blended, twins, twins_corpus, tmp_path):
        trained, settings, _ = blended
        save_trained_model(trained, mgm_vocabulary(), tmp_path, settings)
        assert {"forest.safetensors", "forest.json"} <= {p.name for p in tmp_path.iterdir()}
        record = json.loads((tmp_path / TRAINING_RECORD_FILE).read_text())
        assert record["forest"]["weight"] == 0.7 and record["forest"]["genera"] == trained.forest_genera
        loaded = load_trained_model(tmp_path)[0]
        np.testing.assert_allclose(predict(loaded, twins["ids"], abundances=twins_corpus[1]),
                                   predict(trained, twins["ids"], abundances=twins_corpus[1]), atol=1e-6)

    def test_a_forest_needs_abundances(self, blended, twins):
        with pytest.raises(TrainingError, match="holds none"):
            predict(blended[0], twins["ids"])
        with pytest.raises(TrainingError, match="forest_weight needs the genus abundances"):
            train_sequence_model(sequence_model("classification", 2, config=tiny_config()), twins["ids"],
                                 twins["labels"], "classification", TrainingSettings(forest_weight=0.5))

    def test_regression_head_and_forest_in_the_targets_units(self, general_model, ecam_counts, ecam):
        corpus = tokenize_dataframe(ecam_counts.iloc[::4])
        settings = TrainingSettings(freeze_layers=8, forest_weight=0.5, forest_trees=30)
        model = sequence_model("regression", 1, backbone=general_model[0])
        trained = train_sequence_model(model, ecam["ids"], ecam["month"], "regression", settings,
                                       groups=ecam["groups"], report=lambda message: None,
                                       abundances=corpus.abundance_table(ecam["month"].index))
        predicted = predict(trained, ecam["ids"], abundances=corpus.abundance_table(ecam["month"].index))
        assert predicted.shape == (len(ecam["ids"]),)
        assert mean_absolute_error(ecam["month"], predicted) < ecam["month"].std()  # it learnt something
        assert {"mae", "r2"} == set(trained.validation["blend"])


class TestRareClasses:
    """A class with too few samples for the splits it crosses fails before any work; a split holds out every class
    it can (issue 12: rare classes)."""

    def test_every_class_with_enough_samples_passes(self, twins, ecam):
        check_class_sizes(twins["labels"], ("training", "validation", "test"), "bmi_category")
        check_class_sizes(ecam["delivery"], ("training", "validation"), "delivery", ecam["groups"])

    def test_a_class_of_one_child_counts_groups_not_samples(self, ecam):
        labels = ecam["delivery"].copy()
        child = ecam["groups"][0]
        labels[ecam["groups"] == child] = "Emergency"  # one child's many samples are one group
        assert (labels == "Emergency").sum() > 2
        with pytest.raises(TrainingError, match="Class 'Emergency' of metadata column 'delivery' has 1 group; each "
                                                 "class needs at least 2, one for each of training, validation"):
            check_class_sizes(labels, ("training", "validation"), "delivery", ecam["groups"])

    def test_the_error_counts_the_other_rare_classes(self, twins):
        labels = twins["labels"].copy()
        labels.iloc[:2] = ["A", "B"]
        with pytest.raises(TrainingError,
                           match="has 1 sample; .* \\(1 more classes are as rare\\)\\. .*filter-samples"):
            check_class_sizes(labels, ("training", "test"), "bmi_category")

    @pytest.mark.parametrize("seed", range(5))
    def test_a_rare_class_is_held_out(self, twins, seed):
        """Three samples of a third class among 254: the held-out share holds one, whatever the seed."""
        labels = twins["labels"].to_numpy().copy()
        labels[[0, 100, 200]] = "Overwt"
        train, held = validation_split(labels, None, 0.2, "classification", seed)
        assert sorted(set(labels[held])) == ["Lean", "Obese", "Overwt"]
        assert len(set(train) | set(held)) == len(labels) and not set(train) & set(held)
        assert (labels[train] == "Overwt").sum() == 2

    def test_a_rare_class_of_groups_is_held_out_by_whole_groups(self, twins):
        labels, groups = twins["labels"].to_numpy().copy(), twins["groups"]
        rare = [g for g in pd.unique(groups) if (groups == g).sum() == 2][:3]  # three subjects, two samples each
        labels[np.isin(groups, rare)] = "Overwt"
        train, held = validation_split(labels, groups, 0.2, "classification", 0)
        assert "Overwt" in set(labels[held]) and "Overwt" in set(labels[train])
        assert not set(groups[train]) & set(groups[held])
