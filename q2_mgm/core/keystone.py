"""Keystone genera: how much an MGM model relies on each genus of a sample, scored per token and summarised per
class, after Zhang et al. 2026, who fine-tuned MGM on an infant cohort and ranked genera by the attention that the
classifier's reading position pays them.

Scores per token position (METHODS), all read from the last non-pad token, the position whose final hidden state
GPT2ForSequenceClassification classifies (for a pretrained GPT2LMHeadModel, the one token that has read the whole
sentence):
- attention: the last layer's attention from that token, averaged over heads (the paper's view).
- rollout: attention rollout (Abnar & Zuidema 2020): each layer's head-averaged attention plus the identity (the
  residual stream), rows renormalised, multiplied through the layers; that token's row.
- gradient: integrated gradients (Sundararajan et al. 2017) on the genus tokens' input embeddings, summed over the
  embedding dimension, from a baseline where each genus embedding is zero (special tokens kept, so all attribution
  goes to genera). Chosen over attention x gradient because it satisfies completeness (a sample's attributions add
  up to output(sentence) - output(baseline)), which makes it checkable and its units plain. The output explained is
  the logit of the target class (default: the predicted one) for a classifier, the output of a regressor, and the
  sentence's log-likelihood for a pretrained GPT2LMHeadModel, which has no classifier. The pretrained model's path
  integrand has sharp bends (its attention is peaked), so it needs more steps than the usual 16-20: on 20 ECAM
  samples the completeness gap of the general model's log-likelihood was a median 2.8% at 16 Gauss-Legendre steps,
  0.7% at 32 (the default) and 0.03% at 64 (pass steps=64 for tighter attributions at twice the time).

Normalisation of attention and rollout. Most of the reading token's attention goes to <bos> (GPT-2's attention sink)
and some to itself: on 60 ECAM samples (6 to 53 genera) the general model's last layer gives <bos> a median 0.30,
the reading <eos> 0.04 and the genera 0.66 (0.29 to 0.86), with rollout 0.82, 0.01 and 0.18. The genera's total
follows the sentence's length (Spearman 0.84 with the number of genera; rollout 0.98), so it says nothing about any
genus: special tokens score 0 and the genus tokens are rescaled to average 1 in each sample, i.e. a score is the
genus' attention relative to an even spread over the sample's genera (2 = twice its even share). Plain shares
(summing to 1) were rejected: a genus' share is 1/n_genera on average, so shares favour genera of low-diversity
samples (on those 60 samples, Spearman 0.43 between a genus' mean share and the mean 1/n_genera of the samples that
hold it, against -0.09 for the relative score). Integrated gradients are left in output units: they are signed and
already comparable across samples.
"""
import dataclasses
import warnings

import numpy as np
import pandas as pd
import scipy.stats
import torch
import transformers

from .inference import length_batches, padded_batch
from .models import input_gradients
from .significance import benjamini_hochberg
from .settings import METHODS
from .vocab import SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)  # token ids below this are <pad>, <mask>, <bos>, <eos>
# the attention methods keep every layer's (batch, heads, length, length) weights: about 270 MB at 512 tokens
TOKENS_PER_BATCH = 2048
IG_STEPS = 32  # see the module docstring for the completeness gap this leaves
MIN_SAMPLES = 5


class KeystoneError(ValueError):
    """Inputs that cannot be scored or summarised; the message names the problem and the fix."""


# --- the inputs of keystone-genera and keystone-report, checked before the model runs ---

def check_corpus(sample_ids: pd.Index) -> None:
    """KeystoneError where the corpus (its sample IDs) holds no sample to score."""
    if not len(sample_ids):
        raise KeystoneError("The corpus holds no samples, so there are no genera to score. Tokenize a feature table "
                            "that holds samples (qiime mgm tokenize) and score that corpus.")


