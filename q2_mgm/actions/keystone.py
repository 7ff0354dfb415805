"""The keystone area: keystone-genera and keystone-report, registered by `register(plugin)`: score each genus by the
attention (or attribution) an MGM model gives it, per class. The core modules that run the model (torch) are
imported by the action functions when called (CONTRIBUTING)."""
import pandas as pd
import qiime2
from q2_sample_classifier import Classifier, Importance, Regressor
from q2_types.feature_data import FeatureData
from q2_types.sample_data import SampleData
from qiime2.plugin import Categorical, Choices, Float, Int, Metadata, MetadataColumn, Numeric, Range, Str

from .._examples import usage as _examples
from .._formats import ModelFiles
from .._progress import report
from .._types import MGMCorpus, MGMModel, Pretrained
from ..core.settings import METHODS, REPORT
from ..core.tokenizer import Corpus
from ..visualizers.keystone import keystone_report
from ._parameters import CORPUS_DESCRIPTION, DEVICE_DESCRIPTION, DEVICES, ID_COLUMN, SEED, citations


def keystone_genera(corpus: Corpus, model: ModelFiles, metadata: qiime2.MetadataColumn = None,
                    subjects: qiime2.CategoricalMetadataColumn = None, batches: qiime2.CategoricalMetadataColumn = None,
                    method: str = REPORT["method"], min_samples: int = REPORT["min_samples"],
                    device: str = "auto") -> pd.DataFrame:
    from ..core.keystone import aggregate, check_corpus
    from ..core.keystone_batches import check_batch_inputs, explain_samples, summarise_effects
    from ..core.keystone_samples import check_before_scoring, score_samples
    column = None if metadata is None else metadata.to_series()
    subject_of = None if subjects is None else subjects.to_series()
    check_corpus(corpus.samples.index)
    fit_with_batches = check_batch_inputs(model.path, method, None if batches is None else batches.name)
    check_before_scoring(corpus, model.path, column, subject_of, method,
                         batches.to_series() if fit_with_batches else None)
    if fit_with_batches:
        explained = explain_samples(corpus, model.path, column, batches.to_series(), device, report)
        summary = summarise_effects(explained, subject_of, min_samples, n_bootstrap=1, confidence=REPORT[
            "confidence"], random_state=0, report=report)
    else:
        scored = score_samples(corpus, model.path, column, method, device, report)
        summary = aggregate(*scored.units(subject_of, report), min_samples=min_samples, n_bootstrap=1)
    for group, n in summary.n_excluded.items():
        report(f"{group}: {n} genera in fewer than {min_samples} samples are scored but not ranked")
    importance = summary.importance
    importance.index.name = "feature-id"
    return importance


INPUTS = {"corpus": CORPUS_DESCRIPTION,
          "model": "A fine-tuned MGM classifier (the paper's view), or a pretrained model together with a metadata "
                   "column. A classifier or regressor fine-tuned with batches (the across-study recipe) is "
                   "explained by each genus's contribution to its decision: give it `batches` and method "
                   "'gradient'. A regressor fit without batches is refused (fine-tune it with batches)."}
PARAMETERS = {"metadata": MetadataColumn[Categorical | Numeric], "subjects": ID_COLUMN, "batches": ID_COLUMN,
              "method": Str % Choices(*METHODS),
              "min_samples": Int % Range(1, None), "device": DEVICES}
DESCRIPTIONS = {
    "metadata": "The groups to score genera for (e.g. delivery mode). Optional with a classifier: its predicted "
                "classes are the groups then. Samples without a value are left out and counted. A numeric column is "
                "read as labels, named as written (1, not 1.0), except for a regressor fit with batches: it takes "
                "numbers (e.g. age), and its groups are 'higher' (above the median of the sample's batch) and "
                "'lower' (the rest); left out, the values it predicts are split so. With method "
                "'gradient' and a classifier, samples of a class the classifier lacks are listed and not "
                "summarised (a classifier fit with batches still explains them, as the others' batch statistics "
                "include them).",
    "subjects": "Optional: each sample's subject (e.g. child ID). A subject's samples are averaged first, so that "
                "confidence intervals and tests count subjects, not repeated samples of one subject.",
    "batches": "For a model fit with batches, and required then: each sample's batch (study, sequencing run), "
               "read as predict-classification (predict-regression) reads it. The model standardises each batch on "
               "its own samples, so every sample of the corpus needs a batch and is explained (at least 3 samples "
               "per batch), and each sample's contributions add up to the decision prediction gives it with these "
               "batches (a classifier's log-odds, a regressor's prediction), less its batch's average. A model fit "
               "without batches takes none.",
    "method": "'attention': the last layer's attention from the token the classifier reads, averaged over heads "
              "(the paper's view); 'rollout': attention rolled out across all layers; 'gradient': integrated "
              "gradients of the class logit on the genus embeddings, a check that does not rely on attention (for "
              "a model fit with batches: of its decision, a classifier's log-odds or a regressor's prediction). "
              "Attention scores are relative to an even share over the sample's genera (1 = even). A model "
              "fit with batches takes 'gradient' only: it has no classifier head whose attention the others read, "
              "and each genus is scored by its contribution to the across-study recipe's decision (CLR part exact, "
              "MGM part by integrated gradients of the pooled hidden states and the likelihood).",
    "min_samples": "Genera held by fewer samples (or subjects) of a group are scored but not ranked, so a genus "
                   "seen in a handful of samples cannot top the list.",
    "device": DEVICE_DESCRIPTION,
}


