"""Training killed mid-epoch leaves no artifact, half-written or otherwise, and the same command then runs cleanly:
each run trains in its own scratch directory and QIIME 2 writes the .qza only once the action has returned."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import qiime2

from .helpers import REPO

SCRIPT = textwrap.dedent("""
    import sys
    import qiime2
    from qiime2.plugins import mgm
    from tests.helpers import read_genus_table, read_metadata

    counts = read_genus_table("ecam").iloc[::4]
    table = qiime2.Artifact.import_data("FeatureTable[Frequency]", counts.astype(float))
    corpus, = mgm.actions.tokenize(table=table)
    labels = qiime2.Metadata(read_metadata("ecam")).get_column("delivery")
    model, history = mgm.actions.fine_tune(corpus=corpus, metadata=labels, task="classification",
                                           epochs=int(sys.argv[2]), freeze_layers=6, batch_size=8)
    model.save(sys.argv[1])
""")


def run(output, epochs):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(output), str(epochs)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)


@pytest.mark.usefixtures("ecam_counts")  # skips with a clear message where ../shared is absent
def test_killed_mid_epoch_then_rerun(tmp_path):
    output = tmp_path / "classifier.qza"
    process = run(output, 50)
    for line in process.stdout:
        if "trainable parameters" in line:  # the Trainer has started its first epoch
            break
    time.sleep(2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not output.exists() and list(tmp_path.iterdir()) == []

    rerun = run(output, 1)
    log, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, log[-3000:]
    assert str(qiime2.Artifact.load(str(output)).type) == "MGMModel[Classifier]"
