"""Semantic types: MGM models, tokenized corpora, labels of generated samples, reconstructors, training
histories and cross-validations."""
from qiime2.plugin import SemanticType
from q2_sample_classifier import Classifier, Regressor
from q2_types.sample_data import SampleData

# Classifier and Regressor are q2-sample-classifier's variants, so MGMModel[Classifier] reads as users expect.
MGMModel = SemanticType("MGMModel", field_names="type", field_members={"type": (Classifier, Regressor)})
Pretrained = SemanticType("Pretrained", variant_of=MGMModel.field["type"])
Generator = SemanticType("Generator", variant_of=MGMModel.field["type"])
MGMCorpus = SemanticType("MGMCorpus", variant_of=SampleData.field["type"])
MGMLabels = SemanticType("MGMLabels", variant_of=SampleData.field["type"])
MGMReconstructor = SemanticType("MGMReconstructor")
MGMTrainingHistory = SemanticType("MGMTrainingHistory")
MGMCrossValidation = SemanticType("MGMCrossValidation")
MGMCrossValidationFolds = SemanticType("MGMCrossValidationFolds")
MGMFoldPredictions = SemanticType("MGMFoldPredictions")
