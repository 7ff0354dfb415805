"""The actions on real data through the Artifact API: the twins cohort (RDP genera, integer counts) and the
ECAM infant cohort (Greengenes genera, counts, taxonomy given separately): tokenize and embed."""
import hashlib

import numpy as np
import pandas as pd
import pytest
import qiime2
import scipy.stats

from q2_mgm.core.inference import encode, sample_embeddings
from q2_mgm.core.tokenizer import FEATURE_STATUS, Corpus, TokenizationError, tokenize_dataframe

from .helpers import reference_sentences, shared_path

KEPT, HARMONIZED, NO_GENUS, NOT_IN_VOCAB = FEATURE_STATUS


class TestTwins:
    @pytest.fixture(scope="class")
    def corpus(self, twins_corpus_artifact):
        return twins_corpus_artifact.view(Corpus)

    def test_tokenize(self, corpus, twins_counts):
        assert twins_counts.shape == (278, 130)
        assert corpus.samples.index.tolist() == twins_counts.index.tolist()  # every sample, in order
        assert corpus.dropped_samples.empty
        assert corpus.features.status.value_counts().to_dict() == {KEPT: 126, NOT_IN_VOCAB: 3, NO_GENUS: 1}
        assert sorted(corpus.features.index[corpus.features.status == NOT_IN_VOCAB]) == \
            ["g__Anaerobacter", "g__Xylanibacter", "g__Zymophilus"]
        # upstream's regex reads 'Escherichia/Shigella' as Escherichia
        assert corpus.features.at["g__Escherichia/Shigella", "genus"] == "g__Escherichia"
        assert corpus.features.at["unclassified_at_genus", "status"] == NO_GENUS

    def test_sentences_follow_upstreams_rules(self, corpus, twins_counts):
        expected = reference_sentences(twins_counts)
        assert corpus.samples.sentence.tolist() == [expected[s][0] for s in corpus.samples.index]

    def test_shares(self, corpus, twins_counts):
        totals = twins_counts.sum(axis=1)
        np.testing.assert_allclose(corpus.samples.no_genus_share, twins_counts.unclassified_at_genus / totals)
        oov = twins_counts[["g__Anaerobacter", "g__Xylanibacter", "g__Zymophilus"]].sum(axis=1) / totals
        np.testing.assert_allclose(corpus.samples.out_of_vocabulary_share, oov, atol=1e-12)
        assert corpus.samples.vocabulary_coverage.mean() == pytest.approx(0.68, abs=0.01)  # data/twins/README.md

    @pytest.fixture(scope="class")
    def embeddings(self, mgm_plugin, twins_corpus_artifact, model_artifact):
        return {pooling: mgm_plugin.actions.embed(corpus=twins_corpus_artifact, model=model_artifact,
                                                  pooling=pooling)[0].view(pd.DataFrame)
                for pooling in ("mean", "last")}

    @pytest.mark.parametrize("pooling", ["mean", "last"])
    def test_embed(self, embeddings, general_model, corpus, pooling):
        frame = embeddings[pooling]
        assert frame.shape == (278, 256)
        assert frame.index.tolist() == corpus.samples.index.tolist()
        # the artifact's safetensors weights give what upstream's weights give in plain Python (40 samples)
        model, vocabulary, _ = general_model
        direct = sample_embeddings(model, encode(corpus.samples.sentence[:40], vocabulary), pooling)
        np.testing.assert_allclose(frame.to_numpy()[:40], direct, atol=1e-5, rtol=1e-5)

    def test_poolings_differ(self, embeddings):
        assert not np.allclose(embeddings["mean"].to_numpy(), embeddings["last"].to_numpy(), atol=1e-2)

    def test_embeddings_recognise_a_subject_across_time(self, embeddings):
        """Real signal: the two time points of one subject are far more alike than samples of different people."""
        frame = embeddings["mean"]
        subject = pd.read_csv(shared_path("data", "twins", "metadata.tsv"), sep="\t", index_col=0) \
            .subject.reindex(frame.index).to_numpy()
        x = frame.to_numpy() - frame.to_numpy().mean(axis=0)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        cosine = x @ x.T
        same = subject[:, None] == subject[None, :]
        np.fill_diagonal(same, False)
        different = subject[:, None] != subject[None, :]
        assert cosine[same].mean() > cosine[different].mean() + 0.2
        np.fill_diagonal(cosine, -np.inf)
        paired = same.any(axis=1)
        nearest_is_same = subject[cosine.argmax(axis=1)] == subject
        assert nearest_is_same[paired].mean() > 0.1  # chance is 1 in 277


