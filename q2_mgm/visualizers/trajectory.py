"""trajectory: samples in a 2-D projection of the embedding space, each group's mean path over time, any subject's
path on demand, and the distance to the group centroid over time."""
import json

import matplotlib
import numpy as np
import pandas as pd
import qiime2
import skbio

from ..core.trajectories import trajectories
from ._render import html_table, overview_table, render_page, save_figure, subplots, write_tsv

COLOURS = matplotlib.colormaps["tab10"].colors


def trajectory(output_dir: str, embeddings: skbio.OrdinationResults, time: qiime2.NumericMetadataColumn,
               group: qiime2.MetadataColumn, subject: qiime2.CategoricalMetadataColumn = None,
               projection: str = "pca", max_time_points: int = 25, random_state: int = 0) -> None:
    result = trajectories(embeddings.samples, time.to_series(), group.to_series(),
                          None if subject is None else subject.to_series(), projection, max_time_points, random_state)
    time_column, group_column = time.name, group.name
    colours = {g: "#%02x%02x%02x" % tuple(int(255 * c) for c in COLOURS[i % len(COLOURS)])
               for i, g in enumerate(sorted(result.samples.group.unique()))}
    samples = result.samples.rename(columns={"axis1": "axis_1", "axis2": "axis_2"})
    write_tsv(output_dir, "samples", samples, index_label="sample-id")
    write_tsv(output_dir, "group_paths", result.group_paths, index=False)
    write_tsv(output_dir, "group_separation", result.separation, index=False)
    bins = result.time_bins
    if bins is not None:
        write_tsv(output_dir, "time_bins", bins, index=False)
    render_page(output_dir, "trajectory", {
        "title": "MGM trajectories",
        "time": time_column, "group": group_column, "subject": subject is not None,
        "overview": overview_table(_overview(result, embeddings, time_column)),
        "paths_plot": _paths_plot(result, colours, time_column, output_dir),
        "distance_plot": _distance_plot(result, colours, time_column, output_dir),
        "plot_data": json.dumps(_plot_data(result, colours)).replace("</", "<\\/"),  # inline in <script>
        "max_time_points": max_time_points,
        "time_bins": None if bins is None else html_table(pd.DataFrame({
            f"{time_column} from": bins.low.map("{:g}".format), "to": bins.high.map("{:g}".format),
            "shown at (bin midpoint)": bins.midpoint.map("{:g}".format), "samples": bins.n_samples}), index=False),
        "n_times": int(result.samples.time.nunique()),
    })


def _overview(result, embeddings, time_column):
    samples = result.samples
    return {"samples placed": len(samples),
            **{f"samples left out: {reason}": n for reason, n in result.dropped.items()},
            "groups": ", ".join(f"{g} ({n})" for g, n in samples.group.value_counts().sort_index().items()),
            "subjects": samples.subject.nunique() if samples.subject.notna().any() else "no subject column",
            f"time points ({time_column})": samples.point.nunique(),
            "embedding dimensions": embeddings.samples.shape[1]}


def _paths_plot(result, colours, time_column, output_dir):
    samples, paths = result.samples, result.group_paths
    figure, ax = subplots(figsize=(8, 6.5))
    for offset, (group, colour) in enumerate(colours.items()):
        members = samples[samples.group == group]
        ax.scatter(members.axis1, members.axis2, s=10, alpha=0.25, color=colour, linewidths=0)
        path = paths[paths.group == group].sort_values("time")
        ax.plot(path.axis1, path.axis2, "-o", color=colour, lw=2.5, ms=4, label=f"{group}: mean path")
        for end, marker in ((path.iloc[0], "start"), (path.iloc[-1], "end")):
            ax.annotate(f"{marker} ({time_column} {end.time:g})", (end.axis1, end.axis2), fontsize=8, color=colour,
                        xytext=(4, 4 - 11 * offset), textcoords="offset points")
    ax.set_xlabel(result.axis_labels[0]), ax.set_ylabel(result.axis_labels[1])
    ax.legend(loc="best", fontsize=9)
    return save_figure(figure, output_dir, "trajectories")


def _distance_plot(result, colours, time_column, output_dir):
    samples = result.samples
    figure, (own_ax, between_ax) = subplots(1, 2, figsize=(12, 4.5))
    for group, colour in colours.items():
        stats = (samples[samples.group == group].groupby("point").distance_to_group_centroid
                 .agg(["mean", "sem", "size"]).reset_index())
        own_ax.plot(stats.point, stats["mean"], "-o", color=colour, ms=3, label=group)
        own_ax.fill_between(stats.point, stats["mean"] - 1.96 * stats["sem"].fillna(0),
                            stats["mean"] + 1.96 * stats["sem"].fillna(0), color=colour, alpha=0.2)
    own_ax.set_xlabel(time_column), own_ax.set_ylabel("distance to own group's centroid")
    own_ax.set_title("within-group spread (mean, 95% CI)", fontsize=10)
    own_ax.legend(fontsize=9)
    for pair, rows in result.separation.groupby("groups"):
        between_ax.plot(rows.time, rows.distance, "-o", ms=3, label=pair)
    between_ax.set_xlabel(time_column), between_ax.set_ylabel("distance between group centroids")
    between_ax.set_title("separation of the groups", fontsize=10)
    if len(result.separation):
        between_ax.legend(fontsize=9)
    return save_figure(figure, output_dir, "centroid_distances")


def _plot_data(result, colours):
    """What the page's interactive plot draws: points, group paths and each subject's time-ordered path."""
    samples = result.samples.sort_values("time")
    rounded = lambda values: np.round(values.astype(float), 4).tolist()  # noqa: E731
    subjects = {}
    if samples.subject.notna().any():
        for subject, rows in samples.groupby("subject", sort=True):
            subjects[str(subject)] = {"x": rounded(rows.axis1), "y": rounded(rows.axis2),
                                      "t": rounded(rows.time), "group": str(rows.group.iloc[0])}
    return {"colours": colours, "axes": list(result.axis_labels),
            "points": {"x": rounded(samples.axis1), "y": rounded(samples.axis2),
                       "group": samples.group.astype(str).tolist(), "id": samples.index.astype(str).tolist()},
            "paths": {g: {"x": rounded(rows.axis1), "y": rounded(rows.axis2), "t": rounded(rows.time)}
                      for g, rows in result.group_paths.sort_values("time").groupby("group")},
            "subjects": subjects}
