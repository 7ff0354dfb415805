"""Times q2-mgm's pretrain() in its own process, so that its memory can be read; run by benchmarks/pretrain.py.

    python _pretrain_worker.py CONFIG.json

CONFIG keys: tokens (an .npz: ids = all token ids concatenated, offsets, sample_ids), out (a directory), n_layer,
n_head, n_embd, n_positions, vocab_size, epochs, batch_size, threads (torch threads), device (cpu or cuda), seed.

Runs q2_mgm.core.pretraining.pretrain(new_model(new_model_config(...)), token_ids, PretrainingSettings(epochs,
batch_size, device, random_state=seed)) unchanged. Instrumentation only, nothing it computes changes: the
collator pretrain() hands the Trainer is wrapped to count real and padded tokens per batch, and Trainer.train /
Trainer.evaluate are wrapped to time them (pretrain() validates after every epoch; that time is reported apart)
and to reset the peak RSS (VmHWM) just before training. Writes result.json into `out`.
"""
import json
import pathlib
import platform
import resource
import time

import numpy as np
import torch
import transformers

from q2_mgm.core import pretraining
from _harness import memory_mb, reset_peak, worker_config  # noqa: E402  (a sibling)


def main():
    cfg = worker_config()
    out = pathlib.Path(cfg["out"])
    device = cfg.get("device", "cpu")
    z = np.load(cfg["tokens"])
    token_ids = [a.astype(np.int64) for a in np.split(z["ids"], z["offsets"][1:-1])]

    phase = {"name": "setup"}
    counts = {name: {"batches": 0, "rows": 0, "real_tokens": 0, "padded_tokens": 0} for name in ("train", "eval")}
    timing = {"train_call_s": 0.0, "eval_s": 0.0, "n_evaluations": 0}
    memory = {}

    collate = pretraining.collate

    def counting_collate(items):
        batch = collate(items)
        c = counts["eval" if phase["name"] == "eval" else "train"]
        c["batches"] += 1
        c["rows"] += batch["input_ids"].shape[0]
        c["real_tokens"] += int(batch["attention_mask"].sum())
        c["padded_tokens"] += batch["input_ids"].numel()
        return batch

    pretraining.collate = counting_collate  # pretrain() looks the name up when it builds its Trainer
    train, evaluate = transformers.Trainer.train, transformers.Trainer.evaluate

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def timed_train(self, *args, **kwargs):
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        memory["before_train"] = memory_mb()
        memory["peak_reset"] = reset_peak()
        phase["name"] = "train"
        start = time.perf_counter()
        try:
            return train(self, *args, **kwargs)
        finally:
            sync()
            timing["train_call_s"] += time.perf_counter() - start
            timing["steps"] = self.state.global_step
            memory["after_train"] = memory_mb()
            phase["name"] = "after"

    def timed_evaluate(self, *args, **kwargs):
        sync()
        previous, phase["name"] = phase["name"], "eval"
        start = time.perf_counter()
        try:
            return evaluate(self, *args, **kwargs)
        finally:
            sync()
            timing["eval_s"] += time.perf_counter() - start
            timing["n_evaluations"] += 1
            phase["name"] = previous

    transformers.Trainer.train, transformers.Trainer.evaluate = timed_train, timed_evaluate

    config = pretraining.new_model_config(cfg["vocab_size"], n_layer=cfg["n_layer"], n_head=cfg["n_head"],
                                          n_embd=cfg["n_embd"], n_positions=cfg["n_positions"])
    model = pretraining.new_model(config, random_state=cfg.get("seed", 0))
    settings = pretraining.PretrainingSettings(epochs=cfg["epochs"], batch_size=cfg["batch_size"], device=device,
                                               random_state=cfg.get("seed", 0))
    train_idx, val_idx = pretraining._split(len(token_ids), settings)  # the split pretrain() makes
    start = time.perf_counter()
    model, history = pretraining.pretrain(model, token_ids, settings, report=lambda message: None)
    pretrain_call_s = time.perf_counter() - start

    import importlib.metadata as md
    import q2_mgm
    result = {
        "n_samples": len(token_ids), "n_train": len(train_idx), "n_validation": len(val_idx),
        "sample_ids": [str(s) for s in z["sample_ids"]],
        "train_sample_ids": [str(z["sample_ids"][i]) for i in train_idx],
        "train_split_real_tokens": int(sum(len(token_ids[i]) for i in train_idx)),
        "counts": counts, "epochs": cfg["epochs"], "epochs_run": len(history),
        "pretrain_call_s": pretrain_call_s, "train_call_s": timing["train_call_s"], "eval_s": timing["eval_s"],
        "n_evaluations": timing["n_evaluations"], "steps": timing.get("steps"),
        "train_s": timing["train_call_s"] - timing["eval_s"],
        "train_loss": [float(v) for v in history.get("train_loss", [])],
        "parameters": sum(p.numel() for p in model.parameters()),
        "memory_mb": {**memory, "train_peak": memory["after_train"]["VmHWM"] if memory.get("peak_reset") else None,
                      "process_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        "torch_threads": torch.get_num_threads(), "device": device,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "versions": {"q2-mgm": q2_mgm.__version__, "python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "accelerate": md.version("accelerate")},
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
