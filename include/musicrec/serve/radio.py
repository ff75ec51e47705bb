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
    files: list[str | Path] = (),
    **only,
) -> dict:
    """{'seeds', 'tracks': [... with the seed each came from], 'note'}: from `seeds` (track keys or text) and
    `files` (audio files, analysed as the library's are); `only` the tracks that pass `Index.passing`."""
    if length < 1:
        raise query.InvalidQuery(f"length must be at least 1, not {length}")
    index = query.load(data_dir)
    names, vectors, ranked, raw, own = _seeds(index, seeds, files)
    if not names:
        raise query.InvalidQuery("a radio needs at least one seed: a track key, text in a title or artist, or a file")
    left_out = own | (raw.min(axis=0) < NEAR_COPY)  # the seeds, their copies and near-copies
    ranked = np.where((left_out | ~index.passing(**only))[None, :], np.inf, ranked)
    chosen, came_from, distance = [], [], []
    while len(chosen) < length:
        turn = len(chosen) % len(names)
        d = ranked[turn].astype(float)
        d[np.isin(index.groups, index.groups[chosen])] = np.inf
        keep_apart(index, d, chosen, window, spread_over)
        nxt = int(np.argmin(d))
        if not np.isfinite(d[nxt]):
            break
        chosen.append(nxt)
        came_from.append(names[turn])
        distance.append(float(d[nxt]))
    shown = index.canonical[chosen]  # the file kept of each recording stands for it
    tracks = index.tracks.iloc[shown].assign(position=np.arange(1, len(chosen) + 1), seed=came_from, distance=distance)
    apart = neighbours.distances(vectors, vectors, index.built_with["metric"])
    return {"seeds": names, "tracks": query.records(tracks), "note": _note(apart, raw[:, ~own], len(chosen), length)}


def _seeds(
    index: query.Index, seeds: list[str], files
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each seed's name, its point in the embedding, its ranking of the index (as the index ranks), its raw
    distances; and which tracks are the seeds' own audio (a track of the index named twice counts once)."""
    from musicrec.serve import similar

    metric = index.built_with["metric"]
    rows = list(dict.fromkeys(index.first_match(seed) for seed in seeds))
    names = index.tracks["track_key"].iloc[rows].tolist()
    ranked = raw = np.empty((0, len(index.tracks)))
    if rows:
        hubness, spread = index.built_with["hubness"], index.spread
        ranked = neighbours.scored(index.embedding, np.array(rows), metric, hubness, spread)
        raw = neighbours.distances(index.embedding[rows], index.embedding, metric)
    own = np.isin(index.groups, index.groups[rows])
    vectors = index.embedding[rows]
    for path in files:
        point, row = similar.analysed(index, path)
        names.append(Path(path).name)
        vectors = np.vstack([vectors, point])
        ranked = np.vstack([ranked, index.scores(point, len(index.tracks))])
        raw = np.vstack([raw, neighbours.distances(point, index.embedding, metric)])
        own |= (index.tracks["content_hash"] == row["content_hash"]).to_numpy()
    return names, vectors, ranked, raw, own


def _note(apart: np.ndarray, to_others: np.ndarray, found: int, length: int) -> str | None:
    """Seeds far apart (their mean distance to each other above their median distance to the other tracks),
    and a radio that ran out, said."""
    said = []
    if len(apart) > 1:
        mean = float(apart[np.triu_indices(len(apart), 1)].mean())
        typical = float(np.median(to_others))
        if mean > typical:
            said.append(
                f"the seeds are far apart (mean distance {mean:.2f}, the library's typical {typical:.2f}): "
                "the radio takes turns among their neighbours rather than seek a middle between them"
            )
    if found < length:
        said.append(f"ended after {found} tracks: no other track qualifies")
    return "; ".join(said) or None
