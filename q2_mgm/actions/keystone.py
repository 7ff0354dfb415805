"""The keystone area: keystone-genera and keystone-report, registered by `register(plugin)`: score each genus by the
attention (or attribution) an MGM model gives it, per class. The core modules that run the model (torch) are
imported by the action functions when called (CONTRIBUTING)."""
import pandas as pd
import qiime2
from q2_sample_classifier import Classifier, Importance
from q2_types.feature_data import FeatureData
from q2_types.sample_data import SampleData
from qiime2.plugin import Categorical, Choices, Float, Int, Metadata, MetadataColumn, Range, Str

from .._examples import usage as _examples
from .._formats import ModelFiles
from .._progress import report
from .._types import MGMCorpus, MGMModel, Pretrained
from ..core.settings import METHODS, REPORT
from ..core.tokenizer import Corpus
from ..visualizers.keystone import keystone_report
from ._parameters import CORPUS_DESCRIPTION, DEVICE_DESCRIPTION, DEVICES, ID_COLUMN, SEED, citations


def keystone_genera(corpus: Corpus, model: ModelFiles, metadata: qiime2.CategoricalMetadataColumn = None,
                    subjects: qiime2.CategoricalMetadataColumn = None, method: str = REPORT["method"],
                    min_samples: int = REPORT["min_samples"], device: str = "auto") -> pd.DataFrame:
    from ..core.keystone import aggregate
    from ..core.keystone_samples import score_samples
    scored = score_samples(corpus, model.path, None if metadata is None else metadata.to_series(), method, device,
                           report)
    summary = aggregate(*scored.units(None if subjects is None else subjects.to_series(), report),
                        min_samples=min_samples, n_bootstrap=1)
    for group, n in summary.n_excluded.items():
        report(f"{group}: {n} genera in fewer than {min_samples} samples are scored but not ranked")
    importance = summary.importance
    importance.index.name = "feature-id"
    return importance


INPUTS = {"corpus": CORPUS_DESCRIPTION,
                   "model": "A fine-tuned MGM classifier (the paper's view), or a pretrained model together with a "
                            "metadata column."}
PARAMETERS = {"metadata": MetadataColumn[Categorical], "subjects": ID_COLUMN,
                       "method": Str % Choices(*METHODS),
                       "min_samples": Int % Range(1, None), "device": DEVICES}
DESCRIPTIONS = {
    "metadata": "The groups to score genera for (e.g. delivery mode). Optional with a classifier: its predicted "
                "classes are the groups then. Samples without a value are left out and counted.",
    "subjects": "Optional: each sample's subject (e.g. child ID). A subject's samples are averaged first, so that "
                "confidence intervals and tests count subjects, not repeated samples of one subject.",
    "method": "'attention': the last layer's attention from the token the classifier reads, averaged over heads "
              "(the paper's view); 'rollout': attention rolled out across all layers; 'gradient': integrated "
              "gradients of the class logit on the genus embeddings, a check that does not rely on attention. "
              "Attention scores are relative to an even share over the sample's genera (1 = even).",
    "min_samples": "Genera held by fewer samples (or subjects) of a group are scored but not ranked, so a genus "
                   "seen in a handful of samples cannot top the list.",
    "device": DEVICE_DESCRIPTION,
}


def register(plugin):
    plugin.methods.register_function(
        function=keystone_genera,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier | Pretrained]},
        parameters=PARAMETERS,
        outputs=[("importance", FeatureData[Importance])],
        input_descriptions=INPUTS,
        parameter_descriptions=DESCRIPTIONS,
        output_descriptions={"importance": "One column per group: each genus' mean score over the group's samples, "
                                           "absence counted as 0 (so rare genera weigh by how often they occur). "
                                           "q2-sample-classifier's heatmap and metadata tabulate read it."},
        name="Keystone genera from attention",
        description="Score every genus of every sample by the attention (or attribution) the model gives it, and "
                    "summarise the scores per group, as MGM's paper did to find delivery-mode keystone genera. "
                    "`keystone-report` shows the ranking with confidence intervals.",
        citations=[citations["zhang2026mgm"]],
        examples={"keystone_genera_of_delivery_modes": _examples.keystone_genera_example},
    )

    plugin.visualizers.register_function(
        function=keystone_report,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier | Pretrained]},
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
                                 "shown (four at most).",
            "random_state": "Seed of the bootstrap.",
        },
        name="Keystone genera: ranking, confidence intervals and group differences",
        description="For each group, the top genera with bootstrap confidence intervals over samples; a genus x group "
                    "heatmap; per-genus tests of the difference between groups (Mann-Whitney U or Kruskal-Wallis, "
                    "Benjamini-Hochberg q-values); attention maps of chosen samples; TSVs and PDFs to download.",
        citations=[citations["zhang2026mgm"]],
        examples={"keystone_report": _examples.keystone_report_example},
    )
