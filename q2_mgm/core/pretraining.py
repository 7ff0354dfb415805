"""Generative MGM: pretrain a GPT-2 language model on sentences (causal LM loss), from scratch or continuing from a
pretrained model, optionally with a label token after <bos> so that generation can be prompted by a label
(upstream's `mgm pretrain --with-label`). Runs in one process or under `torchrun` (DDP; gloo on CPU)."""
import math
import os
import tempfile
from typing import Callable, Hashable, Iterable, List, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
import transformers
from sklearn.model_selection import ShuffleSplit

from .datasets import SentenceDataset, collate
from .inference import resolve_device
from .models import build_model
from .settings import GENERAL_MODEL_SIZE, PretrainingSettings
from .training import EpochProgress, epoch_history
from .vocab import BOS_ID, EOS_ID, LABEL_PREFIX, LABEL_SUFFIX, PAD_ID, SPECIAL_TOKENS, Vocabulary


class PretrainingError(ValueError):
    """Sentences, labels or settings that cannot pretrain a model; the message names the problem and the fix."""


S = GENERAL_MODEL_SIZE


def new_model_config(vocab_size: int, n_layer: int = S["n_layer"], n_head: int = S["n_head"], n_embd: int = S["n_embd"],
                     n_positions: int = S["n_positions"]) -> transformers.GPT2Config:
    """GPT2Config of upstream's general model (8 layers x 8 heads x 256, 512 positions, gelu_new, dropout 0.1) for a
    vocabulary of vocab_size tokens; smaller sizes for tests and small corpora."""
    return transformers.GPT2Config(
        vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        activation_function="gelu_new", resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, layer_norm_epsilon=1e-5,
        initializer_range=0.02, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
        architectures=["GPT2LMHeadModel"])


def new_model(config: transformers.GPT2Config, random_state: int = 0) -> transformers.GPT2LMHeadModel:
    """A randomly initialised GPT2LMHeadModel, the same weights for the same random_state."""
    transformers.set_seed(random_state)
    return build_model(config)


# --- label tokens ---

def label_token(label: Hashable) -> str:
    """`<label:Cesarean>` for the label Cesarean. Upstream adds the bare label as a token; the prefix keeps label
    tokens apart from genera and special tokens and recognisable from the vocabulary alone. Whitespace becomes `_`
    because sentences are space-separated."""
    if pd.isna(label) or not str(label).strip():
        raise PretrainingError("A sample has an empty label; every sample needs one. Drop unlabelled samples or "
                               "fill their labels first.")
    return LABEL_PREFIX + "_".join(str(label).split()) + LABEL_SUFFIX


def label_vocabulary(vocabulary: Vocabulary, labels: Iterable[Hashable]) -> Vocabulary:
    """The vocabulary with a token for each distinct label appended (sorted); labels it already holds are reused,
    so that a labelled model can be pretrained further."""
    by_token = {}
    for label in pd.unique(pd.Series(list(labels), dtype=object)):
        by_token.setdefault(label_token(label), []).append(str(label))
    clashes = [names for names in by_token.values() if len(names) > 1]
    if clashes:
        raise PretrainingError(f"The labels {' and '.join(map(repr, clashes[0]))} give the same label token "
                               f"{label_token(clashes[0][0])!r} (whitespace becomes _); rename one of them.")
    new = sorted(token for token in by_token if token not in vocabulary.index)
    return Vocabulary(list(vocabulary.tokens) + new)


def prompt_ids(token_ids: Sequence[np.ndarray], labels: Iterable[Hashable], vocabulary: Vocabulary,
               max_length: int = 512) -> List[np.ndarray]:
    """Each sentence as `<bos> <label> g__... [<eos>]` ((n_tokens,) int64), cut to max_length tokens (as upstream,
    which drops the last position to make room for the label)."""
    labels = list(labels)
    if len(labels) != len(token_ids):
        raise PretrainingError(f"There are {len(token_ids)} sentences but {len(labels)} labels; give one label per "
                               "sentence, in the same order.")
    prompted = []
    for ids, label in zip(token_ids, labels):
        token = label_token(label)
        if token not in vocabulary.index:
            raise PretrainingError(f"The vocabulary has no token {token!r}; make it with label_vocabulary "
                                   "(and grow the model with add_label_tokens) first.")
        if len(ids) == 0 or ids[0] != BOS_ID:
            raise PretrainingError("A sentence does not start with <bos>; encode tokenizer sentences "
                                   "(q2_mgm.core.inference.encode) rather than bare genera.")
        prompted.append(np.concatenate([ids[:1], [vocabulary.index[token]], ids[1:]])[:max_length].astype(np.int64))
    return prompted


def add_label_tokens(model: transformers.GPT2LMHeadModel, vocabulary: Vocabulary,
                     labels: Iterable[Hashable]) -> Tuple[transformers.GPT2LMHeadModel, Vocabulary]:
    """(model, vocabulary) grown by a token per new label, weights still tied. The new embedding rows start at the
    mean genus embedding: a neutral start inside the learned embedding cloud, the same for every label."""
    if model.get_input_embeddings().num_embeddings != len(vocabulary):
        raise PretrainingError(f"The model has {model.get_input_embeddings().num_embeddings} token embeddings but "
                               f"the vocabulary {len(vocabulary)} tokens: they do not belong together.")
    grown = label_vocabulary(vocabulary, labels)
    if len(grown) == len(vocabulary):
        return model, vocabulary
    embeddings = model.get_input_embeddings().weight
    mean = embeddings.detach()[len(SPECIAL_TOKENS):].mean(0)
    model.resize_token_embeddings(len(grown), mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(vocabulary):] = mean
    model.tie_weights()
    return model, grown


# --- the training loop ---

