"""The failing inputs of ../shared/cases, each rebuilt from a real report, as tests of the kind of fault it shows
(see ../shared/cases/README.md)."""
import re

import numpy as np
import pandas as pd
import pytest

from q2_mgm.core.taxonomy import HARMONIZED
from q2_mgm.core.tokenizer import Corpus, TokenizationError, tokenize_dataframe

from .helpers import frequency_table, reference_sentences, shared_path


def read_case_table(case):
    """A case's BIOM-style table.tsv (`#OTU ID` header, features as rows) as samples x features."""
    table = pd.read_csv(shared_path("cases", case, "table.tsv"), sep="\t", skiprows=1, index_col=0)
    return table.T.astype(float)


def read_case_taxonomy(case):
    taxonomy = pd.read_csv(shared_path("cases", case, "taxonomy.tsv"), sep="\t", index_col=0, dtype=str)
    return taxonomy["Taxon"]


class TestSilva132GenusPrefix:
    """SILVA 132 QIIME release taxonomy (`D_0__` ... `D_5__Genus`): upstream reads no genus; tokenize failed with and
    without harmonize_names, and its advice (collapse to level 6, harmonize) failed too."""
    CASE = "silva132-genus-prefix"
    # the genera as upstream reads them where written `g__Name` (D_5__Prevotella 9 is SILVA's Prevotella_9)
    AS_UPSTREAM_READS = {"asv00": "g__Bacteroides", "asv01": "g__Prevotella", "asv02": "g__Faecalibacterium",
                         "asv03": "g__Blautia", "asv04": "g__Akkermansia", "asv05": "g__Sulfuricurvum"}

    @pytest.fixture(scope="class")
    def table(self):
        return read_case_table(self.CASE)

    @pytest.fixture(scope="class")
    def taxonomy(self):
        return read_case_taxonomy(self.CASE)

    @pytest.mark.parametrize("level", [None, 6])
    def test_without_harmonize_names_the_error_names_the_convention_and_the_fix(self, table, taxonomy, level):
        if level is not None:  # as qiime taxa collapse --p-level 6 names the features: the convention stays
            table = table.set_axis([";".join(taxonomy[f].split(";")[:level]) for f in table.columns], axis=1)
            taxonomy = None
        with pytest.raises(TokenizationError) as error:
            tokenize_dataframe(table, taxonomy=taxonomy)
        message = str(error.value)
        for words in ("SILVA 132", "`D_5__Genus`", "harmonize_names=True", "--p-harmonize-names"):
            assert words in message, (words, message)
        assert "--p-level 6" not in message

    def test_harmonize_names_reads_the_genera(self, table, taxonomy):
        corpus = tokenize_dataframe(table, taxonomy=taxonomy, harmonize_names=True)
        as_g = pd.Series({feature: f"d__Bacteria;f__F;{genus}" for feature, genus in self.AS_UPSTREAM_READS.items()})
        expected = reference_sentences(table, as_g)
        assert corpus.samples.index.tolist() == list(expected) == table.index.tolist()
        assert corpus.samples.sentence.tolist() == [sentence for sentence, _ in expected.values()]
        assert corpus.samples.vocabulary_coverage.eq(1.0).all()
        features = corpus.features
        assert features.genus.to_dict() == self.AS_UPSTREAM_READS
        assert features.status.eq(HARMONIZED).all()
        assert features.genus_as_written["asv01"] == "D_5__Prevotella 9"
        assert features.genus_as_written.str.match(r"D_5__").all()

    def test_collapsed_to_level_6_too(self, table, taxonomy):
        collapsed = table.set_axis([";".join(taxonomy[f].split(";")[:6]) for f in table.columns], axis=1)
        a = tokenize_dataframe(collapsed, harmonize_names=True)
        b = tokenize_dataframe(table, taxonomy=taxonomy, harmonize_names=True)
        assert a.samples.sentence.tolist() == b.samples.sentence.tolist()

    def test_through_the_tokenize_action(self, table, taxonomy, mgm_plugin):
        import qiime2
        from .helpers import frequency_table
        taxonomy_artifact = qiime2.Artifact.import_data(
            "FeatureData[Taxonomy]", pd.DataFrame({"Taxon": taxonomy}).rename_axis("Feature ID"))
        with pytest.raises(TokenizationError, match=re.escape("harmonize_names=True (--p-harmonize-names)")):
            mgm_plugin.actions.tokenize(table=frequency_table(table), taxonomy=taxonomy_artifact)
        corpus, = mgm_plugin.actions.tokenize(table=frequency_table(table), taxonomy=taxonomy_artifact,
                                             harmonize_names=True)
        expected = tokenize_dataframe(table, taxonomy=taxonomy, harmonize_names=True)
        assert corpus.view(pd.DataFrame).sentence.tolist() == expected.samples.sentence.tolist()


