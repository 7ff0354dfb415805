"""keystone-genera and keystone-report (issue 19 item 3): each error a user's input reaches, provoked as a user meets
it, then the fix its message names applied, and the action run to its output. The table is tests/advice/keystone.py.
Real data (every fourth ECAM sample, grouped by delivery mode, children as subjects) on tiny models."""
import re

import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_mgm.core.keystone import KeystoneError

from .helpers import subset_corpus
from .test_visualizers import export

pytestmark = pytest.mark.one_torch_thread

ACTIONS = ("keystone_genera", "keystone_report")


@pytest.fixture(scope="module")
def delivery(ecam_metadata):
    return ecam_metadata.get_column("delivery")


def _run(mgm_plugin, action, **inputs):
    """The action's output: the importance table of keystone-genera, the exported page's folder of keystone-report."""
    result, = getattr(mgm_plugin.actions, action)(min_samples=2, device="cpu", **inputs)
    return result


def _model_not_run(monkeypatch):
    """Makes scoring fail the test: an error raised before the model runs never gets there."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model ran before the inputs were checked")
    monkeypatch.setattr("q2_mgm.core.keystone_samples.score_samples", refuse)


@pytest.mark.parametrize("action", ACTIONS)
def test_an_empty_corpus_refused_and_a_corpus_with_samples_scored(mgm_plugin, action, tiny_model, delivery,
                                                                   ecam_subset_corpus_artifact, tmp_path):
    """An imported corpus without samples: refused before any model loads; the advised corpus, one tokenized from a
    table that holds samples, is scored."""
    empty = subset_corpus(ecam_subset_corpus_artifact, [])
    with pytest.raises(KeystoneError, match=re.escape(
            "The corpus holds no samples, so there are no genera to score. Tokenize a feature table that holds "
            "samples (qiime mgm tokenize) and score that corpus.")):
        _run(mgm_plugin, action, corpus=empty, model=tiny_model, metadata=delivery)
    result = _run(mgm_plugin, action, corpus=ecam_subset_corpus_artifact, model=tiny_model, metadata=delivery)
    _assert_scored(result, tmp_path)


def _assert_scored(result, tmp_path, classes=("Cesarean", "Vaginal")):
    if str(result.type) == "Visualization":
        directory = export(result, tmp_path / "page")
        genera = pd.read_csv(directory / "keystone_genera.tsv", sep="\t")
        assert sorted(genera.group.unique()) == list(classes) and genera["rank"].notna().any()
        return directory
    table = result.view(pd.DataFrame)
    assert list(table.columns) == list(classes) and table.index.str.startswith("g__").all()
    assert np.isfinite(table.to_numpy()).all() and (table.to_numpy() > 0).any()
    return table


@pytest.fixture(scope="module")
def short_model():
    """A pretrained 1-layer GPT-2 that reads 32 tokens: shorter than ECAM's longest sentences (61 tokens)."""
    import transformers
    from q2_mgm._formats import MGMModelDirFmt
    from q2_mgm.core.models import save_model
    from q2_mgm.core.vocab import mgm_vocabulary
    vocabulary = mgm_vocabulary()
    config = transformers.GPT2Config(vocab_size=len(vocabulary), n_positions=32, n_embd=16, n_layer=1, n_head=2)
    directory = MGMModelDirFmt()
    save_model(transformers.GPT2LMHeadModel(config), vocabulary, directory.path, source="a test")
    return qiime2.Artifact.import_data("MGMModel[Pretrained]", directory)


@pytest.mark.parametrize("action", ACTIONS)
def test_sentences_longer_than_the_model_reads_tokenized_again_as_advised(mgm_plugin, action, short_model, delivery,
                                                                          ecam_subset_table_artifact,
                                                                          ecam_subset_corpus_artifact, tmp_path):
    """ECAM tokenized with the default max_length (512) holds sentences of up to 61 tokens; a model that reads 32
    refuses them and names the max_length; the table tokenized again with it is scored."""
    with pytest.raises(KeystoneError, match=re.escape(
            "A sentence has 61 tokens but the model reads at most 32; tokenize with max_length <= 32 (qiime mgm "
            "tokenize --p-max-length 32, on the feature table the corpus was made from) and score that corpus")):
        _run(mgm_plugin, action, corpus=ecam_subset_corpus_artifact, model=short_model, metadata=delivery)
    corpus, = mgm_plugin.actions.tokenize(table=ecam_subset_table_artifact, max_length=32)
    assert corpus.view(pd.DataFrame).n_tokens.max() == 32
    _assert_scored(_run(mgm_plugin, action, corpus=corpus, model=short_model, metadata=delivery), tmp_path)


