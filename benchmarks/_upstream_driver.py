"""Times upstream MGM (microformer-mgm 0.5.8) on one task; run by benchmarks/speed.py with the upstream venv's python.

    python _upstream_driver.py CONFIG.json

CONFIG keys: task ("tokenize" or "embed"), out (a directory), and
  tokenize: table (an .npz from speed.py: CSR data/indices/indptr/shape, sample_ids, feature_ids; samples x taxa),
            repeats (MicroCorpus constructions; the median is reported)
  embed:    csv (upstream orientation: rows = taxonomy strings, columns = samples), n_forward (samples to run through
            the model, upstream's sample order), batch_size (64, as upstream)
Writes timings.json plus the outputs (tokens.npy, sample_ids.json; h_last.npy, h_mean.npy) into `out`.
Only upstream's own code runs here: MicroCorpus, its pickled MicroTokenizer and GPT2LMHeadModel.from_pretrained.
"""
import json
import pathlib
import platform
import resource
import time
import warnings

warnings.filterwarnings("ignore")  # upstream's pandas calls warn on every use (groupby axis=1)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from mgm.CLI.CLI_utils import find_pkg_resource  # noqa: E402
from mgm.src.MicroCorpus import MicroCorpus  # noqa: E402
from mgm.src.utils import CustomUnpickler  # noqa: E402
from _harness import table_from_npz, worker_config  # noqa: E402  (a sibling)


def load_tokenizer():
    # as mgm/CLI/main_construct.py does
    with open(find_pkg_resource("resources/MicroTokenizer.pkl"), "rb") as f:
        return CustomUnpickler(f).load()


def build_corpus(abu):
    tokenizer = load_tokenizer()
    start = time.perf_counter()
    corpus = MicroCorpus(abu=abu, tokenizer=tokenizer, preprocess=True, max_len=512)
    return corpus, time.perf_counter() - start


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_corpus(corpus, out):
    np.save(out / "tokens.npy", corpus.tokens.numpy().astype(np.int32))
    (out / "sample_ids.json").write_text(json.dumps([str(s) for s in corpus.data.index]))


def tokenize(cfg, out):
    table = table_from_npz(cfg["table"])
    runs = []
    for _ in range(cfg.get("repeats", 1)):
        corpus, seconds = build_corpus(table.copy())  # MicroCorpus renames the columns of the frame it is given
        runs.append(seconds)
    save_corpus(corpus, out)
    return {"n_samples_in": table.shape[0], "n_samples_kept": len(corpus), "microcorpus_s": float(np.median(runs)),
            "microcorpus_runs_s": runs}


def embed(cfg, out):
    abu = pd.read_csv(cfg["csv"], sep=",", index_col=0).T  # as MicroCorpus(data_path=...) reads a csv
    n_in = abu.shape[0]
    corpus, tokenize_s = build_corpus(abu)
    save_corpus(corpus, out)

    start = time.perf_counter()
    model = transformers.GPT2LMHeadModel.from_pretrained(find_pkg_resource("resources/general_model"))
    model.eval()
    load_s = time.perf_counter() - start

    tokens = corpus.tokens[:cfg["n_forward"]]
    batch = cfg.get("batch_size", 64)
    last, mean = [], []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(tokens), batch):
            input_ids = tokens[i:i + batch]
            mask = input_ids != 0  # <pad> = 0
            hidden = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
            lengths = mask.sum(1)
            last.append(hidden[torch.arange(len(input_ids)), lengths - 1].numpy())
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            mean.append(((hidden * weights).sum(1) / weights.sum(1)).numpy())
    forward_s = time.perf_counter() - start
    np.save(out / "h_last.npy", np.concatenate(last))
    np.save(out / "h_mean.npy", np.concatenate(mean))
    return {"n_samples_in": n_in, "n_samples_kept": len(corpus), "microcorpus_s": tokenize_s,
            "model_load_s": load_s, "n_forward": len(tokens), "batch_size": batch, "padded_to": tokens.shape[1],
            "forward_s": forward_s}


def main():
    cfg = worker_config(threads=False)
    out = pathlib.Path(cfg["out"])
    result = {"tokenize": tokenize, "embed": embed}[cfg["task"]](cfg, out)
    import importlib.metadata as md
    result["versions"] = {"python": platform.python_version(), "microformer-mgm": md.version("microformer-mgm"),
                          "torch": torch.__version__, "transformers": transformers.__version__,
                          "pandas": pd.__version__, "numpy": np.__version__}
    result["torch_threads"] = torch.get_num_threads()
    result["peak_rss_mb"] = peak_rss_mb()
    (out / "timings.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
