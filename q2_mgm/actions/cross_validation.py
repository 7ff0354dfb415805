"""Across studies: cross-validate-classification, cross-validate-regression, evaluate-cross-validation and the
pipelines classify-samples-cv and regress-samples-cv, registered by `register(plugin)`. Every sample is predicted
by models that never saw it (q2-sample-classifier's classify-samples-ncv), with folds that can hold out whole
studies, and the conventional baselines fit on exactly the same samples of each fold. Defaults live in the core
(q2_mgm.core.cross_validation.CROSS_VALIDATION)."""
import time

import numpy as np
import pandas as pd
import qiime2
from qiime2.plugin import Bool, Categorical, Choices, Int, MetadataColumn, Numeric, Range, Str, Visualization
from q2_sample_classifier import ClassifierPredictions, Probabilities, RegressorPredictions
from q2_types.feature_data import FeatureData, Taxonomy
from q2_types.feature_table import FeatureTable, Frequency, RelativeFrequency
from q2_types.sample_data import SampleData

from .. import _examples
from .._formats import MGMModelDirFmt
from .._progress import report
from .._types import MGMCorpus, MGMCrossValidation, MGMModel, Pretrained
from ..core import schemas
from ..core.cross_validation import (CROSS_VALIDATION as D, CV_STRATEGIES, CrossValidation, check_fold_settings,
                                     cross_validate, make_folds)
from ..core.inference import encode, language_model_features, resolve_device
from ..core.models import load_general_model, load_model
from ..core.samples import MISSING_SAMPLES as MISSING_DEFAULT, samples_left_out, samples_with_values
from ..core.tokenizer import MAX_LENGTH, Corpus
from ..core.training.targets import encode_targets
from ..core.transfer import BASELINES, RECIPES, SampleFeatures, TransferError
from ..visualizers.cross_validation import evaluate_cross_validation
from ._parameters import (CORPUS_DESCRIPTION, DEVICE_DESCRIPTION, DEVICES, HARMONIZE_DESCRIPTION,
                          MAX_LENGTH_DESCRIPTION, MISSING_SAMPLES, MISSING_SAMPLES_DESCRIPTION, SEED, TABLE_DESCRIPTION, TAXONOMY_DESCRIPTION, citations)


def _run(corpus, metadata, task, model, groups, batches, cv, cv_strategy, recipe, transfer_matrix, n_estimators,
         random_state, device, missing_samples):
    columns = [(metadata.name, metadata.to_series())]
    columns += [(c.name, c.to_series()) for c in (groups, batches) if c is not None]
    kept, values = samples_with_values(corpus.samples.index, columns, TransferError, report,
                                       missing_samples=missing_samples)
    labels = values[0] if task == "regression" else values[0].astype(str)
    extra = iter(values[1:])
    group_values = None if groups is None else next(extra).astype(str).to_numpy()
    batch_values = None if batches is None else next(extra).astype(str).to_numpy()
    abundances = corpus.abundance_table(kept)
    if abundances is None:
        raise TransferError("This corpus holds no genus abundances (it was generated, or made by an older q2-mgm); "
                            "the baselines and the batch-corrected recipes need them. Tokenize the table again.")
    encoded, classes, _, _ = encode_targets(labels, task)
    folds = make_folds(encoded, group_values, cv, cv_strategy, task, random_state)
    backbone, vocabulary, _ = load_general_model() if model is None else load_model(model.path)
    report(f"features of {len(kept)} samples from the frozen encoder (one pass, shared by every fold)")
    started = time.perf_counter()
    embeddings, likelihood = language_model_features(
        backbone, encode(corpus.samples.sentence.loc[kept], vocabulary), resolve_device(device))
    features_seconds = time.perf_counter() - started
    report(f"{len(folds)} folds ({cv_strategy}); methods: {recipe}, then " + ", ".join(BASELINES))
    left_out = samples_left_out(corpus.samples.index, kept, columns, corpus.dropped_samples).to_dict("records")
    if left_out:
        report(f"left out {len(left_out)} samples that cannot be predicted (listed in the evaluation)")
    result = cross_validate(
        SampleFeatures(embeddings, likelihood, abundances, batch_values), labels, task, folds, recipe, BASELINES, random_state,
        n_estimators, group_values if transfer_matrix and group_values is not None else None, report,
        label_column=metadata.name, groups_column=None if groups is None else groups.name,
        batches_column=None if batches is None else batches.name, cv_strategy=cv_strategy,
        cv=len(folds), left_out=left_out, features_seconds=features_seconds)
    if transfer_matrix and groups is None:
        report("transfer_matrix needs a groups column; none drawn")
    own = result.predictions[result.predictions["method"] == recipe].set_index("sample_id")
    own.index = pd.Index(own.index, name="SampleID")
    return result, own, classes


