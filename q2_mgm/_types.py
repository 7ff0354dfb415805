"""Semantic types: MGM models and tokenized corpora."""
from qiime2.plugin import SemanticType
from q2_types.sample_data import SampleData

MGMModel = SemanticType("MGMModel", field_names="type")
Pretrained = SemanticType("Pretrained", variant_of=MGMModel.field["type"])
MGMCorpus = SemanticType("MGMCorpus", variant_of=SampleData.field["type"])
