"""Reading the current index: finding a track and its neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from musicrec import neighbours, storage
from musicrec.errors import InputError

SHOWN = ["track_key", "title", "artist", "genre", "folder", "file", "duration_s"]


class QueryError(LookupError):
    """No track matches the query."""


class InvalidQuery(InputError):
    """The query cannot be answered as asked (empty, or k below 1)."""


class DamagedIndex(Exception):
    """A published table cannot be read or does not hold what the index promises; the message names it."""


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # garbage, truncated or missing: name the file either way
        raise DamagedIndex(f"{path}: not a readable Parquet table ({type(exc).__name__}: {exc})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DamagedIndex(f"{path}: columns missing: {', '.join(missing)}")
    return table[columns]


def load(data_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    current = storage.require_current(data_dir)
    tracks = _read(current / storage.TRACKS, SHOWN)
    recs = _read(current / storage.RECOMMENDATIONS, neighbours.RECOMMENDATION_COLUMNS)
    distances = pd.to_numeric(recs["distance"], errors="coerce")
    bad = int((~np.isfinite(distances.to_numpy(dtype="float64", na_value=np.nan))).sum())
    if bad:
        raise DamagedIndex(f"{current / storage.RECOMMENDATIONS}: {bad} distances are missing or not numbers")
    return tracks, recs.assign(distance=distances)


def find_tracks(tracks: pd.DataFrame, query: str) -> pd.DataFrame:
    """The track whose key is `query`, else those whose title, artist or key contains it (any case)."""
    exact = tracks[tracks["track_key"] == query]
    if not exact.empty:
        return exact
    needle = query.casefold()
    hay = tracks[["track_key", "title", "artist"]].fillna("").astype(str)
    mask = hay.apply(lambda col: col.str.casefold().str.contains(needle, regex=False)).any(axis=1)
    return tracks[mask]


def recommend(data_dir: str | Path, query: str, k: int = 10) -> dict:
    """{'track': ..., 'matches': n, 'neighbors': [...]} for the first track matching `query`."""
    if not query.strip():
        raise InvalidQuery("the query is empty: give a track key, or text in a title, artist or file name")
    if k < 1:
        raise InvalidQuery(f"k must be at least 1, not {k}")
    tracks, recs = load(data_dir)
    matches = find_tracks(tracks, query)
    if matches.empty:
        raise QueryError(f"no track matches {query!r} (tried track key, title, artist and file name)")
    track = matches.iloc[0]
    mine = recs[recs["track_key"] == track["track_key"]].sort_values("rank").head(k)
    neighbors = mine.merge(tracks, left_on="neighbor_key", right_on="track_key", suffixes=("", "_n"))
    neighbors = neighbors.drop(columns=["track_key", "track_key_n"]).rename(columns={"neighbor_key": "track_key"})
    return {
        "track": _records(track.to_frame().T)[0],
        "matches": len(matches),
        "other_matches": matches["track_key"].iloc[1:6].tolist(),
        "neighbors": _records(neighbors),
    }


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in df.to_dict("records")]


def summary(data_dir: str | Path) -> dict:
    """The current index's run summary."""
    path = storage.require_current(data_dir) / storage.SUMMARY
    try:
        return storage.read_json(path)
    except (OSError, ValueError) as exc:
        raise DamagedIndex(f"{path}: not a readable summary ({exc})") from None