def check_subjects(grouped: pd.Index, subjects: pd.Series) -> None:
    """KeystoneError where `subjects` (sample ID -> subject) gives no subject to any of the samples that will be
    scored with a group (`grouped`, their IDs): per_subject would have no unit to summarise, and the model's work
    would be lost. Samples without a subject are left out by per_subject; this stops only the case where all are."""
    if not len(grouped) or subjects.reindex(grouped).notna().any():
        return
    given = subjects.dropna().index
    theirs = (f"its IDs are {', '.join(map(str, given[:3]))}{' ...' if len(given) > 3 else ''}" if len(given) else
              "it holds no value at all")
    raise KeystoneError(
        f"No scored sample has both a group and a subject: the subjects column {subjects.name!r} holds a subject "
        f"for none of the {len(grouped)} samples with a group (for example {', '.join(map(str, grouped[:3]))}; "
        f"{theirs}). Give subjects a column whose IDs are the corpus's sample IDs, each with its subject, or leave "
        "subjects out to summarise samples.")


# --- scores per token ---

def _check_model_inputs(model, token_ids, needs_attention):
    if not len(token_ids):
        raise KeystoneError("No sentences to score: token_ids is empty. Pass at least one encoded sentence.")
    lengths = np.array([len(ids) for ids in token_ids])
    limit = model.config.n_positions
    if lengths.max() > limit:
        raise KeystoneError(f"A sentence has {lengths.max()} tokens but the model reads at most {limit}; "
                            f"tokenize with max_length <= {limit} (qiime mgm tokenize --p-max-length {limit}, on "
                            "the feature table the corpus was made from) and score that corpus, or use a model "
                            "that reads longer sentences.")
    if needs_attention and getattr(model.config, "_attn_implementation", "eager") != "eager":
        raise KeystoneError(f"The model computes attention with {model.config._attn_implementation!r}, which "
                            "returns no attention weights; build or load it with q2_mgm.core.models (eager "
                            "attention).")
    return lengths


def _check_target(model, target, n):
    if target is None:
        return None
    if not isinstance(model, transformers.GPT2ForSequenceClassification):
        raise KeystoneError("target names a class, but this model has no classifier (it is a pretrained "
                            f"{type(model).__name__}); leave target out.")
    target = np.asarray(target)
    n_labels = model.config.num_labels
    if target.shape != (n,) or not np.issubdtype(target.dtype, np.integer):
        raise KeystoneError(f"target must hold one integer class index per sentence ({n}); it has shape "
                            f"{target.shape} and dtype {target.dtype}.")
    if target.min() < 0 or target.max() >= n_labels:
        raise KeystoneError(f"target holds class {target.max() if target.max() >= n_labels else target.min()}, "
                            f"but the model has classes 0 to {n_labels - 1}.")
    return torch.from_numpy(target.astype(np.int64))


def token_scores(model, token_ids, method, target=None, device="cpu", progress=None, steps=IG_STEPS):
    """One float64 array per sentence, a score per token position (see the module docstring for each method).

    model: GPT2ForSequenceClassification or GPT2LMHeadModel built by q2_mgm.core.models; it is put in eval mode.
    token_ids: int64 arrays from inference.encode. target: the class index per sentence that the gradient method
    explains (default: the predicted class); the attention methods do not depend on it. steps: integration steps
    of the gradient method.
    progress: called as progress(samples done, samples in all) after each batch.
    """
    if method not in METHODS:
        raise KeystoneError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")
    if steps < 1:
        raise KeystoneError(f"steps must be at least 1 (got {steps}); {IG_STEPS} is the default.")
    lengths = _check_model_inputs(model, token_ids, needs_attention=method != "gradient")
    target = _check_target(model, target, len(token_ids))
    model = model.to(device).eval()  # eval: no dropout, so the scores are deterministic
    scores, done = [None] * len(token_ids), 0
    for batch in length_batches(lengths, TOKENS_PER_BATCH):
        input_ids, mask = padded_batch([token_ids[i] for i in batch], device)
        if method == "gradient":
            with input_gradients(model):
                rows = _integrated_gradients(model, input_ids, mask,
                                             None if target is None else target[batch].to(device), steps)
        else:
            with torch.inference_mode():
                attentions = model.transformer(input_ids=input_ids, attention_mask=mask, output_attentions=True,
                                               use_cache=False).attentions
                rows = (_last_row(attentions[-1], mask) if method == "attention" else
                        _rollout_row(attentions, mask))
            rows = _relative_to_uniform(rows.double(), input_ids)
        rows = rows.cpu().numpy()
        for row, i in enumerate(batch):
            scores[i] = rows[row, :lengths[i]]
        done += len(batch)
        if progress:
            progress(done, len(token_ids))
    return scores