@pytest.mark.one_torch_thread
class TestLabelsWithSpaces:
    """Class labels with spaces (`healthy control`) through pretrain-generator, generate and evaluate-generated: the
    generated samples were labelled `healthy_control`, and evaluate-generated then found no label shared with the
    real samples."""
    CASE = "labels-with-spaces"

    @pytest.fixture(scope="class")
    def run(self, mgm_plugin, model_artifact):
        import qiime2
        table = frequency_table(read_case_table(self.CASE))
        taxonomy = qiime2.Artifact.import_data("FeatureData[Taxonomy]", read_case_taxonomy(self.CASE))
        metadata = qiime2.Metadata.load(str(shared_path("cases", self.CASE, "metadata.tsv")))
        corpus, = mgm_plugin.actions.tokenize(table=table, taxonomy=taxonomy)
        generator, _ = mgm_plugin.actions.pretrain_generator(
            corpora=[corpus], model=model_artifact, metadata=metadata.get_column("diagnosis"), epochs=1,
            batch_size=8, device="cpu")
        generated = mgm_plugin.actions.generate(model=generator, n_per_label=6, max_length=24, device="cpu")
        return table, taxonomy, metadata, generator, generated

    def test_generated_samples_carry_the_labels_as_written(self, run):
        _, _, metadata, generator, generated = run
        written = set(metadata.get_column("diagnosis").to_series())
        assert written == {"healthy control", "progressive supranuclear palsy"}
        labels = generated.sample_metadata.view(pd.Series)
        assert set(labels) == written and (labels.value_counts() == 6).all()
        assert not labels.index.str.contains(" ").any()  # sample IDs keep the token's form, without whitespace

    def test_a_label_as_written_prompts_the_generator(self, run, mgm_plugin):
        generator = run[3]
        generated = mgm_plugin.actions.generate(model=generator, labels=["healthy control"], n_per_label=3,
                                                max_length=24, device="cpu")
        assert set(generated.sample_metadata.view(pd.Series)) == {"healthy control"}

    def test_evaluate_generated_finds_the_shared_labels(self, run, mgm_plugin, tmp_path):
        import qiime2
        table, taxonomy, metadata, _, generated = run
        visualization, = mgm_plugin.actions.evaluate_generated(
            real_table=table, taxonomy=taxonomy, synthetic_table=generated.table,
            real_labels=metadata.get_column("diagnosis"),
            synthetic_labels=generated.sample_metadata.view(qiime2.Metadata).get_column("label"),
            n_estimators=20)
        directory = tmp_path / "realism"
        visualization.export_data(str(directory))
        html = (directory / "index.html").read_text()
        assert "healthy control" in html and "progressive supranuclear palsy" in html



