"""The cross-study recipes, their explanations, markers and the meta-analysis: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput  # noqa: F401

MODULES = (
    "q2_mgm/core/transfer.py",
    "q2_mgm/core/contributions.py",
    "q2_mgm/core/markers.py",
    "q2_mgm/core/meta_analysis.py",
    "q2_mgm/actions/cross_validation.py",
    "q2_mgm/visualizers/evaluate.py",
)

ADVICE = {
}