def last_index(mask):
    return mask.sum(1) - 1  # right padding: the last non-pad token


def _last_row(attention, mask):
    """(batch, length): the head-averaged attention that each sentence's last token pays to every position."""
    return attention.mean(1)[torch.arange(len(mask)), last_index(mask)]


def _rollout_row(attentions, mask):
    """The last token's row of rollout = Â_L ... Â_1, Â = rownorm(mean over heads + I), as a vector-matrix chain."""
    width = mask.shape[1]
    keys = mask[:, None, :].to(attentions[0].dtype)
    eye = torch.eye(width, dtype=keys.dtype, device=keys.device)
    row = torch.nn.functional.one_hot(last_index(mask), width).to(keys.dtype)
    for attention in reversed(attentions):
        # causal attention with right padding never reaches a pad from a real token; masking keys keeps it so
        layer = attention.mean(1) * keys + eye
        layer = layer / layer.sum(-1, keepdim=True)
        row = torch.bmm(row.unsqueeze(1), layer).squeeze(1)
    return row


def _relative_to_uniform(rows, input_ids):
    """Zero on special tokens and pads; genus tokens rescaled to average 1 (all zero for a genus-free sentence)."""
    genus = input_ids >= N_SPECIAL
    rows = rows * genus
    return rows * genus.sum(1, keepdim=True) / rows.sum(1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)


def _model_outputs(model, embeddings, input_ids, mask):
    """(batch, outputs) that the gradient method explains, from input embeddings (before position embeddings):
    the classifier's or regressor's logits at the last non-pad token, or for a GPT2LMHeadModel the sentence's
    log-likelihood (batch, 1)."""
    hidden = model.transformer(inputs_embeds=embeddings, attention_mask=mask, use_cache=False).last_hidden_state
    if isinstance(model, transformers.GPT2ForSequenceClassification):
        # read the head ourselves: from inputs_embeds the model cannot find the last non-pad token
        return model.score(hidden[torch.arange(len(mask), device=mask.device), last_index(mask)])
    log_probs = model.lm_head(hidden[:, :-1]).log_softmax(-1)
    next_token = log_probs.gather(2, input_ids[:, 1:, None]).squeeze(-1)
    return (next_token * mask[:, 1:]).sum(1, keepdim=True)


def baseline_embeddings(model, input_ids):
    """The input embeddings, and the baseline: genus tokens' embeddings set to zero (a genus of no identity at its
    position), special tokens and pads kept, so that all attribution goes to genera."""
    embeddings = model.transformer.wte(input_ids).detach()
    return embeddings, embeddings * (input_ids < N_SPECIAL).unsqueeze(-1)


def _integrated_gradients(model, input_ids, mask, target, steps):
    embeddings, baseline = baseline_embeddings(model, input_ids)
    if target is None:
        with torch.no_grad():  # not inference_mode: its tensors cannot enter the backward pass below
            target = _model_outputs(model, embeddings, input_ids, mask).argmax(1)
    target = target[:, None]
    return integrated_gradients(lambda point: _model_outputs(model, point, input_ids, mask).gather(1, target)[:, 0],
                                embeddings, baseline, steps)


