"""What every area's registration shares, as q2-sample-classifier's plugin_setup gathers its shared parameter specs
at the top: the citations, the device and seed parameters, and the descriptions of inputs that many actions take."""
from qiime2.plugin import Categorical, Choices, Citations, Int, MetadataColumn, Numeric, Range, Str

from ..core.settings import DEVICES as DEVICE_CHOICES
from ..core.samples import MISSING_SAMPLES_MODES

citations = Citations.load("citations.bib", package="q2_mgm")
MGM = [citations["zhang2026mgm"]]
MGM_AND_TRANSFORMERS = [citations["zhang2026mgm"], citations["wolf2020transformers"]]

DEVICES = Str % Choices(*DEVICE_CHOICES)
DEVICE_DESCRIPTION = "Where to run the model: 'auto' picks a CUDA GPU when torch sees one, else the CPU."
SEED = Int % Range(0, 2**32 - 1)
# as q2-sample-classifier's missing_samples; its default is the core's (q2_mgm.core.samples.MISSING_SAMPLES)
MISSING_SAMPLES = Str % Choices(*MISSING_SAMPLES_MODES)
MISSING_SAMPLES_DESCRIPTION = ("How to handle samples of the table (corpus) that the metadata does not hold: 'error' "
                               "stops and lists them (check the IDs: 'P01' is not 'P-01'); 'ignore' leaves them "
                               "out, counted and reported. Samples that the metadata holds but with no value in the "
                               "column are left out and counted either way.")
# a column of IDs (study, batch, subject): QIIME 2 reads IDs written as numbers (1, 2, 3) as a Numeric column, so
# both kinds are taken (core.metadata_checks.id_names names them as written)
ID_COLUMN = MetadataColumn[Categorical | Numeric]
# the RandomForests beside an evaluation (evaluate-classification, -regression, evaluate-generated)
EVALUATION_PARAMETERS = {"n_estimators": Int % Range(1, 100_000), "random_state": SEED}

CORPUS_DESCRIPTION = ("Samples as MGM sentences (<bos> genera by descending normalised abundance <eos>), with the "
                      "per-sample and per-feature tokenization report.")
MODEL_DESCRIPTION = "An MGM model. The general-model action gives the pretrained general model."
TABLE_DESCRIPTION = "Feature table of counts or relative frequencies."
TAXONOMY_DESCRIPTION = "Taxonomy of the table's features; leave out when feature IDs are taxonomy strings."
GROUPS_DESCRIPTION = ("Optional grouping (e.g. subject or child ID): samples of one group never sit on both sides of "
                      "a split, so repeated samples of a subject cannot leak into validation.")
HARMONIZE_DESCRIPTION = "Recover bracketed, SILVA and GTDB genus names (see tokenize)."
MAX_LENGTH_DESCRIPTION = "Longest sentence in tokens (see tokenize)."
