"""Across studies: cross-validate-classification, cross-validate-regression, evaluate-cross-validation and the
pipelines classify-samples-cv and regress-samples-cv, registered by `register(plugin)`. Every sample is predicted
by models that never saw it (q2-sample-classifier's classify-samples-ncv), with folds that can hold out whole
studies, and the conventional baselines fit on exactly the same samples of each fold. Defaults live in the core
(q2_mgm.core.cross_validation.CROSS_VALIDATION). The core modules that run the model (torch) are imported by the
functions that call them, when called (CONTRIBUTING)."""
import time

import numpy as np
import pandas as pd
import qiime2
from qiime2.plugin import (Bool, Categorical, Choices, Int, List, MetadataColumn, Numeric, Range, Str,
                           Visualization)
from q2_sample_classifier import ClassifierPredictions, Importance, Probabilities, RegressorPredictions
from q2_types.feature_data import FeatureData, Taxonomy
from q2_types.feature_table import FeatureTable, Frequency, RelativeFrequency
from q2_types.sample_data import SampleData

from .._examples import cross_validation as _examples
from .._formats import MGMCrossValidationFoldsDirFmt, MGMModelDirFmt
from .._progress import report
from .._types import MGMCorpus, MGMCrossValidation, MGMCrossValidationFolds, MGMFoldPredictions, MGMModel, Pretrained
from ..core import schemas
from ..core.cross_validation import (CROSS_VALIDATION as D, CV_STRATEGIES, check_fold_settings,
                                     check_scored_folds, check_stratified_classes, check_training_classes,
                                     collate_folds, make_folds, plan_folds, run_fold, run_plan)
from ..core.cross_validation_store import CrossValidation, FoldPlan, FoldResult, fold_count
from ..core.metadata_checks import check_columns, check_groups, check_target_varies, groups_of_one_class, id_names
from ..core.samples import MISSING_SAMPLES as MISSING_DEFAULT, samples_left_out, samples_with_values
from ..core.tokenizer import MAX_LENGTH, Corpus
from ..core.training.targets import encode_targets
from ..core.transfer import BASELINES, RECIPES, SampleFeatures, TransferError
from ..visualizers.cross_validation import evaluate_cross_validation
from ._parameters import (CORPUS_DESCRIPTION, DEVICE_DESCRIPTION, DEVICES, HARMONIZE_DESCRIPTION, ID_COLUMN,
                          MAX_LENGTH_DESCRIPTION, MISSING_SAMPLES, MISSING_SAMPLES_DESCRIPTION, SEED, TABLE_DESCRIPTION,
                          TAXONOMY_DESCRIPTION, citations)


