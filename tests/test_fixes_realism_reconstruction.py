"""Issue 19 item 3 for evaluate-generated, fit-reconstructor, generate's reconstructors and the MGMReconstructor
format: each error a user's input reaches is provoked as a user meets it, then the fix its message names is applied
and the action (or the import) succeeds. tests/advice/realism_reconstruction.py points each raise here."""
import json
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest

from .helpers import assert_refused, frequency_table, read_genus_table, read_metadata

TREES = 5  # the realism page's forests: enough to run every analysis, cheap on a shared machine

pytestmark = pytest.mark.one_torch_thread


# --- evaluate-generated ---

@pytest.fixture(scope="module")
def real():
    """(ECAM counts of every 10th sample (88, taxonomy strings as feature IDs), their delivery mode)."""
    counts = read_genus_table("ecam").iloc[::10]
    return counts, read_metadata("ecam").delivery.loc[counts.index]


@pytest.fixture(scope="module")
def synthetic(real):
    """(10 bootstrap samples per delivery mode over MGM genus tokens, as generate writes them; their labels)."""
    from q2_mgm.core.baseline_generator import bootstrap_baseline
    from q2_mgm.core.reconstruction import genus_relative_abundance
    counts, delivery = real
    return bootstrap_baseline(genus_relative_abundance(counts), delivery, n_per_label=10)


def _column(labels, name="delivery"):
    import qiime2
    return qiime2.CategoricalMetadataColumn(pd.Series(labels.to_numpy(), name=name,
                                                      index=pd.Index(labels.index.astype(str), name="sample-id")))


def _table(frame, semantic_type="FeatureTable[Frequency]"):
    import qiime2
    return qiime2.Artifact.import_data(semantic_type, frame.astype(float))


def _evaluate(mgm_plugin, tmp_path, real_table, synthetic_table, real_labels, synthetic_labels, taxonomy=None):
    """evaluate-generated, exported: its summary (one row per shared label, then all labels)."""
    visualization, = mgm_plugin.actions.evaluate_generated(
        real_table=real_table, synthetic_table=synthetic_table, real_labels=real_labels,
        synthetic_labels=synthetic_labels, taxonomy=taxonomy, n_estimators=TREES)
    directory = tmp_path / "page"
    visualization.export_data(str(directory))
    return pd.read_csv(directory / "realism_summary.tsv", sep="\t", index_col=0)


def _empty_table(frame):
    import biom
    import qiime2
    return qiime2.Artifact.import_data("FeatureTable[Frequency]", biom.Table(
        np.zeros((frame.shape[1], 0)), list(frame.columns), []))


@pytest.mark.parametrize("damage", ["empty real table", "NaN in a synthetic sample", "CLR-transformed real table"])
def test_bad_abundances_fixed_as_advised(mgm_plugin, real, synthetic, tmp_path, damage):
    """An empty table, a sample with NaN, a transformed table: each named, then the fix the message names (a table
    with samples; that sample filtered out; the counts) and the page is made."""
    from q2_mgm.core.realism import RealismError
    counts, delivery = real
    table, labels = synthetic
    real_table, synthetic_table = frequency_table(counts), _table(table, "FeatureTable[RelativeFrequency]")
    if damage == "empty real table":
        bad, words = {"real_table": _empty_table(counts)}, "The real table is empty .* at least 5 samples per label"
        fixed = {"real_table": real_table}
    elif damage == "NaN in a synthetic sample":
        holed = table.copy()
        holed.iloc[3, holed.iloc[3].to_numpy().argmax()] = np.nan
        bad = {"synthetic_table": _table(holed, "FeatureTable[RelativeFrequency]")}
        words = f"synthetic table holds 1 non-finite values .*for example {holed.index[3]}.*remove those samples"
        fixed = {"synthetic_table": _table(holed.drop(index=holed.index[3]), "FeatureTable[RelativeFrequency]")}
    else:
        logs = np.log(counts + 1)
        bad = {"real_table": _table(logs.sub(logs.mean(axis=1), axis=0), "FeatureTable[RelativeFrequency]")}
        words, fixed = "real table holds .* negative values .* give counts or relative abundance", \
            {"real_table": real_table}
    inputs = {"real_table": real_table, "synthetic_table": synthetic_table, "real_labels": _column(delivery),
              "synthetic_labels": _column(labels)}
    with pytest.raises(RealismError, match=words):
        _evaluate(mgm_plugin, tmp_path, **{**inputs, **bad})
    summary = _evaluate(mgm_plugin, tmp_path, **{**inputs, **fixed})
    expected = len(table) - (damage == "NaN in a synthetic sample")
    assert list(summary.index) == ["Cesarean", "Vaginal", "(all labels)"] and summary.n_synthetic.iloc[-1] == expected


