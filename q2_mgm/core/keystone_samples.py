"""The samples that keystone-genera and keystone-report score: the model they are scored with, each sample's group
and each sample's genus scores. Both the method and the visualizer start here; core.keystone then summarises the
scores. Plain pandas in and out (no QIIME 2 metadata): the thin actions convert their columns with `.to_series()`,
and progress goes to the `report` callable they pass."""
import dataclasses
import os
import pathlib
from typing import Callable, List, Optional, Tuple, Union

import numpy as np
import pandas as pd
import torch

from .inference import encode, resolve_device
from .keystone import KeystoneError, check_subjects, genus_scores, per_subject, token_scores
from .keystone_batches import summarised_groups, training_record
from .metadata_checks import batch_of_each_sample, check_min_samples, id_names
from .models import load_model
from .samples import samples_with_values
from .schemas import TRAINING_RECORD_FILE
from .tokenizer import Corpus
from .transfer import MIN_BATCH_SAMPLES
from .training import TrainedModel, load_trained_model, predict
from .vocab import Vocabulary

Report = Callable[[str], None]


@dataclasses.dataclass
class KeystoneModel:
    """The network whose attention (or attribution) scores the genera, its vocabulary, and, for a fine-tuned
    classifier, the TrainedModel it belongs to (it knows the class names and can predict them); None for a
    pretrained model."""
    network: torch.nn.Module
    vocabulary: Vocabulary
    classifier: Optional[TrainedModel] = None


def load_keystone_model(model_dir: Union[str, os.PathLike]) -> KeystoneModel:
    """The model stored in `model_dir`: a classifier where the directory holds training.json, else a pretrained
    network. Raises KeystoneError for a regressor, which has no classes to score genera by (one fit with batches
    core.keystone_batches explains), and for a classifier fit with batches, which core.keystone_batches explains."""
    if (pathlib.Path(model_dir) / TRAINING_RECORD_FILE).is_file():
        classifier, vocabulary, _ = load_trained_model(model_dir)
        if classifier.task != "classification":
            raise KeystoneError("score_samples scores genera per class; this model is a regressor. Explain a "
                                "regressor fit with batches by its genera's contributions "
                                "(core.keystone_batches.explain_samples), or use a classifier.")
        if classifier.transfer is not None:
            raise KeystoneError("This classifier was fit with batches: it predicts with the across-study recipe "
                                "(linear models on pooled features and CLR abundances), not with the network's "
                                "head whose attention or logits score_samples reads. Explain it by its genera's "
                                "contributions instead: keystone-genera with batches and method 'gradient' "
                                "(core.keystone_batches.explain_samples).")
        return KeystoneModel(classifier.model, vocabulary, classifier)
    network, vocabulary, _ = load_model(model_dir)
    return KeystoneModel(network, vocabulary)


def explained_groups(model_dir: Union[str, os.PathLike], groups: pd.Series, method: str) -> pd.Series:
    """The samples of `groups` (sample ID -> class) that score_samples will explain, known before the model runs:
    with the gradient method and a classifier, those of a class the classifier has (its training.json); else all.
    The classes as text, a numeric column's named as written (1, not 1.0)."""
    groups = id_names(groups)
    record = training_record(model_dir)
    if method != "gradient" or record is None:
        return groups
    return groups[groups.isin(record.get("labels") or [])]


def check_before_scoring(corpus: Corpus, model_dir: Union[str, os.PathLike], column: Optional[pd.Series],
                         subjects: Optional[pd.Series], method: str, batches: Optional[pd.Series] = None,
                         min_samples: Optional[int] = None) -> None:
    """keystone-genera's and keystone-report's checks before the model runs, on the samples they will summarise
    (keystone_batches.summarised_groups for a model fit with batches, whose `batches` (sample ID -> batch) are
    given and read first (metadata_checks.batch_of_each_sample); explained_groups otherwise; all the corpus's
    without a metadata column `column`): does any of them have a subject, where `subjects` (sample ID -> subject)
    is given (core.keystone.check_subjects), and, given min_samples, would each group of `column` rank a genus
    (check_rankable)? KeystoneError otherwise."""
    batch_values = None if batches is None else batch_of_each_sample(corpus.samples.index, batches,
                                                                     MIN_BATCH_SAMPLES, KeystoneError, "explain")
    groups = None
    if column is not None:
        present = column.reindex(corpus.samples.index).dropna()
        groups = (explained_groups(model_dir, present, method) if batch_values is None else
                  summarised_groups(model_dir, present, batch_values))
    if subjects is not None:
        check_subjects(corpus.samples.index if groups is None else groups.index, subjects)
    if groups is not None and min_samples is not None:
        check_rankable(corpus, groups, subjects, min_samples, column.name)


def check_rankable(corpus: Corpus, groups: pd.Series, subjects: Optional[pd.Series], min_samples: int,
                   column: str) -> None:
    """KeystoneError (core.metadata_checks.check_min_samples) where a group of `groups` (sample ID -> group) would
    rank no genus: none held by min_samples of its samples, or of its subjects where `subjects` is given."""
    subject_of = None if subjects is None else subjects.reindex(groups.index).dropna()
    check_min_samples(corpus.samples.sentence, groups if subject_of is None else groups[subject_of.index],
                      min_samples, column, KeystoneError, subject_of)