@pytest.mark.one_torch_thread
class TestRareClass:
    """One class with 1 (`metadata-1-IC.tsv`) or 2 (`metadata-2-IC.tsv`) samples: with 1, scikit-learn's message
    named no class or column; with 2, both went to training and the evaluation then crashed on a test set without
    that class."""
    CASE = "rare-class"

    @pytest.fixture(scope="class")
    def inputs(self, mgm_plugin):
        import qiime2
        table = frequency_table(read_case_table(self.CASE))
        taxonomy = qiime2.Artifact.import_data("FeatureData[Taxonomy]", read_case_taxonomy(self.CASE))
        columns = {n: qiime2.Metadata.load(str(shared_path("cases", self.CASE, f"metadata-{n}-IC.tsv")))
                   .get_column("diagnosis") for n in (1, 2)}
        corpus, = mgm_plugin.actions.tokenize(table=table, taxonomy=taxonomy)
        return table, taxonomy, columns, corpus

    @pytest.mark.parametrize("n", [1, 2])
    def test_classify_samples_stops_before_any_work_naming_the_class(self, inputs, mgm_plugin, n):
        from q2_mgm.core.training import TrainingError
        table, taxonomy, columns, _ = inputs
        with pytest.raises(TrainingError) as error:
            mgm_plugin.actions.classify_samples(table=table, taxonomy=taxonomy, metadata=columns[n])
        message = str(error.value)
        for words in ("'IC'", f"has {n} sample", "'diagnosis'", "training, validation, test", "filter-samples",
                      "merge"):
            assert words in message, (words, message)

    def test_fine_tune_stops_before_any_work_with_one_sample(self, inputs, mgm_plugin):
        from q2_mgm.core.training import TrainingError
        _, _, columns, corpus = inputs
        with pytest.raises(TrainingError, match="Class 'IC' of metadata column 'diagnosis' has 1 sample; .*"
                                                 "training, validation"):
            mgm_plugin.actions.fine_tune(corpus=corpus, metadata=columns[1], task="classification")

    def test_two_samples_split_one_to_each_side_and_the_evaluation_copes(self, inputs, mgm_plugin, tmp_path):
        import qiime2
        table, _, columns, corpus = inputs
        _, test = mgm_plugin.actions.split_corpus(corpus=corpus, metadata=columns[2], test_size=0.2)
        labels = columns[2].to_series()
        held_out = labels.reindex(test.view(pd.DataFrame).index)
        assert set(held_out) == {"CD", "IC", "nonIBD"}  # every class that can be held out is
        # a model that knows IC (both its samples: one to train on, one to validate), tested on samples without IC
        model, _ = mgm_plugin.actions.fine_tune(corpus=corpus, metadata=columns[2], task="classification",
                                                forest_trees=20, device="cpu")
        without_ic = [sample for sample in corpus.view(pd.DataFrame).index if labels.get(sample) != "IC"][:12]
        probabilities = mgm_plugin.actions.predict_classification(
            corpus=qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus.view(Corpus).subset(without_ic)),
            model=model).probabilities
        visualization, = mgm_plugin.actions.evaluate_classification(probabilities=probabilities, truth=columns[2],
                                                                    table=table, n_estimators=20)
        directory = tmp_path / "evaluation"
        visualization.export_data(str(directory))
        per_class = pd.read_csv(directory / "per_class_metrics.tsv", sep="\t", index_col=0)
        assert "IC" not in per_class.index and {"CD", "nonIBD"} <= set(per_class.index)
        summary = pd.read_csv(directory / "summary.tsv", sep="\t", index_col=0)
        assert summary["ROC AUC"].between(0, 1).all() and summary["balanced accuracy"].between(0, 1).all()
        assert "No test sample is of class IC" in (directory / "index.html").read_text()


def _case_inputs(case, column):
    import qiime2
    table = frequency_table(read_case_table(case))
    taxonomy = qiime2.Artifact.import_data("FeatureData[Taxonomy]", read_case_taxonomy(case))
    metadata = qiime2.Metadata.load(str(shared_path("cases", case, "metadata.tsv"))).get_column(column)
    return table, taxonomy, metadata


def _exported(visualization, directory):
    visualization.export_data(str(directory))
    return directory