def test_labels_not_indexed_by_the_table_fixed_as_advised(mgm_plugin, real, synthetic, tmp_path):
    """Real labels whose IDs are written otherwise than the table's: the message shows both; labels indexed by the
    table's IDs make the page."""
    from q2_mgm.core.realism import RealismError
    counts, delivery = real
    table, labels = synthetic
    inputs = {"real_table": frequency_table(counts),
              "synthetic_table": _table(table, "FeatureTable[RelativeFrequency]"),
              "synthetic_labels": _column(labels)}
    written = delivery.rename(lambda sample: f"ECAM-{sample}")
    with pytest.raises(RealismError, match=f"None of the real table's 88 sample IDs has a real label.*table: "
                                           f"{counts.index[0]}.*labels: ECAM-{counts.index[0]}"):
        _evaluate(mgm_plugin, tmp_path, real_labels=_column(written), **inputs)
    summary = _evaluate(mgm_plugin, tmp_path, real_labels=_column(written.rename(lambda s: s[len("ECAM-"):])),
                        **inputs)
    assert summary.n_real.iloc[-1] == len(counts)


def test_synthetic_labels_that_share_none_relabelled_as_advised(mgm_plugin, real, synthetic, tmp_path):
    """Synthetic samples labelled otherwise than the real ones (lower case): labelled with the real labels they were
    generated for, they are compared."""
    from q2_mgm.core.realism import RealismError
    counts, delivery = real
    table, labels = synthetic
    inputs = {"real_table": frequency_table(counts),
              "synthetic_table": _table(table, "FeatureTable[RelativeFrequency]"),
              "real_labels": _column(delivery)}
    with pytest.raises(RealismError, match="share no label .*real: Cesarean, Vaginal; synthetic: cesarean, vaginal"
                                           ".*Label the synthetic samples with the real labels"):
        _evaluate(mgm_plugin, tmp_path, synthetic_labels=_column(labels.str.lower()), **inputs)
    summary = _evaluate(mgm_plugin, tmp_path, synthetic_labels=_column(labels), **inputs)
    assert summary.n_synthetic.tolist() == [10, 10, 20]


@pytest.fixture(scope="module")
def generator(mgm_plugin, tiny_model, real):
    """A label-prompted generator grown from the tiny model on the real samples' delivery mode (one epoch)."""
    counts, delivery = real
    corpus = mgm_plugin.actions.tokenize(table=frequency_table(counts), max_length=32).corpus
    generator, _ = mgm_plugin.actions.pretrain_generator(corpora=[corpus], model=tiny_model,
                                                         metadata=_column(delivery), epochs=1, batch_size=16,
                                                         device="cpu")
    return generator


@pytest.mark.parametrize("side", ["synthetic", "real"])
def test_a_label_short_of_samples_fixed_as_advised(mgm_plugin, real, synthetic, generator, tmp_path, side):
    """Synthetic side: 4 generated samples per label; the message names generate's n_per_label, and 5 make the
    page. Real side: 3 real samples of a third label; leaving that label out of the real labels makes the page."""
    import qiime2
    from q2_mgm.core.realism import RealismError
    counts, delivery = real
    if side == "synthetic":
        def generated(n):
            made = mgm_plugin.actions.generate(model=generator, n_per_label=n, max_length=24, device="cpu")
            return {"synthetic_table": made.table,
                    "synthetic_labels": made.sample_metadata.view(qiime2.Metadata).get_column("label")}
        inputs = {"real_table": frequency_table(counts), "real_labels": _column(delivery)}
        with pytest.raises(RealismError, match="Label 'Cesarean' has 4 synthetic samples in 'label'; every "
                                               "label needs at least 5 real and 5 synthetic.*Generate at least 5 "
                                               "samples of it \\(generate's n_per_label\\)"):
            _evaluate(mgm_plugin, tmp_path, **inputs, **generated(4))
        summary = _evaluate(mgm_plugin, tmp_path, **inputs, **generated(5))
        assert summary.n_synthetic.tolist() == [5, 5, 10]
        return
    table, labels = synthetic
    third = delivery.copy()
    third.iloc[:3] = "Breech"
    more = pd.concat([table, table.iloc[:6].rename(lambda sample: f"breech-{sample}")])
    more_labels = pd.concat([labels, pd.Series("Breech", index=more.index[-6:])])
    inputs = {"real_table": frequency_table(counts),
              "synthetic_table": _table(more, "FeatureTable[RelativeFrequency]"),
              "synthetic_labels": _column(more_labels)}
    with pytest.raises(RealismError, match="Label 'Breech' has 3 real samples.*Give at least 5 real samples of it, or "
                                           "leave that label out of the real labels"):
        _evaluate(mgm_plugin, tmp_path, real_labels=_column(third), **inputs)
    summary = _evaluate(mgm_plugin, tmp_path, real_labels=_column(third[third != "Breech"]), **inputs)
    assert list(summary.index) == ["Cesarean", "Vaginal", "(all labels)"]


