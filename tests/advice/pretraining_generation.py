"""Pretraining and generation: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput  # noqa: F401

MODULES = (
    "q2_mgm/core/pretraining.py",
    "q2_mgm/core/generation.py",
    "q2_mgm/core/baseline_generator.py",
    "q2_mgm/actions/generative.py",
)

ADVICE = {
}
