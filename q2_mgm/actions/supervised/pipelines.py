"""classify-samples and regress-samples: tokenize, split (group-aware), fine-tune, predict, evaluate against a
plain RandomForest on the same split. Mirrors `qiime sample-classifier classify-samples`. Defaults come from the
core's tables, as fine-tune's do."""
import biom

from ...core.baselines import BASELINE_TREES
from ...core.metadata_checks import check_columns, id_names
from ...core.samples import MISSING_SAMPLES, samples_with_values
from ...core.tokenizer import MAX_LENGTH
from ...core.training import FINE_TUNING as D, TrainingError
from ...core.training.splits import TEST_SIZE, check_class_sizes


def _check_labels_before_any_work(table, metadata, groups, task, missing_samples):
    """Before tokenizing, rather than after a split: table samples the metadata does not hold fail (unless
    missing_samples is 'ignore'), as split-corpus would on the corpus; and each class of the labelled samples needs
    one sample (or group) for each of training, validation and test. Counts are reported by split-corpus."""
    columns = [(metadata.name, metadata.to_series())] + ([] if groups is None else [(groups.name, groups.to_series())])
    _, values = samples_with_values(table.view(biom.Table).ids(), columns, TrainingError, lambda _: None,
                                    where="the table's", missing_samples=missing_samples)
    group_values = None if groups is None else id_names(values[1]).to_numpy()
    check_columns(values[0], metadata.name, task, TrainingError, group_values,
                  None if groups is None else groups.name, strategy=None)
    if task == "classification":
        check_class_sizes(values[0], ("training", "validation", "test"), metadata.name, group_values)


def _run(ctx, task, evaluate_name, predict_name, table, metadata, taxonomy, groups, test_size, max_length,
         harmonize_names, n_estimators, random_state, missing_samples, **fine_tune_parameters):
    _check_labels_before_any_work(table, metadata, groups, task, missing_samples)
    tokenize = ctx.get_action("mgm", "tokenize")
    split = ctx.get_action("mgm", "split_corpus")
    fine_tune = ctx.get_action("mgm", "fine_tune")
    predict = ctx.get_action("mgm", predict_name)
    evaluate = ctx.get_action("mgm", evaluate_name)
    corpus, = tokenize(table=table, taxonomy=taxonomy, max_length=max_length, harmonize_names=harmonize_names)
    training, test = split(corpus=corpus, metadata=metadata, groups=groups, test_size=test_size,
                           random_state=random_state, missing_samples=missing_samples)
    model, history = fine_tune(corpus=training, metadata=metadata, task=task, groups=groups,
                               random_state=random_state, **fine_tune_parameters)
    predicted = predict(corpus=test, model=model, device=fine_tune_parameters["device"])
    # the training corpus: the baseline is fit on exactly MGM's training samples, and the evaluation lists the
    # samples tokenization dropped and those the metadata left out (the table holds them all)
    # a classifier's hard predictions as it calls them (its decision rule), beside its probabilities
    hard = {"predictions": predicted[0]} if task == "classification" else {}
    visualization, = evaluate(predicted[-1], metadata, history=history, table=table, training_corpus=training,
                              n_estimators=n_estimators, random_state=random_state, **hard)
    return (model, history, *predicted, visualization)


def classify_samples(ctx, table, metadata, taxonomy=None, groups=None, test_size=TEST_SIZE, max_length=MAX_LENGTH,
                     harmonize_names=False, epochs=D.epochs, learning_rate=D.learning_rate,
                     batch_size=D.batch_size, validation_fraction=D.validation_fraction, patience=D.patience,
                     class_weighting=D.class_weighting, freeze_layers=D.freeze_layers,
                     forest_weight=D.forest_weight, forest_trees=D.forest_trees, random_state=D.random_state,
                     device=D.device, n_estimators=BASELINE_TREES, missing_samples=MISSING_SAMPLES):
    return _run(ctx, "classification", "evaluate_classification", "predict_classification", table, metadata,
                taxonomy, groups, test_size, max_length, harmonize_names, n_estimators, random_state,
                missing_samples, epochs=epochs,
                learning_rate=learning_rate, batch_size=batch_size, validation_fraction=validation_fraction,
                patience=patience, class_weighting=class_weighting, freeze_layers=freeze_layers,
                forest_weight=forest_weight, forest_trees=forest_trees, device=device)


def regress_samples(ctx, table, metadata, taxonomy=None, groups=None, test_size=TEST_SIZE, max_length=MAX_LENGTH,
                    harmonize_names=False, epochs=D.epochs, learning_rate=D.learning_rate, batch_size=D.batch_size,
                    validation_fraction=D.validation_fraction, patience=D.patience, freeze_layers=D.freeze_layers,
                    forest_weight=D.forest_weight, forest_trees=D.forest_trees, random_state=D.random_state,
                    device=D.device, n_estimators=BASELINE_TREES, missing_samples=MISSING_SAMPLES):
    return _run(ctx, "regression", "evaluate_regression", "predict_regression", table, metadata, taxonomy, groups,
                test_size, max_length, harmonize_names, n_estimators, random_state, missing_samples, epochs=epochs,
                learning_rate=learning_rate, batch_size=batch_size, validation_fraction=validation_fraction,
                patience=patience, class_weighting=False, freeze_layers=freeze_layers, forest_weight=forest_weight,
                forest_trees=forest_trees, device=device)
