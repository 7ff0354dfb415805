"""Keystone genera: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput  # noqa: F401

MODULES = (
    "q2_mgm/core/keystone.py",
    "q2_mgm/visualizers/keystone.py",
)

ADVICE = {
}