@pytest.mark.one_torch_thread
class TestSamplesLeftOut:
    """24 samples, 2 with no reads and 1 whose reads all fall outside MGM's vocabulary: classify-samples ran on 21
    without a word unless --verbose, the evaluation never said so, and the RandomForest baseline trained on 19
    samples including the 3 that MGM dropped (MGM on 16)."""
    CASE = "samples-left-out"

    @pytest.fixture(scope="class")
    def run(self, mgm_plugin, tmp_path_factory):
        table, taxonomy, status = _case_inputs(self.CASE, "status")
        result = mgm_plugin.actions.classify_samples(table=table, taxonomy=taxonomy, metadata=status,
                                                     forest_trees=20, n_estimators=50, device="cpu")
        directory = _exported(result.evaluation, tmp_path_factory.mktemp("samples-left-out"))
        return table, taxonomy, status, result, directory

    def test_the_evaluation_lists_the_dropped_samples_and_why(self, run):
        _, _, _, _, directory = run
        dropped = tokenize_dataframe(read_case_table(self.CASE), taxonomy=read_case_taxonomy(self.CASE)) \
            .dropped_samples
        assert len(dropped) == 3 and set(dropped.reason) == {"all-zero sample", "no abundance in MGM's vocabulary"}
        left_out = pd.read_csv(directory / "samples_left_out.tsv", sep="\t", index_col="sample_id")
        assert left_out["reason"].to_dict() == {s: f"dropped by tokenization: {r}" for s, r in dropped.reason.items()}
        html = (directory / "index.html").read_text()
        assert "alert-warning" in html and "3 sample(s) of the input were left out" in html
        assert "Samples left out" in html and "samples_left_out.tsv" in html
        for sample in dropped.index:
            assert sample in html

    def test_the_baseline_is_fit_on_mgm_training_samples_only(self, run, mgm_plugin):
        from q2_mgm.core.baselines import random_forest_baseline
        table, taxonomy, status, result, directory = run
        corpus, = mgm_plugin.actions.tokenize(table=table, taxonomy=taxonomy)
        training, test = mgm_plugin.actions.split_corpus(corpus=corpus, metadata=status)  # the pipeline's split
        training_ids = training.view(pd.DataFrame).index
        test_ids = test.view(pd.DataFrame).index
        assert len(training_ids) + len(test_ids) == 21
        assert not training_ids.isin(["S04", "S08", "S11"]).any()
        predictions = pd.read_csv(directory / "predictions.tsv", sep="\t", index_col=0)
        assert sorted(predictions.index) == sorted(test_ids)
        expected = random_forest_baseline(read_case_table(self.CASE), status.to_series()[training_ids], test_ids,
                                          "classification", n_estimators=50, random_state=0)
        for c in expected.columns:
            assert predictions.loc[test_ids, f"RandomForest_probability_{c}"].tolist() == \
                pytest.approx(expected[c].tolist(), abs=1e-12)
        html = (directory / "index.html").read_text()
        assert f"MGM's training samples (the labelled samples of the training corpus), {len(training_ids)} " \
               "samples," in " ".join(html.split())


