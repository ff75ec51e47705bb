"""Nearest neighbours in the embedding, with optional hubness reduction.

Below `EXACT_BELOW` tracks every track is compared with every other, block by block. Above it the
candidates come from an approximate index (`musicrec.index.ann`), ranked by their exact distances, and the index's
breadth is chosen on each build so that recall@k against exact search, measured on a sample of
queries, reaches `TARGET_RECALL`; the figures go into the run's summary.

In high dimensions a few tracks ("hubs") come out near everyone and crowd the lists. Mutual proximity
(Schnitzer et al., 2012) re-scores a distance d(x, y) by how unusual it is for both tracks:
1 - P(X > d) P(Y > d), with each track's distances to the others taken as a normal distribution whose
mean and standard deviation are estimated from its distances to a sample of tracks. The neighbours'
`distance` is then that score, in [0, 1].
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import pandas as pd

HUBNESS = ("none", "mutual_proximity")
METRICS = ("cosine", "euclidean")
RECOMMENDATION_COLUMNS = ["track_key", "rank", "neighbor_key", "distance"]
BLOCK_CELLS = 1 << 24  # distances in memory at once, per block of queries (64 MiB of float32)
POINT_CHUNK = 1 << 16  # tracks an exact search compares a block of queries with at once (each chunk copied)
FIRST_CHUNK = 1 << 14  # the first chunk: candidates to bound the rest by
SPREAD_SAMPLE = 2000  # tracks whose distances estimate every track's distance distribution
# Exact below: the approximate index (with its recall measurement) pays from about 5,000 tracks, and
# below 10,000 exact search takes under 2 s (benchmarks/SCALE.md).
EXACT_BELOW = 10_000
TARGET_RECALL = 0.95
RECALL_SAMPLE = 1000  # queries whose exact neighbours measure the approximate index's recall


def check(metric: str, hubness: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    if hubness not in HUBNESS:
        raise ValueError(f"hubness must be one of {HUBNESS}, not {hubness!r}")


def distances(queries: np.ndarray, points: np.ndarray, metric: str) -> np.ndarray:
    """(queries, points) distances, float32. Cosine as scikit-learn defines it (1 - cos, clipped to [0, 2]),
    computed in float32 in place: its own version makes several full-size copies of the block."""
    if metric != "cosine":
        from sklearn.metrics import pairwise_distances

        return pairwise_distances(queries, points, metric=metric).astype(np.float32)
    d = _unit(queries) @ _unit(points).T
    np.subtract(1.0, d, out=d)
    return np.clip(d, 0.0, 2.0, out=d)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def blocks(n: int, width: int):
    """Row ranges over n rows, each small enough that its distances to `width` points fit in BLOCK_CELLS."""
    step = max(1, BLOCK_CELLS // max(width, 1))
    for start in range(0, n, step):
        yield np.arange(start, min(n, start + step))


def chunks(n: int):
    """Column slices over n tracks for exact search: a small one first, so that each query holds good
    candidates (and a bound) before the large ones, then POINT_CHUNK tracks at a time."""
    start = 0
    for stop in (min(n, FIRST_CHUNK), *range(FIRST_CHUNK + POINT_CHUNK, n + POINT_CHUNK, POINT_CHUNK)):
        if min(stop, n) > start:
            yield slice(start, min(stop, n))
            start = min(stop, n)


def _best(ids, scores, row, col, value) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best `width` of its (ids, scores) and of the new cells (row, col, value), by score then
    id, as (rows, width) arrays padded with -1 and inf."""
    queries, width = ids.shape
    row = np.concatenate([np.repeat(np.arange(queries), width), row])
    col = np.concatenate([ids.ravel(), col])
    value = np.concatenate([scores.ravel(), value.astype(np.float32)])
    order = np.lexsort((col, value, row))
    row, col, value = row[order], col[order], value[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)
    keep = rank < width
    out_ids, out_scores = np.full_like(ids, -1), np.full_like(scores, np.inf)
    out_ids[row[keep], rank[keep]], out_scores[row[keep], rank[keep]] = col[keep], value[keep]
    return np.where(np.isfinite(out_scores), out_ids, -1), out_scores


