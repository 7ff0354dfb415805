"""Pretrains with upstream MGM's own recipe (microformer-mgm 0.5.8: `mgm construct`, `mgm pretrain --from-scratch`)
and times it; run by benchmarks/pretrain.py with the upstream venv's python.

    python _pretrain_upstream.py CONFIG.json

CONFIG keys: csv (upstream's orientation: rows = genera, columns = samples), out (a directory), n_layer, n_head,
n_embd, n_positions, epochs, batch_size, threads (torch threads), device (cpu or cuda), seed, max_steps (0: whole
epochs; else stop after that many optimizer steps, a partial epoch, for runs whose steps take a minute each).

Only upstream's own code runs here, as its CLI runs it: MicroCorpus(data_path=csv, its pickled MicroTokenizer,
max_len from its config.ini) as `mgm construct` does, then main_pretrain.py's recipe: GPT2Config from the [GPT2]
section with the sizes above, GPT2LMHeadModel(config) from scratch, random_split 0.9 / 0.1 (its --val-split
default), DataCollatorForLanguageModeling(mlm=False), Trainer with the [pretrain] arguments (learning rate,
warmup steps, weight decay, batch size, group_by_length, linear schedule, logging steps). Changed for timing:
num_train_epochs (CONFIG epochs; or max_steps), no evaluation and no checkpoints during training (upstream
evaluates and saves every 500 steps, which a run this short never reaches; load_best_model_at_end and the
EarlyStoppingCallback that need them are dropped with them), the split seeded (upstream's --seed is unset), no
progress bar, no report_to integrations, and the model is not saved at the end. Instrumentation only: the data
collator is wrapped to count the real (non-pad) and padded tokens of every batch.
Writes result.json into `out`: times, token counts of the training split, memory (VmHWM reset just before
training, so that its peak is the training's), versions.
"""
import json
import pathlib
import platform
import resource
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")  # upstream's pandas calls warn on every use (groupby axis=1)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from torch.utils.data import random_split  # noqa: E402
from transformers import (DataCollatorForLanguageModeling, GPT2Config, GPT2LMHeadModel, Trainer,  # noqa: E402
                          TrainingArguments)

from mgm.CLI.CLI_utils import find_pkg_resource, get_CFG_reader  # noqa: E402
from mgm.src.MicroCorpus import MicroCorpus  # noqa: E402
from mgm.src.utils import CustomUnpickler  # noqa: E402
from _harness import memory_mb, reset_peak, worker_config  # noqa: E402  (a sibling)

torch.set_float32_matmul_precision("medium")  # as main_pretrain.py does at import


def main():
    cfg = worker_config()
    out = pathlib.Path(cfg["out"])
    device = cfg.get("device", "cpu")
    ini = get_CFG_reader()  # upstream's default config.ini, as its CLI reads it without --config

    start = time.perf_counter()
    with open(find_pkg_resource("resources/MicroTokenizer.pkl"), "rb") as f:  # as main_construct.py does
        tokenizer = CustomUnpickler(f).load()
    corpus = MicroCorpus(data_path=cfg["csv"], tokenizer=tokenizer, max_len=ini.getint("construct", "max_len"),
                         preprocess=True)
    construct_s = time.perf_counter() - start

    config = GPT2Config(model_type=ini.get("GPT2", "model_type"), vocab_size=tokenizer.vocab_size,
                        n_positions=cfg["n_positions"], n_embd=cfg["n_embd"], n_layer=cfg["n_layer"],
                        n_head=cfg["n_head"], bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(cfg.get("seed", 0))
    model = GPT2LMHeadModel(config).train()
    torch.manual_seed(cfg.get("seed", 0))  # upstream's split draws from the global generator (--seed unset: random)
    train_set, val_set = random_split(corpus, [0.9, 0.1])
    train_idx = np.asarray(train_set.indices)
    lengths = (corpus.tokens != tokenizer.pad_token_id).sum(1).numpy()

    p = "pretrain"
    batches = []  # (rows, real tokens, padded tokens) of every batch collated
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            learning_rate=ini.getfloat(p, "learning_rate"), do_train=True, do_eval=True, group_by_length=True,
            length_column_name="length", disable_tqdm=True, lr_scheduler_type="linear",
            warmup_steps=ini.getint(p, "warmup_steps"), weight_decay=ini.getfloat(p, "weight_decay"),
            per_device_train_batch_size=cfg["batch_size"], num_train_epochs=cfg["epochs"],
            max_steps=cfg.get("max_steps") or -1,
            evaluation_strategy="no", save_strategy="no", logging_steps=ini.getint(p, "logging_steps"),
            output_dir=f"{scratch}/pretrain_checkpoints", logging_dir=scratch, load_best_model_at_end=False,
            report_to=[], no_cuda=device == "cpu", seed=cfg.get("seed", 0))
        collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False)

        def counting_collator(examples):
            batch = collator(examples)
            batches.append((batch["input_ids"].shape[0], int((batch["input_ids"] != tokenizer.pad_token_id).sum()),
                            batch["input_ids"].numel()))
            return batch

        trainer = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=val_set,
                          data_collator=counting_collator)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        before = memory_mb()
        peak_reset = reset_peak()
        start = time.perf_counter()
        output = trainer.train()
        if device == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - start
        after = memory_mb()
    # accelerate's data loader collates one batch ahead, so a run cut by max_steps collates a batch it never trains
    # on: count the batches of the steps taken (one batch per step: no gradient accumulation)
    steps = trainer.state.global_step
    counts = {"batches": steps, "rows": sum(b[0] for b in batches[:steps]),
              "real_tokens": sum(b[1] for b in batches[:steps]), "padded_tokens": sum(b[2] for b in batches[:steps]),
              "batches_collated": len(batches)}
    import importlib.metadata as md
    result = {
        "n_samples": len(corpus), "n_train": len(train_idx), "n_validation": len(val_set),
        "sample_ids": [str(s) for s in corpus.data.index],
        "train_sample_ids": [str(corpus.data.index[i]) for i in train_idx],
        "counts": {"train": counts}, "max_steps": cfg.get("max_steps") or 0,
        "train_split_real_tokens": int(lengths[train_idx].sum()), "padded_to": int(corpus.tokens.shape[1]),
                "lengths": [int(v) for v in lengths],
        "construct_s": construct_s, "train_s": train_s, "eval_s": 0.0,
        "trainer_train_runtime_s": output.metrics.get("train_runtime"), "steps": trainer.state.global_step,
        "train_loss": output.training_loss, "epochs": cfg["epochs"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "memory_mb": {"before_train": before, "after_train": after, "peak_reset": peak_reset,
                      "train_peak": after["VmHWM"] if peak_reset else None,
                      "process_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        "torch_threads": torch.get_num_threads(), "device": device,
        "versions": {"python": platform.python_version(), "microformer-mgm": md.version("microformer-mgm"),
                     "torch": torch.__version__, "transformers": transformers.__version__,
                     "accelerate": md.version("accelerate")},
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
