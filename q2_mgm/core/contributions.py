"""Per-genus contributions to the decision of a recipe fit with batches (core.transfer: mgm-transfer and the other
recipes of linear parts): for each sample and genus, how much of the sample's decision score the genus makes,
relative to the average score of the sample's batch, so that the parts add up to that score.

The decision score is what the recipe's prediction reads (Recipe.decision): a classifier's calibrated log-odds of
its second class (each class's logit with more than two), a regressor's prediction (in the target's units). Every
step after the features is linear once each batch's statistics are held fixed (the means and standard deviations
that standardise features and part scores within a batch: they are treated as constants while differentiating, so
a sample's contribution does not include its own small share in its batch's statistics). So the score of sample i,
less its batch's average, is a sum over the parts p of M_p[i] @ (f_pi - mean of f_p over the batch), where f_p are
the part's features before standardisation and M_p[i] folds the part's coefficients, the batch's and the
training samples' scales and the blend's calibration into one matrix (`_linear_maps`). Then:

- the CLR part is exact: a genus's contribution is its coefficient times the sample's batch-standardised CLR value,
  divided by the scale the blend gives that part. A CLR value is the log of the genus's abundance relative to the
  sample's geometric mean over the genera read, so a positive coefficient means "more of this genus than of the
  sample's typical genus", not "more of this genus" in absolute terms; and a genus the sample lacks still has a
  (low) CLR value, so it contributes too.
- the MGM part is a function of the genus tokens' embeddings (the frozen model's mean and last-token hidden states
  and the sentence's mean next-token log-likelihood): its contributions are integrated gradients (Sundararajan et
  al. 2017, as core.keystone's `gradient` method) of M_mgm[i] @ f_mgm(sentence) on the genus tokens, from the
  baseline where every genus token's embedding is the vocabulary's average genus embedding (a sentence of the same
  length whose genera have no identity: on 40 UC_Amplicon samples its median completeness gap at 16 steps was 0.7%,
  against 4.4% from all-zero embeddings, core.keystone's baseline). They add up to the part at the sentence less the
  part at the baseline, up to the quadrature's completeness gap, reported per sample (`gap`, and `relative_gap` of
  the part's change along the path). Each genus's MGM contribution is then centred on its batch's average, as the
  CLR part's batch-standardised values are, so that both parts are relative to the batch and a genus the sample lacks
  contributes minus the batch's average of that genus's contributions.
- the rest of the score is not any genus's: the MGM part at the baseline less the batch's average of it (what
  sentences of that length score) and the sentence-length feature (`other`).

Where no batches were given, the samples explained form one batch. Source of the method: integrated gradients
(Sundararajan, Taly & Yan 2017, ICML); the CLR reading: Aitchison 1986, Gloor et al. 2017 (Front. Microbiol.).
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from .inference import _next_token_log_likelihood, length_batches, padded_batch
from .keystone import N_SPECIAL, genus_scores, integrated_gradients, last_index
from .models import input_gradients
from .settings import CONTRIBUTION_STEPS, MGM_BLOCKS
from .transfer import Recipe, SampleFeatures, TransferError, batch_moments
from .vocab import Vocabulary

TOKENS_PER_BATCH = 4096  # tokens of one integration step held at once, with their activations for the backward


@dataclasses.dataclass
class Contributions:
    """One output's decision score per sample, relative to the average of the sample's batch, in parts.

    clr, mgm: samples x genera (genus tokens; the union of the CLR block's genera and those in any sentence)
        float64: each genus's contribution through the CLR part (exact; 0 for a genus the CLR block does not read)
        and through the MGM part (integrated gradients; 0 for a genus not in the sentence).
    other: (samples,) what is no genus's: the MGM part at the baseline sentence and the sentence-length feature,
        relative to the batch's average.
    gap: (samples,) the integrated gradients' completeness gap (the MGM part less its genus contributions and its
        baseline); relative_gap: |gap| over the size of the MGM part's change from baseline to sentence.
    score: (samples,) the decision score less the batch's average = clr.sum + mgm.sum + other + gap.
    output: what the score is, e.g. "log-odds of CRC"."""
    clr: pd.DataFrame
    mgm: pd.DataFrame
    other: pd.Series
    gap: pd.Series
    relative_gap: pd.Series
    score: pd.Series
    output: str

    @property
    def total(self) -> pd.DataFrame:
        """samples x genera: each genus's contribution through both parts."""
        return self.clr + self.mgm


def output_names(recipe: Recipe, classes: Sequence[str]) -> List[str]:
    """What each column of recipe.decision is: the log-odds of the second class (two classes), each class's logit
    (more), or the prediction (regression)."""
    if recipe.task == "regression":
        return ["prediction"]
    return [f"log-odds of {classes[1]}"] if len(classes) == 2 else [f"logit of {c}" for c in classes]