class TestECAM:
    @pytest.fixture(scope="class")
    def artifacts(self, ecam_counts):
        hashes = [hashlib.md5(c.encode()).hexdigest() for c in ecam_counts.columns]
        table = qiime2.Artifact.import_data("FeatureTable[Frequency]", ecam_counts.set_axis(hashes, axis=1)
                                            .astype(float))
        taxonomy = pd.Series(["k__Bacteria; " + c if c.startswith("g__") else c for c in ecam_counts.columns],
                             index=pd.Index(hashes, name="Feature ID"), name="Taxon")
        return table, qiime2.Artifact.import_data("FeatureData[Taxonomy]", taxonomy)

    @pytest.fixture(scope="class")
    def corpus_artifact(self, mgm_plugin, artifacts):
        table, taxonomy = artifacts
        corpus, = mgm_plugin.actions.tokenize(table=table, taxonomy=taxonomy)
        return corpus

    def test_taxonomy_given_separately(self, corpus_artifact, ecam_counts):
        corpus = corpus_artifact.view(Corpus)
        assert len(corpus.samples) == 875
        by_name = tokenize_dataframe(ecam_counts)  # feature IDs as taxonomy strings
        pd.testing.assert_frame_equal(corpus.samples, by_name.samples)
        expected = reference_sentences(ecam_counts)
        assert corpus.samples.sentence.tolist() == [expected[s][0] for s in corpus.samples.index]
        assert corpus.features.status.value_counts()[KEPT] == 245  # data/ecam/README.md
        assert corpus.samples.vocabulary_coverage.median() == pytest.approx(0.75, abs=0.01)

    def test_harmonize_names(self, mgm_plugin, artifacts):
        table, taxonomy = artifacts
        corpus, = mgm_plugin.actions.tokenize(table=table, taxonomy=taxonomy, harmonize_names=True)
        features = corpus.view(Corpus).features.set_index("taxonomy")
        for bracketed, genus in [("g__[Ruminococcus]", "g__Ruminococcus"), ("g__[Prevotella]", "g__Prevotella"),
                                 ("g__[Eubacterium]", "g__Eubacterium")]:
            row = features.loc["k__Bacteria; " + bracketed]
            assert (row.genus, row.status) == (genus, HARMONIZED)
        assert (features.status == KEPT).sum() == 245
        assert features.at["unclassified_at_genus", "status"] == NO_GENUS

    def test_truncation(self, mgm_plugin, artifacts):
        table, taxonomy = artifacts
        corpus, = mgm_plugin.actions.tokenize(table=table, taxonomy=taxonomy, max_length=16)
        samples = corpus.view(pd.DataFrame)
        assert samples.truncated.sum() > 100
        assert samples.n_tokens.max() == 16
        assert (samples.sentence.str.split().str.len() == samples.n_tokens).all()

    def test_embed_follows_infant_age(self, mgm_plugin, corpus_artifact, model_artifact):
        """Real signal: the first principal axis of the embeddings tracks the infants' age."""
        embeddings, = mgm_plugin.actions.embed(corpus=corpus_artifact, model=model_artifact, pooling="mean")
        frame = embeddings.view(pd.DataFrame)
        assert frame.shape == (875, 256)
        assert frame.index.tolist() == corpus_artifact.view(pd.DataFrame).index.tolist()
        assert np.isfinite(frame.to_numpy()).all()
        month = pd.read_csv(shared_path("data", "ecam", "metadata.tsv"), sep="\t", index_col=0) \
            .month.reindex(frame.index).to_numpy(dtype=float)
        centred = frame.to_numpy() - frame.to_numpy().mean(axis=0)
        first_axis = np.linalg.svd(centred, full_matrices=False)[0][:, 0]
        assert abs(scipy.stats.spearmanr(first_axis, month).correlation) > 0.5


def test_tokenize_reports_a_table_outside_the_vocabulary(mgm_plugin):
    table = qiime2.Artifact.import_data("FeatureTable[Frequency]", pd.DataFrame(
        {"k__Bacteria; g__Notagenus; s__": [3.0, 1.0], "Unassigned": [1.0, 2.0]}, index=["a", "b"]))
    with pytest.raises(TokenizationError, match="None of the table's features has a genus in MGM's vocabulary"):
        mgm_plugin.actions.tokenize(table=table)


def test_embed_refuses_a_model_with_another_vocabulary(mgm_plugin, twins_corpus_artifact, tmp_path):
    """A model whose vocabulary lacks the corpus' genera: VocabularyMismatch, not a silent re-mapping."""
    import transformers
    from q2_mgm._formats import MGMModelDirFmt
    from q2_mgm.core.inference import VocabularyMismatch
    from q2_mgm.core.models import save_model
    from q2_mgm.core.vocab import Vocabulary
    vocabulary = Vocabulary(["<pad>", "<mask>", "<bos>", "<eos>", "g__Bacteroides", "g__Prevotella"])
    config = transformers.GPT2Config(vocab_size=len(vocabulary), n_positions=64, n_embd=16, n_layer=1, n_head=2)
    directory = MGMModelDirFmt()
    save_model(transformers.GPT2LMHeadModel(config), vocabulary, directory.path, source="a test")
    small = qiime2.Artifact.import_data("MGMModel[Pretrained]", directory)
    with pytest.raises(VocabularyMismatch, match="different vocabularies"):
        mgm_plugin.actions.embed(corpus=twins_corpus_artifact, model=small)
