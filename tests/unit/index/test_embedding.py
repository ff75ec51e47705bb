"""Scaling, PCA and the neighbour index."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from musicrec.index import embedding, neighbours


def test_stored_parameters_reproduce_scikit_learn():
    x = np.random.default_rng(0).normal(size=(40, 12)) * np.arange(1, 13)
    scaler = json.loads(json.dumps(embedding.fit_scaler(x)))  # as stored: plain JSON
    z = embedding.scale(x, scaler)
    np.testing.assert_allclose(z, StandardScaler().fit_transform(x))
    pca = json.loads(json.dumps(embedding.fit_pca(z, 5)))
    expected = PCA(n_components=5, svd_solver="full").fit_transform(z)
    np.testing.assert_allclose(np.abs(embedding.reduce(z, pca)), np.abs(expected), atol=1e-9)


def test_feature_groups_weigh_the_same_whatever_their_size():
    """The embedding's cosine similarity is the mean of each group's own (PCA, then cosine) similarity."""
    rng = np.random.default_rng(4)
    names = [f"mfcc_{i:02d}_mean" for i in range(6)] + [f"musicnn_{i:03d}_mean" for i in range(60)]
    z = rng.normal(size=(30, len(names)))
    fitted = json.loads(json.dumps(embedding.fit_embedding(z, names, 4)))  # as stored: plain JSON
    assert [(g["name"], len(g["columns"])) for g in fitted["groups"]] == [("signal", 6), ("musicnn", 60)]
    e = embedding.embed(z, names, fitted)
    assert e.shape == (30, 8)

    def cosine(a):
        unit = a / np.linalg.norm(a, axis=1, keepdims=True)
        return unit @ unit.T

    signal = embedding.reduce(z[:, :6], embedding.fit_pca(z[:, :6], 4))
    network = embedding.reduce(z[:, 6:], embedding.fit_pca(z[:, 6:], 4))
    np.testing.assert_allclose(e @ e.T, (cosine(signal) + cosine(network)) / 2, atol=1e-9)
    # the column order of the features does not matter, only their names
    order = rng.permutation(len(names))
    np.testing.assert_allclose(embedding.embed(z[:, order], [names[j] for j in order], fitted), e, atol=1e-12)


def test_pca_components_are_capped_by_the_data():
    z = np.random.default_rng(1).normal(size=(4, 10))
    assert len(embedding.fit_pca(z, 50)["components"]) == 4


@pytest.mark.parametrize("metric", neighbours.METRICS)
def test_every_track_gets_k_neighbours_and_never_itself(metric):
    rng = np.random.default_rng(2)
    emb = np.vstack([rng.normal(0, 0.1, (5, 3)) + [5, 0, 0], rng.normal(0, 0.1, (5, 3)) + [0, 5, 0]])
    emb[1] = emb[0]  # an exact duplicate must still not be its own neighbour
    keys = [f"t{i}" for i in range(10)]
    recs = neighbours.nearest_neighbours(keys, emb, 4, metric)
    assert list(recs.columns) == neighbours.RECOMMENDATION_COLUMNS
    assert (recs.groupby("track_key").size() == 4).all()
    assert not (recs["track_key"] == recs["neighbor_key"]).any()
    assert (recs.groupby("track_key")["rank"].apply(list) == pd.Series([[1, 2, 3, 4]] * 10, index=keys)).all()
    assert recs.groupby("track_key")["distance"].apply(lambda d: d.is_monotonic_increasing).all()
    same_cluster = recs["track_key"].str[1:].astype(int) // 5 == recs["neighbor_key"].str[1:].astype(int) // 5
    assert same_cluster.all()


def test_k_is_capped_and_bad_metric_is_named():
    recs = neighbours.nearest_neighbours(["a", "b", "c"], np.eye(3), 10, "euclidean")
    assert (recs.groupby("track_key").size() == 2).all()
    with pytest.raises(ValueError, match="manhattan"):
        neighbours.nearest_neighbours(["a", "b"], np.eye(2), 1, "manhattan")


def test_copies_of_the_same_audio_are_never_each_others_neighbours():
    emb = np.array([[0.0, 1.0], [0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.1]])
    keys = ["a", "a copy", "b", "c", "d"]
    recs = neighbours.nearest_neighbours(keys, emb, 3, "euclidean", groups=["h1", "h1", "h2", "h3", "h4"])
    by_key = recs.groupby("track_key")["neighbor_key"].apply(list)
    assert "a copy" not in by_key["a"] and "a" not in by_key["a copy"]
    assert by_key["a"][0] == "b" and (recs.groupby("track_key").size() == 3).all()


def test_join_flags_identical_audio_and_names_untitled_tracks_from_the_file():
    from musicrec.analysis import extract, features

    row = {c: 0.0 for c in features.feature_columns()}
    feats = extract.features_frame(
        [
            {"track_key": "x/One.wav", "folder": "x", "file": "One.wav", "duration_s": 1.0, "content_hash": "h", **row},
            {
                "track_key": "y/One again.wav",
                "folder": "y",
                "file": "One again.wav",
                "duration_s": 1.0,
                "content_hash": "h",
                **row,
            },
            {
                "track_key": "y/my_song.wav",
                "folder": "y",
                "file": "my_song.wav",
                "duration_s": 2.0,
                "content_hash": "g",
                **row,
            },
        ]
    )
    table = pa.Table.from_pandas(feats, preserve_index=False)
    joined = embedding.join(table, embedding.metadata_by_key(None), embedding.first_copies(table))
    tracks = joined.to_pandas().set_index("track_key")
    assert tracks.loc["y/One again.wav", "duplicate_of"] == "x/One.wav"
    assert pd.isna(tracks.loc["x/One.wav", "duplicate_of"])
    assert tracks.loc["y/my_song.wav", "title"] == "my song"
    assert (
        tracks.loc["y/my_song.wav", "title_source"] == "filename" and tracks.loc["y/my_song.wav", "genre"] == "unknown"
    )
    assert not tracks["has_metadata"].any()  # a file name and a default genre are not metadata


def test_first_copies_groups_repeated_contents_across_blocks_and_never_a_missing_hash():
    keys = [f"f/{i:03d}.ogg" for i in range(9)]
    hashes = ["a", "b", None, "c", "a", None, "b", "a", "d"]
    blocks = [pa.table({"track_key": keys[s : s + 3], "content_hash": hashes[s : s + 3]}) for s in (0, 3, 6)]
    table = pa.concat_tables(blocks)  # three chunks: the copies of "a" and "b" are in different ones
    assert embedding.first_copies(table) == {"a": "f/000.ogg", "b": "f/001.ogg"}
    assert embedding.first_copies(table.slice(0, 0)) == {}
