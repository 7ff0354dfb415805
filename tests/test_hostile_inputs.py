"""Degenerate and hostile inputs through the actions, as a user would hit them: each is either handled and reported
or refused with an error that names the problem and the fix. (Tokenizer rules, tampered models, labels and
metadata have their own tests in tests/core, test_formats.py and test_supervised.py.)"""
import biom
import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_mgm.core.tokenizer import Corpus, TokenizationError, tokenize_dataframe

G = {"Bacteroides": "k__Bacteria; p__Bacteroidetes; c__Bacteroidia; o__Bacteroidales; f__Bacteroidaceae; "
                    "g__Bacteroides; s__",
     "Faecalibacterium": "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Ruminococcaceae; "
                         "g__Faecalibacterium; s__"}
STYLES = {  # one feature per common taxonomy style, and the token each gives (None: dropped) without/with harmonizing
    "greengenes": (G["Bacteroides"], "g__Bacteroides", "g__Bacteroides"),
    "greengenes_bracket": ("k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Ruminococcaceae; "
                           "g__[Ruminococcus]; s__", None, "g__Ruminococcus"),
    "silva_138": ("d__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Clostridiaceae; "
                  "g__Clostridium_sensu_stricto_1", None, "g__Clostridium"),
    "gtdb": ("d__Bacteria;p__Firmicutes_A;c__Clostridia;o__Lachnospirales;f__Lachnospiraceae;g__Blautia_A;"
             "s__Blautia_A obeum", None, "g__Blautia"),
    "rdp": ("Root;Bacteria;Firmicutes;Clostridia;Clostridiales;Lachnospiraceae;Roseburia", None, "g__Roseburia"),
    "bare_genus": ("Prevotella", None, "g__Prevotella"),
    "unassigned": ("Unassigned", None, None),
}


def frequency_table(frame):
    return qiime2.Artifact.import_data("FeatureTable[Frequency]", frame)


def sentences(mgm_plugin, frame, **parameters):
    corpus, = mgm_plugin.actions.tokenize(table=frequency_table(frame), **parameters)
    return corpus.view(pd.DataFrame).sentence


@pytest.mark.parametrize("shape", [(2, 0), (0, 2)])
def test_an_empty_table(mgm_plugin, shape):
    empty = biom.Table(np.zeros(shape), [f"f{i}" for i in range(shape[0])], [f"s{i}" for i in range(shape[1])])
    with pytest.raises(TokenizationError, match="The table is empty.*filtering"):
        mgm_plugin.actions.tokenize(table=frequency_table(empty))


def test_one_sample_and_one_feature(mgm_plugin):
    one_sample = pd.DataFrame([[3.0, 40.0]], index=["s1"], columns=list(G.values()))
    assert sentences(mgm_plugin, one_sample).tolist() == ["<bos> g__Faecalibacterium g__Bacteroides <eos>"]
    one_feature = pd.DataFrame([[3.0], [2.0]], index=["s1", "s2"], columns=[G["Bacteroides"]])
    assert sentences(mgm_plugin, one_feature).tolist() == ["<bos> g__Bacteroides <eos>"] * 2


def test_an_all_zero_sample_is_dropped_and_reported(mgm_plugin, capsys):
    frame = pd.DataFrame([[3.0, 4.0], [0.0, 0.0]], index=["s1", "s2"], columns=list(G.values()))
    corpus, = mgm_plugin.actions.tokenize(table=frequency_table(frame))
    assert corpus.view(pd.DataFrame).index.tolist() == ["s1"]
    assert "dropped 1 samples: all-zero sample" in capsys.readouterr().out
    assert corpus.view(qiime2.Metadata).to_dataframe().index.tolist() == ["s1"]


@pytest.mark.parametrize("bad, message", [(-4.0, "negative values.*untransformed table"),
                                          (np.nan, "non-finite values"), (np.inf, "non-finite values")])
def test_values_that_are_not_abundances(mgm_plugin, bad, message):
    frame = pd.DataFrame([[3.0, bad]], index=["s1"], columns=list(G.values()))
    with pytest.raises(TokenizationError, match=message):
        mgm_plugin.actions.tokenize(table=frequency_table(frame))


def test_sample_ids_that_look_like_numbers_or_hold_spaces(mgm_plugin, model_artifact):
    ids = ["1", "1.0", "007", "sample 2", "0", "NaN-like nan"]
    frame = pd.DataFrame(np.arange(12.0).reshape(6, 2) + 1, index=ids, columns=list(G.values()))
    corpus, = mgm_plugin.actions.tokenize(table=frequency_table(frame))
    assert corpus.view(qiime2.Metadata).to_dataframe().index.tolist() == ids
    embeddings, = mgm_plugin.actions.embed(corpus=corpus, model=model_artifact)
    assert embeddings.view(pd.DataFrame).index.tolist() == ids


def test_unicode_sample_ids_survive_the_corpus_and_embeddings(mgm_plugin, model_artifact):
    """Debian's biom-format 2.1.12 cannot read non-ASCII IDs back from a FeatureTable (UnicodeDecodeError in
    biom.Table.from_hdf5, before q2-mgm runs; see the README's troubleshooting). q2-mgm's own formats keep them."""
    ids = ["échantillon-β", "試料1", "s 3"]
    frame = pd.DataFrame(np.arange(6.0).reshape(3, 2) + 1, index=ids, columns=list(G.values()))
    corpus = qiime2.Artifact.import_data("SampleData[MGMCorpus]", tokenize_dataframe(frame))
    assert corpus.view(qiime2.Metadata).to_dataframe().index.tolist() == ids
    embeddings, = mgm_plugin.actions.embed(corpus=corpus, model=model_artifact)
    assert embeddings.view(pd.DataFrame).index.tolist() == ids


@pytest.mark.parametrize("harmonize", [False, True])
def test_taxonomy_styles(mgm_plugin, harmonize):
    taxonomy = qiime2.Artifact.import_data("FeatureData[Taxonomy]", pd.DataFrame(
        {"Taxon": [taxon for taxon, _, _ in STYLES.values()]}, index=pd.Index(list(STYLES), name="Feature ID")))
    # abundances rise along STYLES, so each sample's order is predictable from the z-scores alone
    frame = pd.DataFrame(np.tile(np.arange(1.0, len(STYLES) + 1), (2, 1)), index=["a", "b"], columns=list(STYLES))
    corpus, = mgm_plugin.actions.tokenize(table=frequency_table(frame), taxonomy=taxonomy, harmonize_names=harmonize)
    tokens = set(corpus.view(pd.DataFrame).sentence.iloc[0].split()[1:-1])
    expected = {expect[2 if harmonize else 1] for expect in STYLES.values()} - {None}
    assert tokens == expected
    status = corpus.view(Corpus).features.status  # what was dropped is reported, feature by feature
    assert status["unassigned"] == "no genus rank"
    assert status.isin(["kept", "harmonized"]).sum() == len(expected)