def integrated_gradients(output, embeddings, baseline, steps):
    """(batch, length) float64 integrated gradients of output(point) ((batch,): one scalar per sentence, each
    depending on its own sentence only) along the straight path from `baseline` to `embeddings` ((batch, length,
    width) input embeddings), summed over the embedding dimension, by Gauss-Legendre quadrature of `steps` nodes.
    Each sentence's attributions add up to output(embeddings) - output(baseline), up to the quadrature's error."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)  # Gauss-Legendre nodes mapped onto [0, 1]
    path_integral = torch.zeros_like(embeddings)
    with torch.enable_grad():
        for node, weight in zip(nodes, weights):
            point = (baseline + (node + 1) / 2 * (embeddings - baseline)).requires_grad_(True)
            # each sentence's output depends only on its own embeddings, so one backward gives every sentence's grad
            gradient, = torch.autograd.grad(output(point).sum(), point)
            path_integral += weight / 2 * gradient
    return ((embeddings - baseline) * path_integral).sum(-1).double()


def attention_map(model, ids, vocabulary, device="cpu"):
    """(tokens x tokens) DataFrame of one sentence's last-layer attention, averaged over heads, raw (special
    tokens included, rows sum to 1); rows are the attending token (query), columns the attended one (key)."""
    _check_model_inputs(model, [ids], needs_attention=True)
    model = model.to(device).eval()
    with torch.inference_mode():
        attentions = model.transformer(input_ids=torch.from_numpy(np.asarray(ids, np.int64))[None].to(device),
                                       output_attentions=True, use_cache=False).attentions
    labels = vocabulary.tokens[np.asarray(ids)]
    return pd.DataFrame(attentions[-1][0].mean(0).double().cpu().numpy(),
                        index=pd.Index(labels, name="query"), columns=pd.Index(labels, name="key"))


# --- per sample, per genus ---

def genus_scores(token_ids, scores, vocabulary, sample_ids=None):
    """Samples x genera DataFrame of scores (NaN where a sample lacks the genus), special tokens dropped.

    Columns are the genera present in any sentence, in vocabulary order; a genus twice in a sentence (which the
    tokenizer never writes) gets the sum of its scores. sample_ids label the rows (default 0..n-1); pass them to
    align the scores with metadata in aggregate and class_differences.
    """
    lengths = np.array([len(ids) for ids in token_ids])
    if len(scores) != len(token_ids) or any(len(s) != n for s, n in zip(scores, lengths)):
        raise KeystoneError("scores must hold one array per sentence, as long as the sentence: pass the result of "
                            "token_scores for the same token_ids.")
    if sample_ids is not None and len(sample_ids) != len(token_ids):
        raise KeystoneError(f"sample_ids holds {len(sample_ids)} IDs for {len(token_ids)} sentences.")
    ids, values = np.concatenate(token_ids), np.concatenate(scores).astype(np.float64)
    rows = np.repeat(np.arange(len(token_ids)), lengths)
    genus = ids >= N_SPECIAL
    columns, column = np.unique(ids[genus], return_inverse=True)
    matrix = np.zeros((len(token_ids), len(columns)))
    np.add.at(matrix, (rows[genus], column), values[genus])
    present = np.zeros(matrix.shape, dtype=bool)
    present[rows[genus], column] = True
    matrix[~present] = np.nan
    index = pd.RangeIndex(len(token_ids)) if sample_ids is None else pd.Index(sample_ids)
    return pd.DataFrame(matrix, index=index.rename("sample-id"),
                        columns=pd.Index(vocabulary.tokens[columns], name="genus"))


def _align_groups(matrix, groups):
    """Groups in the matrix's row order (NaN: unlabelled, left out) and the classes in order."""
    if not isinstance(groups, pd.Series):
        raise KeystoneError(f"groups must be a pandas Series indexed by sample ID, not {type(groups).__name__}.")
    if groups.index.has_duplicates:
        raise KeystoneError("groups lists a sample ID twice; give each sample one group.")
    missing = matrix.index.difference(groups.index)
    if len(missing):
        raise KeystoneError(
            f"groups are not aligned to the samples: {len(missing)} of the {len(matrix)} scored samples have no "
            f"entry in groups (for example {', '.join(map(str, missing[:3]))}). Index groups by the same sample IDs "
            "(pass sample_ids to genus_scores).")
    aligned = groups.reindex(matrix.index)
    classes = (list(aligned.cat.categories) if isinstance(aligned.dtype, pd.CategoricalDtype) else
               sorted(aligned.dropna().unique(), key=str))
    if not classes:
        raise KeystoneError("No scored sample has a group: every value of groups is missing for these samples.")
    empty = [c for c in classes if not (aligned == c).any()]
    if empty:
        raise KeystoneError(f"Group {empty[0]!r} has no samples among the scored samples; drop it from groups "
                            "(remove_unused_categories for a categorical) or score samples of that group.")
    return aligned, classes


