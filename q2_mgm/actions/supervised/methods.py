"""fine-tune, train, predict and split-corpus: supervised MGM on QIIME 2 artifacts. Defaults come from the core's
one table, q2_mgm.core.training.FINE_TUNING (and TEST_SIZE for splits). The core modules that run the model
(torch) are imported by the functions that call them, when called (CONTRIBUTING)."""
import numpy as np
import pandas as pd
import qiime2

from ..._formats import MGMModelDirFmt, MGMSupervisedModelDirFmt
from ..._progress import report
from ...core.metadata_checks import batch_of_each_sample, check_columns, check_new_cohort, id_names
from ...core.samples import MISSING_SAMPLES, samples_with_values
from ...core.tokenizer import Corpus
from ...core.training import FINE_TUNING as D, TrainingError, TrainingSettings, validation_split
from ...core.training.splits import TEST_SIZE, check_class_sizes
from ...core.transfer import MIN_BATCH_SAMPLES
from ...core.vocab import mgm_vocabulary


def labelled_samples(corpus: Corpus, column: qiime2.MetadataColumn, groups=None,
                     missing_samples: str = MISSING_SAMPLES, batches=None):
    """The corpus samples with a label (and group, and batch), in corpus order: (IDs, labels, group names or None,
    batch names or None); the rest are counted and reported. Samples the metadata does not hold fail unless
    missing_samples is 'ignore'."""
    optional = [c for c in (groups, batches) if c is not None]
    columns = [(column.name, column.to_series())] + [(c.name, c.to_series()) for c in optional]
    kept, values = samples_with_values(corpus.samples.index, columns, TrainingError, report,
                                       missing_samples=missing_samples)
    extra = iter(id_names(v).to_numpy() for v in values[1:])
    group_values = None if groups is None else next(extra)
    return kept, values[0], group_values, (None if batches is None else next(extra))


def _task(column):
    return "classification" if isinstance(column, qiime2.CategoricalMetadataColumn) else "regression"


def _check_task(column, task):
    if task == "regression" and not isinstance(column, qiime2.NumericMetadataColumn):
        raise TrainingError(f"task is 'regression' but {column.name!r} is categorical; regress a numeric column, "
                            "or use task 'classification'.")


def _fit(corpus, metadata, task, groups, missing_samples, settings, load_model_to_train, batches=None):
    """Labels checked before any work (a class too rare for the validation split fails here), then the model from
    `load_model_to_train()` -> (backbone or None, vocabulary, config or None, provenance) trained and saved. With
    batches, the across-study recipe instead of the head (core.training.batch_corrected)."""
    from ...core.inference import encode
    from ...core.training.batch_corrected import train_batch_corrected
    from ...core.training.fitting import train_sequence_model
    from ...core.training.networks import sequence_model
    from ...core.training.trained import save_trained_model
    _check_task(metadata, task)
    kept, labels, group_values, batch_values = labelled_samples(corpus, metadata, groups, missing_samples, batches)
    if task == "classification" and isinstance(metadata, qiime2.NumericMetadataColumn):
        labels = labels.map("{:g}".format)  # class codes 0/1, not 0.0/1.0
    check_columns(labels, metadata.name, task, TrainingError, group_values, None if groups is None else groups.name,
                  batch_values, None if batches is None else batches.name, strategy=None)
    if task == "classification":
        check_class_sizes(labels, ("training", "validation"), metadata.name, group_values)
    abundances = None if batches is None else _abundances(corpus, kept)  # before the model loads
    backbone, vocabulary, config, provenance = load_model_to_train()
    token_ids = encode(corpus.samples.sentence.loc[kept], vocabulary)
    n_labels = labels.astype(str).nunique() if task == "classification" else 1
    network = sequence_model(task, n_labels, backbone=backbone, config=config, random_state=settings.random_state)
    if batches is not None:
        report(f"batches from {batches.name!r}: fitting the across-study recipe; freeze_layers, forest_weight, "
               "forest_trees and the epoch settings do not apply")
        trained = train_batch_corrected(network, token_ids, labels, task, batch_values, abundances, settings,
                                        report)
        trained.transfer.record["batches_column"] = batches.name
    else:
        trained = train_sequence_model(network, token_ids, labels, task, settings, group_values, report=report,
                                       abundances=corpus.abundance_table(kept) if settings.forest_weight else None)
    out = MGMSupervisedModelDirFmt()
    save_trained_model(trained, vocabulary, out.path, settings, label_column=metadata.name, **provenance)
    return out, trained.history


def _abundances(corpus, sample_ids=None):
    abundances = corpus.abundance_table(sample_ids)
    if abundances is None:
        raise TrainingError("The across-study recipe (batches) reads the corpus's genus abundances, and this corpus "
                            "holds none (it was generated, or made by an older q2-mgm). Tokenize the table again.")
    return abundances


def fine_tune(corpus: Corpus, metadata: qiime2.MetadataColumn, task: str, model: MGMModelDirFmt = None,
              groups: qiime2.CategoricalMetadataColumn = None, batches: qiime2.CategoricalMetadataColumn = None,
              epochs: int = D.epochs,
              learning_rate: float = D.learning_rate, batch_size: int = D.batch_size,
              validation_fraction: float = D.validation_fraction, patience: int = D.patience,
              class_weighting: bool = D.class_weighting, freeze_layers: int = D.freeze_layers,
              forest_weight: float = D.forest_weight, forest_trees: int = D.forest_trees,
              random_state: int = D.random_state, device: str = D.device,
              missing_samples: str = MISSING_SAMPLES) -> (MGMSupervisedModelDirFmt, pd.DataFrame):
    from ...core.inference import resolve_device
    from ...core.models import load_general_model, load_model

    def pretrained():
        backbone, vocabulary, provenance = load_general_model() if model is None else load_model(model.path)
        return backbone, vocabulary, None, {"base_model": provenance.get("source_sha256", "user model")}

    settings = TrainingSettings(
        epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, validation_fraction=validation_fraction,
        patience=patience, class_weighting=class_weighting, freeze_layers=freeze_layers, random_state=random_state,
        device=resolve_device(device), forest_weight=forest_weight, forest_trees=forest_trees)
    return _fit(corpus, metadata, task, groups, missing_samples, settings, pretrained, batches)


