"""Every error q2-mgm raises names a fix, and a test applies it (issue 19): this walks the `raise` statements of
every module of the plugin and fails where a raise has no entry in tests/advice (one table per area), where an entry
matches no raise, or where an entry's test does not exist. tests/advice/__init__.py says what an entry is. The
tables are the note the issue asks for: every error message with the test that applies its fix."""
import ast

import pytest

from .advice import GUARDED, NotInput, tables
from .helpers import REPO

PLUGIN = REPO / "q2_mgm"
TABLES = tables()
ADVICE = {key: value for _, advice in TABLES.values() for key, value in advice.items()}


def _first_words(node):
    """The message's opening as written, with {} for every interpolated value."""
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return ast.unparse(node)


def plugin_raises():
    """(module, function, message) of every `raise X(message, ...)` in a function of the plugin."""
    found = []
    for path in sorted(PLUGIN.rglob("*.py")):
        module = str(path.relative_to(REPO))
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                    found.append((module, function.name, _first_words(node.exc.args[0])))
    return found


def _entry(module, function, message):
    return [key for key in ADVICE if key[:2] == (module, function) and message.startswith(key[2])]


def _test_exists(node_id):
    path, *names = node_id.split("::")
    if not (REPO / path).is_file():
        return False
    scope = ast.parse((REPO / path).read_text()).body
    for name in names:
        match = [n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name]
        if not match:
            return False
        scope = match[0].body
    return True


def test_every_module_that_raises_belongs_to_one_area_and_each_entry_to_its_modules_area():
    owners = {}
    for area, (modules, _) in TABLES.items():
        for module in modules:
            owners.setdefault(module, []).append(area)
    assert not {m: a for m, a in owners.items() if len(a) > 1}, "a module listed by two areas"
    raising = {module for module, _, _ in plugin_raises()}
    assert not raising - set(owners), f"modules that raise, in no area of tests/advice: {sorted(raising - set(owners))}"
    misplaced = [(area, key) for area, (modules, advice) in TABLES.items() for key in advice if key[0] not in modules]
    assert not misplaced, f"entries in another area's table: {misplaced}"
    assert len(ADVICE) == sum(len(advice) for _, advice in TABLES.values()), "one key in two tables"


def test_every_raise_of_the_plugin_has_a_test_that_applies_its_fix():
    found = plugin_raises()
    missing = [r for r in found if len(_entry(*r)) != 1]
    assert not missing, f"{len(missing)} raises with no (or several) entries in tests/advice: {missing}"
    stale = [key for key in ADVICE if not any(_entry(*r) == [key] for r in found)]
    assert not stale, f"entries of tests/advice that match no raise: {stale}"
    absent = [test for test in ADVICE.values() if isinstance(test, str) and test != GUARDED
              and not _test_exists(test)]
    assert not absent, f"tests/advice names tests that do not exist: {absent}"
    unexplained = [key for key, value in ADVICE.items() if isinstance(value, NotInput) and len(value.why) < 20]
    assert not unexplained, f"NotInput entries that do not say which check stops the input first: {unexplained}"


@pytest.mark.parametrize("module, function, words", [k for k, v in TABLES["metadata"][1].items() if v == GUARDED])
def test_guarded_values_are_refused_by_the_registration(module, function, words):
    """What the metadata area's GUARDED entries claim: the value that raises is outside every action's Range or
    Choices (each other area's test file checks its own GUARDED entries: tests/test_fixes_<area>.py)."""
    from q2_mgm.actions.cross_validation import PARAMETERS
    from q2_mgm.actions._parameters import MISSING_SAMPLES
    guards = {"missing_samples is {}": MISSING_SAMPLES, "cv_strategy must be one of": PARAMETERS["cv_strategy"],
              "cv must be at least 2 folds": PARAMETERS["cv"]}
    bad = {"missing_samples is {}": "drop", "cv_strategy must be one of": "leave-one-out",
           "cv must be at least 2 folds": 1}
    assert bad[words] not in guards[words]


def test_metadata_ids_matched_as_advised(mgm_plugin):
    """None of the samples has a value (the metadata's IDs are written otherwise): the advice is to make them match
    the table's; with matching IDs the samples are split."""
    import numpy as np
    import pandas as pd
    import qiime2
    from q2_mgm.core.tokenizer import tokenize_dataframe
    from q2_mgm.core.training import TrainingError
    ids = [f"P{i:02d}" for i in range(12)]
    corpus = qiime2.Artifact.import_data("SampleData[MGMCorpus]", tokenize_dataframe(pd.DataFrame(
        np.arange(1.0, 25.0).reshape(12, 2), index=ids, columns=["g__Bacteroides", "g__Prevotella"])))
    written = pd.Series(["a", "b"] * 6, index=pd.Index([f"P-{i:02d}" for i in range(12)], name="id"), name="status")
    with pytest.raises(TrainingError, match="None of the corpus's 12 samples has a value.*match the table's"):
        mgm_plugin.actions.split_corpus(corpus=corpus, metadata=qiime2.CategoricalMetadataColumn(written),
                                        missing_samples="ignore")
    matched = qiime2.CategoricalMetadataColumn(written.rename(lambda s: s.replace("-", "")))
    training, test = mgm_plugin.actions.split_corpus(corpus=corpus, metadata=matched, missing_samples="ignore")
    assert len(training.view(pd.DataFrame)) + len(test.view(pd.DataFrame)) == 12