def per_subject(per_sample_matrix, groups, subjects):
    """Each subject's mean score per genus (over its samples that hold the genus) within each group, and the group
    of each (subject, group) unit: repeated samples of one subject (a child sampled monthly) are not independent,
    so confidence intervals and tests over samples would be far too narrow. Samples without a subject are left out.
    """
    aligned, _ = _align_groups(per_sample_matrix, groups)
    if not isinstance(subjects, pd.Series):
        raise KeystoneError(f"subjects must be a pandas Series indexed by sample ID, not {type(subjects).__name__}.")
    subject = subjects.reindex(per_sample_matrix.index)
    keep = aligned.notna() & subject.notna()
    if not keep.any():
        raise KeystoneError("No scored sample has both a group and a subject; give subjects a column whose IDs are "
                            "the scored samples' IDs, or leave subjects out to summarise samples (check_subjects "
                            "tells which IDs differ).")
    units = per_sample_matrix[keep].groupby([subject[keep].astype(str), aligned[keep]]).mean()
    unit_groups = pd.Series(units.index.get_level_values(1), index=[f"{s} ({g})" for s, g in units.index])
    units.index = unit_groups.index
    return units, unit_groups


def bootstrap_means(values: np.ndarray, present: np.ndarray, n_bootstrap: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n_bootstrap, genera) mean over the samples holding each genus, in resamples of the rows, as two matrix
    products (resample multiplicities x scores, x presence); NaN where a resample misses the genus."""
    n = len(values)
    draws = rng.integers(0, n, size=(n_bootstrap, n)) + n * np.arange(n_bootstrap)[:, None]
    multiplicity = np.bincount(draws.ravel(), minlength=n_bootstrap * n).reshape(n_bootstrap, n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (multiplicity @ np.where(present, values, 0.0)) / (multiplicity @ present)


@dataclasses.dataclass
class KeystoneSummary:
    """genera: one row per (group, genus seen in the group): mean_score (over the group's samples holding the
    genus), ci_low, ci_high (bootstrap percentile CI of that mean), n_samples, prevalence, importance and rank (1 =
    top; NaN for genera in fewer than min_samples samples of the group).
    importance: genera x groups, the group's mean score with absent genera counted as 0 (= mean_score x
    prevalence), so 0 where a group never holds the genus, and rare genera weigh in by how often they occur; no
    NaN, as q2-sample-classifier's FeatureData[Importance] wants."""
    genera: pd.DataFrame
    importance: pd.DataFrame
    min_samples: int

    @property
    def n_excluded(self) -> pd.Series:
        """Per group, the genera left unranked for being in fewer than min_samples samples."""
        return (self.genera["n_samples"] < self.min_samples).groupby(self.genera["group"], sort=False).sum()