def _plan(corpus, metadata, task, model, groups, batches, cv, cv_strategy, recipe, transfer_matrix, n_estimators,
          random_state, device, missing_samples, mgm_markers):
    """(the FoldPlan: every kept sample's frozen features, targets and fold; the folds as make_folds drew them;
    (the frozen network, its vocabulary), which the markers' explanations run)."""
    from ..core.inference import encode, language_model_features, resolve_device
    from ..core.models import load_general_model, load_model, model_fingerprint
    columns = [(metadata.name, metadata.to_series())]
    columns += [(c.name, c.to_series()) for c in (groups, batches) if c is not None]
    kept, values = samples_with_values(corpus.samples.index, columns, TransferError, report,
                                       missing_samples=missing_samples)
    labels = values[0] if task == "regression" else values[0].astype(str)
    extra = iter(values[1:])
    group_values = None if groups is None else id_names(next(extra)).to_numpy()
    batch_values = None if batches is None else id_names(next(extra)).to_numpy()
    abundances = corpus.abundance_table(kept)
    if abundances is None:
        raise TransferError("This corpus holds no genus abundances (it was generated, or made by an older q2-mgm); "
                            "the baselines and the batch-corrected recipes need them. Tokenize the table again.")
    check_columns(labels, metadata.name, task, TransferError, group_values, None if groups is None else groups.name,
                  batch_values, None if batches is None else batches.name, cv_strategy)
    encoded, classes, _, _ = encode_targets(labels, task)
    folds = make_folds(encoded, group_values, cv, cv_strategy, task, random_state, classes, metadata.name,
                       None if groups is None else groups.name)
    if task == "classification":
        check_training_classes(folds, encoded, classes, None if groups is None else groups.name)
        if groups is not None:
            check_scored_folds(folds, encoded, classes, group_values, metadata.name, groups.name)
    backbone, vocabulary, _ = load_general_model() if model is None else load_model(model.path)
    report(f"features of {len(kept)} samples from the frozen encoder (one pass, shared by every fold)")
    started = time.perf_counter()
    token_ids = encode(corpus.samples.sentence.loc[kept], vocabulary)
    embeddings, likelihood = language_model_features(backbone, token_ids, resolve_device(device))
    features_seconds = time.perf_counter() - started
    left_out = samples_left_out(corpus.samples.index, kept, columns, corpus.dropped_samples).to_dict("records")
    if left_out:
        report(f"left out {len(left_out)} samples that cannot be predicted (listed in the evaluation)")
    if transfer_matrix and groups is None:
        report("transfer_matrix needs a groups column; none drawn")
    # k-fold over groups that each hold one class (subjects: expected; studies or sites: the folds then differ from
    # training in group and class alike) runs, and the evaluation says so
    one_class_groups = task == "classification" and groups is not None and groups_of_one_class(group_values, labels)
    if one_class_groups:
        report(f"every group of {groups.name!r} holds one class of {metadata.name!r}: expected of subjects; of "
               "studies or sites, the figures may measure the groups rather than the classes (the evaluation says "
               "so)")
    plan = plan_folds(
        SampleFeatures(embeddings, likelihood, abundances, batch_values), labels, task, folds, recipe, BASELINES,
        random_state, n_estimators, transfer_matrix, group_values, mgm_markers, token_ids, label_column=metadata.name,
        groups_column=None if groups is None else groups.name, batches_column=None if batches is None else
        batches.name, cv_strategy=cv_strategy, cv=len(folds), left_out=left_out, features_seconds=features_seconds,
        groups_of_one_class=one_class_groups, model_fingerprint=model_fingerprint(backbone),
        general_model=model is None)
    return plan, folds, (backbone, vocabulary)


def _run(corpus, metadata, task, model, groups, batches, cv, cv_strategy, recipe, transfer_matrix, mgm_markers,
         n_estimators, random_state, device, missing_samples):
    plan, folds, network = _plan(corpus, metadata, task, model, groups, batches, cv, cv_strategy, recipe,
                                 transfer_matrix, n_estimators, random_state, device, missing_samples, mgm_markers)
    report(f"{len(folds)} folds ({cv_strategy}); methods: " + ", ".join(plan.settings["methods"]))
    # each fold as cross-validate-fold runs it (one thread), so that the pipelines' fold-by-fold path gives the same
    return run_plan(plan, report, network)


def _classification_outputs(result):
    own = result.predictions[result.predictions["method"] == result.methods[0]].set_index("sample_id")
    own.index = pd.Index(own.index, name="SampleID")
    probabilities = own[[schemas.CV_PROBABILITY_PREFIX + c for c in result.classes]].astype(np.float64)
    probabilities.columns = result.classes
    return own["prediction"].rename("prediction"), probabilities, result


def _regression_outputs(result):
    own = result.predictions[result.predictions["method"] == result.methods[0]].set_index("sample_id")
    own.index = pd.Index(own.index, name="SampleID")
    return own["prediction"].astype(np.float64).rename("prediction"), result


def cross_validate_classification(corpus: Corpus, metadata: qiime2.CategoricalMetadataColumn,
                                  model: MGMModelDirFmt = None, groups: qiime2.CategoricalMetadataColumn = None,
                                  batches: qiime2.CategoricalMetadataColumn = None, cv: int = D.cv,
                                  cv_strategy: str = D.cv_strategy, recipe: str = D.recipe,
                                  transfer_matrix: bool = D.transfer_matrix, mgm_markers: bool = D.mgm_markers,
                                  n_estimators: int = D.n_estimators, random_state: int = D.random_state,
                                  device: str = "auto", missing_samples: str = MISSING_DEFAULT) \
        -> (pd.Series, pd.DataFrame, CrossValidation):
    return _classification_outputs(_run(corpus, metadata, "classification", model, groups, batches, cv, cv_strategy,
                                        recipe, transfer_matrix, mgm_markers, n_estimators, random_state, device,
                                        missing_samples))


