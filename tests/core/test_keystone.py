"""Keystone genera in plain Python, on real ECAM sentences: attention, rollout and integrated-gradient scores against
independent oracles (the model's own forward pass, rollout written as full matrix products, completeness), padding
invariance, per-genus matrices, per-class aggregation with bootstrap CIs, class tests with BH q-values, and errors.
Most tests use a tiny GPT-2 (2 layers x 2 heads x 32 wide) with large random weights, so that attention is peaked
rather than near uniform; a few use the general model."""
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
import transformers

from q2_mgm.core import keystone
from q2_mgm.core.inference import encode
from q2_mgm.core.keystone import (KeystoneError, aggregate, attention_map, class_differences, genus_scores,
                                  token_scores)
from q2_mgm.core.tokenizer import tokenize_dataframe
from q2_mgm.core.training import sequence_model
from q2_mgm.core.vocab import SPECIAL_TOKENS

from ..helpers import read_metadata

pytestmark = pytest.mark.one_torch_thread


def tiny_model(n_layer=2, n_labels=2, n_positions=512):
    config = transformers.GPT2Config(vocab_size=9669, n_positions=n_positions, n_embd=32, n_layer=n_layer, n_head=2,
                                     initializer_range=0.3)
    return sequence_model("classification", n_labels, config=config).eval()


@pytest.fixture(scope="module")
def ecam(ecam_counts, general_model):
    """48 ECAM samples (every 18th; 6 to 60-odd genera): sample IDs, token ids and delivery mode."""
    corpus = tokenize_dataframe(ecam_counts.iloc[::18][:48])
    samples = corpus.samples.index
    return {"samples": samples, "ids": encode(corpus.samples.sentence, general_model[1]),
            "delivery": read_metadata("ecam").delivery.reindex(samples)}


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


@pytest.fixture(scope="module")
def real_classifier(general_model):
    """The general model under an untrained two-class head."""
    return sequence_model("classification", 2, backbone=general_model[0]).eval()


@pytest.fixture(scope="module")
def real_matrix(real_classifier, ecam, general_model):
    """Samples x genera attention scores of the 48 samples, from the general model."""
    scores = token_scores(real_classifier, ecam["ids"], "attention")
    return genus_scores(ecam["ids"], scores, general_model[1], sample_ids=ecam["samples"])


def genus_positions(ids):
    return ids >= len(SPECIAL_TOKENS)


def rescaled(row, ids):
    """A row of attention restricted to genus tokens and rescaled to average 1 over them."""
    row = np.where(genus_positions(ids), row, 0.0)
    return row * genus_positions(ids).sum() / row.sum()


# --- scores per token ---

@pytest.mark.parametrize("method", keystone.METHODS)
def test_one_score_per_token_zero_on_special_tokens(tiny, ecam, method):
    ids = ecam["ids"][:12]
    calls = []
    scores = token_scores(tiny, ids, method, progress=lambda done, total: calls.append((done, total)))
    assert [len(s) for s in scores] == [len(i) for i in ids]
    for sample, score in zip(ids, scores):
        assert np.isfinite(score).all()
        assert (score[~genus_positions(sample)] == 0).all()
    assert calls[-1] == (12, 12)


@pytest.mark.parametrize("method", ["attention", "rollout"])
def test_attention_scores_are_non_negative_and_average_one_over_genera(tiny, ecam, method):
    for sample, score in zip(ecam["ids"], token_scores(tiny, ecam["ids"], method)):
        assert (score >= 0).all()
        assert score[genus_positions(sample)].mean() == pytest.approx(1, abs=1e-9)


@pytest.mark.parametrize("method", keystone.METHODS)
def test_a_sample_scores_the_same_alone_and_batched_with_longer_ones(tiny, ecam, method):
    ids = ecam["ids"]
    shortest = np.argsort([len(i) for i in ids])[:3]
    assert len({len(i) for i in ids}) > 5  # the batch is padded
    batched = token_scores(tiny, ids, method)
    for i in shortest:
        alone, = token_scores(tiny, [ids[i]], method)
        np.testing.assert_allclose(alone, batched[i], atol=1e-5, rtol=1e-5)


def test_attention_is_the_classifiers_reading_token_in_the_last_layer(real_classifier, ecam):
    """Oracle: the classifier's own forward pass on each unpadded sentence, whose logits come from the last token."""
    ids = ecam["ids"][:20]
    scores = token_scores(real_classifier, ids, "attention")
    for sample, score in zip(ids, scores):
        with torch.no_grad():
            out = real_classifier(input_ids=torch.from_numpy(sample)[None], output_attentions=True)
        last_layer = out.attentions[-1][0].mean(0).double().numpy()
        np.testing.assert_allclose(score, rescaled(last_layer[-1], sample), rtol=1e-5, atol=1e-6)


