"""Nearest neighbours in the embedding, exact, block by block, with optional hubness reduction.

In high dimensions a few tracks ("hubs") come out near everyone and crowd the lists. Mutual proximity
(Schnitzer et al., 2012) re-scores a distance d(x, y) by how unusual it is for both tracks:
1 - P(X > d) P(Y > d), with each track's distances to the others taken as a normal distribution whose
mean and standard deviation are estimated from its distances to a sample of tracks. The neighbours'
`distance` is then that score, in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HUBNESS = ("none", "mutual_proximity")
METRICS = ("cosine", "euclidean")
RECOMMENDATION_COLUMNS = ["track_key", "rank", "neighbor_key", "distance"]
BLOCK = 1024  # query rows per block: BLOCK x tracks distances in memory at once
SPREAD_SAMPLE = 2000  # tracks whose distances estimate every track's distance distribution


def check(metric: str, hubness: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    if hubness not in HUBNESS:
        raise ValueError(f"hubness must be one of {HUBNESS}, not {hubness!r}")


def distances(queries: np.ndarray, points: np.ndarray, metric: str) -> np.ndarray:
    from sklearn.metrics import pairwise_distances

    return pairwise_distances(queries, points, metric=metric).astype(np.float32)


def spread(embedding: np.ndarray, metric: str, sample: int = SPREAD_SAMPLE, seed: int = 0) -> np.ndarray:
    """(2, n): each track's mean and standard deviation of its distances to a sample of the tracks."""
    n = len(embedding)
    rows = np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False)
    d = distances(embedding[np.sort(rows)], embedding, metric)
    return np.stack([d.mean(axis=0), np.maximum(d.std(axis=0), 1e-12)])


def mutual_proximity(d: np.ndarray, query_spread: np.ndarray, point_spread: np.ndarray) -> np.ndarray:
    """Mutual proximity distances of a block (queries x points), from both sides' (mean, std)."""
    from scipy.special import ndtr

    beyond_query = ndtr(-(d - query_spread[0][:, None]) / query_spread[1][:, None])
    beyond_point = ndtr(-(d - point_spread[0][None, :]) / point_spread[1][None, :])
    return (1.0 - beyond_query * beyond_point).astype(np.float32)


def scored(
    embedding: np.ndarray, rows: np.ndarray, metric: str, hubness: str, track_spread: np.ndarray | None
) -> np.ndarray:
    """The distances (or mutual proximity scores) from the tracks `rows` to every track."""
    d = distances(embedding[rows], embedding, metric)
    if hubness == "mutual_proximity":
        d = mutual_proximity(d, track_spread[:, rows], track_spread)
    return d


def excluded(d: np.ndarray, rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The block with each query itself and the tracks of its group (copies of its audio) set to infinity."""
    d = d.copy()
    d[groups[rows][:, None] == groups[None, :]] = np.inf
    d[np.arange(len(rows)), rows] = np.inf
    return d


def distinct(row: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """The first k columns of a ranked row that are of distinct groups: of copies of the same audio, the
    nearest only (fewer when the row has fewer groups)."""
    _, first = np.unique(groups[row], return_index=True)
    return row[np.sort(first)[:k]]


def top(d: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the k smallest finite values, nearest first (ties by column)."""
    k = min(k, d.shape[1])
    part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else np.tile(np.arange(d.shape[1]), (len(d), 1))
    order = np.lexsort((part, np.take_along_axis(d, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def nearest_neighbours(
    keys: list[str],
    embedding: np.ndarray,
    k: int,
    metric: str,
    groups: list | None = None,
    hubness: str = "none",
) -> pd.DataFrame:
    """k neighbours per track, nearest first, never the track itself nor a track of its group.

    `groups` (e.g. content hashes) marks copies of the same audio: they are never each other's neighbours,
    and a list holds one of them at most (the nearest).
    """
    check(metric, hubness)
    n = len(keys)
    codes = pd.factorize(pd.Series(list(range(n)) if groups is None else list(groups)))[0]
    k = min(k, int(codes.max()) if n else 0)  # one track of each other group at most
    copies = n - int(codes.max()) - 1 if n else 0
    if k < 1:
        return pd.DataFrame(columns=RECOMMENDATION_COLUMNS)
    track_spread = spread(embedding, metric) if hubness == "mutual_proximity" else None
    keys_arr = np.asarray(keys, dtype=object)
    parts = []
    for start in range(0, n, BLOCK):
        rows = np.arange(start, min(n, start + BLOCK))
        d = excluded(scored(embedding, rows, metric, hubness, track_spread), rows, codes)
        ranked = top(d, k + copies)
        if copies:  # of the ranked columns, the finite ones always hold k distinct groups
            finite = np.isfinite(np.take_along_axis(d, ranked, axis=1))
            cols = np.stack([distinct(row[ok], codes, k) for row, ok in zip(ranked, finite, strict=True)])
        else:
            cols = ranked[:, :k]
        parts.append(
            pd.DataFrame(
                {
                    "track_key": np.repeat(keys_arr[rows], k),
                    "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(rows)),
                    "neighbor_key": keys_arr[cols.ravel()],
                    "distance": np.take_along_axis(d, cols, axis=1).ravel().astype(np.float64),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)
