"""Join, standardize, reduce and index.

Fitted parameters are stored as JSON (never pickle) so a data dir can be shared
and read safely; `transform` rebuilds the same embedding from them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from musicrec import features, metadata

METRICS = ("cosine", "euclidean")
RECOMMENDATION_COLUMNS = ["track_key", "rank", "neighbor_key", "distance"]


def join(feats: pd.DataFrame, meta: pd.DataFrame | None) -> pd.DataFrame:
    """One row per track with audio; metadata where a row names it, the file name as title otherwise."""
    info = ["track_key", "title", "artist", "album", "genre", "year"]
    if meta is None or meta.empty:
        meta = pd.DataFrame(columns=info)
    meta = meta[info].rename(columns={"year": "year"})
    tracks = feats.merge(meta, on="track_key", how="left", validate="one_to_one")
    tracks["has_metadata"] = tracks["track_key"].isin(set(meta["track_key"]))
    tracks["title"] = tracks["title"].fillna(tracks["file"].map(metadata.title_from_file))
    tracks["genre"] = tracks["genre"].fillna(metadata.UNKNOWN_GENRE)
    leading = ["track_key", "folder", "file", "title", "artist", "album", "genre", "year", "duration_s",
               "has_metadata", "is_silent", "feature_version"]
    return tracks[leading + features.feature_columns()]


def fit_scaler(x: np.ndarray) -> dict:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    return {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}


def fit_pca(z: np.ndarray, n_components: int) -> dict:
    from sklearn.decomposition import PCA

    n = max(1, min(n_components, z.shape[0], z.shape[1]))
    pca = PCA(n_components=n, svd_solver="full", random_state=0).fit(z)
    return {
        "mean": pca.mean_.tolist(),
        "components": pca.components_.tolist(),
        "explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
    }


def scale(x: np.ndarray, scaler: dict) -> np.ndarray:
    return (x - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])


def reduce(z: np.ndarray, pca: dict) -> np.ndarray:
    return (z - np.asarray(pca["mean"])) @ np.asarray(pca["components"]).T


def component_columns(n: int) -> list[str]:
    return [f"pc_{i:02d}" for i in range(1, n + 1)]


def nearest_neighbours(keys: list[str], embedding: np.ndarray, k: int, metric: str) -> pd.DataFrame:
    """k neighbours per track, nearest first, never the track itself."""
    from sklearn.neighbors import NearestNeighbors

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    k = min(k, len(keys) - 1)
    if k < 1:
        return pd.DataFrame(columns=RECOMMENDATION_COLUMNS)
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute").fit(embedding)
    distances, indices = nn.kneighbors(embedding)
    rows = []
    for i, key in enumerate(keys):
        # Drop the query itself, wherever ties put it.
        neighbours = [(j, d) for j, d in zip(indices[i], distances[i]) if j != i][:k]
        rows.extend((key, rank, keys[j], float(d)) for rank, (j, d) in enumerate(neighbours, start=1))
    recs = pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)
    return recs.astype({"rank": "int32", "distance": "float64"})