def rollout_oracle(model, sample):
    """Abnar & Zuidema's rollout as full matrices: R = Â_L ... Â_1, Â = rownorm(mean over heads + I)."""
    with torch.no_grad():
        attentions = model(input_ids=torch.from_numpy(sample)[None], output_attentions=True).attentions
    rollout = np.eye(len(sample))
    for attention in attentions:
        layer = attention[0].mean(0).double().numpy() + np.eye(len(sample))
        rollout = (layer / layer.sum(1, keepdims=True)) @ rollout
    return rollout[-1]


@pytest.mark.parametrize("n_layer", [1, 2])
def test_rollout_multiplies_the_layers_through(ecam, n_layer):
    model = tiny_model(n_layer=n_layer)
    ids = ecam["ids"][:8]
    for sample, score in zip(ids, token_scores(model, ids, "rollout")):
        np.testing.assert_allclose(score, rescaled(rollout_oracle(model, sample), sample), rtol=1e-5, atol=1e-6)


def test_rollout_with_one_layer_is_half_attention_half_identity(ecam):
    model = tiny_model(n_layer=1)
    sample = ecam["ids"][0]
    with torch.no_grad():
        attention = model(input_ids=torch.from_numpy(sample)[None], output_attentions=True).attentions[0]
    mixed = 0.5 * attention[0].mean(0).double().numpy() + 0.5 * np.eye(len(sample))
    mixed /= mixed.sum(1, keepdims=True)
    score, = token_scores(model, [sample], "rollout")
    np.testing.assert_allclose(score, rescaled(mixed[-1], sample), rtol=1e-5, atol=1e-6)
    # the identity only adds to the reading token (<eos>), which is left out: one layer's rollout is its attention
    np.testing.assert_allclose(score, token_scores(model, [sample], "attention")[0], rtol=1e-5, atol=1e-6)


def baseline_logits(model, sample):
    """The classifier's logits with every genus embedding set to zero, through its own forward pass (unpadded, so
    reading the last position is right)."""
    embeddings = model.transformer.wte(torch.from_numpy(sample)).detach()
    embeddings[torch.from_numpy(genus_positions(sample))] = 0
    with torch.no_grad():
        return model(inputs_embeds=embeddings[None]).logits[0].double().numpy()


@pytest.mark.parametrize("explain", ["predicted", "other"])
def test_integrated_gradients_add_up_to_the_logit_change(tiny, ecam, explain):
    ids = ecam["ids"][:16]
    with torch.no_grad():
        logits = [tiny(input_ids=torch.from_numpy(s)[None]).logits[0].double().numpy() for s in ids]
    predicted = np.array([logit.argmax() for logit in logits])
    target = predicted if explain == "predicted" else 1 - predicted
    scores = token_scores(tiny, ids, "gradient", target=None if explain == "predicted" else target)
    change = np.array([logit[t] - baseline_logits(tiny, s)[t] for logit, s, t in zip(logits, ids, target)])
    totals = np.array([score.sum() for score in scores])
    assert np.median(np.abs(change)) > 0.3  # large enough for a relative check to mean something
    np.testing.assert_allclose(totals, change, rtol=0.02, atol=0.005)


def test_integrated_gradients_of_the_pretrained_model_explain_its_log_likelihood(general_model, ecam):
    model = general_model[0]
    ids = sorted(ecam["ids"], key=len)[:5]
    scores = token_scores(model, ids, "gradient", steps=64)
    for sample, score in zip(ids, scores):
        tensor = torch.from_numpy(sample)[None]
        embeddings = model.transformer.wte(tensor).detach()
        embeddings[0, torch.from_numpy(genus_positions(sample))] = 0
        with torch.no_grad():  # the LM loss is the mean negative log-likelihood of the len - 1 next tokens
            gained = (model(inputs_embeds=embeddings, labels=tensor).loss - model(input_ids=tensor, labels=tensor).loss)
        assert score.sum() == pytest.approx(gained.item() * (len(sample) - 1), rel=0.01)


# --- per sample, per genus ---

