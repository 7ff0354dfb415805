"""Tokenizing a table too large for the free memory fails before any work, naming the size and the way out."""
import pytest

from q2_mgm.core import memory
from q2_mgm.core.tokenizer import tokenize_dataframe


def test_the_machine_reports_free_memory():
    assert memory.available_bytes() > 100e6


def test_too_little_memory_is_a_clear_early_error(ecam_counts, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 50_000)
    n_nonzero = int((ecam_counts.to_numpy() > 0).sum())
    needed = memory.tokenize_needs(len(ecam_counts), n_nonzero)
    with pytest.raises(memory.InsufficientMemory, match=rf"{len(ecam_counts)} samples with {n_nonzero:,} non-zero "
                                                        rf"values needs about {needed / 1e9:.1f} GB.*taxa collapse"):
        tokenize_dataframe(ecam_counts)


def test_the_estimate_covers_the_measured_scale_run():
    # benchmarks/speed.py: 260,000 samples, 52,250,774 non-zeros: tokenizing added 1.74 GB
    assert 1.74e9 < memory.tokenize_needs(260_000, 52_250_774) < 4e9
