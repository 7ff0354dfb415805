"""Realism of generated samples and the reconstructors: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput  # noqa: F401

MODULES = (
    "q2_mgm/core/realism.py",
    "q2_mgm/core/reconstruction/__init__.py",
    "q2_mgm/core/reconstruction/base.py",
    "q2_mgm/core/reconstruction/neural.py",
    "q2_mgm/core/reconstruction/simple.py",
    "q2_mgm/visualizers/evaluate_generated.py",
)

ADVICE = {
}