def cross_validate_regression(corpus: Corpus, metadata: qiime2.NumericMetadataColumn, model: MGMModelDirFmt = None,
                              groups: qiime2.CategoricalMetadataColumn = None,
                              batches: qiime2.CategoricalMetadataColumn = None, cv: int = D.cv,
                              cv_strategy: str = D.cv_strategy, recipe: str = D.recipe,
                              transfer_matrix: bool = D.transfer_matrix, mgm_markers: bool = D.mgm_markers,
                              n_estimators: int = D.n_estimators, random_state: int = D.random_state,
                              device: str = "auto", missing_samples: str = MISSING_DEFAULT) \
        -> (pd.Series, CrossValidation):
    return _regression_outputs(_run(corpus, metadata, "regression", model, groups, batches, cv, cv_strategy, recipe,
                                    transfer_matrix, mgm_markers, n_estimators, random_state, device, missing_samples))


# --- the same, fold by fold: the pipelines' path, which QIIME 2 2024.10's parallel pipelines run at once ---

def prepare_cross_validation(corpus: Corpus, metadata: qiime2.MetadataColumn, task: str,
                             model: MGMModelDirFmt = None, groups: qiime2.CategoricalMetadataColumn = None,
                             batches: qiime2.CategoricalMetadataColumn = None, cv: int = D.cv,
                             cv_strategy: str = D.cv_strategy, recipe: str = D.recipe,
                             transfer_matrix: bool = D.transfer_matrix, mgm_markers: bool = D.mgm_markers,
                             n_estimators: int = D.n_estimators, random_state: int = D.random_state,
                             device: str = "auto", missing_samples: str = MISSING_DEFAULT) -> FoldPlan:
    if task == "regression" and not isinstance(metadata, qiime2.NumericMetadataColumn):
        raise TransferError(f"task is 'regression' but {metadata.name!r} is categorical; regress a numeric column, "
                            "or use task 'classification'.")
    plan, folds, _ = _plan(corpus, metadata, task, model, groups, batches, cv, cv_strategy, recipe, transfer_matrix,
                           n_estimators, random_state, device, missing_samples, mgm_markers)
    report(f"{len(folds)} folds ({cv_strategy}) planned; methods: " + ", ".join(plan.settings["methods"]))
    return plan


def cross_validate_fold(folds: FoldPlan, fold: int, model: MGMModelDirFmt = None) -> FoldResult:
    # one thread per worker: QIIME 2's parallel pipelines run one fold per worker. The features were computed by
    # prepare-cross-validation; run_fold holds BLAS and OpenMP to one thread and the forests have n_jobs=1. The
    # frozen model runs only to explain the MGM recipe's held-out samples, where mgm_markers were asked for
    return run_fold(folds, fold, report, _markers_model(folds, model))


def _markers_model(plan, model):
    """(network, vocabulary) that the plan's markers explain the MGM recipes with: the model that made its features
    (the general model, or `model`); None where no method reads MGM features or no mgm_markers were asked for."""
    if not plan.settings.get("mgm_markers") or not any(RECIPES[m].uses_mgm for m in plan.settings["methods"]):
        return None
    from ..core.models import load_general_model, load_model, model_fingerprint
    network, vocabulary, _ = load_general_model() if model is None else load_model(model.path)
    if model_fingerprint(network) != plan.record.get("model_fingerprint"):
        general = plan.record.get("general_model")
        made_with = "the general model" if general else "the model given to prepare-cross-validation"
        fix = "leave --i-model out" if general else "pass that model as --i-model"
        raise TransferError(f"These folds' features were made with {made_with}, and the model here differs: "
                            f"explaining the MGM recipe needs the same model; {fix}.")
    return network, vocabulary


