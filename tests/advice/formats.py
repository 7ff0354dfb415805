"""The artifact formats' validation and the transformers: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput  # noqa: F401

MODULES = (
    "q2_mgm/_formats.py",
    "q2_mgm/_transformers.py",
    "q2_mgm/core/cross_validation_store.py",
)

ADVICE = {
}