def spread_rows(n: int, sample: int = SPREAD_SAMPLE, seed: int = 0) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False))


def spread(embedding: np.ndarray, metric: str, sample: int = SPREAD_SAMPLE, seed: int = 0) -> np.ndarray:
    """(2, n): each track's mean and standard deviation of its distances to a sample of the tracks."""
    queries = embedding[spread_rows(len(embedding), sample, seed)]
    out = np.empty((2, len(embedding)), dtype=np.float32)
    for cols in blocks(len(embedding), len(queries)):
        d = distances(queries, embedding[cols], metric)
        out[0, cols], out[1, cols] = d.mean(axis=0), np.maximum(d.std(axis=0), 1e-12)
    return out


def mutual_proximity(d: np.ndarray, query_spread: np.ndarray, point_spread: np.ndarray) -> np.ndarray:
    """Mutual proximity distances of a block (queries x points), from both sides' (mean, std)."""
    return _proximity(d, query_spread[:, :, None], point_spread[:, None, :])


def _proximity(d: np.ndarray, query_spread: np.ndarray, point_spread: np.ndarray) -> np.ndarray:
    """Mutual proximity of distances `d`, with (mean, std) pairs that broadcast against it."""
    from scipy.special import ndtr

    beyond_query = ndtr(-(d - query_spread[0]) / query_spread[1])
    beyond_point = ndtr(-(d - point_spread[0]) / point_spread[1])
    return (1.0 - beyond_query * beyond_point).astype(np.float32)


def scored(
    embedding: np.ndarray, rows: np.ndarray, metric: str, hubness: str, track_spread: np.ndarray | None
) -> np.ndarray:
    """The distances (or mutual proximity scores) from the tracks `rows` to every track."""
    d = distances(embedding[rows], embedding, metric)
    if hubness == "mutual_proximity":
        d = mutual_proximity(d, track_spread[:, rows], track_spread)
    return d


def excluded(d: np.ndarray, rows: np.ndarray, groups: np.ndarray, cols=None) -> np.ndarray:
    """The block (queries `rows` x tracks `cols`, a slice; all) with each query itself and the tracks of its
    group (copies of its audio) set to infinity."""
    cols = slice(0, len(groups)) if cols is None else cols
    d = d.copy()
    d[groups[rows][:, None] == groups[None, cols]] = np.inf
    own = np.flatnonzero((rows >= cols.start) & (rows < cols.start + d.shape[1]))
    d[own, rows[own] - cols.start] = np.inf
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


def ranked(d: np.ndarray, ids: np.ndarray, groups: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Of each row's candidates `ids` scored `d`: the k nearest of distinct groups (None: every track its
    own), nearest first (ties by id), as (ids, scores); -1 and inf where a row has fewer finite ones."""
    order = np.lexsort((ids, d), axis=1)
    ids, d = np.take_along_axis(ids, order, axis=1), np.take_along_axis(d, order, axis=1)
    if groups is None:
        ids, d = padded(ids[:, :k], k, -1), padded(d[:, :k], k, np.inf)
        return np.where(np.isfinite(d), ids, -1), d.astype(np.float32)
    cols = np.full((len(d), k), -1, dtype=np.int64)
    scores = np.full((len(d), k), np.inf, dtype=np.float32)
    for i in range(len(d)):
        finite = np.flatnonzero(np.isfinite(d[i]))
        _, first = np.unique(groups[ids[i, finite]], return_index=True)
        kept = finite[np.sort(first)[:k]]
        cols[i, : len(kept)], scores[i, : len(kept)] = ids[i, kept], d[i, kept]
    return cols, scores


def padded(a: np.ndarray, k: int, fill) -> np.ndarray:
    return a if a.shape[1] == k else np.pad(a, ((0, 0), (0, k - a.shape[1])), constant_values=fill)


class Found(NamedTuple):
    """Each track's neighbours as rows of the embedding, with their distances, and how they were found."""

    rows: np.ndarray  # (tracks, k), nearest first
    distances: np.ndarray  # (tracks, k), float32
    search: dict  # {"method": "exact"} or the approximate index's settings and measured recall
    index: object | None  # the approximate index, to save beside the neighbours