def collate_classification_folds(folds: FoldPlan, fold_predictions: FoldResult) \
        -> (pd.Series, pd.DataFrame, CrossValidation):
    _check_task(folds, "classification")
    return _classification_outputs(collate_folds(folds, fold_predictions, report))


def collate_regression_folds(folds: FoldPlan, fold_predictions: FoldResult) -> (pd.Series, CrossValidation):
    _check_task(folds, "regression")
    return _regression_outputs(collate_folds(folds, fold_predictions, report))


def _check_task(plan, task):
    if plan.task != task:
        raise TransferError(f"These folds were prepared for {plan.task}; collate them with "
                            f"collate-{plan.task}-folds.")


def cross_validation_markers(cross_validation: CrossValidation) -> pd.DataFrame:
    from ..core.markers import importance_method, marker_table
    try:
        table, _ = marker_table(cross_validation, importance_method(cross_validation))
    except ValueError as error:
        raise TransferError(str(error)) from None
    if table.empty:
        raise TransferError("No genus was scored in any held-out group: a genus is scored in a group whose held-out "
                            "samples' abundances of it vary (and of which the fold's training samples hold it), so "
                            "groups of one sample score none. Hold out several samples at once: cv_strategy "
                            "'k-fold', or a groups column whose groups each hold several samples.")
    # one column per class the genera point to (q2-sample-classifier's layout for a linear model's classes), each
    # genus's consistent effect in its own class's column and 0 in the others: the sum over a row, which
    # sample-classifier heatmap ranks by, is the consistent effect
    effect = table.set_index("genus")["consistent_effect"].astype(float)
    importance = pd.DataFrame({label: effect.where(table["points_to"].to_numpy() == label, 0.0)
                               for label in pd.unique(table["points_to"])})
    importance.index.name = "feature-id"
    return importance


def _pipeline(ctx, task, table, taxonomy, max_length, harmonize_names, **parameters):
    groups, target = parameters["groups"], parameters["metadata"]
    values = target.to_series().dropna()  # before any work: what holds for every sample holds for those kept
    check_target_varies(values, target.name, task, TransferError)
    if groups is not None:
        group_values = groups.to_series().dropna()
        if task == "classification":  # a class held by one group, or groups that each hold one class
            both = group_values.index.intersection(values.index)
            check_groups(group_values.loc[both], groups.name, TransferError, parameters["cv_strategy"],
                         values.loc[both], target.name)
        else:
            check_groups(group_values, groups.name, TransferError, parameters["cv_strategy"])
    if groups is not None and parameters["cv_strategy"] == "leave-one-group-out":
        sizes = groups.to_series().reindex(values.index).dropna().value_counts()
        if len(sizes) and sizes.max() == 1:  # the markers output would score no genus, after every fold's work
            raise TransferError(f"Every group of {groups.name!r} holds one sample: leaving one group out holds out "
                                "one sample at a time, and the markers output needs held-out groups of several "
                                "samples (a genus is scored in a group whose samples' abundances of it vary). Use "
                                "cv_strategy 'k-fold', or a groups column whose groups each hold several samples.")
    check_fold_settings(parameters["cv"], parameters["cv_strategy"],
                        None if groups is None else groups.to_series().dropna().nunique(),
                        None if groups is None else groups.name)  # before any work
    if task == "classification" and groups is None:  # stratified k-fold: a class needs a sample in every fold
        check_stratified_classes(values.astype(str).value_counts(), parameters["cv"], target.name)
    tokenize = ctx.get_action("mgm", "tokenize")
    prepare = ctx.get_action("mgm", "prepare_cross_validation")
    run_fold_action = ctx.get_action("mgm", "cross_validate_fold")
    collate = ctx.get_action("mgm", f"collate_{task}_folds")
    evaluate = ctx.get_action("mgm", "evaluate_cross_validation")
    corpus, = tokenize(table=table, taxonomy=taxonomy, max_length=max_length, harmonize_names=harmonize_names)
    folds, = prepare(corpus=corpus, task=task, **parameters)
    # how many folds there are is known once the kept samples are (QIIME 2 2024.10's parallel pipelines wait here for
    # the one features pass, which every fold needs anyway); then every fold is asked for before any is waited on
    n_folds = fold_count(folds.view(MGMCrossValidationFoldsDirFmt).path)
    results = [run_fold_action(folds=folds, fold=number).fold_predictions for number in range(1, n_folds + 1)]
    *predicted, result = collate(folds=folds, fold_predictions=results)
    visualization, = evaluate(cross_validation=result)
    markers, = ctx.get_action("mgm", "cross_validation_markers")(cross_validation=result)
    return (*predicted, visualization, markers)


