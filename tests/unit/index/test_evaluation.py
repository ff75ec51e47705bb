"""The index's evaluation and hubness reduction on embeddings whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from musicrec.index import evaluation, neighbours


def _tracks(folders: list[str], artists: list[str | None] | None = None, genres: list[str] | None = None):
    n = len(folders)
    return pd.DataFrame(
        {
            "track_key": [f"{f}/{i:03d}.ogg" for i, f in enumerate(folders)],
            "genre": genres or ["unknown"] * n,
            "album": [None] * n,
            "artist": artists or [None] * n,
            "content_hash": [f"h{i}" for i in range(n)],
        }
    )


def _table(*args) -> pa.Table:
    return pa.Table.from_pandas(_tracks(*args), preserve_index=False)


def _clusters(sizes: list[int], spread: float, seed: int = 0, dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim)) * 10
    return np.vstack([c + spread * rng.normal(size=(s, dim)) for c, s in zip(centres, sizes, strict=True)])


def test_well_separated_folders_give_full_precision_and_noise_gives_chance():
    folders = ["a"] * 20 + ["b"] * 20 + ["c"] * 20
    tight = evaluation.evaluate(_table(folders), _clusters([20, 20, 20], 0.1), "euclidean", "none")
    p = tight["methods"]["none"]["precision"]["folder@5"]
    assert p["micro"] == 1.0 and p["macro"] == 1.0 and p["tracks"] == 60
    noise = np.random.default_rng(1).normal(size=(60, 8))
    random = evaluation.evaluate(_table(folders), noise, "euclidean", "none")
    chance = random["labels"]["folder"]["chance"]
    assert chance == pytest.approx(19 / 59, abs=1e-4)
    assert abs(random["methods"]["none"]["precision"]["folder@5"]["micro"] - chance) < 0.15


def test_the_artist_filter_leaves_out_the_same_artists_tracks():
    # Each genre holds two artists; each artist's tracks sit together, away from the other artist's.
    folders = ["x"] * 40
    artists = ["p"] * 10 + ["q"] * 10 + ["r"] * 10 + ["s"] * 10
    genres = ["rock"] * 20 + ["jazz"] * 20
    emb = _clusters([10, 10, 10, 10], 0.1, seed=3)
    report = evaluation.evaluate(_table(folders, artists, genres), emb, "euclidean", "none")
    precision = report["methods"]["none"]["precision"]
    assert precision["genre@5"]["micro"] == 1.0  # the same artist's tracks, all the same genre
    assert precision["genre@5 (artist filter)"]["micro"] < 1.0
    assert set(report["labels"]) == {"folder", "genre", "artist"}  # album has no values: not a label


def test_coverage_and_hubs_are_counted_from_the_top_k_lists():
    lists = np.array([[1, 2], [0, 2], [0, 1], [0, 1]])
    figures = evaluation.hubness(lists, 1, ["a", "b", "c", "d"])
    assert figures["k_occurrence"] == [3, 1, 0, 0] and figures["coverage"] == 0.5
    assert figures["hubs"][0] == {"track_key": "a", "k_occurrence": 3}


def test_mutual_proximity_reduces_hubness_in_high_dimensions():
    emb = np.random.default_rng(0).normal(size=(400, 60))
    keys = [str(i) for i in range(400)]
    skew = {}
    for method in neighbours.HUBNESS:
        recs = neighbours.nearest_neighbours(keys, emb, 5, "euclidean", hubness=method)
        assert len(recs) == 400 * 5 and not (recs["track_key"] == recs["neighbor_key"]).any()
        occurrence = recs["neighbor_key"].value_counts().reindex(keys, fill_value=0)
        skew[method] = occurrence.skew()
    assert skew["mutual_proximity"] < skew["none"] - 0.3


def test_mutual_proximity_scores_are_distances_in_the_unit_interval_nearest_first():
    emb = _clusters([10, 10], 0.5, dim=4)
    recs = neighbours.nearest_neighbours([str(i) for i in range(20)], emb, 4, "cosine", hubness="mutual_proximity")
    assert recs["distance"].between(0, 1).all()
    assert (recs.groupby("track_key")["distance"].diff().dropna() >= 0).all()


def test_an_unknown_hubness_setting_is_refused():
    with pytest.raises(ValueError, match="hubness must be one of"):
        neighbours.nearest_neighbours(["a", "b"], np.eye(2), 1, "cosine", hubness="csls")


def test_tags_agree_with_the_genres_they_name():
    """A tag that ranks its genre's tracks first scores an AUC of 1, one that ranks them last 0; a genre
    that names no tag ("soundtrack") is left out, and tracks without a genre are not counted."""
    from musicrec.analysis import features

    genres = ["Rock"] * 3 + ["jazz"] * 3 + ["soundtrack"] * 2 + ["unknown"] * 2
    tracks = _tracks(["a"] * 10, genres=genres)
    for column in features.TAG_COLUMNS:
        tracks[column] = 0.01
    tracks["tag_rock"] = [0.9, 0.8, 0.7, 0.1, 0.2, 0.1, 0.3, 0.2, 0.95, 0.95]  # the unknown genre's not counted
    tracks["tag_jazz"] = [0.5, 0.6, 0.7, 0.05, 0.06, 0.07, 0.3, 0.2, 0.0, 0.0]  # jazz's own tracks the lowest
    agreement = evaluation.tag_agreement(tracks)
    assert agreement["genres"] == [
        {"genre": "Rock", "tag": "rock", "tracks": 3, "auc": 1.0},
        {"genre": "jazz", "tag": "jazz", "tracks": 3, "auc": 0.0},
    ]
    assert agreement["mean_auc"] == pytest.approx(0.5)
    assert "| Rock | rock | 3 | 1.000 |" in "\n".join(evaluation._tag_lines(agreement))
    assert evaluation.tag_agreement(_tracks(["a"] * 4))["genres"] == []


def test_with_the_approximate_index_the_lists_are_its_candidates_rescored(monkeypatch):
    """A large library's evaluation searches the index the recommendations came from (no exact search of
    every track), and finds what exact search finds on clustered tracks."""
    from musicrec.index import ann

    folders = [f"f{i // 100}" for i in range(1200)]
    x = ann.vectors(_clusters([100] * 12, 2.0, dim=12), "euclidean")
    exact = evaluation.evaluate(_table(folders), x, "euclidean", "none")
    index = ann.build(x, "euclidean")

    def no_exact_search(*args):
        raise AssertionError("searched exactly")

    monkeypatch.setattr(neighbours.Search, "exact", no_exact_search)
    approximate = evaluation.evaluate(_table(folders), x, "euclidean", "none", index, breadth=64)
    for method in neighbours.HUBNESS:
        got, want = approximate["methods"][method], exact["methods"][method]
        assert got["precision"]["folder@5"]["tracks"] == 1200
        assert abs(got["precision"]["folder@5"]["micro"] - want["precision"]["folder@5"]["micro"]) < 0.01
        assert abs(got["coverage"] - want["coverage"]) < 0.02