def _linear_maps(recipe: Recipe, data: SampleFeatures, rows: np.ndarray, batches: np.ndarray, unit: float):
    """Per part: (its raw features f (n, width) of the explained rows, their batch means over the explained rows
    (n, width), M (n, n_outputs, width)), such that decision[i] less its batch's mean over the explained rows is the
    sum over parts of M[i] @ (f[i] - mean[i]), times `unit` (the target's standard deviation for a regressor)."""
    a, n_parts = recipe.arrays, len(recipe.parts)
    explained = data.rows(rows)
    maps = []
    for part, (blocks, _) in enumerate(recipe.parts):
        raw = np.hstack([data.raw_block(name) for name, _ in blocks])
        # the scale standardise_within_batches divided each feature by (over the whole batch); 1 without batches
        scale = batch_moments(raw, data.batches)[1][rows] if data.batches is not None else np.ones((len(rows),
                                                                                                     raw.shape[1]))
        raw = raw[rows]
        mean = batch_moments(raw, batches)[0]
        coef = a[f"part{part}.coef"] / a[f"part{part}.scale"]  # (part outputs, width) on the features standardised
        per_sample = coef[None, :, :] / scale[:, None, :]  # (n, part outputs, width)
        if recipe.task == "regression":
            per_sample = per_sample / n_parts * unit
        elif n_parts > 1:  # the part's score standardised (within the explained samples' batches, as predict
            # does), summed with the others', then calibrated
            if data.batches is None:
                spread = np.broadcast_to(a[f"part{part}.score_std"], (len(rows), coef.shape[0]))
            else:
                spread = batch_moments(recipe._decision(explained, part), explained.batches)[1]
            per_sample = np.einsum("oq,nqw->now", a["calibration.coef"], per_sample / spread[:, :, None])
        maps.append((raw, mean, per_sample))
    return maps


def _mgm_features(network, point, input_ids, mask):
    """(batch, 2 * hidden + 1): the frozen model's mean and last-token hidden states and mean next-token
    log-likelihood (core.inference.language_model_features' features) from input embeddings, differentiably."""
    hidden = network.transformer(inputs_embeds=point, attention_mask=mask, use_cache=False).last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(1) / weights.sum(1)
    last = hidden[torch.arange(len(mask), device=mask.device), last_index(mask)]
    total, count = _next_token_log_likelihood(network, hidden, input_ids, mask)
    return torch.cat([mean, last, (total / count.clamp(min=1)).to(hidden.dtype)[:, None]], 1)


def _mgm_attributions(network, token_ids, directions, steps, device, progress):
    """Per output o: one array per sentence of integrated gradients of directions[i, o] @ f_mgm(sentence i) on its
    token positions; and (n, outputs) the part's change from baseline to sentence."""
    lengths = np.array([len(ids) for ids in token_ids])
    n_outputs = directions.shape[1]
    attributions = [[None] * len(token_ids) for _ in range(n_outputs)]
    change = np.zeros((len(token_ids), n_outputs))
    network = network.to(device).eval()
    average_genus = network.transformer.wte.weight[N_SPECIAL:].detach().mean(0)
    done = 0
    with input_gradients(network):  # both ends and the path through the same kernel
        for batch in length_batches(lengths, TOKENS_PER_BATCH):
            input_ids, mask = padded_batch([token_ids[i] for i in batch], device)
            embeddings = network.transformer.wte(input_ids).detach()
            baseline = torch.where((input_ids >= N_SPECIAL).unsqueeze(-1), average_genus, embeddings)
            direction = torch.from_numpy(directions[batch]).to(device=device, dtype=embeddings.dtype)
            with torch.no_grad():
                ends = [_mgm_features(network, x, input_ids, mask) for x in (embeddings, baseline)]
                change[batch] = torch.einsum("bf,bof->bo", ends[0] - ends[1], direction).double().cpu().numpy()
            for o in range(n_outputs):
                rows = integrated_gradients(
                    lambda point: (_mgm_features(network, point, input_ids, mask) * direction[:, o]).sum(1),
                    embeddings, baseline, steps).cpu().numpy()
                for row, i in enumerate(batch):
                    attributions[o][i] = rows[row, :lengths[i]]
            done += len(batch)
            if progress:
                progress(done, len(token_ids))
    return attributions, change


