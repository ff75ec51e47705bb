"""A path between tracks: from one track to another, through waypoints if asked, by the tracks of the index
closest to evenly spaced points between them in the embedding.

With the cosine metric the points lie on the great circle between the two tracks' directions (spherical
interpolation), so that each is as far from the next as the cosine distance can tell; with the euclidean
metric, on the straight line. Each point may take one of the tracks nearest to it, and the choice for the
whole leg is made at once so that its largest step is least (the nearest track to each point alone can
zig-zag, a chain of nearest neighbours can stray). A recording never comes twice (`content_hash`), nor a stop
between stops. A waypoint is passed through
exactly; the steps are shared among the legs in proportion to their lengths. A library with fewer tracks
than steps gives a shorter path, and says so.

Each step reports its distance from the track before it and from its ideal point, and the path its largest
step: how smooth it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicrec.index import neighbours
from musicrec.serve import query

# The tracks nearest to each point that the path may take there.
CANDIDATES = 20
# How much the tracks' distances from their points weigh against the largest step, when choosing between paths.
TIE_WEIGHT = 0.05


def path(
    data_dir: str | Path,
    stops: list[str],
    steps: int = 10,
    **only,
) -> dict:
    """{'stops', 'tracks': [...], 'largest_step', 'note'}: from the first of `stops` (track keys, or text in a
    title, artist or file name) through the others to the last, in `steps` steps in all; the tracks between
    the stops only those that pass `Index.passing` (`only`: a genre, a tempo range, a key)."""
    if len(stops) < 2:
        raise query.InvalidQuery("a path needs a track to start from and one to end at")
    if steps < len(stops) - 1:
        raise query.InvalidQuery(f"steps must be at least {len(stops) - 1} (one a leg), not {steps}")
    index = query.load(data_dir)
    rows = [index.first_match(text) for text in stops]
    if len(set(index.groups[rows])) < len(rows):
        raise query.InvalidQuery("a path cannot pass through the same audio twice: give other tracks")
    metric = index.built_with["metric"]
    chosen, ideal_distances, note = [rows[0]], [0.0], None
    legs = zip(rows, rows[1:], _leg_steps(index, rows, steps), strict=False)
    for leg, (start, end, between) in enumerate(legs):
        points = np.array(_ideal_points(index.embedding[start], index.embedding[end], between, metric))
        taken, closeness = _smoothest(index, start, end, points, chosen + rows, metric, index.passing(**only))
        if len(taken) < between:
            note = f"leg {leg + 1} has {len(taken)} tracks between its ends, not {between}: no others lie on the way"
        chosen += taken + [end]
        ideal_distances += closeness + [0.0]
    vectors = index.embedding[chosen]
    step = [0.0] + [float(d) for d in np.diag(neighbours.distances(vectors[:-1], vectors[1:], metric))]
    # between the stops, the file kept of each recording stands for it
    shown = [r if r in rows else int(index.canonical[r]) for r in chosen]
    tracks = index.tracks.iloc[shown].assign(
        position=np.arange(1, len(chosen) + 1), step_distance=step, ideal_distance=ideal_distances
    )
    return {
        "stops": [index.tracks.at[r, "track_key"] for r in rows],
        "tracks": query.records(tracks),
        "largest_step": max(step),
        "note": note,
    }


def _smoothest(
    index: query.Index, start: int, end: int, points: np.ndarray, used: list[int], metric: str, allowed: np.ndarray
) -> tuple[list[int], list[float]]:
    """A track for each point, among the CANDIDATES nearest to it, chosen for the whole leg at once (dynamic
    programming) so that the largest step from `start` to `end` is least; ties go to the tracks closer to
    their points. A track the choice would visit twice is kept once (the leg is then shorter)."""
    if len(points) == 0:
        return [], []
    free = np.flatnonzero(~np.isin(index.groups, index.groups[used]) & allowed)
    free = free[np.unique(index.groups[free], return_index=True)[1]]  # one track of each recording
    if len(free) == 0:
        return [], []
    to_points = neighbours.distances(points, index.embedding[free], metric).astype(float)
    order = np.argsort(to_points, axis=1)[:, :CANDIDATES]
    layers, closeness = free[order], np.take_along_axis(to_points, order, 1)
    largest, tie = _steps(index, [start], layers[0], metric)[0], TIE_WEIGHT * closeness[0]
    back = []
    for i in range(1, len(layers)):
        step = _steps(index, layers[i - 1], layers[i], metric)
        step[layers[i - 1][:, None] == layers[i][None, :]] = np.inf  # not the same track twice in a row
        best = np.argmin(np.maximum(largest[:, None], step) + tie[:, None], axis=0)
        largest = np.maximum(largest[best], step[best, np.arange(len(best))])
        tie = tie[best] + TIE_WEIGHT * closeness[i]
        back.append(best)
    picked = [int(np.argmin(np.maximum(largest, _steps(index, layers[-1], [end], metric)[:, 0]) + tie))]
    for best in reversed(back):
        picked.append(int(best[picked[-1]]))
    picked.reverse()
    chosen, near = [], []
    for i, j in enumerate(picked):
        if int(layers[i][j]) not in chosen:
            chosen.append(int(layers[i][j]))
            near.append(float(closeness[i][j]))
    return chosen, near


def _steps(index: query.Index, a, b, metric: str) -> np.ndarray:
    return neighbours.distances(index.embedding[np.asarray(a)], index.embedding[np.asarray(b)], metric).astype(float)


def _leg_steps(index: query.Index, rows: list[int], steps: int) -> list[int]:
    """The tracks between each pair of stops: `steps` less one a leg (the step onto the stop), shared among
    the legs in proportion to their angles."""
    vectors = index.embedding[rows]
    lengths = np.array([_angle(a, b) for a, b in zip(vectors, vectors[1:], strict=False)]) + 1e-12
    inner = steps - len(lengths)  # each leg's last step lands on its stop
    share = inner * lengths / lengths.sum()
    counts = np.floor(share).astype(int)
    for i in np.argsort(counts - share)[: inner - counts.sum()]:  # the largest remainders get the rest
        counts[i] += 1
    return counts.tolist()


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def _ideal_points(a: np.ndarray, b: np.ndarray, between: int, metric: str) -> list[np.ndarray]:
    """`between` points evenly spaced from a to b (ends left out): for the cosine metric on the great circle
    through their directions (their lengths interpolated), for the euclidean one on the line."""
    t = np.arange(1, between + 1) / (between + 1)
    theta = _angle(a, b)
    if metric != "cosine" or theta < 1e-9:
        return [a + (b - a) * x for x in t]
    ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
    scale = (1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b)
    on_circle = (np.sin((1 - t) * theta)[:, None] * ua + np.sin(t * theta)[:, None] * ub) / np.sin(theta)
    return list(on_circle * scale[:, None])