def find(
    embedding: np.ndarray,
    k: int,
    metric: str,
    groups: list | None = None,
    hubness: str = "none",
    exact_below: int | None = None,
    index=None,
) -> Found:
    """k neighbours per track, nearest first, never the track itself nor a track of its group.

    `groups` (e.g. content hashes) marks copies of the same audio: they are never each other's neighbours,
    and a list holds one of them at most (the nearest). Exact below `exact_below` tracks (EXACT_BELOW by
    default), else approximate; `index`: the approximate index of the embedding, built already
    (`ann.build_from_blocks`; the embedding is then `ann.stored(index)`).
    """
    n = len(embedding)
    exact_below = EXACT_BELOW if exact_below is None else exact_below
    search = searcher(embedding, k, metric, groups, hubness)
    if search.k < 1:
        return Found(np.empty((n, 0), np.int64), np.empty((n, 0), np.float32), {"method": "exact"}, None)
    if n < exact_below and index is None:
        return Found(*search.exact(np.arange(n)), {"method": "exact"}, None)
    return search.approximate(index)


def searcher(embedding: np.ndarray, k: int, metric: str, groups: list | None = None, hubness: str = "none") -> Search:
    """The search of `find`, for its exact neighbours of some tracks only (`Search.exact`)."""
    check(metric, hubness)
    n = len(embedding)
    codes = np.arange(n) if groups is None else pd.factorize(np.asarray(groups))[0]
    k = min(k, int(codes.max()) if n else 0)  # one track of each other group at most
    started = time.monotonic()
    track_spread = spread(embedding, metric) if hubness == "mutual_proximity" and k >= 1 else None
    search = Search(embedding, k, metric, hubness, track_spread, codes)
    search.spread_seconds = time.monotonic() - started
    return search


def nearest_neighbours(keys: list[str], embedding: np.ndarray, k: int, metric: str, **options) -> pd.DataFrame:
    """`find`'s neighbours (with its `options`) as a table of RECOMMENDATION_COLUMNS."""
    return table(keys, find(embedding, k, metric, **options))


def table(keys: list[str], found: Found) -> pd.DataFrame:
    import pyarrow as pa

    return pa.concat_tables(table_blocks(pa.array(keys, pa.string()), found)).to_pandas()


def table_blocks(keys, found: Found, shown=None, rows: int = 65_536):
    """`find`'s neighbours as Arrow tables of RECOMMENDATION_COLUMNS, `rows` tracks at a time. `keys` names
    the tracks (an Arrow string array); `shown` (row numbers) stands a track in for its neighbour where given."""
    import pyarrow as pa

    n, k = found.rows.shape
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        neighbour = found.rows[start:stop].ravel()
        yield pa.table(
            {
                "track_key": keys.take(np.repeat(np.arange(start, stop), k)),
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), stop - start),
                "neighbor_key": keys.take(neighbour if shown is None else shown[neighbour]),
                "distance": found.distances[start:stop].ravel().astype(np.float64),
            }
        )