def cross_validate_classification(corpus: Corpus, metadata: qiime2.CategoricalMetadataColumn,
                                  model: MGMModelDirFmt = None, groups: qiime2.CategoricalMetadataColumn = None,
                                  batches: qiime2.CategoricalMetadataColumn = None, cv: int = D.cv,
                                  cv_strategy: str = D.cv_strategy, recipe: str = D.recipe,
                                  transfer_matrix: bool = D.transfer_matrix, n_estimators: int = D.n_estimators,
                                  random_state: int = D.random_state, device: str = "auto",
                                  missing_samples: str = MISSING_DEFAULT) -> (pd.Series, pd.DataFrame, CrossValidation):
    result, own, classes = _run(corpus, metadata, "classification", model, groups, batches, cv, cv_strategy,
                                recipe, transfer_matrix, n_estimators, random_state, device, missing_samples)
    probabilities = own[[schemas.CV_PROBABILITY_PREFIX + c for c in classes]].astype(np.float64)
    probabilities.columns = classes
    return own["prediction"].rename("prediction"), probabilities, result


def cross_validate_regression(corpus: Corpus, metadata: qiime2.NumericMetadataColumn, model: MGMModelDirFmt = None,
                              groups: qiime2.CategoricalMetadataColumn = None,
                              batches: qiime2.CategoricalMetadataColumn = None, cv: int = D.cv,
                              cv_strategy: str = D.cv_strategy, recipe: str = D.recipe,
                              transfer_matrix: bool = D.transfer_matrix, n_estimators: int = D.n_estimators,
                              random_state: int = D.random_state, device: str = "auto",
                              missing_samples: str = MISSING_DEFAULT) -> (pd.Series, CrossValidation):
    result, own, _ = _run(corpus, metadata, "regression", model, groups, batches, cv, cv_strategy, recipe,
                          transfer_matrix, n_estimators, random_state, device, missing_samples)
    return own["prediction"].astype(np.float64).rename("prediction"), result


def _pipeline(ctx, name, table, taxonomy, max_length, harmonize_names, **parameters):
    groups = parameters["groups"]
    check_fold_settings(parameters["cv"], parameters["cv_strategy"],
                        None if groups is None else groups.to_series().dropna().nunique())  # before any work
    tokenize = ctx.get_action("mgm", "tokenize")
    run = ctx.get_action("mgm", name)
    evaluate = ctx.get_action("mgm", "evaluate_cross_validation")
    corpus, = tokenize(table=table, taxonomy=taxonomy, max_length=max_length, harmonize_names=harmonize_names)
    *predicted, result = run(corpus=corpus, **parameters)
    visualization, = evaluate(cross_validation=result)
    return (*predicted, visualization)