def test_genus_scores_is_samples_by_genera_with_nan_where_absent(ecam, tiny, general_model):
    ids, vocabulary = ecam["ids"], general_model[1]
    scores = token_scores(tiny, ids, "attention")
    matrix = genus_scores(ids, scores, vocabulary, sample_ids=ecam["samples"])
    genera = sorted({token for sample in ids for token in sample if token >= len(SPECIAL_TOKENS)})
    assert matrix.shape == (len(ids), len(genera))
    assert list(matrix.columns) == list(vocabulary.tokens[genera])  # vocabulary order, no special tokens
    assert matrix.index.equals(ecam["samples"])
    assert matrix.notna().sum(1).tolist() == [int(genus_positions(s).sum()) for s in ids]
    first, score = ids[0], scores[0]
    for position in np.flatnonzero(genus_positions(first)):
        assert matrix.iloc[0][vocabulary.tokens[first[position]]] == score[position]


def test_genus_scores_needs_one_score_per_token(ecam, general_model):
    ids = ecam["ids"][:3]
    with pytest.raises(KeystoneError, match="one array per sentence"):
        genus_scores(ids, [np.zeros(len(i) - 1) for i in ids], general_model[1])


# --- aggregation per class ---

def test_aggregate_by_delivery_mode(real_matrix, ecam):
    summary = aggregate(real_matrix, ecam["delivery"], min_samples=5, n_bootstrap=500)
    classes = sorted(ecam["delivery"].unique())
    assert list(summary.importance.columns) == classes
    assert summary.importance.index.equals(real_matrix.columns)
    assert summary.importance.notna().all().all() and (summary.importance.dtypes == float).all()
    genera = summary.genera
    for group in classes:
        values = real_matrix[ecam["delivery"] == group]
        table = genera[genera.group == group].set_index("genus")
        counts = values.notna().sum()
        assert table.n_samples.to_dict() == counts[counts > 0].to_dict()
        np.testing.assert_allclose(table.mean_score, values.mean()[table.index])
        np.testing.assert_allclose(table.prevalence, counts[table.index] / len(values))
        np.testing.assert_allclose(summary.importance[group], values.fillna(0).mean())
        ranked = table[table.n_samples >= 5]
        assert table["rank"].isna().tolist() == (table.n_samples < 5).tolist()  # rare genera cannot top the list
        assert sorted(ranked["rank"]) == list(range(1, len(ranked) + 1))
        assert ranked.sort_values("rank").mean_score.is_monotonic_decreasing
        assert summary.n_excluded[group] == (table.n_samples < 5).sum() > 0
        assert ((ranked.ci_low <= ranked.mean_score) & (ranked.mean_score <= ranked.ci_high)).all()


def test_bootstrap_is_seeded_and_close_to_the_normal_interval(real_matrix, ecam):
    groups = pd.Series("all", index=real_matrix.index)
    first, again, other = (aggregate(real_matrix, groups, random_state=seed).genera for seed in (0, 0, 1))
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first.ci_low, other.ci_low)
    common = real_matrix.columns[real_matrix.notna().sum() >= 40]  # nearly everywhere: close to a plain mean's CI
    assert len(common) >= 3
    table = first.set_index("genus").loc[common]
    half_width = 1.96 * real_matrix[common].std() / np.sqrt(real_matrix[common].notna().sum())
    np.testing.assert_allclose((table.ci_high - table.ci_low) / 2, half_width, rtol=0.25)


def test_a_genus_in_too_few_samples_is_reported_but_not_ranked(real_matrix):
    groups = pd.Series("all", index=real_matrix.index)
    rare = real_matrix.notna().sum().idxmin()
    boosted = real_matrix.copy()
    boosted.loc[boosted[rare].notna(), rare] = 1000.0  # the highest score there is, in very few samples
    table = aggregate(boosted, groups, min_samples=5, n_bootstrap=100).genera.set_index("genus")
    assert table.loc[rare, "mean_score"] == 1000.0 and np.isnan(table.loc[rare, "rank"])
    assert table["rank"].min() == 1 and table["rank"].idxmin() != rare


# --- differences between classes ---

def benjamini_hochberg(p_values):
    """q_(i) = min over j >= i of p_(j) m / j, written out the slow way."""
    order = np.argsort(p_values)
    m = len(p_values)
    q = np.empty(m)
    for i, index in enumerate(order):
        q[index] = min(1.0, min(p_values[order[j]] * m / (j + 1) for j in range(i, m)))
    return q


