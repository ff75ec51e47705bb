"""Mixes made of clusters of the embedding: each cluster one mix, named from its tags, walked in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicrec.analysis import musicnn
from musicrec.index import mixes, neighbours

TAGS = [t.lower() for t in musicnn.TAGS]


def _blobs(sizes=(12, 9, 6), dims=8, seed=1):
    """Groups of vectors around far-apart directions, each group's tracks tagged with a tag of its own."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dims)[: len(sizes)] * 10
    vectors = np.vstack([c + rng.normal(0, 0.5, (n, dims)) for c, n in zip(centres, sizes, strict=True)])
    blob = np.repeat(np.arange(len(sizes)), sizes)
    tags = pd.DataFrame(rng.uniform(0.0, 0.02, (len(blob), len(TAGS))), columns=TAGS)
    for b, (first, second) in enumerate([("jazz", "mellow"), ("metal", "rock"), ("ambient", "chillout")][: len(sizes)]):
        tags.loc[blob == b, first] = 0.6
        tags.loc[blob == b, second] = 0.3
    keys = pd.Series([f"f{b}/{i:02d}.ogg" for i, b in enumerate(blob)])
    return keys, vectors, blob, tags


@pytest.mark.parametrize(
    "tracks, asked, expected", [(243, 0, 10), (10, 0, 2), (100_000, 0, 100), (5, 9, 2), (40, 3, 3)]
)
def test_how_many_mixes(tracks, asked, expected):
    assert mixes.how_many(tracks, asked) == expected


def test_each_cluster_is_a_mix_named_from_its_tags_biggest_first():
    keys, vectors, blob, tags = _blobs()
    made = mixes.make(keys, vectors, keys, tags, keys.str[:2], "cosine", asked=3)
    assert made["mix"].unique().tolist() == [1, 2, 3]
    assert made.groupby("mix")["name"].first().tolist() == ["Jazz & Mellow", "Metal & Rock", "Ambient & Chillout"]
    for number, b in zip((1, 2, 3), (0, 1, 2), strict=True):
        assert set(made.loc[made["mix"] == number, "track_key"]) == set(keys[blob == b])
    again = mixes.make(keys, vectors, keys, tags, keys.str[:2], "cosine", asked=3)
    pd.testing.assert_frame_equal(made, again)  # the same embedding, the same mixes


def test_a_library_larger_than_the_fit_sample_is_clustered_and_named_from_the_sample(monkeypatch):
    """Above FIT_SAMPLE tracks k-means is fitted on, and the mixes named from, a sample; every track is
    still assigned (a block at a time), so each cluster's tracks make its mix."""
    monkeypatch.setattr(mixes, "FIT_SAMPLE", 24)
    keys, vectors, blob, tags = _blobs(sizes=(20, 14, 11))
    named = mixes.naming_rows(len(keys))
    assert len(named) == 24 and (np.diff(named) > 0).all()
    made = mixes.make(keys, vectors, keys, tags.iloc[named], keys.str[:2].iloc[named], "cosine", asked=3)
    assert made.groupby("mix")["name"].first().tolist() == ["Jazz & Mellow", "Metal & Rock", "Ambient & Chillout"]
    for number, b in zip((1, 2, 3), (0, 1, 2), strict=True):
        assert set(made.loc[made["mix"] == number, "track_key"]) == set(keys[blob == b])


def test_a_mix_walks_to_the_nearest_track_not_yet_taken_and_holds_a_recording_once():
    keys, vectors, blob, tags = _blobs(sizes=(12, 9))
    groups = keys.copy()
    groups[1] = groups[0]  # the second track is a copy of the first
    made = mixes.make(keys, vectors, groups, tags, keys.str[:2], "cosine", asked=2)
    assert not ({keys[0], keys[1]} <= set(made["track_key"]))
    first = made[made["mix"] == 1].sort_values("position")
    rows = [int(np.flatnonzero(keys == k)[0]) for k in first["track_key"]]
    for i in range(1, len(rows)):
        d = neighbours.distances(vectors[[rows[i - 1]]], vectors[rows[i:]], "cosine")[0]
        assert d[0] == pytest.approx(d.min(), abs=1e-6)
        assert first["step_distance"].iloc[i] == pytest.approx(float(d[0]), abs=1e-4)


def test_a_mix_without_a_shared_tag_is_named_from_its_folder():
    keys, vectors, blob, tags = _blobs(sizes=(8, 8))
    flat = pd.DataFrame(0.01, index=tags.index, columns=TAGS)
    made = mixes.make(keys, vectors, keys, flat, keys.str[:2], "euclidean", asked=2)
    assert sorted(made.groupby("mix")["name"].first()) == ["f0", "f1"]


def test_a_name_a_bigger_mix_has_already_is_numbered():
    keys, vectors, blob, tags = _blobs(sizes=(12, 9, 6, 10))  # the fourth group has no tag of its own
    tags.loc[blob == 2, ["ambient", "chillout"]] = 0.0
    tags.loc[blob == 2, ["jazz", "mellow"]] = [0.6, 0.3]  # the smallest group is tagged as the biggest
    made = mixes.make(keys, vectors, keys, tags, keys.str[:2], "cosine", asked=4)
    names = made.groupby("mix")["name"].first().tolist()
    assert names == ["Jazz & Mellow", "f3", "Metal & Rock", "Jazz & Mellow 2"]
