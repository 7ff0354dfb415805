"""Session-wide fixtures. The general model is loaded once per session; QIIME 2 is imported only by the fixtures
and tests that need it, so tests/core runs on plain Python."""
import re

import pytest

from .helpers import SHARED, frequency_table, read_genus_table, read_metadata


@pytest.fixture(scope="session")
def general_model():
    """(model, vocabulary, provenance) of upstream's pretrained general model, loaded once."""
    from q2_mgm.core.models import load_general_model
    return load_general_model()


@pytest.fixture(scope="session")
def saved_model_dir(general_model, tmp_path_factory):
    """The general model written as q2-mgm stores it (config.json, model.safetensors, vocab.txt, versions.json)."""
    from q2_mgm.core.models import save_model
    model, vocabulary, provenance = general_model
    directory = tmp_path_factory.mktemp("general-model")
    save_model(model, vocabulary, directory, **provenance)
    return directory


@pytest.fixture(scope="session")
def mgm_plugin():
    """The `mgm` actions (qiime2.plugins.mgm), with the plugin loaded through QIIME 2's plugin manager."""
    from qiime2.plugins import mgm
    return mgm


@pytest.fixture(scope="session")
def model_artifact(mgm_plugin):
    """MGMModel[Pretrained] from `mgm.actions.general_model()`, made once."""
    model, = mgm_plugin.actions.general_model()
    return model


@pytest.fixture(scope="session")
def twins_counts():
    """Turnbaugh et al. 2009 twins: 278 samples x 129 RDP genera + unclassified_at_genus, integer counts."""
    return read_genus_table("twins")


@pytest.fixture(scope="session")
def ecam_counts():
    """ECAM infant cohort: 875 samples x 264 Greengenes genera + unclassified_at_genus, approximate counts."""
    return read_genus_table("ecam")


@pytest.fixture(scope="session")
def twins_table_artifact(twins_counts):
    return frequency_table(twins_counts)


@pytest.fixture(scope="session")
def twins_corpus_artifact(mgm_plugin, twins_table_artifact):
    return mgm_plugin.actions.tokenize(table=twins_table_artifact).corpus


@pytest.fixture(scope="session")
def twins_metadata():
    """qiime2.Metadata of the twins for Lean vs Obese: `bmi_category` holds Lean (61) or Obese (193) and is empty
    for the 24 Overwt samples; `subject` (154 people, categorical) groups a person's two time points."""
    import qiime2
    frame = read_metadata("twins")
    frame["bmi_category"] = frame.bmi_category.where(frame.bmi_category.isin(["Lean", "Obese"]))
    return qiime2.Metadata(frame)


@pytest.fixture(scope="session")
def ecam_metadata():
    """qiime2.Metadata of ECAM: `delivery` (categorical), `month` (numeric), `studyid` (child, categorical)."""
    import qiime2
    return qiime2.Metadata(read_metadata("ecam"))


@pytest.fixture(scope="session")
def ecam_subset_counts(ecam_counts):
    """Every fourth ECAM sample (219 samples; 42 of the 43 children): a cheap real data set for training tests."""
    return ecam_counts.iloc[::4]


@pytest.fixture(scope="session")
def ecam_subset_table_artifact(ecam_subset_counts):
    return frequency_table(ecam_subset_counts)


@pytest.fixture(scope="session")
def ecam_subset_corpus_artifact(mgm_plugin, ecam_subset_table_artifact):
    return mgm_plugin.actions.tokenize(table=ecam_subset_table_artifact).corpus


@pytest.fixture(scope="session")
def twins_classify_samples(mgm_plugin, twins_table_artifact, twins_metadata):
    """`mgm classify-samples` on the twins, Lean vs Obese grouped by subject, with the default recipe (frozen
    encoder, exactly fit head, RandomForest blended in)."""
    return mgm_plugin.actions.classify_samples(
        table=twins_table_artifact, metadata=twins_metadata.get_column("bmi_category"),
        groups=twins_metadata.get_column("subject"), n_estimators=100)