def classify_samples_cv(ctx, table, metadata, taxonomy=None, groups=None, batches=None, cv=D.cv,
                        cv_strategy=D.cv_strategy, recipe=D.recipe, transfer_matrix=D.transfer_matrix,
                        mgm_markers=D.mgm_markers, n_estimators=D.n_estimators, random_state=D.random_state,
                        max_length=MAX_LENGTH, harmonize_names=False, device="auto",
                        missing_samples=MISSING_DEFAULT):
    return _pipeline(ctx, "classification", table, taxonomy, max_length, harmonize_names,
                     metadata=metadata, groups=groups, batches=batches, cv=cv, cv_strategy=cv_strategy,
                     recipe=recipe, transfer_matrix=transfer_matrix, mgm_markers=mgm_markers, n_estimators=n_estimators,
                     random_state=random_state, device=device, missing_samples=missing_samples)


def regress_samples_cv(ctx, table, metadata, taxonomy=None, groups=None, batches=None, cv=D.cv,
                       cv_strategy=D.cv_strategy, recipe=D.recipe, transfer_matrix=D.transfer_matrix,
                       mgm_markers=D.mgm_markers, n_estimators=D.n_estimators, random_state=D.random_state,
                       max_length=MAX_LENGTH, harmonize_names=False, device="auto",
                       missing_samples=MISSING_DEFAULT):
    return _pipeline(ctx, "regression", table, taxonomy, max_length, harmonize_names,
                     metadata=metadata, groups=groups, batches=batches, cv=cv, cv_strategy=cv_strategy,
                     recipe=recipe, transfer_matrix=transfer_matrix, mgm_markers=mgm_markers, n_estimators=n_estimators,
                     random_state=random_state, device=device, missing_samples=missing_samples)


MARKERS_DESCRIPTION = (
    "Also explain the MGM recipe on every fold's held-out samples, by integrated gradients (one pass per held-out "
    "sample and step: the slow part, minutes on a CPU for a few hundred samples; benchmarks/results/markers.md), so "
    "that its genera are ranked beside the conventional baselines' (which are always explained, exactly and in "
    "seconds) and the field's meta-analysis, in the evaluation's 'Genera across held-out groups'. Off, the markers "
    "output holds the CLR baseline's markers.")
# the parameters of the cross-validate methods and the cv pipelines, with their descriptions
PARAMETERS = {"groups": ID_COLUMN, "batches": ID_COLUMN,
              "cv": Int % Range(2, 1000), "cv_strategy": Str % Choices(*CV_STRATEGIES),
              "recipe": Str % Choices(*RECIPES), "transfer_matrix": Bool, "mgm_markers": Bool,
              "n_estimators": Int % Range(1, 100_000),
              "random_state": SEED, "device": DEVICES, "missing_samples": MISSING_SAMPLES}