def explain(recipe: Recipe, data: SampleFeatures, rows: np.ndarray, classes: Sequence[str],
            network: Optional[torch.nn.Module] = None, token_ids: Optional[Sequence[np.ndarray]] = None,
            vocabulary: Optional[Vocabulary] = None, unit: float = 1.0, steps: int = CONTRIBUTION_STEPS,
            device: str = "cpu",
            progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Contributions]:
    """Each output's Contributions (output_names) for the samples at positions `rows` of `data`.

    recipe: a fitted recipe of linear parts (core.transfer: mgm-transfer, batch-mgm-logistic, batch-clr-logistic,
    transfer-without-mgm), fit on features read as `data` reads them. data: every sample of the batches the
    explained samples belong to (each batch standardised on all of its samples, as at fitting and prediction); the
    explained rows, the samples predict was given. classes: the recipe's classes in order (ignored for a
    regressor). network, token_ids ((len(rows),) arrays, the explained samples' sentences) and vocabulary: the frozen
    model that made the MGM features, for a recipe with an MGM part. unit: the target's standard deviation (a
    regressor predicts standardised values). steps: integrated-gradients steps. progress(done, total) after each
    batch of sentences. TransferError where the recipe has no linear parts or the MGM inputs are missing."""
    if not recipe.parts or not hasattr(recipe, "arrays"):
        raise TransferError(f"{recipe.name} has no per-genus contributions: only the recipes of linear parts do "
                            "(mgm-transfer, batch-mgm-logistic, batch-clr-logistic, transfer-without-mgm).")
    rows = np.asarray(rows)
    explained = data.rows(rows)
    batches = (explained.batches if explained.batches is not None else np.zeros(len(rows))).astype(str)
    decision = recipe.decision(explained) * unit
    score = decision - batch_moments(decision, batches)[0]
    index = explained.abundances.index
    names = output_names(recipe, classes)
    clr_parts = {o: pd.DataFrame(0.0, index=index, columns=pd.Index([], name="genus")) for o in range(len(names))}
    mgm_parts = {o: pd.DataFrame(0.0, index=index, columns=pd.Index([], name="genus")) for o in range(len(names))}
    other, gap, relative = np.zeros((len(rows), len(names))), np.zeros((len(rows), len(names))), \
        np.zeros((len(rows), len(names)))
    for (blocks, _), (raw, mean, matrix) in zip(recipe.parts, _linear_maps(recipe, data, rows, batches, unit)):
        centred = raw - mean
        widths = [data.raw_block(name).shape[1] for name, _ in blocks]
        starts = np.cumsum([0] + widths)
        for (name, _), start, stop in zip(blocks, starts[:-1], starts[1:]):
            if name == "clr":
                for o in range(len(names)):
                    clr_parts[o] = pd.DataFrame(matrix[:, o, start:stop] * centred[:, start:stop], index=index,
                                                columns=pd.Index(data.genera_read(), name="genus"))
            elif name == "length":
                other += np.einsum("now,nw->no", matrix[:, :, start:stop], centred[:, start:stop])
        reads = [(start, stop) for (name, _), start, stop in zip(blocks, starts[:-1], starts[1:])
                 if name in MGM_BLOCKS]
        if not reads:
            continue
        if network is None or token_ids is None or vocabulary is None or len(token_ids) != len(rows):
            raise TransferError(f"{recipe.name} reads the MGM model's features: explaining it needs the model, its "
                                "vocabulary and each explained sample's sentence.")
        if [name for name, _ in blocks if name in MGM_BLOCKS] != list(MGM_BLOCKS) or reads[0][1] != reads[1][0]:
            raise TransferError(f"{recipe.name}'s MGM blocks are not laid out as explain reads them.")
        span = slice(reads[0][0], reads[-1][1])
        directions = np.ascontiguousarray(matrix[:, :, span])
        part_total = np.einsum("now,nw->no", directions, centred[:, span])
        attributions, change = _mgm_attributions(network, token_ids, directions, steps, device, progress)
        for o in range(len(names)):
            per_genus = genus_scores(token_ids, attributions[o], vocabulary, sample_ids=index).fillna(0.0)
            gap[:, o] = change[:, o] - per_genus.to_numpy().sum(1)
            relative[:, o] = np.abs(gap[:, o]) / np.maximum(np.abs(change[:, o]), 1e-12)
            # centred within the batch, as the CLR part's standardised values are: relative to the batch's average
            mgm_parts[o] = per_genus - batch_moments(per_genus.to_numpy(), batches)[0]
            other[:, o] += part_total[:, o] - mgm_parts[o].to_numpy().sum(1) - gap[:, o]
    result = {}
    for o, name in enumerate(names):
        genera = clr_parts[o].columns.union(mgm_parts[o].columns, sort=False)
        result[name] = Contributions(
            clr_parts[o].reindex(columns=genera, fill_value=0.0), mgm_parts[o].reindex(columns=genera, fill_value=0.0),
            pd.Series(other[:, o], index=index), pd.Series(gap[:, o], index=index),
            pd.Series(relative[:, o], index=index), pd.Series(score[:, o], index=index), name)
    return result


def mgm_share(contributions: Contributions) -> pd.Series:
    """Per genus, from 0 to 1: the sum over samples of |MGM part| over that of |MGM part| + |CLR part|; NaN for a
    genus that contributes nothing."""
    mgm, clr = contributions.mgm.abs().sum(), contributions.clr.abs().sum()
    return (mgm / (mgm + clr)).where(mgm + clr > 0)