@pytest.fixture(scope="session")
def ecam_regress_samples(mgm_plugin, ecam_subset_table_artifact, ecam_metadata):
    """`mgm regress-samples` on the ECAM subset, infant age in months grouped by child, with the default recipe."""
    return mgm_plugin.actions.regress_samples(
        table=ecam_subset_table_artifact, metadata=ecam_metadata.get_column("month"),
        groups=ecam_metadata.get_column("studyid"), n_estimators=100)


@pytest.fixture(scope="session")
def genera():
    """The first 12 genus tokens of MGM's vocabulary (the tiny model's tests' corpora)."""
    from q2_mgm.core.vocab import mgm_vocabulary
    return [t for t in mgm_vocabulary().tokens if t.startswith("g__")][:12]


@pytest.fixture(scope="session")
def tiny_model():
    """A 1-layer, 16-wide GPT-2 on MGM's vocabulary, as MGMModel[Pretrained]: the metadata checks' tests (and any
    other that needs a model that runs in no time)."""
    import qiime2
    import transformers
    from q2_mgm._formats import MGMModelDirFmt
    from q2_mgm.core.models import save_model
    from q2_mgm.core.vocab import mgm_vocabulary
    vocabulary = mgm_vocabulary()
    config = transformers.GPT2Config(vocab_size=len(vocabulary), n_positions=64, n_embd=16, n_layer=1, n_head=2)
    directory = MGMModelDirFmt()
    save_model(transformers.GPT2LMHeadModel(config), vocabulary, directory.path, source="a test")
    return qiime2.Artifact.import_data("MGMModel[Pretrained]", directory)


def pytest_configure(config):
    # QIIME 2 2022.11 imports ipywidgets, which warns about traitlets on every session: not ours to fix
    config.addinivalue_line("filterwarnings", "ignore:Traits should be given as instances:DeprecationWarning")
    # transformers' Trainer, when two checkpoints share an mtime (epochs faster than the clock): it then orders them
    # by step number, which is right
    config.addinivalue_line("filterwarnings", "ignore:mtime may not be reliable on this filesystem:UserWarning")
    config.addinivalue_line("markers", "one_torch_thread: run the test, its fixtures included, on one torch thread")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Training tests run torch on one thread. On a shared 2-core machine, two OpenMP threads competing with other
    jobs wait on each other at every operation: training on the twins measured 3.3 s on one thread against 12 s on
    two (and a 2-layer test model 1 s against 10 s). Set here, around setup too, so that the session-scoped
    training fixtures a marked test brings up are covered as well."""
    if item.get_closest_marker("one_torch_thread") is None:
        yield
        return
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# --- skips: each run lists them; where ../shared is present, a skip for want of data or of a package fails it ---

# what a skip's reason says when something the test needs is not there (helpers.shared_path, importorskip, a
# missing binary or venv); a skip for another reason (e.g. a QIIME 2 release without the feature) is not one
ABSENCE = re.compile(r"\babsent\b|\bmissing\b|not installed|could not|No module named|not found", re.IGNORECASE)


def _skips(config):
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    reports = reporter.stats.get("skipped", []) if reporter is not None else []
    reasons = []
    for report in reports:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons.append((report.nodeid, reason.removeprefix("Skipped: ")))
    return reasons


def _absences(config):
    return [(test, reason) for test, reason in _skips(config) if ABSENCE.search(reason)] if SHARED.is_dir() else []


def pytest_sessionfinish(session, exitstatus):
    if _absences(session.config) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    try:
        from qiime2 import __version__ as release
    except ImportError:
        release = "absent"
    skips = _skips(config)
    terminalreporter.section(f"skips: {len(skips)} (QIIME 2 {release})")
    for test, reason in skips:
        terminalreporter.line(f"SKIP {test}: {reason}")
    absences = _absences(config)
    if absences:
        terminalreporter.line(f"FAILED: {len(absences)} test(s) skipped for want of data or of a package although "
                              f"{SHARED} is present; every test must run here", red=True)
