"""Every command in the README runs, in README order, on the demo's data (the twins, fetched from Debian's
r-bioc-dirichletmultinomial package as `make demo` does): the q2cli commands through `.venv/bin/qiime`, the torchrun
command through the venv's torch, and the Artifact API script. A README command that stops working fails here."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import qiime2

from .helpers import QIIME, REPO

README = REPO / "README.md"
SETUP_COMMANDS = {"make demo", "make test"}


def blocks(language):
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)


def commands():
    """Shell commands of the README's sh blocks, continuation lines joined, comments and set-up left out."""
    found = []
    for block in blocks("sh"):
        for command in re.sub(r"\\\n\s*", " ", block).splitlines():
            command = command.split("#")[0].strip()
            if command and command not in SETUP_COMMANDS:
                found.append(command)
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """table.qza, taxonomy.qza and sample-metadata.tsv, as `make demo` leaves them in demo/results."""
    if not os.access(QIIME, os.X_OK):
        pytest.skip(f"{QIIME} is absent: the README's commands need `make setup` (it writes the q2cli wrapper)")
    data = REPO / "demo" / "data"
    directory = tmp_path_factory.mktemp("readme")
    if not (data / "table.biom").exists():
        data = directory / "data"
        fetched = subprocess.run([sys.executable, str(REPO / "scripts" / "fetch_twins.py"), str(data)],
                                 capture_output=True, text=True)
        if fetched.returncode:
            pytest.skip(f"the demo data could not be fetched with apt-get download: {fetched.stderr[-500:]}")
    qiime2.Artifact.import_data("FeatureTable[Frequency]", str(data / "table.biom"), "BIOMV210Format").save(
        str(directory / "table.qza"))
    qiime2.Artifact.import_data("FeatureData[Taxonomy]", str(data / "taxonomy.tsv"), "TSVTaxonomyFormat").save(
        str(directory / "taxonomy.qza"))
    shutil.copy(data / "metadata.tsv", directory / "sample-metadata.tsv")
    return directory


def test_the_readme_opens_with_the_two_set_up_commands():
    first = blocks("sh")[0]
    assert [line.split("#")[0].strip() for line in first.strip().splitlines()] == ["make demo", "make test"]
    assert README.read_text().index(first) < 30


# q2cli's own entry point, called once per command in one process: the real option parsing and action code of
# each command, without paying q2cli's start-up (seconds) two dozen times over
DRIVER = """
import json, shlex, socket, subprocess, sys
from q2cli.__main__ import qiime
for command in json.loads(sys.argv[1]):
    words = shlex.split(command)
    print("+", command, flush=True)
    if words[0] == "qiime":
        code = qiime.main(args=words[1:], prog_name="qiime", standalone_mode=False)
        if code:
            sys.exit(f"exit status {code}: {command}")
    else:
        # a free port, so that two test runs (the two QIIME 2 lanes) on one machine do not meet
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--master_port", port, *words[1:]],
                       check=True)
"""


def test_every_command_runs(workdir):
    found = commands()
    assert sum(c.startswith("qiime mgm") for c in found) >= 20 and any(c.startswith("torchrun") for c in found)
    unknown = {c.split()[0] for c in found} - {"qiime", "torchrun"}
    assert not unknown, f"the README runs {unknown}, which this test does not know how to run"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
                   "XDG_CONFIG_HOME": str(QIIME.parent.parent / ".config")}  # as the q2cli wrapper sets it
    result = subprocess.run([str(QIIME.parent / "python"), "-c", DRIVER, json.dumps(found)], cwd=workdir,
                            capture_output=True, text=True, env=environment, timeout=1800)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for output in ("classifier/evaluation.qzv", "keystone.qzv", "trajectory.qzv", "realism.qzv",
                   "pretrained/pretrained_model.qza"):
        assert (workdir / output).exists(), output


def test_the_artifact_api_script_runs(workdir, monkeypatch):
    script, = blocks("python")
    monkeypatch.chdir(workdir)
    exec(compile(script, str(README), "exec"), {})
    assert pathlib.Path("trajectory.qzv").exists() and pathlib.Path("evaluation.qzv").exists()
