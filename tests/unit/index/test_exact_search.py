"""Exact search by chunks, scoring only the tracks that can still make a list, against every pair scored."""

from __future__ import annotations

import numpy as np
import pytest

from musicrec.index import neighbours


def _every_pair(search: neighbours.Search, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lists of `rows` from every distance to every track, scored and ranked at once."""
    d = neighbours.scored(search.embedding, rows, search.metric, search.hubness, search.track_spread)
    d = neighbours.excluded(d, rows, search.codes)
    ids = np.tile(np.arange(len(search.embedding)), (len(rows), 1))
    return neighbours.ranked(d, ids, search.distinct, search.k)


@pytest.mark.parametrize("metric", neighbours.METRICS)
@pytest.mark.parametrize("hubness", neighbours.HUBNESS)
def test_chunked_search_with_bounds_finds_what_scoring_every_pair_finds(monkeypatch, metric, hubness):
    monkeypatch.setattr(neighbours, "FIRST_CHUNK", 7)
    monkeypatch.setattr(neighbours, "POINT_CHUNK", 50)
    monkeypatch.setattr(neighbours, "BLOCK_CELLS", 500)  # ten queries a block
    rng = np.random.default_rng(5)
    x = rng.normal(size=(403, 12)) * np.linspace(3, 0.2, 12)
    x[np.arange(20, 403, 37)] = x[np.arange(19, 403, 37)]  # copies of some tracks' audio
    groups = [f"h{i}" for i in range(403)]
    for i in range(20, 403, 37):
        groups[i] = groups[i - 1]
    search = neighbours.searcher(x.astype(np.float32), 6, metric, groups, hubness)
    rows = np.arange(0, 403, 3)
    got, want = search.exact(rows), _every_pair(search, rows)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    assert [list(neighbours.chunks(403))[i] for i in (0, 1, -1)] == [slice(0, 7), slice(7, 57), slice(357, 403)]


def test_a_query_with_fewer_tracks_than_it_keeps_gets_them_all_then_none():
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    search = neighbours.searcher(x, 10, "euclidean", ["a", "a", "b", "c"], "mutual_proximity")
    ids, scores = search.exact(np.arange(4))
    assert search.k == 2  # one track of each other group at most
    assert sorted(ids[0].tolist()) == [2, 3] and set(ids[2].tolist()) <= {0, 1, 3}
    assert np.isfinite(scores).all()


def test_the_bound_is_the_distance_at_which_the_best_a_track_can_score_is_the_worst_kept():
    """A track of the most favourable spread (always farther from everyone: P(Y > d) = 1) scores the
    worst kept score exactly at the bound: better just inside it, worse just outside."""
    x = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    search = neighbours.searcher(x, 3, "euclidean", hubness="mutual_proximity")
    rows, worst = np.arange(5), np.array([0.2, 0.5, 0.9, 0.99, np.inf], dtype=np.float32)
    bound = search._bound(rows, worst)
    favourable = np.array([[1e9], [1.0]])
    for row, s, d in zip(rows[:4], worst[:4], bound[:4], strict=True):
        inside, outside = (
            neighbours._proximity(np.float64(d * f), search.track_spread[:, row], favourable) for f in (0.999, 1.001)
        )
        assert inside <= s < outside
    assert bound[4] == np.finfo(np.float32).max  # a query that holds too few: every finite distance