DESCRIPTIONS = {
    "groups": "Optional column that decides the folds: study, country or subject. No group is on both sides of a "
              "fold; with cv_strategy 'leave-one-group-out', each group is held out in turn.",
    "batches": "Optional column of batches to correct (study, sequencing run): the recipes that correct batches "
               "standardise each batch's features on that batch's own samples, labels unused, so a held-out study "
               "is corrected on itself. Not the subject: standardising within a subject would erase the signal.",
    "cv": "Number of folds of 'k-fold' (stratified by class; group-aware where groups are given). Not used by "
          "'leave-one-group-out', which makes one fold per group.",
    "cv_strategy": "'k-fold', or 'leave-one-group-out' (needs groups): train on every other group, predict the "
                   "held-out one, for each group.",
    "recipe": "The MGM recipe: " + "; ".join(f"'{n}': {r.description}" for n, r in RECIPES.items()
                                             if r.uses_mgm) + ". (The conventional baselines "
              + ", ".join(f"'{n}'" for n in BASELINES) + " always run beside it; either may also be chosen here, "
              "as may " + "; ".join(f"'{n}': {r.description}" for n, r in RECIPES.items()
                                    if not r.uses_mgm and n not in BASELINES) + ".) "
              "Figures across studies for each: q2-mgm's README, benchmarks/results/transfer.md.",
    "transfer_matrix": "Also train every method on each group alone and test it on each other group (needs groups).",
    "mgm_markers": MARKERS_DESCRIPTION,
    "n_estimators": "Trees in the RandomForest baseline.",
    "random_state": "Seed of the folds and of the RandomForests: the same seed gives the same predictions.",
    "device": DEVICE_DESCRIPTION,
    "missing_samples": MISSING_SAMPLES_DESCRIPTION,
}
CV_TABLE = FeatureTable[Frequency | RelativeFrequency]
MARKERS_OUTPUT = (
    "The genera across the held-out groups as feature importances, strongest first, one column per class a higher "
    "abundance points to (named as the metadata writes the class; `higher` or `lower` for numbers): a genus's "
    "consistent effect in the column of the class it points to, 0 in the others. The consistent effect is the "
    "change in the log-odds (the target's units for numbers) per standard deviation of its CLR abundance, toward "
    "that class, summed over the held-out groups and divided by every scored group, so that a genus pointing the "
    "same way in every group ranks first. The MGM recipe's, or with mgm_markers off the CLR baseline's; the "
    "evaluation's markers.tsv holds the rest of each genus's figures.")
TASKS = ("classification", "regression")


