"""classify-samples and regress-samples: tokenize, split (group-aware), fine-tune, predict, evaluate against a
plain RandomForest on the same split. Mirrors `qiime sample-classifier classify-samples`. Defaults come from the
core's tables, as fine-tune's do."""
import biom
import pandas as pd

from ...core.baselines import BASELINE_TREES
from ...core.tokenizer import MAX_LENGTH
from ...core.training import FINE_TUNING as D
from ...core.training.splits import TEST_SIZE, check_class_sizes


def _check_classes_before_any_work(table, metadata, groups):
    """Each class of the table's labelled samples needs one sample (or group) for each of training, validation and
    test: say so before tokenizing, rather than fail after a split."""
    columns = [metadata.to_series()] + ([] if groups is None else [groups.to_series()])
    labelled = pd.concat(columns, axis=1).reindex(table.view(biom.Table).ids()).dropna()
    check_class_sizes(labelled.iloc[:, 0], ("training", "validation", "test"), metadata.name,
                      None if groups is None else labelled.iloc[:, 1].astype(str).to_numpy())


def _run(ctx, task, evaluate_name, predict_name, table, metadata, taxonomy, groups, test_size, max_length,
         harmonize_names, n_estimators, random_state, **fine_tune_parameters):
    if task == "classification":
        _check_classes_before_any_work(table, metadata, groups)
    tokenize = ctx.get_action("mgm", "tokenize")
    split = ctx.get_action("mgm", "split_corpus")
    fine_tune = ctx.get_action("mgm", "fine_tune")
    predict = ctx.get_action("mgm", predict_name)
    evaluate = ctx.get_action("mgm", evaluate_name)
    corpus, = tokenize(table=table, taxonomy=taxonomy, max_length=max_length, harmonize_names=harmonize_names)
    training, test = split(corpus=corpus, metadata=metadata, groups=groups, test_size=test_size,
                           random_state=random_state)
    model, history = fine_tune(corpus=training, metadata=metadata, task=task, groups=groups,
                               random_state=random_state, **fine_tune_parameters)
    predicted = predict(corpus=test, model=model, device=fine_tune_parameters["device"])
    visualization, = evaluate(predicted[-1], metadata, history=history, table=table, n_estimators=n_estimators,
                              random_state=random_state)
    return (model, history, *predicted, visualization)


def classify_samples(ctx, table, metadata, taxonomy=None, groups=None, test_size=TEST_SIZE, max_length=MAX_LENGTH,
                     harmonize_names=False, epochs=D.epochs, learning_rate=D.learning_rate,
                     batch_size=D.batch_size, validation_fraction=D.validation_fraction, patience=D.patience,
                     class_weighting=D.class_weighting, freeze_layers=D.freeze_layers,
                     forest_weight=D.forest_weight, forest_trees=D.forest_trees, random_state=D.random_state,
                     device=D.device, n_estimators=BASELINE_TREES):
    return _run(ctx, "classification", "evaluate_classification", "predict_classification", table, metadata,
                taxonomy, groups, test_size, max_length, harmonize_names, n_estimators, random_state, epochs=epochs,
                learning_rate=learning_rate, batch_size=batch_size, validation_fraction=validation_fraction,
                patience=patience, class_weighting=class_weighting, freeze_layers=freeze_layers,
                forest_weight=forest_weight, forest_trees=forest_trees, device=device)


def regress_samples(ctx, table, metadata, taxonomy=None, groups=None, test_size=TEST_SIZE, max_length=MAX_LENGTH,
                    harmonize_names=False, epochs=D.epochs, learning_rate=D.learning_rate, batch_size=D.batch_size,
                    validation_fraction=D.validation_fraction, patience=D.patience, freeze_layers=D.freeze_layers,
                    forest_weight=D.forest_weight, forest_trees=D.forest_trees, random_state=D.random_state,
                    device=D.device, n_estimators=BASELINE_TREES):
    return _run(ctx, "regression", "evaluate_regression", "predict_regression", table, metadata, taxonomy, groups,
                test_size, max_length, harmonize_names, n_estimators, random_state, epochs=epochs,
                learning_rate=learning_rate, batch_size=batch_size, validation_fraction=validation_fraction,
                patience=patience, class_weighting=False, freeze_layers=freeze_layers, forest_weight=forest_weight,
                forest_trees=forest_trees, device=device)
