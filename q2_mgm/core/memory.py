"""Fail early, with the size needed and how to reduce it, rather than be killed by the kernel halfway through."""
import pathlib
from typing import Optional

# measured in benchmarks/speed.py: tokenizing 260,000 samples (52 M non-zeros) added 1.74 GB, ~33 bytes each
TOKENIZE_BYTES_PER_NONZERO = 40
TOKENIZE_BYTES_PER_SAMPLE = 1024  # the report row and the sentence string's overhead


class InsufficientMemory(MemoryError):
    """The work needs more memory than the machine has free; the message names the size and the way out."""


def available_bytes() -> Optional[int]:
    """MemAvailable from /proc/meminfo; None where the kernel does not say (then nothing is checked)."""
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def tokenize_needs(n_samples: int, n_nonzero: int) -> int:
    return TOKENIZE_BYTES_PER_NONZERO * n_nonzero + TOKENIZE_BYTES_PER_SAMPLE * n_samples


def check_tokenize_fits(n_samples: int, n_nonzero: int, available: Optional[int] = None) -> None:
    available = available_bytes() if available is None else available
    needed = tokenize_needs(n_samples, n_nonzero)
    if available is not None and needed > available:
        raise InsufficientMemory(
            f"Tokenizing {n_samples:,} samples with {n_nonzero:,} non-zero values needs about {needed / 1e9:.1f} GB "
            f"of memory, but only {available / 1e9:.1f} GB are free. Collapse the table to genus level first "
            "(qiime taxa collapse --p-level 6), or split its samples into parts (qiime feature-table "
            "filter-samples) and tokenize, embed or pretrain on each part.")
