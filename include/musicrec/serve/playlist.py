"""Playlists that flow from a seed track through near neighbours.

Each next track is the nearest (as the index ranks them) to the current one that is not yet in the
playlist, is no copy of a track in it (`content_hash`: identical audio never appears twice), and, by
option, shares no artist or album with the last `window` tracks. When no track qualifies the playlist
ends early, and says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicrec.index import neighbours
from musicrec.serve import query


def playlist(
    data_dir: str | Path,
    seed: str,
    length: int,
    window: int = 0,
    spread_over: tuple[str, ...] = ("artist", "album"),
    **only,
) -> dict:
    """{'seed', 'tracks': [...], 'note'}: `length` tracks from the seed; `window` > 0 keeps the fields of
    `spread_over` from repeating within that many tracks; `only` the tracks that pass `Index.passing`."""
    if length < 1:
        raise query.InvalidQuery(f"length must be at least 1, not {length}")
    index = query.load(data_dir)
    current = index.first_match(seed)
    chosen, distances = [current], [0.0]
    metric, hubness = index.built_with["metric"], index.built_with["hubness"]
    note = None
    while len(chosen) < length:
        d = neighbours.scored(index.embedding, np.array([current]), metric, hubness, index.spread)[0].astype(float)
        d[np.isin(index.groups, index.groups[chosen]) | ~index.passing(**only)] = np.inf
        keep_apart(index, d, chosen, window, spread_over)
        nxt = int(np.argmin(d))
        if not np.isfinite(d[nxt]):
            note = f"ended after {len(chosen)} tracks: no other track qualifies"
            break
        chosen.append(nxt)
        distances.append(float(d[nxt]))
        current = nxt
    shown = [chosen[0], *index.canonical[chosen[1:]]]  # after the seed, the file kept of each recording
    tracks = index.tracks.iloc[shown].assign(position=np.arange(1, len(chosen) + 1), step_distance=distances)
    return {"seed": index.tracks.at[chosen[0], "track_key"], "tracks": query.records(tracks), "note": note}


def keep_apart(index: query.Index, d: np.ndarray, chosen: list[int], window: int, spread_over: tuple[str, ...]):
    """Rule out, in `d` (in place), the tracks sharing a field of `spread_over` with the last `window` chosen."""
    for field in spread_over if window > 0 else ():
        recent = index.tracks[field].iloc[chosen[-window:]].dropna()
        d[index.tracks[field].isin(recent).to_numpy()] = np.inf
