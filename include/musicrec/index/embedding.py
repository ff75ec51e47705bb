"""Join, standardize, reduce and index.

The embedding is made of feature groups, each reduced by its own PCA and scaled to unit length, then
weighted equally: the cosine similarity of two tracks is the mean of their groups' cosine similarities,
whatever each group's size. The groups are the network's embedding (`musicnn_*`) and everything else
(librosa's features, and the metadata features where they are weighted in).

Fitted parameters are stored as JSON (never pickle) so a data dir can be shared
and read safely; `scale` and `reduce` rebuild the same embedding from them.

Sized for a million tracks: the feature columns go from Parquet to the model as Arrow columns (never
through pandas), standardized features and the embedding are float32, and `scale` and `reduce` work
through the rows in blocks, so no stage holds more than a few copies of the feature matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from musicrec.analysis import features
from musicrec.library import metadata

BLOCK_ROWS = 65_536  # rows standardized or projected at once


def join(feats: pa.Table, meta: pd.DataFrame | None) -> pa.Table:
    """One row per track with audio, in the order of `feats`; metadata where a row names it, the file name
    as title otherwise. The feature columns, and the descriptors where the features hold them, are passed on
    as they are."""
    descriptors = [c for c in features.DESCRIPTOR_COLUMNS if c in feats.column_names]
    columns = features.feature_columns() + descriptors
    described = describe(feats.drop_columns(columns).to_pandas(), meta)
    table = pa.Table.from_pandas(described, preserve_index=False)
    return pa.Table.from_arrays([*table.columns, *feats.select(columns).columns], names=[*table.column_names, *columns])


def describe(feats: pd.DataFrame, meta: pd.DataFrame | None) -> pd.DataFrame:
    """The descriptive columns of `join` (all but the features), for the tracks of `feats`."""
    fields = ["title", "artist", "album", "genre", "year"]
    sources = [f"{f}_source" for f in fields]
    if meta is None or meta.empty:
        meta = pd.DataFrame(columns=["track_key", *fields, *sources])
    extra = ["play_count"] if "play_count" in meta.columns else []
    taken = meta[["track_key", *fields, *sources, *extra]]
    tracks = feats.merge(taken, on="track_key", how="left", validate="one_to_one").copy()
    tracks["has_metadata"] = tracks[sources].notna().any(axis=1)  # a value from the file or tags, not a default
    no_title = tracks["title"].isna()
    tracks["title"] = tracks["title"].fillna(tracks["file"].map(metadata.title_from_file))
    tracks["title_source"] = tracks["title_source"].astype(object).where(~no_title, "filename")
    tracks["genre"] = tracks["genre"].fillna(metadata.UNKNOWN_GENRE)
    first_copy = tracks.sort_values("track_key").groupby("content_hash")["track_key"].transform("first")
    tracks["duplicate_of"] = first_copy.where(first_copy != tracks["track_key"])
    leading = [
        "track_key",
        "folder",
        "file",
        *fields,
        "duration_s",
        *extra,
        "has_metadata",
        "duplicate_of",
        "is_silent",
        "feature_version",
        "content_hash",
        *sources,
    ]
    return tracks[leading]


def matrix(table: pa.Table, columns: list[str], dtype=np.float64) -> np.ndarray:
    """The columns as one (rows, columns) array, filled column by column (one copy of the data)."""
    out = np.empty((table.num_rows, len(columns)), dtype=dtype, order="F")
    for j, name in enumerate(columns):
        out[:, j] = table.column(name).to_numpy()
    return out


def fit_scaler(x: np.ndarray) -> dict:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    return {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}


def fit_pca(z: np.ndarray, n_components: int) -> dict:
    """PCA from the features' covariance matrix: exact, and its memory is that of the features x features
    matrix whatever the number of tracks (a full SVD would hold a tracks x features matrix more)."""
    from sklearn.decomposition import PCA

    n = max(1, min(n_components, z.shape[0], z.shape[1]))
    pca = PCA(n_components=n, svd_solver="covariance_eigh", random_state=0).fit(z)
    return {
        "mean": pca.mean_.tolist(),
        "components": pca.components_.tolist(),
        "explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
    }


def scale(x: np.ndarray, scaler: dict, dtype=np.float64) -> np.ndarray:
    mean, scale_ = np.asarray(scaler["mean"]), np.asarray(scaler["scale"])
    return _by_blocks(x, lambda rows: (rows - mean) / scale_, x.shape[1], dtype)


def reduce(z: np.ndarray, pca: dict, dtype=np.float64) -> np.ndarray:
    mean, components = np.asarray(pca["mean"]), np.asarray(pca["components"])
    return _by_blocks(z, lambda rows: (rows - mean) @ components.T, len(components), dtype)


def _by_blocks(x: np.ndarray, fn, width: int, dtype) -> np.ndarray:
    """fn over the rows of x, BLOCK_ROWS at a time (its float64 temporaries stay small), as `dtype`."""
    out = np.empty((len(x), width), dtype=dtype, order="F")
    for start in range(0, len(x), BLOCK_ROWS):
        out[start : start + BLOCK_ROWS] = fn(x[start : start + BLOCK_ROWS])
    return out


def feature_group(column: str) -> str:
    return "musicnn" if column.startswith("musicnn_") else "signal"


def fit_embedding(z: np.ndarray, names: list[str], n_components: int) -> dict:
    """A PCA of `n_components` for each feature group of the standardized features `z` (columns `names`)."""
    groups = []
    for group in dict.fromkeys(map(feature_group, names)):
        rows = [j for j, name in enumerate(names) if feature_group(name) == group]
        columns = [names[j] for j in rows]
        groups.append({"name": group, "columns": columns, "pca": fit_pca(z[:, rows], n_components)})
    return {"groups": groups}


def embed(z: np.ndarray, names: list[str], fitted: dict, dtype=np.float64) -> np.ndarray:
    """Each group projected on its components, its rows scaled to unit length, the groups weighted equally."""
    position = {name: j for j, name in enumerate(names)}
    weight = 1.0 / np.sqrt(len(fitted["groups"]))
    parts = []
    for group in fitted["groups"]:
        projected = reduce(z[:, [position[c] for c in group["columns"]]], group["pca"])
        length = np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-12)
        parts.append(projected * (weight / length))
    return np.hstack(parts).astype(dtype)


def explained_variance(fitted: dict) -> dict[str, list[float]]:
    """Each group's PCA: the share of the group's variance that each component keeps."""
    return {group["name"]: group["pca"]["explained_variance_ratio"] for group in fitted["groups"]}


def component_columns(n: int) -> list[str]:
    return [f"pc_{i:02d}" for i in range(1, n + 1)]