class Search:
    """Neighbour search over one embedding: exact by blocks, or approximate with its recall measured."""

    def __init__(self, embedding, k, metric, hubness, track_spread, codes):
        self.embedding, self.k, self.metric, self.hubness = embedding, k, metric, hubness
        self.track_spread, self.codes = track_spread, codes
        self.copies = len(codes) - int(codes.max()) - 1
        self.distinct = codes if self.copies else None  # the groups `ranked` must tell apart
        self.spread_seconds = 0.0

    def exact(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, k) neighbours and distances of the tracks `rows`, against every track: a block of queries
        against a chunk of tracks at a time (a small one first), each query's best `k + copies` kept.
        Once a query holds that many, a track of the next chunk is scored only if it could beat the worst
        of them (`_bound`): a few cells of each row instead of all of them."""
        n, width = len(self.embedding), self.k + self.copies
        found = np.empty((len(rows), self.k), np.int64), np.empty((len(rows), self.k), np.float32)
        for block in blocks(len(rows), min(n, POINT_CHUNK)):
            chosen = rows[block]
            ids, scores = np.full((len(chosen), width), -1, np.int64), np.full((len(chosen), width), np.inf, np.float32)
            for cols in chunks(n):
                d = excluded(
                    distances(self.embedding[chosen], self.embedding[cols], self.metric), chosen, self.codes, cols
                )
                if np.isfinite(scores[:, -1]).any():  # a bound: the few cells within it scored
                    row, col = np.nonzero(d <= self._bound(chosen, scores[:, -1])[:, None])  # never the excluded
                    value = d[row, col]
                    if self.hubness == "mutual_proximity":
                        spread = self.track_spread
                        value = _proximity(value, spread[:, chosen[row]], spread[:, cols.start + col])
                else:  # none yet (the first chunk): every cell scored, each row's best kept
                    if self.hubness == "mutual_proximity":
                        spread = self.track_spread
                        d = np.where(np.isinf(d), np.inf, mutual_proximity(d, spread[:, chosen], spread[:, cols]))
                    col = top(d, width)
                    row, value = np.repeat(np.arange(len(chosen)), col.shape[1]), np.take_along_axis(d, col, 1).ravel()
                    col = col.ravel()
                ids, scores = _best(ids, scores, row, col + cols.start, value)
            found[0][block], found[1][block] = ranked(scores, ids, self.distinct, self.k)
        return found

    def _bound(self, rows: np.ndarray, worst: np.ndarray) -> np.ndarray:
        """The largest distance from each query `rows` at which a track can still score `worst` or better
        (float32's largest where a query holds fewer than it keeps: below the excluded tracks' infinity).
        Mutual proximity 1 - P(X > d) P(Y > d) is at least 1 - P(X > d), so beating s needs
        P(X > d) >= 1 - s: d <= mean - std * ndtri(1 - s)."""
        largest = np.finfo(np.float32).max
        if self.hubness != "mutual_proximity":
            return np.minimum(worst, largest)
        from scipy.special import ndtri

        s = np.minimum(worst.astype(np.float64) + 1e-6, 1.0)  # a little slack for float32 rounding
        mean, std = self.track_spread[:, rows].astype(np.float64)
        with np.errstate(invalid="ignore"):
            bound = mean - std * ndtri(1.0 - s)
        return np.where(np.isfinite(worst), np.minimum(bound, largest), largest).astype(np.float32)

    def candidates(self, index, x: np.ndarray, rows: np.ndarray, ef: int) -> tuple[np.ndarray, np.ndarray]:
        """The approximate index's candidates for `rows`, with the exact distances it computed, ranked as
        `exact` ranks."""
        from musicrec.index import ann

        return self.rescored(rows, *ann.search(index, x[rows], self.depth(ef)))

    def rescored(self, rows: np.ndarray, ids: np.ndarray, d: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidates `ids` of the tracks `rows` (-1 for none), ranked as `exact` ranks: by their distances `d`
        where the index computed them exactly, else scored here (an index of compressed vectors)."""
        valid = ids >= 0
        ids = np.where(valid, ids, 0)
        if d is None:
            d = pair_distances(self.embedding, rows, ids, self.metric)
        if self.hubness == "mutual_proximity":
            d = _proximity(d, self.track_spread[:, rows][:, :, None], self.track_spread[:, ids])
        d[~valid | (ids == rows[:, None]) | (self.codes[ids] == self.codes[rows][:, None])] = np.inf
        return ranked(d, ids, self.distinct, self.k)

    def depth(self, ef: int) -> int:
        """Candidates asked of the index per query: the search's breadth, and room for the query and a copy."""
        return max(ef, 2 * self.k + 1)

    def approximate(self, index=None) -> Found:
        """Neighbours from an HNSW index of the embedding: `index` where built already (`ann.stored(index)`
        then being the embedding), else built here."""
        from musicrec.index import ann

        n = len(self.embedding)
        started = time.monotonic()
        if index is None:
            x = ann.vectors(self.embedding, self.metric)
            index = ann.build(x, self.metric)
        else:
            x = self.embedding
        built = time.monotonic() - started
        searched = time.monotonic()
        sample = spread_rows(n, RECALL_SAMPLE, seed=1)
        truth, _ = self.exact(sample)
        for ef in ann.EF_SEARCH:
            found, _ = self.candidates(index, x, sample, ef)
            recall = recall_at_k(found, truth)
            if recall >= TARGET_RECALL:
                break
        # int32 rows: the largest array held here, 40 MB a million tracks at k = 10 rather than 80
        rows, dist = np.empty((n, self.k), np.int32), np.empty((n, self.k), np.float32)
        for block in blocks(n, self.depth(ef) * x.shape[1]):
            rows[block], dist[block] = self.candidates(index, x, block, ef)
        short = np.flatnonzero((rows < 0).any(axis=1))
        if len(short):  # copies crowded the candidates out: these few are searched exactly
            rows[short], dist[short] = self.exact(short)
        search = {
            "method": "hnsw",
            "library": "faiss",
            "M": ann.M,
            "ef_construction": ann.EF_CONSTRUCTION,
            "ef_search": self.depth(ef),
            f"recall_at_{self.k}": round(recall, 4),
            "target_recall": TARGET_RECALL,
            "recall_sample": len(sample),
            "searched_exactly": len(short),
            "build_seconds": round(built, 2),
            "spread_seconds": round(self.spread_seconds, 2),  # each track's distance distribution (hubness)
            "search_seconds": round(time.monotonic() - searched, 2),
        }
        return Found(rows, dist, search, index)


