"""The trajectories area: the trajectory visualizer, registered by `register(plugin)`."""
from q2_types.ordination import PCoAResults
from qiime2.plugin import Categorical, Choices, Int, MetadataColumn, Numeric, Range, Str

from .._examples import usage as _examples
from ..core.trajectories import PROJECTIONS
from ..visualizers.trajectory import trajectory
from ._parameters import ID_COLUMN, SEED, citations


def register(plugin):
    plugin.visualizers.register_function(
        function=trajectory,
        inputs={"embeddings": PCoAResults},
        parameters={"time": MetadataColumn[Numeric], "group": MetadataColumn[Categorical | Numeric],
                    "subject": ID_COLUMN, "projection": Str % Choices(*PROJECTIONS),
                    "max_time_points": Int % Range(2, 1000), "random_state": SEED},
        input_descriptions={"embeddings": "Sample embeddings from the embed action."},
        parameter_descriptions={
            "time": "Each sample's time (e.g. month of life). Samples without a value are left out and counted.",
            "group": "The groups that get their own colour and mean path (e.g. delivery mode). Samples without a value "
                     "are left out and counted. A numeric column is read as labels, named as written (1, not 1.0).",
            "subject": "Optional: each sample's subject (e.g. child ID), to show a subject's path.",
            "projection": "How the embeddings become two axes: 'pca' (linear, axes comparable across runs) or 'tsne'.",
            "max_time_points": "Most points on a mean path: with more distinct times, times are pooled into this many "
                               "equal-width bins.",
            "random_state": "Seed of the projection (t-SNE).",
        },
        name="Trajectories of groups through the embedding space",
        description="The paper's delivery-mode-specific trajectories: samples in a 2-D projection of their MGM "
                    "embeddings, coloured by group, with each group's mean path over time and any subject's path on "
                    "demand; plus each sample's distance to its group's centroid and the distance between the groups' "
                    "centroids over time, computed in the full embedding space. TSVs and PDFs to download.",
        citations=[citations["zhang2026mgm"]],
        examples={"delivery_mode_trajectories": _examples.trajectory_example},
    )
