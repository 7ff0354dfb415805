"""Trajectories through the embedding space on ECAM (every fourth sample, 42 children): the core computation
checked against direct arithmetic, and the `trajectory` visualizer's files and page in a real browser."""
import numpy as np
import pandas as pd
import pytest
import qiime2

from q2_mgm.core.trajectories import TrajectoryError, time_points, trajectories

from .helpers import read_metadata
from .test_visualizers import assert_page_is_complete, assert_renders_in_a_browser, export


@pytest.fixture(scope="module")
def ecam_embeddings(mgm_plugin, ecam_subset_corpus_artifact, model_artifact):
    embeddings, = mgm_plugin.actions.embed(corpus=ecam_subset_corpus_artifact, model=model_artifact)
    return embeddings


@pytest.fixture(scope="module")
def vectors(ecam_embeddings):
    return ecam_embeddings.view(pd.DataFrame)


@pytest.fixture(scope="module")
def ecam_frame():
    return read_metadata("ecam")


@pytest.fixture(scope="module")
def result(vectors, ecam_frame):
    return trajectories(vectors, ecam_frame.month, ecam_frame.delivery, ecam_frame.studyid)


def test_every_sample_is_placed(result, vectors):
    assert len(result.samples) == len(vectors) == 219
    assert result.dropped.empty
    assert set(result.samples.group) == {"Vaginal", "Cesarean"}
    assert result.samples.subject.nunique() == 42  # one child has no sample among every fourth


def test_group_paths_are_mean_positions(result):
    samples = result.samples
    for _, row in result.group_paths.sample(5, random_state=0).iterrows():
        members = samples[(samples.group == row.group) & (samples.point == row.time)]
        assert row.n_samples == len(members)
        assert row.axis1 == pytest.approx(members.axis1.mean()) and row.axis2 == pytest.approx(members.axis2.mean())


def test_centroid_distances_in_the_full_embedding_space(result, vectors):
    samples = result.samples
    sample = samples.index[10]
    peers = samples[(samples.group == samples.group[sample]) & (samples.point == samples.point[sample])].index
    expected = np.linalg.norm(vectors.loc[sample] - vectors.loc[peers].mean())
    assert samples.distance_to_group_centroid[sample] == pytest.approx(expected)
    at_zero = result.separation[result.separation.time == 0].iloc[0]
    centroids = {g: vectors.loc[samples[(samples.group == g) & (samples.point == 0)].index].mean()
                 for g in ("Cesarean", "Vaginal")}
    assert at_zero.groups == "Cesarean vs Vaginal"
    assert at_zero.distance == pytest.approx(np.linalg.norm(centroids["Cesarean"] - centroids["Vaginal"]))


def test_infants_converge_towards_the_adult_like_state(result):
    """Early infant microbiomes are diverse and later ones alike: the within-group spread shrinks with age."""
    spread = result.samples.groupby(result.samples.time <= 3).distance_to_group_centroid.mean()
    assert spread[True] > spread[False]


def test_missing_values_are_counted_not_lost(vectors, ecam_frame):
    frame = ecam_frame.copy()
    frame.loc[vectors.index[:5], "month"] = np.nan
    frame.loc[vectors.index[5:8], "delivery"] = np.nan
    frame = frame.drop(vectors.index[8:10])
    result = trajectories(vectors, frame.month, frame.delivery)
    assert len(result.samples) == len(vectors) - 10
    assert result.dropped.to_dict() == {"not in the metadata": 2, "no value in 'month'": 5,
                                        "no value in 'delivery'": 3}


def test_time_points_pool_many_distinct_times(ecam_frame):
    days = ecam_frame.day_of_life.astype(float)
    pooled = time_points(days, 10)
    assert pooled.nunique() <= 10 and ((pooled - days).abs() <= (days.max() - days.min()) / 20 + 1e-9).all()
    assert time_points(ecam_frame.month.astype(float), 50).equals(ecam_frame.month.astype(float))


