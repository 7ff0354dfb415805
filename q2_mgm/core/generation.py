"""Sample synthetic sentences from an MGM language model (upstream's `mgm generate`), optionally prompted by a
label token: `<bos> [<label>] g__... <eos>`. Unlike upstream, which only bans label tokens, the sampler also bans
<pad>, <mask> and <bos>, every genus already in the sentence (a genus appears once in a real sentence; upstream's
samples can repeat one) and <eos> before the first genus (a sample has at least one genus)."""
from typing import Hashable, List, Optional, Sequence

import numpy as np
import torch
import transformers

from .pretraining import label_token
from .settings import SAMPLING
from .vocab import BOS_ID, EOS_ID, MASK_ID, PAD_ID, SPECIAL_TOKENS, Vocabulary, is_label_token, label_ids

SAMPLES_PER_BATCH = 64  # fixed, not device-dependent: the random draws, hence the samples, depend on it


class GenerationError(ValueError):
    """Settings that cannot generate sentences; the message names the problem and the fix."""


class _SentenceRules(transformers.LogitsProcessor):
    """Bans fixed tokens (specials, labels), tokens already in the sequence, and <eos> right after the prompt."""

    def __init__(self, banned, prompt_length):
        self.banned, self.prompt_length = banned, prompt_length

    def __call__(self, input_ids, scores):
        scores = scores.index_fill(1, self.banned.to(scores.device), -torch.inf)
        scores = scores.scatter(1, input_ids, -torch.inf)
        if input_ids.shape[1] == self.prompt_length:
            scores[:, EOS_ID] = -torch.inf
        return scores


def _prompt(vocabulary, prompt_label):
    if prompt_label is None:
        return [BOS_ID]
    token = prompt_label if is_label_token(str(prompt_label)) else label_token(prompt_label)
    if token not in vocabulary.index:
        known = [vocabulary.tokens[i] for i in label_ids(vocabulary)]
        raise GenerationError(f"The model has no label token {token!r}; its labels are "
                              f"{', '.join(known) if known else 'none (it was pretrained without labels)'}.")
    return [BOS_ID, vocabulary.index[token]]


def _check(model, vocabulary, n_samples, temperature, top_k, top_p, max_length, prompt_length):
    if not isinstance(model, transformers.GPT2LMHeadModel):
        raise GenerationError(f"Generation needs a language model (GPT2LMHeadModel), not a {type(model).__name__} "
                              "(a classifier or regressor's network); generate from a generator (pretrain-generator), "
                              "a model from pretrain or the general model (general-model).")
    if model.get_input_embeddings().num_embeddings != len(vocabulary):
        raise GenerationError(f"The model has {model.get_input_embeddings().num_embeddings} token embeddings but "
                              f"the vocabulary {len(vocabulary)} tokens: they do not belong together.")
    if n_samples < 1:
        raise GenerationError(f"n_samples is {n_samples}; ask for at least one sample.")
    if not temperature > 0:
        raise GenerationError(f"temperature is {temperature}; it must be positive (1 samples the model as is).")
    if top_k < 0 or not 0 < top_p <= 1:
        raise GenerationError(f"top_k ({top_k}) must be >= 0 (0: no limit) and top_p ({top_p}) in (0, 1].")
    if not prompt_length < max_length <= model.config.n_positions:
        fix = (f" This model reads no more than its prompt: generate from a model of at least {prompt_length + 1} "
               "positions (pretrain from_scratch with a larger n_positions, then pretrain-generator from it)."
               if model.config.n_positions <= prompt_length else "")
        raise GenerationError(f"max_length is {max_length}; it must exceed the prompt ({prompt_length} tokens) and "
                              f"be at most the model's {model.config.n_positions} positions.{fix}")


def generate(model: transformers.GPT2LMHeadModel, vocabulary: Vocabulary, n_samples: int,
             prompt_label: Optional[Hashable] = None, temperature: float = SAMPLING["temperature"],
             top_k: int = SAMPLING["top_k"], top_p: float = SAMPLING["top_p"], max_length: Optional[int] = None,
             random_state: int = 0, device: str = "cpu") -> List[np.ndarray]:
    """n_samples sentences as (n_tokens,) int64 token-id arrays `<bos> [<label>] g__... <eos>` (no <eos> where a
    sentence reached max_length tokens, as the tokenizer truncates). prompt_label: a label token (`<label:Vaginal>`)
    or the bare label. The same random_state gives the same sentences on the same device; the global torch RNG is
    untouched."""
    prompt = _prompt(vocabulary, prompt_label)
    max_length = max_length or model.config.n_positions
    _check(model, vocabulary, n_samples, temperature, top_k, top_p, max_length, len(prompt))
    banned = torch.tensor([PAD_ID, MASK_ID, BOS_ID, *label_ids(vocabulary)])
    config = transformers.GenerationConfig(
        do_sample=True, temperature=temperature, top_k=top_k, top_p=top_p, max_length=max_length,
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    rules = transformers.LogitsProcessorList([_SentenceRules(banned, len(prompt))])
    model = model.to(device).eval()
    sentences = []
    with torch.random.fork_rng(devices=[torch.device(device)] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(random_state)
        for start in range(0, n_samples, SAMPLES_PER_BATCH):
            rows = min(SAMPLES_PER_BATCH, n_samples - start)
            input_ids = torch.tensor([prompt] * rows, device=device)
            with torch.inference_mode():
                output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                        generation_config=config, logits_processor=rules)
            sentences += [_trim(row) for row in output.cpu().numpy()]
    return sentences


def _trim(row):
    """The sentence up to and including its <eos>; generate pads the rows that finished early."""
    ends = np.flatnonzero(row == EOS_ID)
    return row[:ends[0] + 1] if len(ends) else row


def decode(token_ids: Sequence[np.ndarray], vocabulary: Vocabulary) -> List[str]:
    """Sentences as text, `<bos> g__A g__B <eos>`, as the tokenizer writes them."""
    return [" ".join(vocabulary.tokens[ids]) for ids in token_ids]


def sentences_to_genera(token_ids: Sequence[np.ndarray], vocabulary: Vocabulary) -> List[List[str]]:
    """The genera of each sentence, in rank order, without special and label tokens."""
    return [[token for token in vocabulary.tokens[ids] if token not in SPECIAL_TOKENS and not is_label_token(token)]
            for ids in token_ids]
