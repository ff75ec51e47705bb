"""Join, standardize, reduce and index.

Fitted parameters are stored as JSON (never pickle) so a data dir can be shared
and read safely; `scale` and `reduce` rebuild the same embedding from them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from musicrec import features, metadata


def join(feats: pd.DataFrame, meta: pd.DataFrame | None) -> pd.DataFrame:
    """One row per track with audio; metadata where a row names it, the file name as title otherwise."""
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
