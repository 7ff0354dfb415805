"""The artifact formats' errors apply their own advice (issue 19 item 3; the table is tests/advice/formats.py). A user
meets these errors by importing or hand-editing an artifact: each test here damages one file of a real artifact
made by the action that writes it (twins samples, tiny models), imports it, and asserts that the error names the
file, the fault, and the way to a valid one (restore the file as the action wrote it, or run that action again).
Then it applies that advice: the files restored as the action wrote them import, validate and load, with the
action's own content."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import qiime2
from qiime2.plugin import ValidationError

from q2_mgm.core import schemas
from q2_mgm.core.cross_validation_store import CrossValidation, FoldPlan, FoldResult
from q2_mgm.core.tokenizer import Corpus

from .helpers import (TAMPERINGS, edit_json, frequency_table, plain_pickle_bytes, read_genus_table, read_metadata,
                      rewrite_qza)

REMAKE = "To get a valid one, restore"


@pytest.fixture(scope="module")
def made(mgm_plugin):
    """Every artifact of the plugin's own formats, each made by the action that writes it, on 40 twins samples
    (20 Lean, 20 Obese) and a 1-layer, 16-wide model pretrained from scratch on them."""
    counts = read_genus_table("twins")
    frame = read_metadata("twins")
    ids = [*frame.index[frame.bmi_category == "Lean"][:20], *frame.index[frame.bmi_category == "Obese"][:20]]
    frame = frame.loc[ids, ["bmi_category"]].assign(batch=["A", "B"] * 20)
    metadata = qiime2.Metadata(frame)
    label = metadata.get_column("bmi_category")
    actions = mgm_plugin.actions
    table = frequency_table(counts.loc[ids])
    corpus, = actions.tokenize(table=table)
    pretrained, history = actions.pretrain(corpora=[corpus], from_scratch=True, n_layer=1, n_head=2, n_embd=16,
                                           n_positions=64, epochs=1, validation_fraction=0.2)
    supervised, _ = actions.fine_tune(corpus=corpus, model=pretrained, metadata=label, task="classification",
                                      epochs=1, freeze_layers=0, forest_trees=10)
    generator, _ = actions.pretrain_generator(corpora=[corpus], model=pretrained, metadata=label, epochs=1,
                                              validation_fraction=0.2)
    reconstructor, = actions.fit_reconstructor(table=table, kind="rank-median")
    _, _, labels = actions.generate(model=generator, n_per_label=2, max_length=16)
    # markers asked for (the default): the plan keeps the sentences, the results their genus effects
    folds, = actions.prepare_cross_validation(corpus=corpus, model=pretrained, metadata=label, task="classification",
                                              cv=2, n_estimators=10, batches=metadata.get_column("batch"),
                                              recipe="batch-mgm-logistic")
    results = [actions.cross_validate_fold(folds=folds, model=pretrained, fold=number).fold_predictions
               for number in (1, 2)]
    cross_validation = actions.collate_classification_folds(folds=folds, fold_predictions=results).cross_validation
    return {"corpus": corpus, "model": pretrained, "history": history, "supervised": supervised,
            "generator": generator, "reconstructor": reconstructor, "labels": labels, "folds": folds,
            "fold": results[0], "cross_validation": cross_validation}


# what each artifact loads as (its transformer's view), to compare the restored artifact with the action's own
def _model_files(artifact):
    from q2_mgm._formats import ModelFiles
    from q2_mgm.core.models import validate_model_dir
    config, vocabulary = validate_model_dir(artifact.view(ModelFiles).path)
    return pd.Series({"vocab_size": config.vocab_size, "n_embd": config.n_embd, "tokens": len(vocabulary)})


def _reconstructor(artifact):
    from q2_mgm._formats import MGMReconstructorDirFmt
    from q2_mgm.core.reconstruction import load_reconstructor
    return pd.Series(load_reconstructor(artifact.view(MGMReconstructorDirFmt).path).medians)


LOADS = {
    "corpus": lambda a: a.view(Corpus).samples,
    "model": _model_files, "supervised": _model_files, "generator": _model_files,
    "history": lambda a: a.view(pd.DataFrame),
    "labels": lambda a: a.view(pd.Series),
    "reconstructor": _reconstructor,
    "cross_validation": lambda a: a.view(CrossValidation).predictions,
    "folds": lambda a: pd.Series(a.view(FoldPlan).fold_of),
    "fold": lambda a: a.view(FoldResult).predictions,
}


# --- damages: each edits one exported file of the artifact ---

def _rewrite(name, change):
    def damage(directory):
        path = directory / name
        path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    return damage


def _lines(name, change):
    return _rewrite(name, lambda text: "\n".join(change(text.splitlines())) + "\n")


def _cell(name, line, column, value):
    """Line `line` (0: the header) of a TSV, its cell `column` set to value."""
    def change(lines):
        cells = lines[line].split("\t")
        cells[column] = value
        lines[line] = "\t".join(cells)
        return lines
    return _lines(name, change)


def _arrays(change):
    """features.safetensors written again with change(arrays) applied (a dict of numpy arrays)."""
    def damage(directory):
        import safetensors.numpy
        path = directory / schemas.FOLDS_FEATURES_FILE
        arrays = safetensors.numpy.load_file(str(path))
        change(arrays)
        safetensors.numpy.save_file(arrays, str(path))
    return damage


def _truncate(name):
    def damage(directory):
        data = (directory / name).read_bytes()
        (directory / name).write_bytes(data[:len(data) // 2])
    return damage


def _append(name, line):
    return _rewrite(name, lambda text: text + line + "\n")


CORPUS = "tokenize \\(or generate, split-corpus\\)"
MODEL = "general-model, pretrain, pretrain-generator, fine-tune or train"
CV = "cross-validate-classification, cross-validate-regression, collate-classification-folds"
# (artifact, damage, what the error says: the fault, then the way to a valid one)
DAMAGES = {
    # the corpus' files (CorpusSamplesFormat, CorpusFeaturesFormat, CorpusAbundancesFormat, JSONFormat)
    "corpus.json not JSON": ("corpus", _rewrite("corpus.json", lambda _: "{not json"),
                             f"Not valid JSON: .* restore corpus.json as qiime mgm {CORPUS} wrote it"),
    "samples.tsv header": ("corpus", _cell("samples.tsv", 0, 1, "sentences"),
                           f"Expected the columns sample-id, sentence.*; found sample-id, sentences.* restore "
                           f"samples.tsv as qiime mgm {CORPUS} wrote it"),
    "features.tsv header": ("corpus", _cell("features.tsv", 0, 1, "taxon"),
                            f"Expected the columns .*taxon.* restore features.tsv as qiime mgm {CORPUS}"),
    "corpus samples.tsv a field more": ("corpus", _lines("samples.tsv", lambda ls: [ls[0], ls[1] + "\textra", *ls[2:]]),
                                 f"Line 2 has \\d+ fields; expected \\d+\\. {REMAKE} samples.tsv"),
    "a sentence without <bos>": ("corpus", _rewrite("samples.tsv", lambda t: t.replace("<bos>", "<pad>", 1)),
                                 f"Line 2: a sentence must start with <bos> and hold no <pad>\\. {REMAKE} "
                                 "samples.tsv"),
    "n_tokens wrong": ("corpus", _rewrite("samples.tsv", lambda t: t.replace("<eos>", "g__Blautia <eos>", 1)),
                       f"Line 2: n_tokens is \\d+ but the sentence has \\d+ tokens\\. {REMAKE} samples.tsv"),
    "abundance above 1": ("corpus", _append("abundances.tsv", "TS1.2\tg__Blautia\t1.5"),
                          f"relative_abundance '1.5' is not a number in \\(0, 1\\]\\. {REMAKE} abundances.tsv as "
                          f"qiime mgm {CORPUS}"),
    "abundance of no genus": ("corpus", _append("abundances.tsv", "TS1.2\tBlautia\t0.5"),
                              f"genus 'Blautia' is not a genus token \\(g__Name\\)\\. {REMAKE} abundances.tsv"),
    # the models' files (SafetensorsFormat, VocabularyFormat, the directories checked together)
    "weights a pickle": ("model", lambda d: (d / "model.safetensors").write_bytes(plain_pickle_bytes(d / "x")),
                         f"Not a safetensors file .* {REMAKE} model.safetensors as qiime mgm {MODEL}"),
    "vocab.txt without special tokens": ("model", _rewrite("vocab.txt", lambda _: "g__A\ng__B\ng__C\ng__D\n"),
                                         f"A vocabulary starts with <pad>.*; this one with g__A.* {REMAKE} "
                                         f"vocab.txt as qiime mgm {MODEL}"),
    "vocab.txt a token longer": ("model", TAMPERINGS["vocab.txt one token longer"][0],
                                 "vocab.txt lists 9670 tokens but config.json's vocab_size is 9669.* restore the "
                                 "artifact's files as qiime mgm general-model or pretrain wrote them"),
    "training.json without labels": ("supervised", edit_json("training.json", lambda r: r.pop("labels")),
                                     "training.json lacks 'labels'.* restore the artifact's files as qiime mgm "
                                     "fine-tune or train wrote them"),
    "generator without label tokens": ("generator", edit_json("pretraining.json", lambda r: r.update(label_tokens=[])),
                                       "pretraining.json lists no label_tokens.* restore pretraining.json as qiime "
                                       "mgm pretrain-generator wrote it"),
    "generator with an unknown label": ("generator", edit_json("pretraining.json",
                                                           lambda r: r.update(label_tokens=["<label_ghost>"])),
                                        "pretraining.json names label tokens that vocab.txt lacks "
                                        "\\(<label_ghost>\\)\\. .* restore pretraining.json as qiime mgm "
                                        "pretrain-generator"),
    "reconstructor of no kind": ("reconstructor", edit_json("reconstructor.json", lambda r: r.update(kind="magic")),
                                 "reconstructor.json names reconstructor kind 'magic'.* restore the artifact's "
                                 "files as qiime mgm fit-reconstructor wrote them"),
    # the labels of generated samples and the training history
    "labels.tsv header": ("labels", _cell("labels.tsv", 0, 1, "class"),
                          f"Expected the columns sample-id, label; found sample-id, class\\. {REMAKE} labels.tsv as "
                          "qiime mgm generate wrote it"),
    "history without epoch": ("history", _cell("history.tsv", 0, 0, "step"),
                              f"starts with an `epoch` column .* {REMAKE} history.tsv as qiime mgm pretrain, "
                              "pretrain-generator, fine-tune or train"),
    "history a field more": ("history", _lines("history.tsv", lambda ls: [ls[0], ls[1] + "\t1.0", *ls[2:]]),
                             f"Line 2 has 5 fields; expected 4\\. {REMAKE} history.tsv"),
    # the collated cross-validation (load_cross_validation)
    "predictions.tsv not tab-separated": ("cross_validation", _rewrite("predictions.tsv",
                                                                      lambda t: t.replace("\t", ",")),
                                          f"Expected a tab-separated header line\\. {REMAKE} predictions.tsv as "
                                          f"qiime mgm {CV}"),
    "cross_validation.json not JSON": ("cross_validation", _rewrite("cross_validation.json", lambda t: t[:-10]),
                                       f"Not valid JSON: .* {REMAKE} cross_validation.json as qiime mgm {CV}"),
    "cross_validation.json without methods": ("cross_validation", edit_json("cross_validation.json",
                                                                        lambda r: r.pop("methods")),
                                              "cross_validation.json lacks methods\\. .* restore the artifact's "
                                              f"files as qiime mgm {CV}"),
    "predictions.tsv columns": ("cross_validation", _cell("predictions.tsv", 0, 3, "observed"),
                                "predictions.tsv has the columns method, sample_id, fold, observed.*; expected "
                                f"method, sample_id, fold, truth.* restore the artifact's files as qiime mgm {CV}"),
    "transfer_matrix.tsv columns": ("cross_validation", _cell("transfer_matrix.tsv", 0, 3, "auc"),
                                    "transfer_matrix.tsv has the columns method, trained_on, tested_on, auc; "
                                    "expected method, trained_on, tested_on, score\\. .* restore the artifact's"),
    "predictions.tsv a field more": ("cross_validation", _lines("predictions.tsv",
                                                                lambda ls: [*ls[:3], ls[3] + "\t1", *ls[4:]]),
                                     "predictions.tsv is not a TSV as q2-mgm writes it: .*fields.* restore the "
                                     "artifact's files"),
    "predictions.tsv an unknown method": ("cross_validation", _rewrite("predictions.tsv",
                                                                       lambda t: t.replace("random-forest", "ridge")),
                                          "predictions.tsv holds methods the record does not list: ridge\\. .* "
                                          "restore the artifact's files"),
    "effects.tsv columns": ("cross_validation", _cell("effects.tsv", 0, 7, "clr"),
                            "effects.tsv has the columns .*, clr; expected .*, abs_clr\\. .* restore the artifact's"),
    "effects.tsv an unknown method": ("cross_validation", _rewrite("effects.tsv",
                                                                   lambda t: t.replace("random-forest", "ridge")),
                                      "effects.tsv holds methods the record does not list\\. .* restore the "
                                      "artifact's files"),
    "meta_analysis.tsv columns": ("cross_validation", _cell("meta_analysis.tsv", 0, 0, "taxon"),
                                  "meta_analysis.tsv has the columns taxon, hedges_g.*; expected genus, hedges_g.* "
                                  "restore the artifact's files"),
    # the fold plan (load_fold_plan)
    "folds.json without genera": ("folds", edit_json("folds.json", lambda r: r.pop("genera")),
                                  "folds.json lacks genera\\. .* restore the artifact's files as qiime mgm "
                                  "prepare-cross-validation wrote them"),
    "folds.json of another task": ("folds", edit_json("folds.json", lambda r: r.update(task="survival")),
                                   "folds.json: task 'survival' is not classification or regression\\. .* restore "
                                   "the artifact's files as qiime mgm prepare-cross-validation"),
    "folds.json of unknown methods": ("folds", edit_json("folds.json", lambda r: r.update(methods=["ridge"])),
                                      "folds.json: methods must start with the recipe and name known recipes .* "
                                      "restore the artifact's files as qiime mgm prepare-cross-validation"),
    "features.safetensors without likelihood": ("folds", _arrays(lambda a: a.pop("likelihood")),
                                                "features.safetensors holds abundances, embeddings, token_lengths, "
                                                "tokens; expected embeddings, likelihood, abundances.* restore the "
                                                "artifact's files as qiime mgm prepare-cross-validation"),
    "features.safetensors truncated": ("folds", _truncate("features.safetensors"),
                                       "features.safetensors is missing or not safetensors .* restore the "
                                       "artifact's files as qiime mgm prepare-cross-validation"),
    "samples.tsv a sample less": ("folds", _lines("samples.tsv", lambda ls: ls[:-1]),
                                  "features.safetensors's arrays .* do not match the 39 samples of samples.tsv and "
                                  "the \\d+ genera of folds.json\\. .* restore the artifact's files"),
    "samples.tsv a fold more": ("folds", _cell("samples.tsv", 1, 2, "9"),
                                "samples.tsv: every fold 1-2 of folds.json must hold out samples, and no other\\. .* "
                                "restore the artifact's files as qiime mgm prepare-cross-validation"),
    "samples.tsv columns": ("folds", _cell("samples.tsv", 0, 1, "label"),
                            "samples.tsv has the columns sample_id, label, fold, group, batch; expected sample_id, "
                            "target, fold, group, batch\\. .* restore the artifact's files"),
    "folds samples.tsv a field more": ("folds", _lines("samples.tsv", lambda ls: [*ls[:3], ls[3] + "\tx", *ls[4:]]),
                                 "samples.tsv is missing or not a TSV: .*fields.* restore the artifact's files as "
                                 "qiime mgm prepare-cross-validation"),
    "samples.tsv a batch of one": ("folds", _cell("samples.tsv", 1, 4, "C"),
                                   "samples.tsv: Batch 'C' holds 1 sample\\(s\\).* restore the artifact's files as "
                                   "qiime mgm prepare-cross-validation"),
    "token_lengths not adding up": ("folds", _arrays(lambda a: a["token_lengths"].__setitem__(0, 10 ** 6)),
                                    "features.safetensors: token_lengths must give each of the 40 samples' sentence "
                                    "length.* restore the artifact's files as qiime mgm prepare-cross-validation"),
    "abundances negative": ("folds", _arrays(lambda a: a["abundances"].__setitem__((0, 0), -0.5)),
                            "features.safetensors: abundances must be relative abundances .* restore the artifact's "
                            "files as qiime mgm prepare-cross-validation"),
    "no sentences with markers": ("folds", _arrays(lambda a: [a.pop("tokens"), a.pop("token_lengths")]),
                                  "folds.json asks for mgm_markers, and features.safetensors holds no sentences.* "
                                  "restore the artifact's files as qiime mgm prepare-cross-validation"),
    # one fold's result (load_fold_result)
    "fold.json without seconds": ("fold", edit_json("fold.json", lambda r: r.pop("seconds")),
                                  "fold.json lacks seconds\\. .* restore the artifact's files as qiime mgm "
                                  "cross-validate-fold wrote them"),
    "fold predictions of another method": ("fold", _rewrite("predictions.tsv",
                                                            lambda t: t.replace("random-forest", "ridge")),
                                           "predictions.tsv holds the methods batch-clr-logistic, batch-mgm-logistic,"
                                           " ridge; fold.json lists .* restore the artifact's files as qiime mgm "
                                           "cross-validate-fold"),
    "fold.json seconds of a method less": ("fold", edit_json("fold.json", lambda r: r["seconds"].pop("random-forest")),
                                           "fold.json: seconds must name each method once\\. .* restore the "
                                           "artifact's files as qiime mgm cross-validate-fold"),
    "fold effects of another fold": ("fold", _rewrite("effects.tsv", lambda t: t.replace("\tfold 1\t", "\tfold 9\t")),
                                     "effects.tsv holds methods or folds that fold.json does not list\\. .* restore "
                                     "the artifact's files as qiime mgm cross-validate-fold"),
}


def _same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        pd.testing.assert_series_equal(a, b)


def _restore(directory, files):
    for path in directory.iterdir():
        path.unlink()
    for name, data in files.items():
        (directory / name).write_bytes(data)


@pytest.mark.parametrize("name", list(DAMAGES))
def test_a_damaged_artifact_names_the_file_and_the_action_and_restored_loads(name, made, tmp_path):
    """The error names the damaged file, the fault and the action that writes it; restored as the action wrote
    it (the advice), the same directory imports, validates and loads as the action's own artifact."""
    kind, damage, says = DAMAGES[name]
    artifact = made[kind]
    directory = tmp_path / kind
    artifact.export_data(str(directory))
    as_written = {path.name: path.read_bytes() for path in directory.iterdir()}
    damage(directory)
    with pytest.raises(ValidationError, match=f"(?s){says}"):
        qiime2.Artifact.import_data(str(artifact.type), str(directory))
    _restore(directory, as_written)
    restored = qiime2.Artifact.import_data(str(artifact.type), str(directory))
    restored.validate(level="max")
    _same(LOADS[kind](restored), LOADS[kind](artifact))