@pytest.mark.one_torch_thread
class TestMetadataIdMismatch:
    """8 of 30 metadata IDs written `P-01` where the table has `P01`: classify-samples trained on the rest without a
    word. As q2-sample-classifier: fail and list the table samples the metadata lacks; with missing_samples
    'ignore', leave them out, counted and reported."""
    CASE = "metadata-id-mismatch"
    MISSING = [f"P{i:02d}" for i in range(1, 9)]

    @pytest.fixture(scope="class")
    def inputs(self):
        return _case_inputs(self.CASE, "diagnosis")

    def test_classify_samples_fails_listing_the_missing_samples(self, inputs, mgm_plugin):
        from q2_mgm.core.training import TrainingError
        table, taxonomy, diagnosis = inputs
        with pytest.raises(TrainingError) as error:
            mgm_plugin.actions.classify_samples(table=table, taxonomy=taxonomy, metadata=diagnosis)
        message = str(error.value)
        for words in ("8 of the table's 30 samples are not in the metadata: " + ", ".join(self.MISSING),
                      "missing_samples='ignore'", "--p-missing-samples ignore"):
            assert words in message, (words, message)

    @pytest.mark.parametrize("action", ["split_corpus", "fine_tune", "train"])
    def test_the_methods_fail_as_well(self, inputs, mgm_plugin, action):
        from q2_mgm.core.training import TrainingError
        table, taxonomy, diagnosis = inputs
        corpus, = mgm_plugin.actions.tokenize(table=table, taxonomy=taxonomy)
        task = {} if action == "split_corpus" else {"task": "classification"}
        with pytest.raises(TrainingError, match="8 of the corpus's 30 samples are not in the metadata: P01, P02"):
            getattr(mgm_plugin.actions, action)(corpus=corpus, metadata=diagnosis, **task)

    def test_ignore_leaves_them_out_and_the_evaluation_lists_them(self, inputs, mgm_plugin, tmp_path, capsys):
        table, taxonomy, diagnosis = inputs
        result = mgm_plugin.actions.classify_samples(table=table, taxonomy=taxonomy, metadata=diagnosis,
                                                     missing_samples="ignore", forest_trees=20, n_estimators=50,
                                                     device="cpu")
        assert "left out 8 of 30 samples not in the metadata (missing_samples='ignore'): " \
               + ", ".join(self.MISSING) in capsys.readouterr().out
        directory = _exported(result.evaluation, tmp_path / "evaluation")
        left_out = pd.read_csv(directory / "samples_left_out.tsv", sep="\t", index_col="sample_id")
        assert left_out["reason"].to_dict() == {s: "not in the metadata" for s in self.MISSING}
        assert not result.predictions.view(pd.Series).index.isin(self.MISSING).any()
        assert "8 sample(s) of the input were left out" in (directory / "index.html").read_text()


# --- second round: the cross-study workflow, batch-fitted models, keystone-report ---

def _second_round(case, metadata="metadata.tsv"):
    """(the case's table artifact, its qiime2.Metadata): the tables hold `g__` genus feature IDs, no taxonomy."""
    import qiime2
    return (frequency_table(read_case_table(case)),
            qiime2.Metadata.load(str(shared_path("cases", case, metadata))))


def _numeric_column(name, values):
    import qiime2
    return qiime2.NumericMetadataColumn(pd.Series(values, name=name, dtype=float).rename_axis("id"))


@pytest.mark.one_torch_thread
class TestCvOneGroup:
    """classify-samples-cv with a `groups` column of one value (one study): the error advised "lower cv to 1" (out
    of cv's Range) or leave-one-group-out (which needs 2 groups); neither worked."""
    CASE = "cv-one-group"

    @pytest.mark.parametrize("strategy", ["k-fold", "leave-one-group-out"])
    def test_the_error_names_the_group_and_a_fix_that_works(self, mgm_plugin, strategy):
        from q2_mgm.core.transfer import TransferError
        table, metadata = _second_round(self.CASE)
        with pytest.raises(TransferError) as error:
            mgm_plugin.actions.classify_samples_cv(table=table, metadata=metadata.get_column("Group"),
                                                   groups=metadata.get_column("study"), cv_strategy=strategy)
        message = str(error.value)
        for words in ("'study'", "one group, 'S1'", "nothing to hold out", "leave groups out", "stratified k-fold",
                      "several groups"):
            assert words in message, (words, message)
        assert "cv to 1" not in message and "cv 1" not in message
        assert ("cv_strategy 'k-fold'" in message) == (strategy != "k-fold")

    def test_the_fix_without_groups_runs(self, mgm_plugin):
        table, metadata = _second_round(self.CASE)
        predictions, probabilities, *_ = mgm_plugin.actions.classify_samples_cv(
            table=table, metadata=metadata.get_column("Group"), n_estimators=20, device="cpu", mgm_markers=False)
        assert len(predictions.view(pd.Series)) == 90
        assert set(predictions.view(pd.Series)) <= {"Case", "Control"}