def register(plugin):
    plugin.methods.register_function(
        function=keystone_genera,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier | Regressor | Pretrained]},
        parameters=PARAMETERS,
        outputs=[("importance", FeatureData[Importance])],
        input_descriptions=INPUTS,
        parameter_descriptions=DESCRIPTIONS,
        output_descriptions={"importance": "One column per group: each genus' mean score over the group's samples, "
                                           "absence counted as 0 (so rare genera weigh by how often they occur). "
                                           "For a classifier fit with batches, each genus's effect for the "
                                           "class instead: its mean contribution to the class's log-odds in the "
                                           "class's samples less in the others', in the column of the class a "
                                           "higher abundance of it points to (0 elsewhere and where undefined); "
                                           "for a regressor fit with batches, columns 'higher' and 'lower', "
                                           "the effect on the prediction in its units. "
                                           "q2-sample-classifier's heatmap and metadata "
                                           "tabulate read it."},
        name="Keystone genera from attention or attribution",
        description="Score every genus of every sample by the attention (or attribution) the model gives it, and "
                    "summarise the scores per group, as MGM's paper did to find delivery-mode keystone genera. "
                    "A classifier or regressor fit with batches is explained by each genus's contribution to its "
                    "decision (with batches and method 'gradient'), summarised as each genus's effect toward each "
                    "class (for a regressor, toward higher or lower values). "
                    "`keystone-report` shows the ranking with confidence intervals.",
        citations=[citations["zhang2026mgm"]],
        examples={"keystone_genera_of_delivery_modes": _examples.keystone_genera_example,
                  "keystone_genera_of_a_model_fit_with_batches": _examples.keystone_genera_batches_example},
    )

    plugin.visualizers.register_function(
        function=keystone_report,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier | Regressor | Pretrained]},
        parameters={**PARAMETERS, "top_genera": Int % Range(1, 200), "n_bootstrap": Int % Range(1, 100_000),
                    "confidence": Float % Range(0.5, 1, inclusive_end=False), "attention_samples": Metadata,
                    "random_state": SEED},
        input_descriptions=INPUTS,
        parameter_descriptions={
            **DESCRIPTIONS,
            "top_genera": "Genera shown per group.",
            "n_bootstrap": "Bootstrap resamples of each group's samples for the confidence intervals.",
            "confidence": "Level of the bootstrap confidence intervals.",
            "attention_samples": "The samples whose attention maps to show, as metadata whose IDs are "
                                 "those samples (a file with just a sample-id column will do; other columns are "
                                 "ignored), as feature-table filter-samples picks samples by ID. Each must be in "
                                 "the corpus and have a group. Left out, the first sample of each group is "
                                 "shown (four at most). Not for a model fit with batches, which has no "
                                 "attention maps.",
            "random_state": "Seed of the bootstrap.",
        },
        name="Keystone genera: ranking, confidence intervals and group differences",
        description="For each group, the top genera with bootstrap confidence intervals over samples; a genus x group "
                    "heatmap; per-genus tests of the difference between groups (Mann-Whitney U or Kruskal-Wallis, "
                    "Benjamini-Hochberg q-values); attention maps of chosen samples; TSVs and PDFs to download. For a "
                    "model fit with batches (with batches and method 'gradient'): each class's (a regressor's higher "
                    "and lower values') genera ranked by "
                    "their effect on the decision, with intervals, prevalence and the share of the MGM part, the "
                    "integrated gradients' completeness gap, and every sample's contributions; no attention maps.",
        citations=[citations["zhang2026mgm"]],
        examples={"keystone_report": _examples.keystone_report_example,
                  "keystone_report_of_a_model_fit_with_batches": _examples.keystone_report_batches_example},
    )