@pytest.mark.parametrize("action", ACTIONS)
def test_subjects_of_other_ids_refused_before_the_model_and_the_corpus_ids_summarised(
        mgm_plugin, action, tiny_model, delivery, ecam_metadata, ecam_subset_corpus_artifact, tmp_path, monkeypatch,
        capsys):
    """A subjects column whose IDs are written otherwise than the corpus's (S-prefixed): no scored sample has a
    subject. Refused before the model runs, naming both sides' IDs; with the corpus's IDs the subjects are the units;
    with subjects left out, the samples."""
    children = ecam_metadata.get_column("studyid").to_series()
    written = qiime2.CategoricalMetadataColumn(children.rename(lambda s: f"S-{s}"))
    with monkeypatch.context() as patched:
        _model_not_run(patched)
        with pytest.raises(KeystoneError, match=(
                r"No scored sample has both a group and a subject: the subjects column 'studyid' holds a subject for "
                r"none of the 219 samples with a group \(for example .*; its IDs are S-.*\)\. Give subjects a column "
                r"whose IDs are the corpus's sample IDs, each with its subject, or leave subjects out to summarise "
                r"samples\.")):
            _run(mgm_plugin, action, corpus=ecam_subset_corpus_artifact, model=tiny_model, metadata=delivery,
                 subjects=written)
    capsys.readouterr()
    result = _run(mgm_plugin, action, corpus=ecam_subset_corpus_artifact, model=tiny_model, metadata=delivery,
                  subjects=qiime2.CategoricalMetadataColumn(children))
    assert "averaged 219 samples' scores within 42 subjects" in capsys.readouterr().out
    scored = _assert_scored(result, tmp_path / "subjects")
    if action == "keystone_report":
        assert len(pd.read_csv(scored / "subject_scores.tsv", sep="\t", index_col=0)) == 42
    _assert_scored(_run(mgm_plugin, action, corpus=ecam_subset_corpus_artifact, model=tiny_model,
                        metadata=delivery), tmp_path / "samples")


@pytest.mark.parametrize("fix", ["samples of the corpus with a group", "left out"])
def test_attention_samples_without_a_map_then_as_advised(mgm_plugin, fix, tiny_model, ecam_metadata,
                                                         ecam_subset_corpus_artifact, tmp_path):
    """attention_samples naming a sample the corpus lacks and one without a group: refused, both listed; then
    attention_samples of corpus samples with a group shows their maps, and left out the first of each group's."""
    samples = ecam_subset_corpus_artifact.view(pd.DataFrame).index
    frame = ecam_metadata.to_dataframe()
    frame.loc[samples[0], "delivery"] = np.nan  # in the corpus, without a group
    delivery = qiime2.Metadata(frame).get_column("delivery")

    def picked(ids):
        return qiime2.Metadata(pd.DataFrame(index=pd.Index(ids, name="sample-id")))

    with pytest.raises(KeystoneError, match=(
            r"2 of the 3 samples of attention_samples have no attention map to show; not in the corpus: "
            rf"'no-such-sample'; in the corpus but without a group .*'{re.escape(samples[0])}'\. Give "
            "attention_samples metadata whose IDs are samples of the corpus with a group, or leave it out")):
        _run(mgm_plugin, "keystone_report", corpus=ecam_subset_corpus_artifact, model=tiny_model, metadata=delivery,
             attention_samples=picked(["no-such-sample", samples[0], samples[1]]))
    if fix == "left out":
        directory = _assert_scored(_run(mgm_plugin, "keystone_report", corpus=ecam_subset_corpus_artifact,
                                        model=tiny_model, metadata=delivery), tmp_path)
        shown = 2  # the first sample of each delivery mode
    else:
        directory = _assert_scored(_run(mgm_plugin, "keystone_report", corpus=ecam_subset_corpus_artifact,
                                        model=tiny_model, metadata=delivery,
                                        attention_samples=picked([samples[1], samples[2]])), tmp_path)
        shown = 2
        html = (directory / "index.html").read_text()
        assert samples[1] in html and samples[2] in html
    assert sorted(p.name for p in directory.glob("attention_map_*.tsv")) == [
        f"attention_map_{i}.tsv" for i in range(1, shown + 1)]


# --- the values only the registrations' Range and Choices refuse (the entries that name the registration) ---

GUARDS = [("method", "saliency"), ("min_samples", 0), ("n_bootstrap", 0), ("confidence", 1.0), ("confidence", 0.0)]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("parameter, value", GUARDS)
def test_values_the_core_refuses_are_outside_the_registrations_range(mgm_plugin, action, parameter, value,
                                                                       tiny_model, delivery,
                                                                       ecam_subset_corpus_artifact):
    """core.keystone refuses a method other than METHODS, min_samples or n_bootstrap below 1 and a confidence
    outside (0, 1): every such value is outside the registered Choices/Range, and QIIME 2 refuses it before the
    action runs."""
    registered = qiime2.sdk.PluginManager().plugins["mgm"].actions[action].signature.parameters
    if parameter not in registered:  # keystone-genera has no bootstrap of its own: n_bootstrap=1, confidence fixed
        assert action == "keystone_genera" and parameter in ("n_bootstrap", "confidence")
        return
    assert value not in registered[parameter].qiime_type
    with pytest.raises(TypeError, match=parameter):
        getattr(mgm_plugin.actions, action)(corpus=ecam_subset_corpus_artifact, model=tiny_model, metadata=delivery,
                                            **{parameter: value})
