"""The plugin as QIIME 2 sees it: every usage example runs, every action is described and constrained, citations
load, and q2cli lists the commands."""
import os
import re
import subprocess

import pytest
from qiime2.plugin.testing import TestPluginBase

from .helpers import QIIME


class UsageExamples(TestPluginBase):
    package = "q2_mgm"  # TestPluginBase finds the plugin by the top-level package name

    def test_every_example_runs(self):
        examples = [name for action in self.plugin.actions.values() for name in action.examples]
        assert {"tokenize_a_table", "get_the_general_model", "embed_samples", "summarize_a_corpus"} <= \
            set(examples)
        self.execute_examples()


@pytest.fixture(scope="module")
def plugin():
    import qiime2.sdk
    return qiime2.sdk.PluginManager().plugins["mgm"]


PATH_WORDS = re.compile(r"(^|_)(path|file|filename|filepath|dir|directory|fp|folder)($|_)")


FREE_TEXT = {"labels"}  # label values as the user wrote them in the metadata; other strings are enumerations


def _predicate_name(qiime_type):
    predicate = getattr(qiime_type, "predicate", None)
    return None if predicate is None else type(getattr(predicate, "template", predicate)).__name__


def test_the_core_actions_are_registered(plugin):
    assert {"tokenize", "general_model", "embed", "summarize_corpus"} <= set(plugin.actions)


def test_every_action_is_described_and_constrained(plugin):
    problems = []
    for action_id, action in plugin.actions.items():
        signature = action.signature
        if not (action.name and action.description):
            problems.append(f"{action_id}: no name or description")
        if not action.examples:
            problems.append(f"{action_id}: no usage example")
        for kind in ("inputs", "parameters", "outputs"):
            for name, spec in getattr(signature, kind).items():
                if kind == "outputs" and str(spec.qiime_type) == "Visualization" and action.type == "visualizer":
                    continue  # a visualizer's one output is described by QIIME 2 itself
                description = spec.description
                if not isinstance(description, str) or not description.strip():
                    problems.append(f"{action_id}: {kind[:-1]} {name} has no description")
        for name, spec in signature.parameters.items():
            if PATH_WORDS.search(name):
                problems.append(f"{action_id}: parameter {name} looks like a file path")
            for member in spec.qiime_type:  # union members, e.g. Int % Range | Float % Range
                if getattr(member, "name", None) in ("List", "Set"):
                    member = member.fields[0]  # List[Str]: the rules apply to its elements
                base = getattr(member, "name", None)
                if base in ("Int", "Float") and _predicate_name(member) != "Range":
                    problems.append(f"{action_id}: numeric parameter {name} ({member}) has no Range")
                if base == "Str" and _predicate_name(member) != "Choices" and name not in FREE_TEXT:
                    problems.append(f"{action_id}: Str parameter {name} ({member}) has no Choices")
    assert not problems, "\n".join(problems)


def test_citations_load(plugin):
    assert plugin.citations and all(c.fields.get("title") for c in plugin.citations)
    keys = set()
    for action_id, action in plugin.actions.items():
        assert action.citations, f"{action_id} cites nothing"
        keys |= {c.fields["title"] for c in action.citations}
    assert any("MGM" in title for title in keys)


def test_cli_lists_the_commands():
    if not os.access(QIIME, os.X_OK):
        pytest.skip(f"{QIIME} is absent: the CLI check needs `make setup` (it writes the q2cli wrapper)")
    result = subprocess.run([str(QIIME), "mgm", "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for command in ("tokenize", "embed", "general-model", "summarize-corpus"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), (command, result.stdout)


def test_cli_help_shows_usage_examples():
    if not os.access(QIIME, os.X_OK):
        pytest.skip(f"{QIIME} is absent: the CLI check needs `make setup` (it writes the q2cli wrapper)")
    result = subprocess.run([str(QIIME), "mgm", "fine-tune", "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    examples = result.stdout[result.stdout.index("Examples:"):]
    assert "qiime mgm fine-tune" in examples and "--m-metadata-column delivery" in examples