def test_class_differences_between_delivery_modes(real_matrix, ecam):
    table = class_differences(real_matrix, ecam["delivery"])
    assert table.index.equals(real_matrix.columns)
    assert (table.test == "mann-whitney-u").all()
    tested = table.dropna(subset=["p_value"])
    assert len(tested) and ((tested.p_value >= 0) & (tested.p_value <= 1)).all()
    assert (tested.q_value >= tested.p_value).all()
    np.testing.assert_allclose(tested.q_value, benjamini_hochberg(tested.p_value.to_numpy()))
    untested = table[table.p_value.isna()]
    assert (untested[["n_Cesarean", "n_Vaginal"]].min(1) < 5).all() and untested.q_value.isna().all()
    genus = tested.p_value.idxmin()
    cesarean = real_matrix.loc[ecam["delivery"] == "Cesarean", genus].dropna()
    vaginal = real_matrix.loc[ecam["delivery"] == "Vaginal", genus].dropna()
    direct = scipy.stats.mannwhitneyu(vaginal, cesarean)
    assert tested.loc[genus, "p_value"] == pytest.approx(direct.pvalue)
    pairs = vaginal.to_numpy()[:, None] - cesarean.to_numpy()  # AUC: P(Vaginal > Cesarean), ties counting half
    assert tested.loc[genus, "effect_size"] == pytest.approx((pairs > 0).mean() + (pairs == 0).mean() / 2)
    assert tested.loc[genus, ["n_Cesarean", "n_Vaginal"]].tolist() == [len(cesarean), len(vaginal)]


def test_class_differences_among_three_classes_and_a_genus_missing_from_one(real_matrix):
    groups = pd.Series(np.arange(len(real_matrix)) % 3, index=real_matrix.index).map({0: "a", 1: "b", 2: "c"})
    common = real_matrix.notna().sum().idxmax()
    matrix = real_matrix.copy()
    matrix.loc[groups == "c", common] = np.nan  # absent from every sample of class c
    table = class_differences(matrix, groups, min_samples=2)
    assert (table.test == "kruskal-wallis").all()
    assert table.loc[common, "n_c"] == 0
    assert np.isnan(table.loc[common, "p_value"]) and np.isnan(table.loc[common, "q_value"])
    tested = table.dropna(subset=["p_value"])
    assert ((tested.effect_size >= 0) & (tested.effect_size <= 1)).all()
    assert (tested.q_value >= tested.p_value).all()


# --- one sample's attention map ---

def test_attention_map_of_one_sample(real_classifier, ecam, general_model):
    sample = ecam["ids"][1]
    frame = attention_map(real_classifier, sample, general_model[1])
    assert frame.shape == (len(sample), len(sample))
    assert list(frame.index) == list(frame.columns) == list(general_model[1].tokens[sample])
    np.testing.assert_allclose(frame.sum(1), 1, rtol=1e-5, atol=1e-6)
    assert (np.triu(frame.to_numpy(), 1) == 0).all()  # causal: nothing attends to later tokens
    score, = token_scores(real_classifier, [sample], "attention")
    np.testing.assert_allclose(score, rescaled(frame.to_numpy()[-1], sample), rtol=1e-5, atol=1e-6)


# --- errors ---

def test_errors_name_the_problem_and_the_fix(tiny, ecam, real_matrix, general_model):
    ids = ecam["ids"][:4]
    with pytest.raises(KeystoneError, match="method must be one of attention, rollout, gradient"):
        token_scores(tiny, ids, "saliency")
    long = np.r_[2, np.arange(4, 516), 3]
    with pytest.raises(KeystoneError, match="514 tokens but the model reads at most 512; tokenize with max_length"):
        token_scores(tiny, [long], "attention")
    with pytest.raises(KeystoneError, match="classes 0 to 1"):
        token_scores(tiny, ids, "gradient", target=[0, 1, 2, 0])
    with pytest.raises(KeystoneError, match="one integer class index per sentence"):
        token_scores(tiny, ids, "gradient", target=[0, 1])
    with pytest.raises(KeystoneError, match="no classifier"):
        token_scores(general_model[0], ids, "gradient", target=[0, 1, 0, 1])
    assert issubclass(KeystoneError, ValueError)

    delivery = ecam["delivery"]
    with pytest.raises(KeystoneError, match="not aligned.*3 of the 48.*sample_ids to genus_scores"):
        aggregate(real_matrix, delivery.iloc[3:])
    unused = delivery.astype(pd.CategoricalDtype(["Cesarean", "Vaginal", "Unknown"]))
    with pytest.raises(KeystoneError, match="'Unknown' has no samples.*remove_unused_categories"):
        aggregate(real_matrix, unused)
    with pytest.raises(KeystoneError, match="pandas Series"):
        class_differences(real_matrix, delivery.to_numpy())
    with pytest.raises(KeystoneError, match="at least two classes"):
        class_differences(real_matrix, pd.Series("one", index=real_matrix.index))