def pair_distances(embedding: np.ndarray, rows: np.ndarray, ids: np.ndarray, metric: str) -> np.ndarray:
    """(rows, m) distances from each track `rows[i]` to the tracks `ids[i]`, as `distances` computes them."""
    queries, candidates = embedding[rows], embedding[ids]
    if metric == "cosine":
        dots = np.einsum("qd,qmd->qm", queries, candidates)
        norms = np.linalg.norm(queries, axis=1)[:, None] * np.linalg.norm(candidates, axis=2)
        return (1.0 - dots / np.maximum(norms, 1e-12)).astype(np.float32)
    return np.linalg.norm(candidates - queries[:, None, :], axis=2).astype(np.float32)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """The mean share of each row's true neighbours (`truth`, -1 for none) that `found` holds."""
    pairs = zip(found, truth, strict=True)
    hits = [len(np.intersect1d(f[f >= 0], t[t >= 0])) / max(1, int((t >= 0).sum())) for f, t in pairs]
    return float(np.mean(hits)) if hits else 1.0


def similarity(d: np.ndarray, metric: str, hubness: str) -> np.ndarray:
    """Distances as similarities in [0, 1], 1 for the same sound (OpenSubsonic's sonicSimilarity `similarity`):
    mutual proximity's distances are already in [0, 1]; cosine distances run from 0 to 2; a euclidean
    distance has no bound, so 1 / (1 + d)."""
    d = np.asarray(d, dtype=float)
    if hubness == "mutual_proximity":
        return np.clip(1.0 - d, 0.0, 1.0)
    if metric == "cosine":
        return np.clip(1.0 - d / 2.0, 0.0, 1.0)
    return 1.0 / (1.0 + d)