def test_a_damaged_qza_is_refused_and_the_action_s_own_loads(made, tmp_path):
    """The way a user meets it from a .qza someone edited (checksums made to agree): refused, naming the file and the
    action; the .qza as the action saved it loads and validates."""
    import zipfile
    made["folds"].save(str(tmp_path / "folds.qza"))
    with zipfile.ZipFile(tmp_path / "folds.qza") as archive:
        stored, = [n for n in archive.namelist() if n.endswith("data/folds.json")]
        record = json.loads(archive.read(stored))
    record["task"] = "survival"
    damaged = rewrite_qza(tmp_path / "folds.qza", tmp_path / "damaged.qza",
                          {"folds.json": json.dumps(record).encode()})
    with pytest.raises(ValidationError, match="(?s)task 'survival' is not classification or regression.*restore "
                                              "the artifact's files as qiime mgm prepare-cross-validation"):
        qiime2.Artifact.load(str(damaged)).validate(level="max")
    own = qiime2.Artifact.load(str(tmp_path / "folds.qza"))
    own.validate(level="max")
    np.testing.assert_array_equal(own.view(FoldPlan).fold_of, made["folds"].view(FoldPlan).fold_of)


def test_abundances_of_a_sample_the_corpus_lacks_restored_then_load(made, tmp_path):
    """abundances.tsv naming a sample or genus the corpus lacks passes the file's own checks and is refused when the
    corpus is read (the transformer), naming the file and tokenize; restored as tokenize wrote it, it reads."""
    corpus = made["corpus"]
    directory = tmp_path / "corpus"
    corpus.export_data(str(directory))
    as_written = {path.name: path.read_bytes() for path in directory.iterdir()}
    for line, what in (("stranger\tg__Blautia\t0.5", "samples.*'stranger'\\)"),
                       ("TS1.2\tg__Notagenus\t0.5", "genera.*'g__Notagenus'\\)")):
        _append(schemas.CORPUS_ABUNDANCES_FILE, line)(directory)
        with pytest.raises(ValueError, match=f"abundances.tsv names 1 entries of {what}\\. To get a valid one, "
                                             "restore abundances.tsv as qiime mgm tokenize wrote it"):
            qiime2.Artifact.import_data("SampleData[MGMCorpus]", str(directory)).view(Corpus)
        _restore(directory, as_written)
        restored = qiime2.Artifact.import_data("SampleData[MGMCorpus]", str(directory)).view(Corpus)
        assert (restored.abundances != corpus.view(Corpus).abundances).nnz == 0


def test_a_record_that_is_not_json_is_refused_by_the_json_format_first(made, tmp_path):
    """What the NotInput entries of load_cross_validation's and _read_json's "is missing or not JSON" say: the
    required File's JSONFormat refuses a record that is not JSON (and QIIME 2 a missing one) before the directory's
    loader reads it."""
    for kind, name in (("cross_validation", schemas.CV_RECORD_FILE), ("folds", schemas.FOLDS_RECORD_FILE),
                       ("fold", schemas.FOLD_RECORD_FILE)):
        directory = tmp_path / kind
        made[kind].export_data(str(directory))
        (directory / name).write_text("{not json")
        with pytest.raises(ValidationError, match=f"(?s){name} is not a\\(n\\) JSONFormat file.*Not valid JSON"):
            qiime2.Artifact.import_data(str(made[kind].type), str(directory))
        (directory / name).unlink()
        with pytest.raises(ValidationError, match=f"Missing one or more files .*{name}"):
            qiime2.Artifact.import_data(str(made[kind].type), str(directory))
        shutil.rmtree(directory)
