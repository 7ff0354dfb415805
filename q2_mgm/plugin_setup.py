"""The `mgm` plugin: the plugin, its semantic types, formats and artifact classes. Each area registers its own
actions (q2_mgm/actions): corpus, supervised,
cross_validation, keystone, generative and trajectories."""
import importlib

from qiime2.plugin import Plugin
from q2_sample_classifier import Classifier, Regressor
from q2_types.sample_data import SampleData

from . import __version__
from ._formats import (CorpusDroppedSamplesFormat, CrossValidationTSVFormat, CorpusFeaturesFormat, CorpusSamplesFormat,
                       JSONFormat, MGMCorpusDirFmt, MGMCrossValidationDirFmt, MGMCrossValidationFoldsDirFmt,
                       MGMFoldPredictionsDirFmt, MGMGeneratorDirFmt, MGMLabelsDirFmt, MGMLabelsFormat, MGMModelDirFmt,
                       MGMReconstructorDirFmt, MGMSupervisedModelDirFmt, SafetensorsFormat, TrainingHistoryDirFmt,
                       TrainingHistoryFormat, VocabularyFormat)
from ._types import (Generator, MGMCorpus, MGMCrossValidation, MGMCrossValidationFolds, MGMFoldPredictions, MGMLabels,
                     MGMModel, MGMReconstructor, MGMTrainingHistory, Pretrained)
from .actions import corpus, cross_validation, generative, keystone, supervised, trajectories
from .actions._parameters import citations

plugin = Plugin(
    name="mgm",
    version=__version__,
    website="https://github.com/HUST-NingKang-Lab/MGM",
    package="q2_mgm",
    description="MGM, the Microbial General Model: a GPT-2 language model pretrained on ~260,000 MGnify samples, "
                "where each sample is a sentence of genus tokens ranked by normalised abundance. Tokenize tables, "
                "embed samples with the pretrained general model, and check how well MGM's vocabulary covers your "
                "data.",
    short_description="MGM, the Microbial General Model, for QIIME 2.",
    citations=[citations["zhang2026mgm"]],
)

plugin.register_semantic_types(MGMModel, Pretrained, Generator, MGMCorpus, MGMLabels, MGMReconstructor,
                               MGMTrainingHistory, MGMCrossValidation, MGMCrossValidationFolds, MGMFoldPredictions)
plugin.register_formats(MGMModelDirFmt, MGMSupervisedModelDirFmt, MGMGeneratorDirFmt, MGMCorpusDirFmt,
                        CorpusSamplesFormat, CorpusFeaturesFormat, CorpusDroppedSamplesFormat, JSONFormat,
                        SafetensorsFormat, VocabularyFormat, TrainingHistoryFormat, TrainingHistoryDirFmt,
                        MGMLabelsFormat, MGMLabelsDirFmt, MGMReconstructorDirFmt, MGMCrossValidationDirFmt,
                        CrossValidationTSVFormat, MGMCrossValidationFoldsDirFmt, MGMFoldPredictionsDirFmt)
plugin.register_artifact_class(MGMModel[Pretrained], directory_format=MGMModelDirFmt,
                               description="An MGM GPT-2 language model over genus tokens: config.json, weights as "
                                           "model.safetensors, vocab.txt and versions.json.")
for variant, task in ((Classifier, "classifier"), (Regressor, "regressor")):
    plugin.register_artifact_class(MGMModel[variant], directory_format=MGMSupervisedModelDirFmt,
                                   description=f"A fine-tuned MGM {task}: the model files plus training.json "
                                               "(label set, sample counts, settings, training curves).")
plugin.register_artifact_class(MGMModel[Generator], directory_format=MGMGeneratorDirFmt,
                               description="An MGM language model pretrained with label prompts (<bos> <label> "
                                           "genera <eos>): the model files plus pretraining.json (labels, corpus "
                                           "size, settings, training curves).")
plugin.register_artifact_class(SampleData[MGMLabels], directory_format=MGMLabelsDirFmt,
                               description="The label each generated sample was prompted with; views as metadata.")
plugin.register_artifact_class(MGMReconstructor, directory_format=MGMReconstructorDirFmt,
                               description="Maps a ranked sentence to relative abundances: reconstructor.json, plus "
                                           "model.safetensors for a neural reconstructor.")
plugin.register_artifact_class(MGMTrainingHistory, directory_format=TrainingHistoryDirFmt,
                               description="Loss and validation metrics per training epoch.")
plugin.register_artifact_class(MGMCrossValidation, directory_format=MGMCrossValidationDirFmt,
                               description="Every sample predicted by models that never saw it, by MGM and by the "
                                           "conventional baselines on the same folds, with the transfer matrix.")
plugin.register_artifact_class(MGMCrossValidationFolds, directory_format=MGMCrossValidationFoldsDirFmt,
                               description="What every fold of a cross-validation shares: the frozen encoder's "
                                           "features of every sample (safetensors), each sample's target, fold, "
                                           "group and batch, and the settings of the methods.")
plugin.register_artifact_class(MGMFoldPredictions, directory_format=MGMFoldPredictionsDirFmt,
                               description="One fold's out-of-fold predictions by MGM and by the conventional "
                                           "baselines, with the seconds each took.")
plugin.register_artifact_class(SampleData[MGMCorpus], directory_format=MGMCorpusDirFmt,
                               description="Samples tokenized as MGM sentences, with the tokenization report.")

corpus.register(plugin)
supervised.register(plugin)
cross_validation.register(plugin)
keystone.register(plugin)
generative.register(plugin)
trajectories.register(plugin)

importlib.import_module("q2_mgm._transformers")
