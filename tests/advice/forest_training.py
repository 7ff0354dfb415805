"""Fine-tuning, the forests and the supervised actions: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput  # noqa: F401

MODULES = (
    "q2_mgm/core/forest.py",
    "q2_mgm/core/baselines.py",
    "q2_mgm/core/training/__init__.py",
    "q2_mgm/core/training/batch_corrected.py",
    "q2_mgm/core/training/blend.py",
    "q2_mgm/core/training/decision.py",
    "q2_mgm/core/training/fitting.py",
    "q2_mgm/core/training/head.py",
    "q2_mgm/core/training/networks.py",
    "q2_mgm/core/training/settings.py",
    "q2_mgm/core/training/targets.py",
    "q2_mgm/core/training/trained.py",
    "q2_mgm/core/training/trainer.py",
    "q2_mgm/actions/supervised/methods.py",
)

ADVICE = {
}
