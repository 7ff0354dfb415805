"""Session-wide fixtures. The general model is loaded once per session; QIIME 2 is imported only by the fixtures
and tests that need it, so tests/core runs on plain Python."""
import pytest

from .helpers import read_genus_table


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
    import qiime2
    return qiime2.Artifact.import_data("FeatureTable[Frequency]", twins_counts.astype(float))


@pytest.fixture(scope="session")
def twins_corpus_artifact(mgm_plugin, twins_table_artifact):
    corpus, = mgm_plugin.actions.tokenize(table=twins_table_artifact)
    return corpus


def pytest_configure(config):
    # QIIME 2 2022.11 imports ipywidgets, which warns about traitlets on every session: not ours to fix
    config.addinivalue_line("filterwarnings", "ignore:Traits should be given as instances:DeprecationWarning")