def train(corpus: Corpus, metadata: qiime2.MetadataColumn, task: str, groups: qiime2.CategoricalMetadataColumn = None,
          epochs: int = D.epochs, learning_rate: float = D.learning_rate, batch_size: int = D.batch_size,
          validation_fraction: float = D.validation_fraction, patience: int = D.patience,
          class_weighting: bool = D.class_weighting, random_state: int = D.random_state,
          device: str = D.device, missing_samples: str = MISSING_SAMPLES) -> (MGMSupervisedModelDirFmt, pd.DataFrame):
    from ...core.inference import resolve_device
    from ...core.models import general_model_config

    def architecture():  # the general model's architecture and vocabulary only, randomly initialised
        return None, mgm_vocabulary(), general_model_config(), {"base_model": "random initialisation"}

    settings = TrainingSettings(  # every layer trained, the network alone: what pretraining buys is then visible
        epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, validation_fraction=validation_fraction,
        patience=patience, class_weighting=class_weighting, freeze_layers=0, random_state=random_state,
        device=resolve_device(device), forest_weight=0.0)
    return _fit(corpus, metadata, task, groups, missing_samples, settings, architecture)


def _predict(corpus, model, device, batches):
    from ...core.inference import encode, resolve_device
    from ...core.training.trained import load_trained_model, predict
    trained, vocabulary, _ = load_trained_model(model.path)
    token_ids = encode(corpus.samples.sentence, vocabulary)
    report(f"predicting {len(token_ids)} samples"
           + (f", {trained.forest_weight:g} of each prediction from its RandomForest" if trained.forest else ""))
    abundances = corpus.abundance_table() if trained.forest else None
    batch_values = None
    if trained.transfer is not None:
        abundances = _abundances(corpus)
        batch_values = _batches_of(corpus, batches)
    elif batches is not None:
        raise TrainingError("This model was not fit with batches, so it corrects none: leave batches out, or "
                            "fine-tune with batches to get a model that standardises each batch on itself.")
    return trained, predict(trained, token_ids, resolve_device(device), abundances, batch_values)


def _batches_of(corpus, batches):
    """Each corpus sample's batch (core.metadata_checks.batch_of_each_sample); without a batches column every
    sample is one batch (the corpus is one new cohort, standardised on itself)."""
    if batches is None:
        report("this model standardises each batch on its own samples; no batches given, so the corpus's "
               f"{len(corpus.samples)} samples are one batch")
        check_new_cohort(None, len(corpus.samples), MIN_BATCH_SAMPLES, TrainingError)
        return np.full(len(corpus.samples), "all samples")
    return batch_of_each_sample(corpus.samples.index, batches.to_series(), MIN_BATCH_SAMPLES,
                                TrainingError).to_numpy()


def predict_classification(corpus: Corpus, model: MGMSupervisedModelDirFmt, device: str = D.device,
                           batches: qiime2.CategoricalMetadataColumn = None) -> (pd.Series, pd.DataFrame):
    trained, probabilities = _predict(corpus, model, device, batches)
    index = pd.Index(corpus.samples.index, name="SampleID")
    probabilities = pd.DataFrame(probabilities.astype(np.float64), index=index, columns=trained.labels)
    # the class each sample is called, by the decision rule the model chose on its validation share
    predictions = pd.Series(trained.predict_classes(probabilities.to_numpy()), index=index, name="prediction")
    return predictions, probabilities


def predict_regression(corpus: Corpus, model: MGMSupervisedModelDirFmt, device: str = D.device,
                       batches: qiime2.CategoricalMetadataColumn = None) -> pd.Series:
    _, values = _predict(corpus, model, device, batches)
    return pd.Series(values.astype(np.float64), index=pd.Index(corpus.samples.index, name="SampleID"),
                     name="prediction")


def split_corpus(corpus: Corpus, metadata: qiime2.MetadataColumn, groups: qiime2.CategoricalMetadataColumn = None,
                 test_size: float = TEST_SIZE, random_state: int = D.random_state,
                 missing_samples: str = MISSING_SAMPLES) -> (Corpus, Corpus):
    kept, labels, group_values, _ = labelled_samples(corpus, metadata, groups, missing_samples)
    task = _task(metadata)
    check_columns(labels, metadata.name, task, TrainingError, group_values, None if groups is None else groups.name,
                  strategy=None)
    if task == "classification":
        check_class_sizes(labels, ("training", "test"), metadata.name, group_values)
    targets = labels.astype(str).to_numpy() if task == "classification" else labels.to_numpy()
    train_idx, test_idx = validation_split(targets, group_values, test_size, task, random_state)
    report(f"split {len(kept)} samples: {len(train_idx)} training, {len(test_idx)} test"
           + (" (no group on both sides)" if groups is not None else ""))
    return tuple(corpus.subset(kept[idx]) for idx in (train_idx, test_idx))
