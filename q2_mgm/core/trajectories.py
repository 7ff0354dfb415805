"""Longitudinal trajectories in the embedding space: a 2-D projection of the samples, each group's mean path over
time, and how far samples sit from their group's centroid as time goes on (the paper's delivery-mode-specific
trajectories)."""
import dataclasses
from typing import Optional, Tuple

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from .metadata_checks import id_names

PROJECTIONS = ("pca", "tsne")


class TrajectoryError(ValueError):
    """Metadata that cannot place the samples on trajectories; the message names the problem and the fix."""


@dataclasses.dataclass
class Trajectories:
    samples: pd.DataFrame      # per sample: axis 1, axis 2, time, time point, group, subject, centroid distances
    group_paths: pd.DataFrame  # per group and time point: mean position, sample count
    separation: pd.DataFrame   # per time point: distance between each pair of group centroids
    axis_labels: Tuple[str, str]
    dropped: pd.Series         # reason -> number of samples left out
    # where times were pooled into bins (more distinct times than max_time_points): per bin, its range (low, high;
    # the last bin holds its high end), the midpoint that stands for it, and its samples; None where none were
    time_bins: Optional[pd.DataFrame] = None


def align(embeddings: pd.DataFrame, time: pd.Series, group: pd.Series,
          subject: Optional[pd.Series] = None) -> Tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """The samples with an embedding and a time and group value: their embeddings, and their time, group and
    subject (a frame); what is left out is counted by reason."""
    times = pd.to_numeric(time, errors="coerce")
    if times.notna().sum() == 0:
        raise TrajectoryError(f"The time column {time.name!r} holds no numbers; pass a numeric column (e.g. month).")
    frame = pd.DataFrame({"time": times, "group": id_names(group).astype("string")})  # 1, not 1.0
    frame["subject"] = pd.NA if subject is None else id_names(subject).astype("string")
    known = embeddings.index.isin(frame.index)
    frame = frame.reindex(embeddings.index)
    dropped = pd.Series({
        "not in the metadata": int((~known).sum()),
        f"no value in {time.name!r}": int((frame.time.isna() & known).sum()),
        f"no value in {group.name!r}": int((frame.group.isna() & frame.time.notna()).sum()),
    })
    keep = frame.time.notna() & frame.group.notna()
    if keep.sum() < 3:
        raise TrajectoryError(f"Only {int(keep.sum())} samples have both an embedding and values in {time.name!r} "
                              f"and {group.name!r}; check that the metadata's sample IDs match the embeddings'.")
    if frame.time[keep].nunique() < 2:
        raise TrajectoryError(f"The time column {time.name!r} holds one value, {frame.time[keep].iloc[0]:g}, for "
                              "every sample placed: a path over time needs two time points at least. Pass a column "
                              "whose values vary over time (e.g. month of life).")
    return embeddings[keep], frame[keep], dropped


def time_points(times: pd.Series, max_points: int) -> pd.Series:
    """Each distinct time when there are few; else the midpoints of max_points equal-width bins."""
    if times.nunique() <= max_points:
        return times.astype(float)
    edges = np.linspace(times.min(), times.max(), max_points + 1)
    bins = np.clip(np.digitize(times, edges[1:-1]), 0, max_points - 1)
    return pd.Series((edges[bins] + edges[bins + 1]) / 2, index=times.index)


def time_bins(times: pd.Series, points: pd.Series) -> Optional[pd.DataFrame]:
    """Per time point (`time_points` of `times`) that pools several distinct times: the range of the times it
    holds (low, high), its midpoint and its samples; None where every time is its own point."""
    if times.nunique() == points.nunique() and (times.astype(float) == points).all():
        return None
    pooled = pd.DataFrame({"time": times.astype(float), "point": points})
    return (pooled.groupby("point").agg(low=("time", "min"), high=("time", "max"), n_samples=("time", "size"))
            .rename_axis("midpoint").reset_index())


def project(vectors: np.ndarray, method: str = "pca", random_state: int = 0) -> Tuple[np.ndarray, Tuple[str, str]]:
    """(n, 2) coordinates of (n, dimensions) vectors, and the axis labels."""
    if method == "pca":
        pca = PCA(n_components=2, random_state=random_state)
        points = pca.fit_transform(vectors)
        return points, tuple(f"PC{i + 1} ({share:.1%})" for i, share in enumerate(pca.explained_variance_ratio_))
    if method == "tsne":
        perplexity = min(30.0, (len(vectors) - 1) / 3)
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state).fit_transform(
            vectors)
        return points, ("t-SNE 1", "t-SNE 2")
    raise TrajectoryError(f"projection must be one of {', '.join(PROJECTIONS)}, not {method!r}.")


def _centroid_distances(vectors, frame):
    """Per sample, the Euclidean distance (in the full embedding space) to its own group's centroid at its time
    point; per time point, the distance between group centroids."""
    vectors = pd.DataFrame(vectors, index=frame.index)
    centroids = vectors.groupby([frame.group, frame.point]).mean()
    keys = pd.MultiIndex.from_arrays([frame.group, frame.point])
    own = np.linalg.norm(vectors.to_numpy() - centroids.reindex(keys).to_numpy(), axis=1)
    rows = []
    for point, at_point in centroids.groupby(level=1):
        at_point = at_point.droplevel(1).sort_index()
        for i, first in enumerate(at_point.index):
            for second in at_point.index[i + 1:]:
                rows.append({"time": point, "groups": f"{first} vs {second}",
                             "distance": float(np.linalg.norm(at_point.loc[first] - at_point.loc[second]))})
    return own, pd.DataFrame(rows, columns=["time", "groups", "distance"])


def trajectories(embeddings: pd.DataFrame, time: pd.Series, group: pd.Series, subject: Optional[pd.Series] = None,
                 projection: str = "pca", max_time_points: int = 25, random_state: int = 0) -> Trajectories:
    """Samples (rows of embeddings) placed by their time, group and optional subject (series named by column)."""
    vectors_frame, frame, dropped = align(embeddings, time, group, subject)
    vectors = vectors_frame.to_numpy(dtype=np.float64)
    frame = frame.assign(point=time_points(frame.time, max_time_points))
    points, labels = project(vectors, projection, random_state)
    frame["axis1"], frame["axis2"] = points[:, 0], points[:, 1]
    frame["distance_to_group_centroid"], separation = _centroid_distances(vectors, frame)
    paths = (frame.groupby(["group", "point"]).agg(axis1=("axis1", "mean"), axis2=("axis2", "mean"),
                                                   n_samples=("axis1", "size"))
             .reset_index().rename(columns={"point": "time"}))
    return Trajectories(frame, paths, separation, labels, dropped[dropped > 0], time_bins(frame.time, frame.point))
