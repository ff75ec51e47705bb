"""Metadata features and their weight in the embedding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from musicrec.analysis import features
from musicrec.index import encode
from musicrec.pipeline import stages
from musicrec.store import storage


def _tracks(n=6, play_count=None):
    data = {
        "track_key": [f"a/{i}.wav" for i in range(n)],
        "artist": ["X", "X", "X", "Y", None, "Y"][:n],
        "genre": ["rock", "rock", "jazz", "jazz", "unknown", "rock"][:n],
        "year": pd.array([1991, 1999, None, 2005, 2011, 1987][:n], dtype="Int64"),
        "duration_s": [100.0, 200.0, 150.0, 120.0, 300.0, 60.0][:n],
    }
    if play_count is not None:
        data["play_count"] = play_count
    return pd.DataFrame(data)


def test_encodings():
    tracks = _tracks()
    encoder = json.loads(json.dumps(encode.fit(tracks)))  # stored as JSON
    meta = encode.transform(tracks, encoder)
    assert encoder["genres"] == ["jazz", "rock", "unknown"] and encoder["popularity_from"] == "track_count"
    assert meta["meta_artist_frequency"].tolist() == pytest.approx([0.5, 0.5, 0.5, 1 / 3, 0.0, 1 / 3])
    assert meta["meta_artist_popularity"].iloc[0] == pytest.approx(np.log1p(3))
    assert meta["meta_decade"].tolist() == [1990, 1990, 1990, 2000, 2010, 1980]  # missing: the median decade
    assert meta[["meta_genre_jazz", "meta_genre_rock", "meta_genre_unknown"]].sum(axis=1).eq(1).all()


def test_play_counts_drive_popularity_when_present():
    encoder = encode.fit(_tracks(play_count=[10, 0, 0, 1000, 5, 0]))
    assert encoder["popularity_from"] == "play_count"
    assert encoder["artist_popularity"]["Y"] > encoder["artist_popularity"]["X"]


@pytest.mark.parametrize("weight", [0.0, 2.0])
def test_metadata_weight_decides_what_enters_the_embedding(tmp_path, weight):
    tracks = _tracks()
    rng = np.random.default_rng(0)
    audio = pd.DataFrame(
        rng.normal(size=(len(tracks), len(features.feature_columns()))), columns=features.feature_columns()
    )
    feats = pd.concat([tracks[["track_key"]], audio], axis=1)
    path = storage.write_parquet(tracks, tmp_path / storage.TRACKS)
    run = {"run_dir": str(tmp_path), "path": str(path)}
    result = stages.scale(run | {"features": str(storage.write_parquet(feats, tmp_path / storage.FEATURES))}, weight)
    blocks = stages.scaled_blocks(result, storage.read_json(result["model"]))
    names = next(blocks)
    scaled = pd.DataFrame(np.vstack([z for _, z in blocks]), columns=names)
    meta_columns = [c for c in scaled.columns if c.startswith("meta_")]
    assert bool(meta_columns) == (weight > 0)
    assert result["columns"] == len(names)
    if weight:
        assert scaled["meta_decade"].std(ddof=0) == pytest.approx(weight)
    saved = json.loads(Path(result["model"]).read_text())
    assert saved["metadata"]["weight"] == weight and saved["metadata"]["encoder"]["genres"]
