"""Radio from several seeds: tracks near the seeds as a set, taking turns among them.

Each seed (a track key, or text in a title, artist or file name; the command line also reads the track
keys of an M3U playlist) ranks the index as the index does (its metric and hubness setting); the radio takes
each seed's nearest track in turn that is not a seed, no copy of a track already in it (`content_hash`), no
near-copy of a seed (closer than NEAR_COPY), and, by option, shares no artist or album with the last
`window` tracks.

Taking turns serves a mixed set of seeds better than the tracks nearest to the seeds' centroid, which for
seeds far apart lies between them, near none: on the dev corpus more of its tracks come from the seeds'
soundtracks and more of the seeds are represented, with one soundtrack's seeds and with mixed ones
(benchmarks/RADIO.md). Where the seeds are far apart the answer says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicrec.index import neighbours
from musicrec.serve import query
from musicrec.serve.playlist import keep_apart

# A track this close to a seed (the index's own distance) is taken for another copy of it: re-encoded, trimmed.
NEAR_COPY = 0.005


def radio(
    data_dir: str | Path,
    seeds: list[str],
    length: int = 20,
    window: int = 0,
    spread_over: tuple[str, ...] = ("artist", "album"),
    **only,
) -> dict:
    """{'seeds', 'tracks': [... with the seed each came from], 'note'}; `only` the tracks that pass
    `Index.passing` (a genre, a tempo range, a key)."""
    if length < 1:
        raise query.InvalidQuery(f"length must be at least 1, not {length}")
    index = query.load(data_dir)
    rows = list(dict.fromkeys(r for seed in seeds for r in _rows(index, seed)))
    if not rows:
        raise query.InvalidQuery("a radio needs at least one seed: a track key, or text in a title or artist")
    metric = index.built_with["metric"]
    ranked = neighbours.scored(index.embedding, np.array(rows), metric, index.built_with["hubness"], index.spread)
    raw = neighbours.distances(index.embedding[rows], index.embedding, metric)
    left_out = np.isin(index.groups, index.groups[rows]) | (raw.min(axis=0) < NEAR_COPY)  # seeds and their copies
    ranked = np.where((left_out | ~index.passing(**only))[None, :], np.inf, ranked)
    chosen, came_from, distance = [], [], []
    while len(chosen) < length:
        turn = len(chosen) % len(rows)
        d = ranked[turn].astype(float)
        d[np.isin(index.groups, index.groups[chosen])] = np.inf
        keep_apart(index, d, chosen, window, spread_over)
        nxt = int(np.argmin(d))
        if not np.isfinite(d[nxt]):
            break
        chosen.append(nxt)
        came_from.append(index.tracks.at[rows[turn], "track_key"])
        distance.append(float(d[nxt]))
    tracks = index.tracks.iloc[chosen].assign(position=np.arange(1, len(chosen) + 1), seed=came_from, distance=distance)
    return {
        "seeds": index.tracks["track_key"].iloc[rows].tolist(),
        "tracks": query.records(tracks),
        "note": _note(index, rows, raw, len(chosen), length),
    }


def _rows(index: query.Index, seed: str) -> list[int]:
    matches = index.find(seed)
    if matches.empty:
        raise query.QueryError(f"no track matches {seed!r} (tried track key, title, artist and file name)")
    return [int(index.row[matches["track_key"].iloc[0]])]


def _note(index: query.Index, rows: list[int], raw: np.ndarray, found: int, length: int) -> str | None:
    said = []
    if len(rows) > 1:
        apart = float(np.mean([raw[i, rows[j]] for i in range(len(rows)) for j in range(i + 1, len(rows))]))
        typical = float(np.median(raw[:, np.flatnonzero(~np.isin(np.arange(raw.shape[1]), rows))]))
        if apart > typical:
            said.append(
                f"the seeds are far apart (mean distance {apart:.2f}, the library's typical {typical:.2f}): "
                "the radio takes turns among their neighbours rather than seek a middle between them"
            )
    if found < length:
        said.append(f"ended after {found} tracks: no other track qualifies")
    return "; ".join(said) or None
