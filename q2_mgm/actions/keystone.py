"""The keystone area: keystone-genera and keystone-report, registered by `register(plugin)`: score each genus by the
attention (or attribution) an MGM model gives it, per class."""
import dataclasses
import pathlib

import numpy as np
import pandas as pd
import qiime2
from q2_sample_classifier import Classifier, Importance
from q2_types.feature_data import FeatureData
from q2_types.sample_data import SampleData
from qiime2.plugin import Categorical, Choices, Float, Int, List, MetadataColumn, Range, Str

from .. import _examples
from .._formats import ModelFiles
from .._types import MGMCorpus, MGMModel, Pretrained
from ..core.inference import encode
from ..core.keystone import METHODS, KeystoneError, aggregate, genus_scores, per_subject, token_scores
from ..core.models import load_model
from ..core.tokenizer import Corpus
from ..core.training import load_trained_model, predict
from ._parameters import CORPUS_DESCRIPTION, DEVICE_DESCRIPTION, DEVICES, SEED, citations
from ._util import report, resolve_device


@dataclasses.dataclass
class ScoredSamples:
    """What the method and the visualizer share: per-sample genus scores and each sample's group."""
    network: object
    vocabulary: object
    token_ids: list
    scores: pd.DataFrame  # samples x genera (NaN: genus absent)
    groups: pd.Series
    grouping: str  # where the groups came from, for the report

    def units(self, subjects):
        """(scores, groups) to summarise: per sample, or per subject where a subject column is given."""
        if subjects is None:
            return self.scores, self.groups
        units, groups = per_subject(self.scores, self.groups, subjects.to_series())
        report(f"averaged {len(self.scores)} samples' scores within {len(units)} subjects: confidence intervals "
               "and tests count subjects, not samples")
        return units, groups


def _load(model_dir):
    """(a TrainedModel, which keeps its label set, or a bare pretrained network; vocabulary)."""
    if (pathlib.Path(model_dir) / "training.json").is_file():
        trained, vocabulary, _ = load_trained_model(model_dir)
        if trained.task != "classification":
            raise KeystoneError("keystone-genera scores genera per class; this model is a regressor. Use a "
                                "classifier, or the pretrained model with a categorical metadata column.")
        return trained, vocabulary
    network, vocabulary, _ = load_model(model_dir)
    return network, vocabulary


def _groups(corpus, metadata, trained, token_ids, device):
    """Each sample's group: the metadata column's value, else the class the classifier predicts."""
    if metadata is not None:
        values = metadata.to_series().reindex(corpus.samples.index).astype("string")
        missing = values.isna()
        if missing.all():
            raise KeystoneError(f"None of the corpus's {len(values)} samples has a value in {metadata.name!r}; "
                                "check that the metadata's sample IDs match the table's.")
        if missing.any():
            report(f"left out {int(missing.sum())} of {len(values)} samples with no {metadata.name!r}")
        return values[~missing].astype(str), f"metadata column {metadata.name!r}"
    if not hasattr(trained, "labels"):
        raise KeystoneError("With a pretrained model, keystone-genera needs a categorical metadata column to group "
                            "the samples by (e.g. delivery mode); pass `metadata`.")
    abundances = corpus.abundance_table() if trained.forest else None
    predicted = predict(trained, token_ids, device, abundances).argmax(1)
    return (pd.Series(np.asarray(trained.labels)[predicted], index=corpus.samples.index),
            "the classes the model predicts")


def score_samples(corpus: Corpus, model_dir, metadata, method, device) -> ScoredSamples:
    loaded, vocabulary = _load(model_dir)
    network = getattr(loaded, "model", loaded)
    device = resolve_device(device)
    token_ids = encode(corpus.samples.sentence, vocabulary)
    groups, grouping = _groups(corpus, metadata, loaded, token_ids, device)
    kept = corpus.samples.index.get_indexer(groups.index)
    token_ids = [token_ids[i] for i in kept]
    target = None
    if method == "gradient" and hasattr(loaded, "labels") and set(groups) <= set(loaded.labels):
        target = groups.map({label: i for i, label in enumerate(loaded.labels)}).to_numpy(np.int64)
    report(f"scoring the genera of {len(token_ids)} samples by {method}, grouped by {grouping}")
    scores = token_scores(network, token_ids, method, target=target, device=device,
                          progress=lambda done, total: report(f"scored {done}/{total} samples"))
    matrix = genus_scores(token_ids, scores, vocabulary, sample_ids=groups.index)
    return ScoredSamples(network, vocabulary, token_ids, matrix, groups, grouping)


def keystone_genera(corpus: Corpus, model: ModelFiles, metadata: qiime2.CategoricalMetadataColumn = None,
                    subjects: qiime2.CategoricalMetadataColumn = None, method: str = "attention",
                    min_samples: int = 10, device: str = "auto") -> pd.DataFrame:
    scored = score_samples(corpus, model.path, metadata, method, device)
    summary = aggregate(*scored.units(subjects), min_samples=min_samples, n_bootstrap=1)
    for group, n in summary.n_excluded.items():
        report(f"{group}: {n} genera in fewer than {min_samples} samples are scored but not ranked")
    importance = summary.importance
    importance.index.name = "feature-id"
    return importance


INPUTS = {"corpus": CORPUS_DESCRIPTION,
                   "model": "A fine-tuned MGM classifier (the paper's view), or a pretrained model together with a "
                            "metadata column."}
PARAMETERS = {"metadata": MetadataColumn[Categorical], "subjects": MetadataColumn[Categorical],
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
    from ..visualizers.keystone import keystone_report  # TEMPORARY until the visualizer no longer imports actions
    plugin.methods.register_function(
        function=keystone_genera,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Classifier | Pretrained]},
        parameters=PARAMETERS,
        outputs=[("importance", FeatureData[Importance])],
        input_descriptions=INPUTS,
        parameter_descriptions=DESCRIPTIONS,
        output_descriptions={"importance": "One column per group: each genus' mean score over the group's samples, "
                                           "absence counted as 0 (so rare genera weigh by how often they occur). "
                                           "q2-sample-classifier's heatmap and `qiime metadata tabulate` read it."},
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
                    "confidence": Float % Range(0.5, 1, inclusive_end=False), "sample_ids": List[Str],
                    "random_state": SEED},
        input_descriptions=INPUTS,
        parameter_descriptions={
            **DESCRIPTIONS,
            "top_genera": "Genera shown per group.",
            "n_bootstrap": "Bootstrap resamples of each group's samples for the confidence intervals.",
            "confidence": "Level of the bootstrap confidence intervals.",
            "sample_ids": "Samples whose attention maps to show (default: the first sample of each group).",
            "random_state": "Seed of the bootstrap.",
        },
        name="Keystone genera: ranking, confidence intervals and group differences",
        description="For each group, the top genera with bootstrap confidence intervals over samples; a genus x group "
                    "heatmap; per-genus tests of the difference between groups (Mann-Whitney U or Kruskal-Wallis, "
                    "Benjamini-Hochberg q-values); attention maps of chosen samples; TSVs and PDFs to download.",
        citations=[citations["zhang2026mgm"]],
        examples={"keystone_report": _examples.keystone_report_example},
    )
