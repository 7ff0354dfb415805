"""Models, vocabularies, tokenization and inference: each error message with the test that applies its fix (see tests/advice/__init__.py)."""
from . import GUARDED, NotInput  # noqa: F401

MODULES = (
    "q2_mgm/core/models.py",
    "q2_mgm/core/vocab.py",
    "q2_mgm/core/tokenizer.py",
    "q2_mgm/core/inference.py",
    "q2_mgm/core/memory.py",
    "q2_mgm/distributed.py",
    "q2_mgm/core/taxonomy.py",
)

ADVICE = {
}
