"""q2-mgm tokenize at MGnify scale, in its own process so that its memory can be read; run by benchmarks/speed.py.

    python _scale_worker.py CONFIG.json

CONFIG keys: n_samples, n_nonzero (mean non-zero genera per sample), seed, out (a directory), n_slice (rows of the
table saved for upstream's estimate and an exact comparison). Writes scale.json, slice.npz, slice_sentences.json.

The table is built directly as a scipy CSR matrix (never dense): genus popularity follows a Zipf law over a random
ranking of MGM's 9,665 genera; each sample draws genera by popularity (with replacement, a log-normal number of
draws, so richness varies between samples) and keeps the distinct ones, ~n_nonzero on average; abundances are
log-normal counts. Memory is read from /proc/self/status: VmRSS (now) and VmHWM (peak), the peak reset
between building the input and tokenizing (`echo 5 > /proc/self/clear_refs`) so that each phase has its own peak.
"""
import gc
import json
import pathlib
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import erfinv

from q2_mgm.core.tokenizer import tokenize_matrix
from q2_mgm.core.vocab import genus_statistics
from _harness import memory_mb, reset_peak, save_table, taxonomy_string, worker_config  # noqa: E402  (a sibling)

ZIPF_EXPONENT = 1.0
RICHNESS_SD = 0.5
CHUNK = 20_000


def draws_for(p, target, richness):
    """Mean draws with replacement such that samples whose draws are scaled by `richness` hold `target`
    distinct genera on average."""
    def expected_distinct(k):
        return np.mean([(1 - (1 - p) ** (k * r)).sum() for r in richness])
    lo, hi = 1, 50 * target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if expected_distinct(mid) < target else (lo, mid)
    return hi


def mgnify_like(n_samples, n_nonzero, seed, n_genera):
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (rng.permutation(n_genera) + 1.0) ** ZIPF_EXPONENT
    popularity /= popularity.sum()
    cdf = np.cumsum(popularity)
    cdf[-1] = 1.0
    # per-sample richness varies log-normally (sd 0.5 on the log scale) around the mean number of draws
    quantiles = np.exp(RICHNESS_SD * np.sqrt(2) * erfinv(np.linspace(-0.99, 0.99, 199)) - RICHNESS_SD ** 2 / 2)
    k = draws_for(popularity, n_nonzero, quantiles)
    indices, counts = [], []
    for start in range(0, n_samples, CHUNK):
        m = min(CHUNK, n_samples - start)
        draws = np.maximum(np.round(k * rng.lognormal(-RICHNESS_SD ** 2 / 2, RICHNESS_SD, m)), 1).astype(np.int64)
        rows = np.repeat(np.arange(m, dtype=np.int64), draws)
        key = rows * n_genera + np.searchsorted(cdf, rng.random(len(rows)), side="right")
        del rows
        key.sort()
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        indices.append((key % n_genera).astype(np.int32))
        counts.append(np.bincount(key // n_genera, minlength=m))
        del key
    indices = np.concatenate(indices)
    indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=indptr[1:])
    data = np.round(rng.lognormal(mean=3.0, sigma=2.0, size=len(indices))) + 1.0  # counts >= 1
    return sp.csr_matrix((data, indices, indptr), shape=(n_samples, n_genera)), k


def main():
    cfg = worker_config(threads=False)
    out = pathlib.Path(cfg["out"])
    result = {"config": cfg, "memory_mb": {"after_imports": memory_mb()}}

    genera = genus_statistics().index.to_numpy()
    feature_ids = pd.Index([taxonomy_string(g) for g in genera])
    sample_ids = pd.Index([f"MGYS{i:07d}" for i in range(cfg["n_samples"])])
    start = time.perf_counter()
    matrix, draws = mgnify_like(cfg["n_samples"], cfg["n_nonzero"], cfg["seed"], len(genera))
    result["build_s"] = time.perf_counter() - start
    gc.collect()
    nnz_per_sample = np.diff(matrix.indptr)
    result["input"] = {
        "shape": list(matrix.shape), "nnz": int(matrix.nnz), "mean_draws_per_sample": int(draws),
        "nonzero_per_sample": {"mean": float(nnz_per_sample.mean()), "min": int(nnz_per_sample.min()),
                               "max": int(nnz_per_sample.max())},
        "genera_present": int((np.bincount(matrix.indices, minlength=matrix.shape[1]) > 0).sum()),
        "csr_mb": (matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes) / 2**20}
    result["memory_mb"]["after_build"] = memory_mb()

    result["peak_reset"] = reset_peak()
    start = time.perf_counter()
    corpus = tokenize_matrix(matrix, sample_ids, feature_ids, max_length=512)
    result["tokenize_s"] = time.perf_counter() - start
    result["memory_mb"]["after_tokenize"] = memory_mb()
    samples = corpus.samples
    result["output"] = {"n_samples_kept": len(samples), "n_dropped": len(corpus.dropped_samples),
                        "mean_n_tokens": float(samples["n_tokens"].mean()),
                        "n_truncated": int(samples["truncated"].sum()),
                        "sentence_chars": int(samples["sentence"].str.len().sum())}

    n = min(cfg["n_slice"], matrix.shape[0])
    head = matrix[:n]
    save_table(out / "slice.npz", head, sample_ids[:n], feature_ids)
    kept = samples.loc[samples.index.isin(sample_ids[:n])]
    (out / "slice_sentences.json").write_text(json.dumps(dict(zip(kept.index, kept["sentence"]))))
    (out / "scale.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