def test_a_time_without_numbers_is_a_clear_error(vectors, ecam_frame):
    with pytest.raises(TrajectoryError, match="'delivery' holds no numbers"):
        trajectories(vectors, ecam_frame.delivery, ecam_frame.delivery)
    assert len(trajectories(vectors, ecam_frame.month, ecam_frame.delivery).samples)  # the fix: a numeric column


def test_metadata_of_other_samples_is_a_clear_error(vectors, ecam_frame):
    other = ecam_frame.set_axis([f"x{i}" for i in range(len(ecam_frame))])
    with pytest.raises(TrajectoryError, match="sample IDs match"):
        trajectories(vectors, other.month, other.delivery)
    matched = other.set_axis(ecam_frame.index)  # the fix: IDs that match the embeddings'
    assert len(trajectories(vectors, matched.month, matched.delivery).samples) == len(vectors)


def column(frame, name):
    return qiime2.Metadata(frame).get_column(name)


@pytest.fixture(scope="module")
def visualization(mgm_plugin, ecam_embeddings, ecam_frame, tmp_path_factory):
    visualization, = mgm_plugin.actions.trajectory(
        embeddings=ecam_embeddings, time=column(ecam_frame, "month"), group=column(ecam_frame, "delivery"),
        subject=column(ecam_frame, "studyid"))
    return export(visualization, tmp_path_factory.mktemp("trajectory"))


def test_visualization_files(visualization, result):
    html = assert_page_is_complete(visualization, ["MGM trajectories", "Explore subjects", "group_paths.tsv"])
    assert '"subjects": {' in html and "</script>" in html
    samples = pd.read_csv(visualization / "samples.tsv", sep="\t", index_col=0)
    assert len(samples) == 219 and {"axis_1", "axis_2", "distance_to_group_centroid"} <= set(samples.columns)
    paths = pd.read_csv(visualization / "group_paths.tsv", sep="\t")
    assert len(paths) == len(result.group_paths)


def test_visualization_renders_in_a_browser(visualization, tmp_path):
    assert_renders_in_a_browser(visualization / "index.html", tmp_path)


def test_tsne_without_subjects(mgm_plugin, ecam_embeddings, ecam_frame, tmp_path):
    visualization, = mgm_plugin.actions.trajectory(
        embeddings=ecam_embeddings, time=column(ecam_frame, "day_of_life"), group=column(ecam_frame, "diet"),
        projection="tsne", max_time_points=8)
    directory = export(visualization, tmp_path / "tsne")
    html = assert_page_is_complete(directory, ["t-SNE 1", "no subject column given"])
    assert '"subjects": {}' in html
    assert pd.read_csv(directory / "group_paths.tsv", sep="\t").time.nunique() <= 8
    # the page says the times were pooled, and how: each bin's range of days, midpoint and samples
    bins = pd.read_csv(directory / "time_bins.tsv", sep="\t")
    days = ecam_frame.day_of_life.reindex(ecam_embeddings.view(pd.DataFrame).index).dropna()
    assert len(bins) <= 8 and bins.n_samples.sum() == len(days.dropna()) and (bins.low <= bins.high).all()
    assert bins.low.min() == days.min() and bins.high.max() == days.max()
    assert "pool them into equal-width bins" in html and "time_bins.tsv" in html
    assert f"<td>{bins.low.iloc[1]:g}</td>" in html and f"<td>{bins.high.iloc[1]:g}</td>" in html


def test_one_time_point_is_a_clear_error_and_a_time_that_varies_places_the_samples(vectors, ecam_frame):
    with pytest.raises(TrajectoryError, match=r"'month' holds one value, 3, for every sample placed.*two time "
                                              r"points.*whose values vary over time"):
        trajectories(vectors, pd.Series(3.0, index=ecam_frame.index, name="month"), ecam_frame.delivery)
    placed = trajectories(vectors, ecam_frame.month, ecam_frame.delivery)  # the fix: a time that varies
    assert placed.group_paths.time.nunique() > 1 and placed.time_bins is None
