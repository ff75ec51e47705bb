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
import pyarrow.compute as pc

from musicrec.analysis import features
from musicrec.index import descriptors
from musicrec.library import metadata

BLOCK_ROWS = 65_536  # rows standardized or projected at once
# The features the tracks' table keeps beside the descriptors: a track's key and tempo are read from them.
KEPT_FEATURES = [*descriptors.CHROMA, descriptors.TEMPO]


def join(feats: pa.Table, meta: pd.DataFrame | None, first_copies: dict[str, str]) -> pa.Table:
    """The tracks' table for a block of features: one row per track with audio, in the order of `feats`;
    metadata where a row names it, the file name as title otherwise, and the descriptors where the
    features hold them. `meta` is indexed by track key; `first_copies` (`first_copies`) names the
    first file of each content held by several."""
    kept = [c for c in [*KEPT_FEATURES, *features.DESCRIPTOR_COLUMNS] if c in feats.column_names]
    described = describe(feats.drop_columns(kept).to_pandas(), meta, first_copies)
    table = pa.Table.from_pandas(described, preserve_index=False)
    return pa.Table.from_arrays([*table.columns, *feats.select(kept).columns], names=[*table.column_names, *kept])


def read_columns(names: list[str]) -> list[str]:
    """Of the features' columns, those `join` reads: all but the features proper and the fingerprint."""
    skipped = (set(features.feature_columns()) - set(KEPT_FEATURES)) | {features.FINGERPRINT}
    return [name for name in names if name not in skipped]


def first_copies(feats: pa.Table) -> dict[str, str]:
    """Of each content (`content_hash`) held by several files, the first file's track key. Contents are
    compared by a 64-bit hash first (8 bytes a track), and only the tracks whose hash repeats are grouped:
    a library's worth of strings in a hash table would cost more than the table."""
    hashes = feats.column("content_hash").cast(pa.string())
    hashed = np.concatenate(
        [pd.util.hash_array(c.fill_null("").to_numpy(zero_copy_only=False)) for c in hashes.chunks]
        or [np.zeros(0, np.uint64)]
    )
    values, counts = np.unique(hashed, return_counts=True)
    maybe = np.isin(hashed, values[counts > 1]) & pc.is_valid(hashes).to_numpy(zero_copy_only=False)
    rows = pa.array(np.flatnonzero(maybe))
    frame = pd.DataFrame(
        {"track_key": feats.column("track_key").take(rows).to_pylist(), "content_hash": hashes.take(rows).to_pylist()}
    )
    repeated = frame[frame.duplicated("content_hash", keep=False)]
    return repeated.groupby("content_hash")["track_key"].min().to_dict()


def metadata_by_key(meta: pd.DataFrame | None) -> pd.DataFrame:
    """The cleaned metadata's columns that `join` takes, indexed by track key (one row a track)."""
    sources = [f"{f}_source" for f in FIELDS]
    if meta is None or meta.empty:
        meta = pd.DataFrame(columns=["track_key", *FIELDS, *sources])
    extra = ["play_count"] if "play_count" in meta.columns else []
    taken = meta[["track_key", *FIELDS, *sources, *extra]].set_index("track_key")
    if not taken.index.is_unique:
        raise ValueError(f"the cleaned metadata names {taken.index.duplicated().sum()} tracks twice")
    return taken


FIELDS = ["title", "artist", "album", "genre", "year"]


def describe(feats: pd.DataFrame, meta: pd.DataFrame, first_copies: dict[str, str]) -> pd.DataFrame:
    """The descriptive columns of `join` (all but the features), for the tracks of `feats`."""
    sources = [f"{f}_source" for f in FIELDS]
    extra = ["play_count"] if "play_count" in meta.columns else []
    tracks = feats.join(meta, on="track_key")
    tracks["has_metadata"] = tracks[sources].notna().any(axis=1)  # a value from the file or tags, not a default
    no_title = tracks["title"].isna()
    tracks["title"] = tracks["title"].fillna(metadata.titles_from_files(tracks["file"]))
    tracks["title_source"] = tracks["title_source"].astype(object).where(~no_title, "filename")
    tracks["genre"] = tracks["genre"].fillna(metadata.UNKNOWN_GENRE)
    first_copy = tracks["content_hash"].map(first_copies)
    tracks["duplicate_of"] = first_copy.where(first_copy != tracks["track_key"])
    leading = [
        "track_key",
        "folder",
        "file",
        *FIELDS,
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
    return Scaler().add(x).fitted()


class Scaler:
    """scikit-learn's StandardScaler fitted a block of rows at a time (its incremental mean and variance)."""

    def __init__(self):
        from sklearn.preprocessing import StandardScaler

        self.scaler = StandardScaler()

    def add(self, rows: np.ndarray) -> Scaler:
        if len(rows):
            self.scaler.partial_fit(np.asarray(rows, dtype=np.float64))
        return self

    def fitted(self) -> dict:
        return {"mean": self.scaler.mean_.tolist(), "scale": self.scaler.scale_.tolist()}


def fit_pca(z: np.ndarray, n_components: int) -> dict:
    return Covariance(z.shape[1]).add(z).pca(n_components)


class Covariance:
    """The features' covariance matrix, summed a block of rows at a time in float64, and the PCA it gives:
    exact, as scikit-learn's `covariance_eigh` solver computes it (components' signs included), and its
    memory that of a features x features matrix whatever the number of tracks."""

    def __init__(self, width: int):
        self.n, self.total, self.gram = 0, np.zeros(width), np.zeros((width, width))

    def add(self, rows: np.ndarray) -> Covariance:
        rows = np.asarray(rows, dtype=np.float64)
        self.n += len(rows)
        self.total += rows.sum(axis=0)
        self.gram += rows.T @ rows
        return self

    def pca(self, n_components: int) -> dict:
        from sklearn.utils.extmath import svd_flip

        n = max(1, min(n_components, self.n, len(self.total)))
        mean = self.total / max(self.n, 1)
        cov = (self.gram - self.n * np.outer(mean, mean)) / max(self.n - 1, 1)
        values, vectors = np.linalg.eigh(cov)
        values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
        _, components = svd_flip(None, vectors.T, u_based_decision=False)
        ratio = values / values.sum() if values.sum() > 0 else np.zeros_like(values)
        return {
            "mean": mean.tolist(),
            "components": components[:n].tolist(),
            "explained_variance_ratio": ratio[:n].tolist(),
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
    return fit_embedding_by_blocks([z], names, n_components)


def fit_embedding_by_blocks(blocks, names: list[str], n_components: int) -> dict:
    """`fit_embedding` over standardized features given a block of rows at a time."""
    groups = {
        group: [j for j, name in enumerate(names) if feature_group(name) == group]
        for group in map(feature_group, names)
    }
    sums = {group: Covariance(len(rows)) for group, rows in groups.items()}
    for z in blocks:
        for group, rows in groups.items():
            sums[group].add(z[:, rows])
    return {
        "groups": [
            {"name": group, "columns": [names[j] for j in rows], "pca": sums[group].pca(n_components)}
            for group, rows in groups.items()
        ]
    }


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
