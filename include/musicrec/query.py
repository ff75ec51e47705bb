"""Reading the current index: finding a track and its neighbours."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from musicrec import storage

SHOWN = ["track_key", "title", "artist", "genre", "folder", "file", "duration_s"]


class QueryError(LookupError):
    """No track matches the query."""


def load(data_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    current = storage.require_current(data_dir)
    tracks = pd.read_parquet(current / storage.TRACKS, columns=SHOWN)
    recs = pd.read_parquet(current / storage.RECOMMENDATIONS)
    return tracks, recs


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