@pytest.mark.parametrize("side", ["real", "synthetic"])
def test_features_without_mgm_genera_fixed_as_advised(mgm_plugin, real, synthetic, tmp_path, side):
    """Feature IDs that name no genus (ASV IDs): the real table with its taxonomy, or a synthetic table over MGM genus
    tokens as generate writes them, makes the page."""
    import qiime2
    counts, delivery = real
    table, labels = synthetic
    inputs = {"real_table": frequency_table(counts),
              "synthetic_table": _table(table, "FeatureTable[RelativeFrequency]"),
              "real_labels": _column(delivery), "synthetic_labels": _column(labels)}
    if side == "real":
        asvs = counts.set_axis([f"ASV{i}" for i in range(counts.shape[1])], axis=1)
        taxonomy = qiime2.Artifact.import_data("FeatureData[Taxonomy]", pd.DataFrame(
            {"Taxon": counts.columns}, index=pd.Index(asvs.columns, name="Feature ID")))
        bad, fixed = {"real_table": frequency_table(asvs)}, {"real_table": frequency_table(asvs),
                                                             "taxonomy": taxonomy}
        words = "No feature of the real table names a genus in MGM's vocabulary; give the taxonomy of its features"
    else:
        asvs = table.set_axis([f"ASV{i}" for i in range(table.shape[1])], axis=1)
        bad = {"synthetic_table": _table(asvs, "FeatureTable[RelativeFrequency]")}
        fixed = {"synthetic_table": _table(asvs.set_axis(table.columns, axis=1), "FeatureTable[RelativeFrequency]")}
        words = "No feature of the synthetic table names a genus.*MGM genus tokens \\(g__Name\\)"
    with pytest.raises(ValueError, match=words):
        _evaluate(mgm_plugin, tmp_path, **{**inputs, **bad})
    assert _evaluate(mgm_plugin, tmp_path, **{**inputs, **fixed}).n_real.iloc[-1] == len(counts)


# --- fit-reconstructor, generate ---

@pytest.fixture(scope="module")
def small_counts():
    """ECAM counts of every 20th sample (44 samples)."""
    return read_genus_table("ecam").iloc[::20]


def test_a_table_of_one_sample_fit_as_advised(mgm_plugin, small_counts):
    """One sample leaves none to validate on at any validation_fraction of the Range: the message names the table
    size that works (2 samples), and that fits."""
    from q2_mgm.core.reconstruction import ReconstructionError
    with pytest.raises(ReconstructionError, match="1 samples with validation_fraction 0.1 leave none to train or "
                                                  "validate on; give a table of at least 2 samples"):
        mgm_plugin.actions.fit_reconstructor(table=frequency_table(small_counts.iloc[:1]), epochs=1)
    reconstructor, = mgm_plugin.actions.fit_reconstructor(table=frequency_table(small_counts.iloc[:2]), epochs=1)
    from q2_mgm._formats import MGMReconstructorDirFmt
    record = json.loads((reconstructor.view(MGMReconstructorDirFmt).path / "reconstructor.json").read_text())
    assert record["kind"] == "neural" and len(record["history"]["epoch"]) == 1


@pytest.fixture(scope="module")
def neural_reconstructor(mgm_plugin, small_counts):
    reconstructor, = mgm_plugin.actions.fit_reconstructor(table=frequency_table(small_counts), epochs=1)
    return reconstructor


@pytest.fixture(scope="module")
def foreign_model(tiny_model, tmp_path_factory):
    """The tiny model with every genus of its vocab.txt renamed (same length, so the format passes it)."""
    import qiime2
    from q2_mgm._formats import MGMModelDirFmt
    directory = tmp_path_factory.mktemp("foreign") / "model"
    shutil.copytree(tiny_model.view(MGMModelDirFmt).path, directory)
    tokens = (directory / "vocab.txt").read_text().splitlines()
    (directory / "vocab.txt").write_text("\n".join(t.replace("g__", "g__Renamed") if t.startswith("g__") else t
                                                   for t in tokens) + "\n")
    return qiime2.Artifact.import_data("MGMModel[Pretrained]", str(directory))