@pytest.mark.one_torch_thread
class TestRegressConstantTarget:
    """regress-samples-cv where `age` is 30 for every sample ran to the end and reported every method perfect."""
    CASE = "regress-constant-target"

    def test_the_error_names_the_column_and_its_value_before_any_work(self, mgm_plugin, monkeypatch):
        from q2_mgm.actions import corpus
        from q2_mgm.core.transfer import TransferError
        monkeypatch.setattr(corpus, "tokenize_matrix", lambda *a, **k: pytest.fail("tokenized before the check"))
        table, metadata = _second_round(self.CASE)
        with pytest.raises(TransferError, match=r"Metadata column 'age' holds one value, 30, in every sample used.*"
                                                r"Regress a column whose values vary"):
            mgm_plugin.actions.regress_samples_cv(table=table, metadata=metadata.get_column("age"))

    def test_the_fix_a_column_that_varies_runs(self, mgm_plugin):
        table, metadata = _second_round(self.CASE)
        ids = metadata.to_dataframe().index
        age = _numeric_column("age", dict(zip(ids, 20.0 + (np.arange(len(ids)) % 7) * 5)))
        predictions, *_ = mgm_plugin.actions.regress_samples_cv(table=table, metadata=age, n_estimators=20,
                                                               device="cpu", mgm_markers=False)
        assert len(predictions.view(pd.Series)) == 90


@pytest.mark.one_torch_thread
class TestBatchOfOneClass:
    """fine-tune with batches where study S1 holds cases only: no model; the error spoke of folds and groups, which
    fine-tune does not have (it came from the leave-one-batch-out validation inside)."""
    CASE = "batch-of-one-class"

    def test_the_model_is_fit_and_the_history_names_the_batches_not_validated(self, mgm_plugin, tmp_path):
        import json
        table, metadata = _second_round(self.CASE)
        corpus, = mgm_plugin.actions.tokenize(table=table)
        model, history = mgm_plugin.actions.fine_tune(corpus=corpus, metadata=metadata.get_column("Group"),
                                                      task="classification", batches=metadata.get_column("study"),
                                                      device="cpu")
        # S2 cannot be held out (it holds every control); S1 is held out and predicted, but holds cases only, so it
        # has no ROC AUC: both are named
        named = {"validation_auc (S2 not validated)", "validation_auc (S1 not scored: one class)"}
        assert named <= set(history.view(pd.DataFrame).columns)
        model.export_data(str(tmp_path / "model"))
        text = (tmp_path / "model" / "training.json").read_text()
        record = json.loads(text, parse_constant=lambda constant: pytest.fail(f"training.json holds {constant}"))
        assert all(f'"{name}": null' in text for name in named)  # strict JSON: null, never NaN
        assert all(name in json.dumps(record["validation"]) for name in named)
        probabilities = mgm_plugin.actions.predict_classification(
            corpus=corpus, model=model, batches=metadata.get_column("study")).probabilities
        assert list(probabilities.view(pd.DataFrame).columns) == ["Case", "Control"]
        assert len(probabilities.view(pd.DataFrame)) == 45
        # the evaluation page shows the history, and with it the batch that was not validated
        visualization, = mgm_plugin.actions.evaluate_classification(
            probabilities=probabilities, truth=metadata.get_column("Group"), history=history)
        assert "validation_auc (S2 not validated)" in (_exported(visualization, tmp_path / "page") / "index.html") \
            .read_text()