def register(plugin):
    tasks = (("classification", Categorical, "classes", [("predictions", SampleData[ClassifierPredictions]),
                                                        ("probabilities", SampleData[Probabilities])]),
             ("regression", Numeric, "values", [("predictions", SampleData[RegressorPredictions])]))
    for task, column, kind, outputs in tasks:
        output_descriptions = {"predictions": f"The MGM recipe's out-of-fold {kind} of every sample.",
                               "probabilities": "The MGM recipe's out-of-fold class probabilities of every sample."}
        plugin.methods.register_function(
            function=globals()[f"cross_validate_{task}"],
            inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Pretrained]},
            parameters={"metadata": MetadataColumn[column], **PARAMETERS},
            outputs=outputs + [("cross_validation", MGMCrossValidation)],
            input_descriptions={"corpus": CORPUS_DESCRIPTION,
                                "model": "The pretrained model whose frozen features the recipe reads; the general "
                                         "model when left out."},
            parameter_descriptions={"metadata": f"The sample metadata column whose {kind} to predict. Samples "
                                                "without a value are left out, counted and listed.", **DESCRIPTIONS,
                                    },
            output_descriptions={**{name: output_descriptions[name] for name, _ in outputs},
                                 "cross_validation": "Every method's out-of-fold predictions, for "
                                                     "evaluate-cross-validation."},
            name=f"Cross-validate MGM {'classification' if task == 'classification' else 'regression'} across "
                 "groups",
            description="Predict every sample from models that never saw it, as q2-sample-classifier's "
                        f"{'classify' if task == 'classification' else 'regress'}-samples-ncv does, with folds "
                        "that can hold out whole studies. The frozen general model reads each sample once; every "
                        "fold's MGM recipe and conventional baselines are fit on exactly the same samples.",
            citations=[citations["zhang2026mgm"]],
            examples={f"cross_validate_{task}": getattr(_examples, f"cross_validate_{task}_example")},
        )
        pipeline = classify_samples_cv if task == "classification" else regress_samples_cv
        plugin.pipelines.register_function(
            function=pipeline,
            inputs={"table": CV_TABLE, "taxonomy": FeatureData[Taxonomy]},
            parameters={"metadata": MetadataColumn[column], **PARAMETERS, "max_length": Int % Range(2, None),
                        "harmonize_names": Bool},
            outputs=outputs + [("evaluation", Visualization), ("markers", FeatureData[Importance])],
            input_descriptions={"table": TABLE_DESCRIPTION, "taxonomy": TAXONOMY_DESCRIPTION},
            parameter_descriptions={"metadata": f"The sample metadata column whose {kind} to predict.",
                                    **DESCRIPTIONS, "max_length": MAX_LENGTH_DESCRIPTION,
                                    "harmonize_names": HARMONIZE_DESCRIPTION},
            output_descriptions={**{name: output_descriptions[name] for name, _ in outputs},
                                 "evaluation": "Per held-out fold or group: MGM beside the conventional baselines "
                                               "on the same samples, the mean with its 95% interval, a dot plot "
                                               "and pooled curves; the genera that point to one class across the "
                                               "held-out groups, beside the field's meta-analysis.",
                                 "markers": MARKERS_OUTPUT},
            name=f"Predict sample {kind} across studies with MGM: tokenize, cross-validate, evaluate",
            description="Tokenize the table, then predict every sample from models that never saw it (k-fold or "
                        "leave-one-group-out, e.g. leave-one-study-out), and show MGM beside a RandomForest and "
                        "a batch-corrected CLR linear model fit on the same samples of each fold. Mirrors "
                        f"q2-sample-classifier's {'classify' if task == 'classification' else 'regress'}"
                        "-samples-ncv. The frozen encoder reads each sample once (prepare-cross-validation); each "
                        "fold is its own action (cross-validate-fold), so QIIME 2 2024.10's --parallel runs the "
                        "folds at once.",
            citations=[citations["zhang2026mgm"]],
            examples={f"{pipeline.__name__}": getattr(_examples, f"{pipeline.__name__}_example")},
        )
    plugin.methods.register_function(
        function=prepare_cross_validation,
        inputs={"corpus": SampleData[MGMCorpus], "model": MGMModel[Pretrained]},
        parameters={"metadata": MetadataColumn[Categorical | Numeric], "task": Str % Choices(*TASKS), **PARAMETERS},
        outputs=[("folds", MGMCrossValidationFolds)],
        input_descriptions={"corpus": CORPUS_DESCRIPTION,
                            "model": "The pretrained model whose frozen features the recipe reads; the general "
                                     "model when left out."},
        parameter_descriptions={"metadata": "The sample metadata column to predict (numeric for regression). "
                                            "Samples without a value are left out, counted and listed.",
                                "task": "'classification' (the column's values as classes) or 'regression'.",
                                **DESCRIPTIONS},
        output_descriptions={"folds": "Every kept sample's frozen features, target, fold, group and batch, with "
                                      "the settings of the methods: the input of cross-validate-fold."},
        name="Prepare a cross-validation run fold by fold (a step of classify-samples-cv)",
        description="A step that classify-samples-cv and regress-samples-cv run for you; call it directly only to "
                    "run the folds yourself. Their first step: the frozen model reads each sample once, and the "
                    "folds are drawn (the same folds as cross-validate-classification or cross-validate-regression "
                    "with these settings). Each fold is then run by cross-validate-fold "
                    "(QIIME 2 2024.10's --parallel runs them at once) and gathered by collate-classification-folds "
                    "or collate-regression-folds.",
        citations=[citations["zhang2026mgm"]],
        examples={"prepare_cross_validation": _examples.prepare_cross_validation_example},
    )
    plugin.methods.register_function(
        function=cross_validate_fold,
        inputs={"folds": MGMCrossValidationFolds, "model": MGMModel[Pretrained]},
        parameters={"fold": Int % Range(1, None)},
        outputs=[("fold_predictions", MGMFoldPredictions)],
        input_descriptions={"folds": "The features and folds from prepare-cross-validation.",
                            "model": "The model given to prepare-cross-validation, if one was (its markers explain "
                                     "the MGM recipe with it); the general model when left out."},
        parameter_descriptions={"fold": "The number of the fold to run, from 1 to the number of folds (one per "
                                        "held-out group with leave-one-group-out, cv with k-fold)."},
        output_descriptions={"fold_predictions": "This fold's held-out samples as predicted by the MGM recipe and "
                                                 "by each baseline, all fit on the fold's other samples."},
        name="One fold of a cross-validation run (a step of classify-samples-cv)",
        description="A step that classify-samples-cv and regress-samples-cv run for you, once per fold. Fit the "
                    "MGM recipe and the conventional baselines on one fold's training samples and predict its "
                    "held-out samples, from the features prepare-cross-validation computed (one thread, forests "
                    "with n_jobs=1), so folds can run side by side; then explain the held-out samples (with "
                    "mgm_markers the frozen model runs here, for the MGM recipe's integrated gradients).",
        citations=[citations["zhang2026mgm"]],
        examples={"cross_validate_fold": _examples.cross_validate_fold_example},
    )
    for task, kind, outputs in (("classification", "classes", [("predictions", SampleData[ClassifierPredictions]),
                                                                 ("probabilities", SampleData[Probabilities])]),
                                ("regression", "values", [("predictions", SampleData[RegressorPredictions])])):
        output_descriptions = {"predictions": f"The MGM recipe's out-of-fold {kind} of every sample.",
                               "probabilities": "The MGM recipe's out-of-fold class probabilities of every sample."}
        plugin.methods.register_function(
            function=globals()[f"collate_{task}_folds"],
            inputs={"folds": MGMCrossValidationFolds, "fold_predictions": List[MGMFoldPredictions]},
            parameters={},
            outputs=outputs + [("cross_validation", MGMCrossValidation)],
            input_descriptions={"folds": "The features and folds from prepare-cross-validation.",
                                "fold_predictions": "The result of cross-validate-fold for each fold, once each, "
                                                    "in any order."},
            output_descriptions={**{name: output_descriptions[name] for name, _ in outputs},
                                 "cross_validation": "Every method's out-of-fold predictions, for "
                                                     "evaluate-cross-validation."},
            name=f"Gather the folds of a cross-validated {task} (a step of "
                 f"{'classify' if task == 'classification' else 'regress'}-samples-cv)",
            description="A step that classify-samples-cv and regress-samples-cv run for you. "
                        f"The out-of-fold {kind} of every fold, gathered into the outputs "
                        f"cross-validate-{task} gives (the same predictions); the transfer matrix, where the "
                        "folds were prepared with one, is made here.",
            citations=[citations["zhang2026mgm"]],
            examples={f"collate_{task}_folds": getattr(_examples, f"collate_{task}_folds_example")},
        )
    plugin.methods.register_function(
        function=cross_validation_markers,
        inputs={"cross_validation": MGMCrossValidation},
        parameters={},
        outputs=[("markers", FeatureData[Importance])],
        input_descriptions={"cross_validation": "A cross-validation (cross-validate-classification or -regression, "
                                                "or collate-*-folds)."},
        output_descriptions={"markers": MARKERS_OUTPUT},
        name="Genera across held-out groups, as feature importances (a step of classify-samples-cv)",
        description="The markers of a cross-validation (the MGM recipe's, or without mgm_markers the CLR "
                    "baseline's) as q2-sample-classifier's feature importances, "
                    "so that its heatmap and other tools read them: each genus's consistent effect across the "
                    "held-out groups (markers.tsv in the evaluation gives the class each points to, its rank and "
                    "the meta-analysis beside it).",
        citations=[citations["zhang2026mgm"]],
        examples={"cross_validation_markers": _examples.cross_validation_markers_example},
    )
    plugin.visualizers.register_function(
        function=evaluate_cross_validation,
        inputs={"cross_validation": MGMCrossValidation},
        parameters={},
        input_descriptions={"cross_validation": "Out-of-fold predictions from cross-validate-classification or "
                                                "cross-validate-regression."},
        name="Evaluate a cross-validation: MGM beside the conventional baselines, fold by fold",
        description="Per held-out fold or group: samples, cases, and ROC AUC (or MAE and R²) of MGM and of each "
                    "baseline fit on exactly the same samples; the mean over folds with a 95% interval; a dot "
                    "plot, one point per fold, MGM against each baseline; pooled ROC curves (or predicted against "
                    "true values); the transfer matrix where one was made; and every sample left out, with why.",
        citations=[citations["zhang2026mgm"]],
        examples={"evaluate_cross_validation": _examples.evaluate_cross_validation_example},
    )
