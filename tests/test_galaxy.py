"""Galaxy: q2galaxy writes one tool per action and each passes Galaxy's own linter; tokenize -> embed and
classify-samples run the way Galaxy runs a tool (`q2galaxy run mgm ACTION inputs.json`), with the inputs.json that
Galaxy writes from the tool's <inputs> (its `<configfiles><inputs data_style="staging_path_and_source_path"/>`)."""
import json
import os
import pathlib
import subprocess
import sys
import zipfile
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from .helpers import REPO, read_genus_table, read_metadata

LINT_PYTHON = REPO / ".venv-galaxy-lint" / "bin" / "python"

# In the linter's venv: every lint rule of Galaxy's (those `planemo lint` runs, the tool XSD among them), per tool
LINT = """
import contextlib, json, sys
from galaxy.tool_util.lint import LintContext, lint_tool_source_with
from galaxy.tool_util.parser import get_tool_source
found = {}
for path in sys.argv[1:]:
    context = LintContext(level="all")
    with contextlib.redirect_stdout(sys.stderr):  # the linter prints each message as well
        lint_tool_source_with(context, get_tool_source(path))
    found[path] = [str(message) for message in context.error_messages]
print(json.dumps(found))
"""

# Errors that q2galaxy 2022.11 and 2024.10 write into every tool of every QIIME 2 plugin (q2-feature-table's too),
# not ours to mend: each artifact input restricts its semantic types with <options><filter type="add_value">,
# which Galaxy's linter reads as a data_meta filter without a ref
Q2GALAXY_ERRORS = ("(InputsDataOptionsFilterAttribFiltersType)", "(InputsDataOptionsFiltersRef)")
# and q2galaxy writes a <test> parameter of a union of choices inside a conditional that its <inputs> does not have
# (PrimitiveUnionCase.tests_xml): the form itself is a plain select. The one such parameter is fine-tune's and
# train's `task`, a TypeMap's key: it stays one, since it types the trained model (MGMModel[Classifier] or
# [Regressor]), and QIIME 2 refuses an output type left unsolved (Classifier | Regressor) when the action runs
Q2GALAXY_UNION_TEST = ("Test param __q2galaxy__GUI__select__ not found", "Test param task not found")
Q2GALAXY_UNION_TOOLS = {"qiime2__mgm__fine_tune", "qiime2__mgm__train"}


def q2galaxy(*args, cwd, **kwargs):
    """q2galaxy as Galaxy calls it, from the venv running the tests, with this tree's q2_mgm; its tool templater
    reads versions from $CONDA_PREFIX/conda-meta, which is empty outside conda, so it falls back to installed
    packages."""
    prefix = pathlib.Path(cwd) / "conda-prefix"
    (prefix / "conda-meta").mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "CONDA_PREFIX": str(prefix), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "q2galaxy", *args], cwd=cwd, env=environment,
                            capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"q2galaxy {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    pytest.importorskip("q2galaxy", reason="q2galaxy is not installed: `make setup` installs it")
    directory = tmp_path_factory.mktemp("galaxy-tools")
    q2galaxy("template", "plugin", "mgm", str(directory), cwd=directory)
    return {path.stem: path for path in directory.rglob("qiime2__mgm__*.xml")}


def test_every_action_has_a_tool(tools, mgm_plugin):
    import qiime2.sdk
    actions = qiime2.sdk.PluginManager().plugins["mgm"].actions
    assert set(tools) == {f"qiime2__mgm__{action}" for action in actions}
    for action, path in ((a, tools[f"qiime2__mgm__{a}"]) for a in actions):
        tool = ET.parse(path).getroot()
        assert tool.find("command").text.strip() == f"q2galaxy run mgm {action} '$inputs'"
        requirements = {r.text: r.get("version") for r in tool.find("requirements")}
        assert "q2-mgm" in requirements and "q2galaxy" in requirements, requirements
        assert "NOT YET IMPLEMENTED" not in path.read_text(), f"{action}: a parameter q2galaxy cannot render"


# generate's labels are the generator's own label values (stored in the model, so no list of choices can offer them)
FREE_TEXT_LISTS = {("generate", "labels")}


def test_samples_are_chosen_from_datasets_not_typed(tools):
    """A list of typed values renders as a repeat of text boxes: only where no dataset or choice can offer them."""
    typed = {(tool[len("qiime2__mgm__"):], repeat.get("name"))
             for tool, path in tools.items() for repeat in ET.parse(path).getroot().iter("repeat")
             if repeat.find("param[@type='text']") is not None}
    assert typed == FREE_TEXT_LISTS, typed
    repeat = ET.parse(tools["qiime2__mgm__keystone_report"]).getroot().find(".//repeat[@name='attention_samples']")
    sources = repeat.findall(".//param[@name='source']")
    assert {param.get("type") for param in sources} == {"data"} and "IDs" in repeat.get("help")