class _LanguageModelTrainer(transformers.Trainer):
    def log(self, logs, *args, **kwargs):
        if "eval_loss" in logs:  # perplexity from the mean token loss: no logits need keeping
            logs["eval_perplexity"] = math.exp(logs["eval_loss"]) if logs["eval_loss"] < 700 else math.inf
        super().log(logs, *args, **kwargs)


class _KeepBest(transformers.TrainerCallback):
    """Early stopping on validation loss, keeping the best epoch's weights in memory. Trainer's own
    load_best_model_at_end reads checkpoints from output_dir, which under DDP each process would need to share;
    the validation loss is gathered over the processes, so every process stops at the same epoch."""

    def __init__(self, patience):
        self.patience, self.best_loss, self.best_state, self.waited = patience, math.inf, None, 0

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        loss = metrics["eval_loss"]
        if loss < self.best_loss:
            self.best_loss, self.waited = loss, 0
            self.best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        else:
            self.waited += 1
            control.should_training_stop = self.waited >= self.patience


def _check_settings(settings):
    if settings.epochs < 1 or settings.patience < 1:
        raise PretrainingError(f"epochs ({settings.epochs}) and patience ({settings.patience}) must be at least 1.")
    if not 0 < settings.validation_fraction < 1:
        raise PretrainingError(f"validation_fraction is {settings.validation_fraction}; it must lie strictly "
                               "between 0 and 1 (validation loss decides when to stop).")


def _split(n_samples, settings):
    n_validation = math.ceil(n_samples * settings.validation_fraction)
    if n_samples - n_validation < 1:
        raise PretrainingError(f"{n_samples} sentences leave none to train on after the validation split; "
                               "give more sentences or lower validation_fraction.")
    splitter = ShuffleSplit(1, test_size=n_validation, random_state=settings.random_state)
    return next(splitter.split(np.arange(n_samples)))


def _check_inputs(model, token_ids):
    if not isinstance(model, transformers.GPT2LMHeadModel):
        raise PretrainingError(f"Pretraining needs a language model (GPT2LMHeadModel), not a "
                               f"{type(model).__name__} (a classifier or regressor's network); start from the "
                               "general model (leave `model` out) or a model from pretrain (whose from_scratch "
                               "makes one from random weights; new_model in Python).")
    if len(token_ids) < 2:
        raise PretrainingError(f"Pretraining needs at least two sentences (one to validate on); got {len(token_ids)}. "
                               "Give corpora that hold more samples (tokenize a table with more samples, or pass "
                               "more corpora); pretrain-generator counts only the samples with a label.")
    limit, vocab_size = model.config.n_positions, model.get_input_embeddings().num_embeddings
    longest = max(len(ids) for ids in token_ids)
    if longest > limit:
        raise PretrainingError(f"A sentence has {longest} tokens but the model reads at most {limit}; tokenize "
                               f"with max_length <= {limit} (or {limit - 1} with labels).")
    largest = max(int(ids.max()) for ids in token_ids)
    if largest >= vocab_size:
        raise PretrainingError(f"A sentence holds token id {largest} but the model has {vocab_size} token "
                               "embeddings; grow the model with add_label_tokens for label prompts.")


def _silent(message):
    pass


def pretrain(model: transformers.GPT2LMHeadModel, token_ids: Sequence[np.ndarray], settings: PretrainingSettings,
             report: Callable[[str], None] = print) -> Tuple[transformers.GPT2LMHeadModel, pd.DataFrame]:
    """Train a GPT2LMHeadModel on sentences ((n_tokens,) int64 arrays of token ids) with the causal LM loss; stop
    when validation loss has not improved for `patience` epochs and keep the best epoch's weights. Returns (model on
    the CPU in eval mode, history with train_loss, validation_loss, validation_perplexity per epoch). Under torchrun
    every process calls it with the same arguments and gets the same model."""
    _check_inputs(model, token_ids)
    _check_settings(settings)
    device = resolve_device(settings.device)
    train_idx, val_idx = _split(len(token_ids), settings)
    datasets = [SentenceDataset([token_ids[i] for i in idx]) for idx in (train_idx, val_idx)]
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if int(os.environ.get("RANK", "0")) != 0:
        report = _silent  # one progress report, from the first process
    report(f"pretraining on {len(train_idx)} sentences, validating on {len(val_idx)}; "
           f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}"
           + (f", {os.environ['WORLD_SIZE']} processes" if distributed else ""))
    keep_best = _KeepBest(settings.patience)
    with tempfile.TemporaryDirectory() as scratch:  # nothing is written there: no checkpoints are saved
        args = transformers.TrainingArguments(
            output_dir=scratch, num_train_epochs=settings.epochs, learning_rate=settings.learning_rate,
            per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=settings.batch_size,
            weight_decay=settings.weight_decay, warmup_ratio=settings.warmup_ratio, lr_scheduler_type="linear",
            eval_strategy="epoch", save_strategy="no", logging_strategy="epoch", prediction_loss_only=True,
            seed=settings.random_state, data_seed=settings.random_state, use_cpu=device == "cpu",
            ddp_backend="gloo" if distributed and device == "cpu" else None, report_to=[], disable_tqdm=True,
            ddp_find_unused_parameters=False, remove_unused_columns=False, dataloader_num_workers=0,
            group_by_length=True)  # batches of similar length: less padding
        trainer = _LanguageModelTrainer(
            model=model, args=args, train_dataset=datasets[0], eval_dataset=datasets[1], data_collator=collate,
            callbacks=[keep_best, EpochProgress(report)])
        trainer.remove_callback(transformers.PrinterCallback)  # EpochProgress reports each epoch instead
        trainer.train()
    model = trainer.model
    model.load_state_dict(keep_best.best_state)
    return model.cpu().eval(), epoch_history(trainer.state.log_history)
