"""Batched forward passes packed by length: no padding to 512, no gradients."""
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .settings import DEVICES, POOLINGS
from .vocab import PAD_ID, Vocabulary

if TYPE_CHECKING:
    from .models import MGMNetwork

TOKENS_PER_BATCH = 16_384


class VocabularyMismatch(ValueError):
    pass


def resolve_device(device: str) -> str:
    """cpu or cuda; auto picks cuda where torch sees one."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device is cuda but torch sees no CUDA GPU here; use device cpu or auto.")
    return device


def encode(sentences: Iterable[str], vocabulary: Vocabulary) -> List[np.ndarray]:
    """Token ids (one (n_tokens,) int64 array per sentence) through the model's vocabulary."""
    index = vocabulary.index
    encoded, unknown = [], set()
    for sentence in sentences:
        tokens = sentence.split()
        ids = [index.get(token, -1) for token in tokens]
        if -1 in ids:
            unknown.update(t for t, i in zip(tokens, ids) if i == -1)
        encoded.append(np.asarray(ids, dtype=np.int64))
    if unknown:
        raise VocabularyMismatch(
            f"The corpus holds {len(unknown)} tokens that the model's vocabulary lacks (for example "
            f"{', '.join(sorted(unknown)[:3])}): the corpus and the model were made with different vocabularies. "
            "Use a model on MGM's vocabulary, which reads every corpus tokenize makes: general-model, or a model "
            "pretrained or fine-tuned from it (or the model the corpus was made for). Where the model already is "
            "one of these, the corpus holds tokens tokenize never writes (edited by hand): tokenize the table "
            "again.")
    return encoded


def length_batches(lengths: np.ndarray, tokens_per_batch: int = TOKENS_PER_BATCH) -> Iterator[List[int]]:
    """Index batches of samples sorted by length ((n_samples,) ints), each padded to at most tokens_per_batch
    tokens."""
    order = np.argsort(lengths, kind="stable")
    batch = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[i] > tokens_per_batch:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def padded_batch(ids_list: Sequence[np.ndarray], device: str = "cpu") -> Tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention mask): (batch, longest) long tensor padded with PAD_ID, and its bool non-pad mask."""
    width = max(len(ids) for ids in ids_list)
    input_ids = torch.full((len(ids_list), width), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(ids_list):
        input_ids[row, :len(ids)] = torch.from_numpy(ids)
    return input_ids.to(device), (input_ids != PAD_ID).to(device)


def sample_embeddings(model: "MGMNetwork", token_ids: Sequence[np.ndarray], pooling: str = "mean",
                      device: str = "cpu", progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """(n_samples, hidden) float32 final hidden states (after ln_f): mean over non-pad tokens, or at the last one.
    progress, where given, is called with (samples done, n_samples) after each batch."""
    return pooled_embeddings(model, token_ids, (pooling,), device, progress)


def pooled_embeddings(model: "MGMNetwork", token_ids: Sequence[np.ndarray], poolings: Sequence[str] = POOLINGS,
                      device: str = "cpu", progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """(n_samples, len(poolings) * hidden) float32: each pooling of the final hidden states (see
    sample_embeddings) side by side, in `poolings` order, from one forward pass per sample."""
    return _forward_pass(model, token_ids, poolings, device, progress, likelihood=False)[0]


def language_model_features(model: "MGMNetwork", token_ids: Sequence[np.ndarray], device: str = "cpu",
                            progress: Optional[Callable[[int, int], None]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """From one forward pass of a language model (GPT2LMHeadModel) per sample: (pooled, likelihood).

    pooled: (n_samples, 2 * hidden) float32, the mean and last-token poolings of pooled_embeddings;
    likelihood: (n_samples, 2) float64, the mean log-probability (nats) the model gives each next token of the
    sentence (every token after <bos>, <eos> included), and the log of how many tokens that is. A classifier on a
    pretrained encoder (GPT2ForSequenceClassification) reads the likelihood through its token embeddings, which
    MGM's language model head shares (tied weights)."""
    return _forward_pass(model, token_ids, POOLINGS, device, progress, likelihood=True)


LIKELIHOOD_TOKENS_PER_CHUNK = 2048  # tokens whose next-token distribution (vocabulary-wide) is held at once


def _next_token_log_likelihood(model, hidden, input_ids, mask):
    """(sum of log p(token | previous tokens) over each sentence's tokens after the first, their count), per row."""
    total = torch.zeros(len(hidden), dtype=torch.float64, device=hidden.device)
    rows = max(1, LIKELIHOOD_TOKENS_PER_CHUNK // hidden.shape[1])
    head = getattr(model, "lm_head", None)  # a classifier has none: its tied token embeddings are the head
    for start in range(0, len(hidden), rows):
        part = slice(start, start + rows)
        logits = (head(hidden[part, :-1]) if head is not None else
                  torch.nn.functional.linear(hidden[part, :-1], model.transformer.wte.weight))
        log_p = torch.log_softmax(logits.float(), -1)
        picked = log_p.gather(-1, input_ids[part, 1:, None])[..., 0]
        total[part] = (picked * mask[part, 1:]).sum(1).double()
    return total, mask[:, 1:].sum(1).double()


def _forward_pass(model, token_ids, poolings, device, progress, likelihood):
    unknown = [p for p in poolings if p not in POOLINGS]
    if unknown or not poolings:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {unknown[0] if unknown else None!r}.")
    limit = model.config.n_positions
    lengths = np.array([len(ids) for ids in token_ids])
    if lengths.max() > limit:
        raise ValueError(f"A sentence has {lengths.max()} tokens but the model reads at most {limit}; "
                         f"tokenize with max_length <= {limit}.")
    model = model.to(device)
    backbone = model.transformer
    hidden_size = model.config.n_embd
    out = np.empty((len(token_ids), len(poolings) * hidden_size), dtype=np.float32)
    log_likelihood = np.empty((len(token_ids), 2), dtype=np.float64) if likelihood else None
    done = 0
    with torch.inference_mode():
        for batch in length_batches(lengths):
            input_ids, mask = padded_batch([token_ids[i] for i in batch], device)
            hidden = backbone(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state
            for position, pooling in enumerate(poolings):
                if pooling == "mean":
                    weights = mask.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * weights).sum(1) / weights.sum(1)
                else:
                    pooled = hidden[torch.arange(len(batch), device=device), mask.sum(1) - 1]
                out[batch, position * hidden_size:(position + 1) * hidden_size] = pooled.float().cpu().numpy()
            if likelihood:
                total, count = _next_token_log_likelihood(model, hidden, input_ids, mask)
                log_likelihood[batch, 0] = (total / count.clamp(min=1)).cpu().numpy()
                log_likelihood[batch, 1] = torch.log(count.clamp(min=1)).cpu().numpy()
            done += len(batch)
            if progress:
                progress(done, len(token_ids))
    return out, log_likelihood