def classify_samples_cv(ctx, table, metadata, taxonomy=None, groups=None, batches=None, cv=D.cv,
                        cv_strategy=D.cv_strategy, recipe=D.recipe, transfer_matrix=D.transfer_matrix,
                        n_estimators=D.n_estimators, random_state=D.random_state, max_length=MAX_LENGTH,
                        harmonize_names=False, device="auto", missing_samples=MISSING_DEFAULT):
    return _pipeline(ctx, "cross_validate_classification", table, taxonomy, max_length, harmonize_names,
                     metadata=metadata, groups=groups, batches=batches, cv=cv, cv_strategy=cv_strategy,
                     recipe=recipe, transfer_matrix=transfer_matrix, n_estimators=n_estimators,
                     random_state=random_state, device=device, missing_samples=missing_samples)


def regress_samples_cv(ctx, table, metadata, taxonomy=None, groups=None, batches=None, cv=D.cv,
                       cv_strategy=D.cv_strategy, recipe=D.recipe, transfer_matrix=D.transfer_matrix,
                       n_estimators=D.n_estimators, random_state=D.random_state, max_length=MAX_LENGTH,
                       harmonize_names=False, device="auto", missing_samples=MISSING_DEFAULT):
    return _pipeline(ctx, "cross_validate_regression", table, taxonomy, max_length, harmonize_names,
                     metadata=metadata, groups=groups, batches=batches, cv=cv, cv_strategy=cv_strategy,
                     recipe=recipe, transfer_matrix=transfer_matrix, n_estimators=n_estimators,
                     random_state=random_state, device=device, missing_samples=missing_samples)


# the parameters of the cross-validate methods and the cv pipelines, with their descriptions
PARAMETERS = {"groups": MetadataColumn[Categorical], "batches": MetadataColumn[Categorical],
              "cv": Int % Range(2, 1000), "cv_strategy": Str % Choices(*CV_STRATEGIES),
              "recipe": Str % Choices(*RECIPES), "transfer_matrix": Bool, "n_estimators": Int % Range(1, 100_000),
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
              + ", ".join(f"'{n}'" for n in BASELINES) + " always run beside it; either may also be chosen here.) "
              "Figures across studies for each: q2-mgm's README, benchmarks/results/transfer.md.",
    "transfer_matrix": "Also train every method on each group alone and test it on each other group (needs groups).",
    "n_estimators": "Trees in the RandomForest baseline.",
    "random_state": "Seed of the folds and of the RandomForests: the same seed gives the same predictions.",
    "device": DEVICE_DESCRIPTION,
    "missing_samples": MISSING_SAMPLES_DESCRIPTION,
}
CV_TABLE = FeatureTable[Frequency | RelativeFrequency]


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
                                                "without a value are left out, counted and listed.", **DESCRIPTIONS},
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
            outputs=outputs + [("evaluation", Visualization)],
            input_descriptions={"table": TABLE_DESCRIPTION, "taxonomy": TAXONOMY_DESCRIPTION},
            parameter_descriptions={"metadata": f"The sample metadata column whose {kind} to predict.",
                                    **DESCRIPTIONS, "max_length": MAX_LENGTH_DESCRIPTION,
                                    "harmonize_names": HARMONIZE_DESCRIPTION},
            output_descriptions={**{name: output_descriptions[name] for name, _ in outputs},
                                 "evaluation": "Per held-out fold or group: MGM beside the conventional baselines "
                                               "on the same samples, the mean with its 95% interval, a dot plot "
                                               "and pooled curves."},
            name=f"Predict sample {kind} across studies with MGM: tokenize, cross-validate, evaluate",
            description="Tokenize the table, then predict every sample from models that never saw it (k-fold or "
                        "leave-one-group-out, e.g. leave-one-study-out), and show MGM beside a RandomForest and "
                        "a batch-corrected CLR linear model fit on the same samples of each fold. Mirrors "
                        f"q2-sample-classifier's {'classify' if task == 'classification' else 'regress'}"
                        "-samples-ncv.",
            citations=[citations["zhang2026mgm"]],
            examples={f"{pipeline.__name__}": getattr(_examples, f"{pipeline.__name__}_example")},
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
