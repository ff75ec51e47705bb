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
    tracks = index.tracks.iloc[chosen].assign(position=np.arange(1, len(chosen) + 1), step_distance=distances)
    return {"seed": index.tracks.at[chosen[0], "track_key"], "tracks": query.records(tracks), "note": note}


def keep_apart(index: query.Index, d: np.ndarray, chosen: list[int], window: int, spread_over: tuple[str, ...]):
    """Rule out, in `d` (in place), the tracks sharing a field of `spread_over` with the last `window` chosen."""
    for field in spread_over if window > 0 else ():
        recent = index.tracks[field].iloc[chosen[-window:]].dropna()
        d[index.tracks[field].isin(recent).to_numpy()] = np.inf


def read_m3u(path: str | Path) -> list[str]:
    """The entries of an M3U playlist (paths relative to the library's root are track keys); comments left out."""
    lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def m3u(tracks: list[dict]) -> tuple[str, list[str]]:
    """An extended M3U playlist, paths relative to the library's root, and the track keys left out of it.

    M3U has one entry per line and no escaping: a file whose name holds a line break cannot be listed
    (it is left out, and said); in titles, line breaks become spaces.
    """
    lines, left_out = ["#EXTM3U"], []
    for t in tracks:
        if any(c in t["track_key"] for c in "\r\n"):
            left_out.append(t["track_key"])
            continue
        who = f"{t['artist']} - " if t.get("artist") else ""
        title = " ".join(f"{who}{t['title']}".splitlines())
        lines += [f"#EXTINF:{round(t['duration_s'] or -1)},{title}", t["track_key"]]
    return "\n".join(lines) + "\n", left_out