def aggregate(per_sample_matrix, groups, min_samples=MIN_SAMPLES, n_bootstrap=1000, confidence=0.95, random_state=0):
    """Per group (class) and genus: mean score, bootstrap CI, prevalence and rank; see KeystoneSummary.

    per_sample_matrix: from genus_scores. groups: pd.Series of class per sample ID, covering the matrix's samples
    (samples with a missing group are left out). The bootstrap resamples each group's samples with replacement
    (n_bootstrap times, seeded by random_state), so a CI reflects how many samples hold the genus too.
    """
    if min_samples < 1 or n_bootstrap < 1 or not 0 < confidence < 1:
        raise KeystoneError("min_samples and n_bootstrap must be at least 1 and confidence between 0 and 1 "
                            f"(got {min_samples}, {n_bootstrap}, {confidence}).")
    aligned, classes = _align_groups(per_sample_matrix, groups)
    rng = np.random.default_rng(random_state)
    tail = 50 * (1 - confidence)
    matrix, tables, importance = per_sample_matrix.to_numpy(), [], {}
    for group in classes:
        values = matrix[(aligned == group).to_numpy()]
        present = ~np.isnan(values)
        n_samples = present.sum(0)
        totals = np.where(present, values, 0.0).sum(0)
        with warnings.catch_warnings():  # a genus in one or two samples can miss every resample: its CI is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(bootstrap_means(values, present, n_bootstrap, rng), [tail, 100 - tail],
                                         axis=0)
        table = pd.DataFrame({"group": group, "genus": per_sample_matrix.columns,
                              "mean_score": totals / np.maximum(n_samples, 1), "ci_low": low, "ci_high": high,
                              "n_samples": n_samples, "prevalence": n_samples / len(values),
                              "importance": totals / len(values)})[n_samples > 0]
        table["rank"] = table.mean_score.where(table.n_samples >= min_samples).rank(ascending=False, method="min")
        tables.append(table.sort_values(["rank", "mean_score"], ascending=[True, False], na_position="last"))
        importance[group] = totals / len(values)
    genera = pd.concat(tables, ignore_index=True)
    return KeystoneSummary(genera, pd.DataFrame(importance, index=per_sample_matrix.columns), int(min_samples))


# --- differences between classes ---

def _test(samples):
    """(statistic, p, effect size) for the scores of one genus in each class."""
    if len(samples) == 2:
        first, second = samples
        result = scipy.stats.mannwhitneyu(second, first, alternative="two-sided")
        return result.statistic, result.pvalue, result.statistic / (len(first) * len(second))
    try:
        statistic, p_value = scipy.stats.kruskal(*samples)
    except ValueError:  # every score identical: no difference to test
        return 0.0, 1.0, 0.0
    return statistic, p_value, statistic / (sum(map(len, samples)) - 1)


def class_differences(per_sample_matrix, groups, min_samples=MIN_SAMPLES):
    """Per genus, whether its score differs between classes, among the samples that hold it.

    Two classes: two-sided Mann-Whitney U; effect_size is the AUC, P(a score in the second class > one in the first),
    0.5 for no difference. More classes: Kruskal-Wallis; effect_size is epsilon squared, H / (n - 1), 0 to 1.
    A genus is tested only where every class has at least min_samples samples holding it (otherwise statistic,
    p_value and q_value are NaN and the n_ columns say why); q_value is Benjamini-Hochberg over the tested genera.
    Returns a DataFrame indexed by genus: test, statistic, p_value, q_value, effect_size, n_<class>, mean_<class>.
    """
    if min_samples < 1:
        raise KeystoneError(f"min_samples must be at least 1 (got {min_samples}).")
    aligned, classes = _align_groups(per_sample_matrix, groups)
    if len(classes) < 2:
        raise KeystoneError(f"class_differences needs at least two classes; the groups hold only {classes[0]!r}.")
    masks = [(aligned == c).to_numpy() for c in classes]
    values = per_sample_matrix.to_numpy()
    rows = []
    for column in range(values.shape[1]):
        samples = [values[mask, column][~np.isnan(values[mask, column])] for mask in masks]
        counts = [len(s) for s in samples]
        tested = min(counts) >= min_samples
        statistic, p_value, effect = _test(samples) if tested else (np.nan, np.nan, np.nan)
        rows.append([statistic, p_value, effect, *counts, *(s.mean() if len(s) else np.nan for s in samples)])
    table = pd.DataFrame(rows, index=per_sample_matrix.columns, columns=[
        "statistic", "p_value", "effect_size", *(f"n_{c}" for c in classes), *(f"mean_{c}" for c in classes)])
    table.insert(0, "test", "mann-whitney-u" if len(classes) == 2 else "kruskal-wallis")
    table.insert(3, "q_value", benjamini_hochberg(table.p_value.to_numpy()))
    return table