@pytest.mark.one_torch_thread
class TestBatchModelOneNewSample:
    """A model fit with batches predicted one new sample, no batches given: "Batch 'all samples' holds 1 sample(s)
    ... Merge small batches ... or leave batches out", though no batches were given."""
    CASE = "batch-model-one-new-sample"

    @pytest.fixture(scope="class")
    def run(self, mgm_plugin):
        from .helpers import subset_corpus
        table, metadata = _second_round(self.CASE)
        corpus, = mgm_plugin.actions.tokenize(table=table)
        sets = metadata.get_column("set").to_series()
        training = subset_corpus(corpus, sets.index[sets == "train"])
        model, _ = mgm_plugin.actions.fine_tune(corpus=training, metadata=metadata.get_column("Group"),
                                                task="classification", batches=metadata.get_column("study"),
                                                device="cpu")
        return corpus, sets, model

    def test_the_error_says_the_cohort_needs_samples_and_what_to_do(self, run, mgm_plugin):
        from q2_mgm.core.training import TrainingError
        from .helpers import subset_corpus
        corpus, sets, model = run
        new = subset_corpus(corpus, sets.index[sets == "new patient"])
        with pytest.raises(TrainingError) as error:
            mgm_plugin.actions.predict_classification(corpus=new, model=model)
        message = str(error.value)
        for words in ("batch-corrected model", "standardises new samples on their own cohort", "at least 3",
                      "no batches were given", "the 1 sample(s) to predict", "together with other samples",
                      "a model fine-tuned without batches"):
            assert words in message, (words, message)
        assert "leave batches out" not in message and "Merge small batches" not in message

    def test_the_fix_predicting_with_other_samples_of_the_cohort_runs(self, run, mgm_plugin):
        from .helpers import subset_corpus
        corpus, sets, model = run
        cohort = list(sets.index[sets == "new patient"]) + list(sets.index[sets == "train"][:2])
        probabilities = mgm_plugin.actions.predict_classification(
            corpus=subset_corpus(corpus, cohort), model=model).probabilities.view(pd.DataFrame)
        assert len(probabilities) == 3 and np.allclose(probabilities.sum(axis=1), 1)


@pytest.mark.one_torch_thread
class TestKeystoneReportSmallClasses:
    """keystone-report with defaults on 20 held-out samples of 3 classes (7/7/6): a crash inside matplotlib,
    "figure size must be positive finite not (16.5, nan)"; min_samples (10) was more than any class holds."""
    CASE = "keystone-report-small-classes"

    @pytest.fixture(scope="class")
    def inputs(self, mgm_plugin):
        from .helpers import subset_corpus
        table, _ = _second_round(self.CASE)
        _, heldout = _second_round(self.CASE, "metadata-heldout.tsv")
        corpus, = mgm_plugin.actions.tokenize(table=table)
        return subset_corpus(corpus, heldout.ids), heldout.get_column("bmi_category")

    def test_an_error_before_the_work_names_min_samples_and_how_to_lower_it(self, inputs, mgm_plugin,
                                                                            model_artifact, monkeypatch):
        from q2_mgm.core.keystone import KeystoneError
        from q2_mgm.core import keystone_samples  # keystone-report imports score_samples from it when it runs
        monkeypatch.setattr(keystone_samples, "score_samples", lambda *a, **k: pytest.fail("the model ran"))
        corpus, bmi = inputs
        with pytest.raises(KeystoneError) as error:
            mgm_plugin.actions.keystone_report(corpus=corpus, model=model_artifact, metadata=bmi)
        message = str(error.value)
        for words in ("No genus reaches min_samples=10 samples in any class of 'bmi_category'", "Lean 7",
                      "Overwt 6", "Lower min_samples to 6 (--p-min-samples 6)"):
            assert words in message, (words, message)

    def test_the_fix_lower_min_samples_gives_the_page(self, inputs, mgm_plugin, model_artifact, tmp_path):
        corpus, bmi = inputs
        visualization, = mgm_plugin.actions.keystone_report(corpus=corpus, model=model_artifact, metadata=bmi,
                                                            min_samples=6, n_bootstrap=50, device="cpu")
        directory = _exported(visualization, tmp_path / "keystone")
        genera = pd.read_csv(directory / "keystone_genera.tsv", sep="\t")
        assert set(genera.dropna(subset=["rank"]).group) == {"Lean", "Obese", "Overwt"}
