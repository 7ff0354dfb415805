"""Tokens, embeddings, seeded predictions and keystone scores on real data (ECAM) are those recorded before the
redesign of issue 14 (tests/behaviour_reference.py says how they were recorded). Sentences and hard predictions must
match exactly; floating-point outputs to 1e-6, float32 rounding on one torch thread."""
import numpy as np
import pytest
import torch

from . import behaviour_reference
from .helpers import shared_path


@pytest.fixture(scope="module")
def now_and_then():
    shared_path("data", "ecam")
    torch_threads = torch.get_num_threads()
    try:
        now = behaviour_reference.compute()
    finally:
        torch.set_num_threads(torch_threads)
    return now, behaviour_reference.read()


def test_texts_are_unchanged(now_and_then):
    now, (_, texts) = now_and_then
    assert set(texts) == {k for k, v in now.items() if isinstance(v, str)}
    for name, text in texts.items():
        assert now[name] == text, name


def test_numbers_are_unchanged(now_and_then):
    now, (arrays, _) = now_and_then
    assert set(arrays) == {k for k, v in now.items() if not isinstance(v, str)}
    for name, reference in arrays.items():
        np.testing.assert_allclose(np.asarray(now[name], dtype=np.float64), reference, rtol=0, atol=1e-6,
                                   err_msg=name)
