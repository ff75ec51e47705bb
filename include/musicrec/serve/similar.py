"""Tracks of the index that sound like a file that need not be in it.

The file is analysed with the same code and settings as the library's files, standardized and projected
with the published model (`model.json`), and compared with every track of the index as the index ranks
them (its metric, its hubness setting). Copies of the file's audio in the library are left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from musicrec.analysis import extract, features
from musicrec.errors import InputError
from musicrec.index import embedding, encode
from musicrec.library import metadata
from musicrec.serve import query


class FeatureVersionMismatch(InputError):
    """The index was built from features that this code no longer computes."""


def embed(row: dict, published: dict) -> np.ndarray:
    """The embedding of one analysed file, as `scale` and `reduce` built the index's."""
    columns = list(published["feature_columns"])
    # rounded to float32 first, as the features table stores them: the file lands where its own row would
    values = np.asarray([[row[c] for c in columns]], dtype=np.float32).astype(np.float64)
    z = embedding.scale(values, published["scaler"])
    meta = published["metadata"]
    if meta["weight"] > 0:
        columns += meta["columns"]
        described = pd.DataFrame(
            {"artist": [None], "year": [pd.NA], "genre": [metadata.UNKNOWN_GENRE], "duration_s": [row["duration_s"]]}
        )
        m = encode.transform(described, meta["encoder"])[meta["columns"]].to_numpy(dtype=np.float64)
        z = np.hstack([z, embedding.scale(m, meta["scaler"]) * meta["weight"]])
    return embedding.embed(z, columns, published["embedding"])


def analysed(index: query.Index, path: str | Path, name: str | None = None) -> tuple[np.ndarray, dict]:
    """An audio file analysed as the library's files were (in a supervised worker) and embedded with the
    published model: its point, and its row of features (with its `content_hash`)."""
    published = index.model
    if published.get("feature_version") != features.FEATURE_VERSION:
        raise FeatureVersionMismatch(
            f"the index was built with feature version {published.get('feature_version')}, this musicrec computes "
            f"{features.FEATURE_VERSION}: run `musicrec run --full-refresh` to rebuild it first"
        )
    path = Path(path)
    key, row, error = extract.extract_supervised(str(path.parent), path.name, extract.DEFAULT_MAX_MINUTES * 60)
    if row is None:
        raise InputError(f"{name or path}: {error}")
    return embed(row, published), row


def similar_to_file(data_dir: str | Path, path: str | Path, k: int = 10, name: str | None = None) -> dict:
    """{'file', 'duration_s', 'neighbours': [...]} for an audio file (called `name` in messages, its path by
    default); InputError when it cannot be compared."""
    if k < 1:
        raise query.InvalidQuery(f"k must be at least 1, not {k}")
    index = query.load(data_dir)
    point, row = analysed(index, path, name)
    d = index.scores(point, k)
    same = (index.tracks["content_hash"] == row["content_hash"]).to_numpy()
    d[same] = np.inf  # the file itself, where the index holds it, is no neighbour of its own
    order, distances = index.nearest(d, k)
    found = index.tracks.iloc[order].assign(
        rank=np.arange(1, len(order) + 1), distance=distances, similarity=index.similarity(distances)
    )
    return {
        "file": name or str(path),
        "duration_s": row["duration_s"],
        "same_audio_as": index.tracks.loc[same, "track_key"].tolist(),
        "neighbours": query.records(found),
    }