@pytest.fixture(scope="module")
def lint_errors(tools):
    """{tool: [its errors]} from Galaxy's linter, q2galaxy's own errors (above) left out."""
    if not os.access(LINT_PYTHON, os.X_OK):
        pytest.skip(f"{LINT_PYTHON} is absent: the Galaxy linter (galaxy-tool-util) is installed by "
                    "scripts/setup.sh and scripts/setup-qiime2-2024.10.sh")
    result = subprocess.run([str(LINT_PYTHON), "-c", LINT, *map(str, tools.values())], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    def theirs(tool):
        return Q2GALAXY_ERRORS + (Q2GALAXY_UNION_TEST if tool in Q2GALAXY_UNION_TOOLS else ())
    found = {pathlib.Path(path).stem: errors for path, errors in json.loads(result.stdout).items()}
    return {tool: [e for e in errors if not any(known in e for known in theirs(tool))]
            for tool, errors in found.items()}


def test_every_tool_form_passes_galaxys_linter(lint_errors):
    """The tool as a Galaxy user meets it: inputs, outputs, command, help, citations, the XSD."""
    errors = {tool: [e for e in found if "(Tests" not in e] for tool, found in lint_errors.items()}
    assert not any(errors.values()), json.dumps(errors, indent=1)


def test_every_tool_test_passes_galaxys_linter(lint_errors):
    """The <tests> q2galaxy writes from the usage examples (`planemo test` runs them)."""
    errors = {tool: [e for e in found if "(Tests" in e] for tool, found in lint_errors.items()}
    assert not any(errors.values()), json.dumps(errors, indent=1)


# --- a minimal Galaxy: the inputs.json it writes for a tool's form, left at its defaults except where set ---

def _param_value(param, chosen):
    kind = param.get("type")
    name = param.get("name")
    if name in chosen:
        return chosen[name]
    if kind == "select":
        options = param.findall("option")
        selected = [o for o in options if o.get("selected") == "true"] or options[:1]
        return selected[0].get("value") if selected else None
    if kind == "boolean":
        return param.get("checked") == "true"
    if kind in ("integer", "float"):
        value = param.get("value")
        return None if value in (None, "") else (int if kind == "integer" else float)(value)
    if kind == "data":
        return None
    return param.get("value", "")


def galaxy_inputs(element, chosen):
    """The JSON Galaxy writes for the <inputs> (or section, or when) element: {name: value}, conditionals as
    {test param: value, the chosen case's params}, sections as dicts, repeats as lists (from `chosen`)."""
    values = {}
    for child in element:
        name = child.get("name")
        if child.tag == "param":
            values[name] = _param_value(child, chosen)
        elif child.tag == "section":
            values[name] = galaxy_inputs(child, chosen)
        elif child.tag == "repeat":
            values[name] = chosen.get(name, [])
        elif child.tag == "conditional":
            if name in chosen:
                values[name] = chosen[name]
                continue
            test = child.find("param")
            value = _param_value(test, chosen)
            case = next(w for w in child.findall("when") if w.get("value") == value)
            values[name] = {test.get("name"): value, **galaxy_inputs(case, chosen)}
    return values


class Dataset(str):
    """A dataset chosen in the form; Galaxy writes it as the tool's <configfiles><inputs data_style> says."""


def dataset(path):
    return Dataset(path)


def with_data_style(value, style):
    """The datasets in `value` as Galaxy writes them: q2galaxy 2024.10 asks for "staging_path_and_source_path",
    2022.11 for "paths"."""
    if isinstance(value, Dataset):
        return str(value) if style == "paths" else {"staging_path": str(value), "source_path": str(value)}
    if isinstance(value, dict):
        return {key: with_data_style(item, style) for key, item in value.items()}
    if isinstance(value, list):
        return [with_data_style(item, style) for item in value]
    return value


def tsv_column(path, column):
    """A metadata column from a tabular dataset: Galaxy's data_column is 1-based and counts the ID column."""
    header = pd.read_csv(path, sep="\t", nrows=0).columns.tolist()
    return {"type": "tsv", "source": dataset(path), "column": [str(header.index(column) + 1)]}


def run_tool(tools, action, chosen, workdir):
    """Writes inputs.json from the tool's form as Galaxy would and runs the tool's command in workdir."""
    tool = ET.parse(tools[f"qiime2__mgm__{action}"]).getroot()
    style = tool.find("configfiles/inputs").get("data_style")
    inputs = with_data_style(galaxy_inputs(tool.find("inputs"), chosen), style)
    workdir.mkdir(exist_ok=True)
    (workdir / "inputs.json").write_text(json.dumps(inputs))
    q2galaxy("run", "mgm", action, "inputs.json", cwd=workdir)
    return workdir


@pytest.fixture(scope="module")
def twins_files(tmp_path_factory):
    """The twins as a Galaxy user uploads them: table.qza, and the sample metadata as a tabular dataset."""
    import qiime2
    directory = tmp_path_factory.mktemp("galaxy-twins")
    qiime2.Artifact.import_data("FeatureTable[Frequency]", read_genus_table("twins").astype(float)).save(
        str(directory / "table.qza"))
    metadata = read_metadata("twins")
    metadata["bmi_category"] = metadata.bmi_category.where(metadata.bmi_category.isin(["Lean", "Obese"]))
    metadata.to_csv(directory / "metadata.tsv", sep="\t")
    return directory


def test_tokenize_then_embed_as_galaxy_runs_them(tools, twins_files, tmp_path):
    import qiime2
    from q2_mgm.core.tokenizer import Corpus
    tokenized = run_tool(tools, "tokenize", {"table": dataset(twins_files / "table.qza")}, tmp_path / "tokenize")
    general = run_tool(tools, "general_model", {}, tmp_path / "general-model")
    embedded = run_tool(tools, "embed", {"corpus": dataset(tokenized / "corpus.qza"),
                                         "model": dataset(general / "model.qza"), "pooling": "last"},
                        tmp_path / "embed")
    corpus = qiime2.Artifact.load(str(tokenized / "corpus.qza"))
    assert str(corpus.type) == "SampleData[MGMCorpus]"
    samples = corpus.view(Corpus).samples.index
    assert len(samples) == 278
    embeddings = qiime2.Artifact.load(str(embedded / "embeddings.qza"))
    assert str(embeddings.type) == "PCoAResults"
    vectors = embeddings.view(pd.DataFrame)
    assert vectors.shape == (278, 256) and set(vectors.index) == set(samples)
    # the same numbers as the Artifact API gives for the same corpus and model, with the pooling chosen in the form
    from qiime2.plugins import mgm
    direct, = mgm.actions.embed(corpus=corpus, model=qiime2.Artifact.load(str(general / "model.qza")),
                                pooling="last")
    pd.testing.assert_frame_equal(vectors, direct.view(pd.DataFrame).loc[vectors.index], atol=1e-5, rtol=1e-4)


@pytest.mark.one_torch_thread
def test_classify_samples_as_galaxy_runs_it(tools, twins_files, tmp_path):
    import qiime2
    metadata = twins_files / "metadata.tsv"
    workdir = run_tool(tools, "classify_samples", {
        "table": dataset(twins_files / "table.qza"),
        "metadata": tsv_column(metadata, "bmi_category"),
        "groups": tsv_column(metadata, "subject"),
        "n_estimators": 50, "forest_trees": 50}, tmp_path / "classify")
    outputs = {path.name for path in workdir.iterdir()}
    assert {"trained_model.qza", "history.qza", "predictions.qza", "probabilities.qza",
            "evaluation.qzv"} <= outputs, outputs
    model = qiime2.Artifact.load(str(workdir / "trained_model.qza"))
    assert str(model.type) == "MGMModel[Classifier]"
    predictions = qiime2.Artifact.load(str(workdir / "predictions.qza")).view(pd.Series)
    probabilities = qiime2.Artifact.load(str(workdir / "probabilities.qza")).view(pd.DataFrame)
    labelled = read_metadata("twins").bmi_category
    labelled = labelled[labelled.isin(["Lean", "Obese"])]
    assert set(predictions.index) <= set(labelled.index) and 40 <= len(predictions) <= 80
    assert set(predictions) <= {"Lean", "Obese"} and sorted(probabilities.columns) == ["Lean", "Obese"]
    assert ((probabilities.sum(axis=1) - 1).abs() < 1e-6).all()
    # the held-out subjects are whole: no subject on both sides (the groups column reached the action)
    subjects = read_metadata("twins").subject
    trained_on = set(labelled.index) - set(predictions.index)
    assert not set(subjects[predictions.index]) & set(subjects[list(trained_on)])
    # the settings chosen in the form reached the action
    with zipfile.ZipFile(workdir / "trained_model.qza") as archive:
        recorded = archive.read(f"{model.uuid}/provenance/action/action.yaml").decode()
    assert "forest_trees: 50" in recorded and "n_estimators: 50" in recorded