@pytest.mark.parametrize("kind", ["mgnify-mean", "neural"])
def test_sentences_of_another_vocabulary_generated_again_as_advised(mgm_plugin, tiny_model, foreign_model,
                                                                    neural_reconstructor, kind):
    """A model whose vocab.txt is not MGM's generates genera no reconstructor knows: the message names where MGM's
    sentences come from, and generating with a model of MGM's vocabulary gives the table."""
    from q2_mgm.core.reconstruction import ReconstructionError
    reconstructor = {"mgnify-mean": None, "neural": neural_reconstructor}[kind]
    with pytest.raises(ReconstructionError, match="genera are not MGM genera \\(for example g__Renamed.*vocab.txt is "
                                                  "MGM's \\(general-model"):
        mgm_plugin.actions.generate(model=foreign_model, reconstructor=reconstructor, n_per_label=3, max_length=12,
                                    device="cpu")
    table = mgm_plugin.actions.generate(model=tiny_model, reconstructor=reconstructor, n_per_label=3, max_length=12,
                                        device="cpu").table.view(pd.DataFrame)
    assert len(table) == 3 and np.allclose(table.sum(axis=1), 1) and table.columns.str.startswith("g__").all()


# --- the MGMReconstructor format: each damaged file refused, the restored files imported ---

@pytest.fixture(scope="module")
def saved_reconstructors(mgm_plugin, small_counts, neural_reconstructor, twins_counts, tmp_path_factory):
    """{name: directory} of reconstructors as fit-reconstructor saves them: neural (ECAM), rank-median (ECAM) and
    neural on other genera (twins)."""
    from q2_mgm._formats import MGMReconstructorDirFmt
    root = tmp_path_factory.mktemp("reconstructors")
    rank_median, = mgm_plugin.actions.fit_reconstructor(table=frequency_table(small_counts), kind="rank-median")
    twins, = mgm_plugin.actions.fit_reconstructor(table=frequency_table(twins_counts.iloc[::10]), epochs=1)
    out = {}
    for name, artifact in {"neural": neural_reconstructor, "rank-median": rank_median, "twins": twins}.items():
        out[name] = root / name
        shutil.copytree(artifact.view(MGMReconstructorDirFmt).path, out[name])
    return out


def _edit_record(**changes):
    def edit(directory, _):
        record = json.loads((directory / "reconstructor.json").read_text())
        record.update(changes)
        (directory / "reconstructor.json").write_text(json.dumps(record))
    return edit


def _truncate_weights(directory, _):
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[:len(data) // 2])


def _other_weights(directory, saved):
    shutil.copy(saved["twins"] / "model.safetensors", directory / "model.safetensors")


DAMAGES = {  # name: (reconstructor, damage, words of the message)
    "unknown kind": ("rank-median", _edit_record(kind="median"),
                     ["kind 'median'", "mgnify-mean, neural, rank-median", "fit the reconstructor again"]),
    "medians not positive": ("rank-median", _edit_record(medians=[0.5, -0.1]), ["no valid medians", "restore"]),
    "genus twice": ("neural", _edit_record(genera=["g__Bacteroides", "g__Bacteroides"]),
                    ["distinct genus names", "restore"]),
    "settings missing": ("neural", _edit_record(settings=None), ["lacks a valid genera list or settings", "restore"]),
    "history without epochs": ("neural", _edit_record(history={"train_loss": [0.5]}),
                               ["history is not a table with an epoch column", "restore"]),
    "weights missing": ("neural", lambda directory, _: (directory / "model.safetensors").unlink(),
                        ["missing model.safetensors", "restore"]),
    "weights truncated": ("neural", _truncate_weights, ["not a valid safetensors file", "restore"]),
    "weights of other genera": ("neural", _other_weights,
                                ["does not match reconstructor.json", "genus.weight", "saved them together"]),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_reconstructor_restored_as_advised(mgm_plugin, saved_reconstructors, tmp_path, damage):
    """Each damaged file is refused on import with the file named and the fix (restore the files saved together, or
    fit again); the files restored import, and generate-ready predictions come out of them."""
    import qiime2
    from q2_mgm._formats import MGMReconstructorDirFmt
    from q2_mgm.core.reconstruction import load_reconstructor
    kind, change, words = DAMAGES[damage]
    directory = tmp_path / "reconstructor"
    shutil.copytree(saved_reconstructors[kind], directory)
    change(directory, saved_reconstructors)
    assert_refused(MGMReconstructorDirFmt, "MGMReconstructor", directory, words)
    shutil.rmtree(directory)
    shutil.copytree(saved_reconstructors[kind], directory)  # restored as fit-reconstructor saved them
    artifact = qiime2.Artifact.import_data("MGMReconstructor", str(directory))
    rebuilt = load_reconstructor(pathlib.Path(artifact.view(MGMReconstructorDirFmt).path))
    abundances, = rebuilt.predict([["g__Bacteroides", "g__Faecalibacterium", "g__Blautia"]])
    assert rebuilt.kind == kind and np.isclose(abundances.sum(), 1) and (abundances > 0).all()