@dataclasses.dataclass
class ScoredSamples:
    """What the method and the visualizer share: per-sample genus scores and each sample's group."""
    model: KeystoneModel
    token_ids: List[np.ndarray]  # each scored sample's sentence, in `groups`' order
    scores: pd.DataFrame  # samples x genera (NaN: genus absent)
    groups: pd.Series  # sample ID -> group
    grouping: str  # where the groups came from, for the report
    # sample ID -> class of the samples left unexplained: the gradient explains a classifier's logit of each
    # sample's own class, and these samples' classes are not the model's
    unexplained: pd.Series = dataclasses.field(default_factory=lambda: pd.Series(dtype=object))

    def units(self, subjects: Optional[pd.Series], report: Report) -> Tuple[pd.DataFrame, pd.Series]:
        """(scores, groups) to summarise: per sample, or per subject where `subjects` (sample ID -> subject) is
        given (see core.keystone.per_subject)."""
        if subjects is None:
            return self.scores, self.groups
        units, groups = per_subject(self.scores, self.groups, id_names(subjects))
        report(f"averaged {len(self.scores)} samples' scores within {len(units)} subjects: confidence intervals "
               "and tests count subjects, not samples")
        return units, groups


def sample_groups(corpus: Corpus, column: Optional[pd.Series], model: KeystoneModel, token_ids: List[np.ndarray],
                  device: str, report: Report) -> Tuple[pd.Series, str]:
    """(each sample's group as text, indexed by sample ID; where the groups came from).

    The groups are `column`'s values (sample ID -> value, named by its `name`), samples without a value left out
    and reported; without a column, the classes the classifier predicts for every sample. Raises KeystoneError
    when no sample has a value, or when there is no column and the model is pretrained."""
    if column is not None:
        _, (values,) = samples_with_values(corpus.samples.index, [(column.name, column)], KeystoneError, report,
                                           missing_samples="ignore")
        return id_names(values), f"metadata column {column.name!r}"
    if model.classifier is None:
        raise KeystoneError("With a pretrained model, keystone-genera needs a categorical metadata column to group "
                            "the samples by (e.g. delivery mode; a numeric column is read as labels): pass it as "
                            "`metadata` (--m-metadata-file FILE --m-metadata-column COLUMN), or use a fine-tuned "
                            "classifier, whose predicted classes group the samples.")
    classifier = model.classifier
    abundances = corpus.abundance_table() if classifier.forest is not None else None
    predicted = classifier.predict_classes(predict(classifier, token_ids, device, abundances))
    return (pd.Series(predicted, index=corpus.samples.index),
            "the classes the model predicts")


def score_samples(corpus: Corpus, model_dir: Union[str, os.PathLike], column: Optional[pd.Series], method: str,
                  device: str, report: Report) -> ScoredSamples:
    """Every grouped sample's genus scores by `method` (see core.keystone.token_scores), with the model of
    `model_dir` on `device` (cpu, cuda or auto) and the groups of `sample_groups`.

    With the gradient method and a classifier, samples of a class the classifier lacks are left out (the
    result's `unexplained`), so that the others are explained by their own class. Raises KeystoneError (a
    regressor, no groups, no sample of a class the classifier knows) and ValueError (an unknown device)."""
    model = load_keystone_model(model_dir)
    device = resolve_device(device)
    token_ids = encode(corpus.samples.sentence, model.vocabulary)
    groups, grouping = sample_groups(corpus, column, model, token_ids, device, report)
    target, unexplained = None, pd.Series(dtype=object)
    if method == "gradient" and model.classifier is not None:  # gradients of each sample's own class
        groups, unexplained = _known_classes(groups, model.classifier.labels, grouping, report)
        target = groups.map({label: i for i, label in enumerate(model.classifier.labels)}).to_numpy(np.int64)
    kept = corpus.samples.index.get_indexer(groups.index)
    token_ids = [token_ids[i] for i in kept]
    report(f"scoring the genera of {len(token_ids)} samples by {method}, grouped by {grouping}")
    scores = token_scores(model.network, token_ids, method, target=target, device=device,
                          progress=lambda done, total: report(f"scored {done}/{total} samples"))
    matrix = genus_scores(token_ids, scores, model.vocabulary, sample_ids=groups.index)
    return ScoredSamples(model, token_ids, matrix, groups, grouping, unexplained)


def _known_classes(groups: pd.Series, labels: List[str], grouping: str,
                   report: Report) -> Tuple[pd.Series, pd.Series]:
    """(the samples whose group is a class of the classifier, the rest): the gradient of a class's logit explains
    only samples of a class the model has; the others are left out, reported, and listed by the page, so that no
    other sample's scores change because of them. KeystoneError where no sample's class is the model's."""
    known = groups.isin(labels)
    unexplained = groups[~known]
    if not known.any():
        raise KeystoneError(f"None of the classes of {grouping} ({', '.join(sorted(map(str, set(groups))))}) is a "
                            f"class of this classifier ({', '.join(labels)}), so the gradient of a sample's own "
                            "class explains none of them. Group by a column of the classifier's classes, leave "
                            "metadata out (the classes the model predicts), or use method 'attention'.")
    if len(unexplained):
        report(f"left out {len(unexplained)} of {len(groups)} samples whose class the model does not know "
               f"({', '.join(sorted(map(str, set(unexplained))))}): not explained (keystone-report lists them on its "
               "page)")
    return groups[known], unexplained
