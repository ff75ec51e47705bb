"""Large libraries: exact neighbours below a size, an approximate index with measured recall above it, a
saved approximate index that queries use, and evaluation on samples."""

from __future__ import annotations

import builtins
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.neighbors import NearestNeighbors

from musicrec import cli
from musicrec.index import ann, evaluation, neighbours
from musicrec.library import discover
from musicrec.serve import query
from musicrec.store import storage
from support.runs import run_stages, small_library


def clustered(n: int, dims: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(2, n // 50), dims)) * 3
    return (centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, dims))).astype(np.float32)


@pytest.mark.parametrize("metric", neighbours.METRICS)
def test_below_the_threshold_the_neighbours_are_those_of_brute_force(metric):
    x = clustered(400, 8)
    found = neighbours.find(x, 5, metric)
    assert found.search == {"method": "exact"} and found.index is None
    distances, rows = NearestNeighbors(n_neighbors=6, metric=metric, algorithm="brute").fit(x).kneighbors(x)
    own = rows == np.arange(len(x))[:, None]
    expected = np.array([r[~o][:5] for r, o in zip(rows, own, strict=True)])
    np.testing.assert_array_equal(found.rows, expected)
    expected_d = np.array([d[~o][:5] for d, o in zip(distances, own, strict=True)])
    np.testing.assert_allclose(found.distances, expected_d, atol=1e-5)


@pytest.mark.parametrize("hubness", neighbours.HUBNESS)
def test_above_the_threshold_the_approximate_index_reaches_the_recall_it_reports(hubness):
    x = clustered(3000, 16)
    x[1] = x[0]  # identical audio, and a third copy with other values: one group
    groups = ["copy" if i < 3 else f"h{i}" for i in range(len(x))]
    exact = neighbours.find(x, 10, "cosine", groups, hubness, exact_below=10**9)
    approx = neighbours.find(x, 10, "cosine", groups, hubness, exact_below=0)

    assert approx.search["method"] == "hnsw" and approx.index is not None
    assert approx.search["recall_at_10"] >= neighbours.TARGET_RECALL
    sample = neighbours.spread_rows(len(x), neighbours.RECALL_SAMPLE, seed=1)
    assert approx.search["recall_at_10"] == round(neighbours.recall_at_k(approx.rows[sample], exact.rows[sample]), 4)
    assert neighbours.recall_at_k(approx.rows, exact.rows) >= neighbours.TARGET_RECALL
    rows = approx.rows
    assert (rows >= 0).all() and not (rows == np.arange(len(x))[:, None]).any()
    assert not np.isin(rows[:3], [0, 1, 2]).any()  # copies are never each other's neighbours
    assert (np.isin(rows[3:], [0, 1, 2]).sum(axis=1) <= 1).all()  # and a list holds one of them at most
    same = rows == exact.rows  # where both found the same track, the distance is the exact one
    np.testing.assert_allclose(approx.distances[same], exact.distances[same], atol=1e-5)


def test_the_saved_approximate_index_finds_what_the_built_one_finds(tmp_path):
    x = ann.vectors(clustered(2000, 12), "cosine")
    built = ann.build(x, "cosine")
    ann.save(built, tmp_path / "graph.faiss")
    loaded = ann.load(tmp_path / "graph.faiss")
    np.testing.assert_array_equal(ann.search(loaded, x[:50], 30)[0], ann.search(built, x[:50], 30)[0])


def test_evaluation_above_the_sample_size_measures_samples(monkeypatch):
    x = clustered(600, 8)
    folders = pd.Series(np.arange(600) // 50).astype(str)
    tracks = pd.DataFrame(
        {
            "track_key": folders + "/" + pd.Series(np.arange(600)).astype(str) + ".wav",
            "genre": "unknown",
            "album": None,
            "artist": None,
            "content_hash": [f"h{i}" for i in range(600)],
        }
    )
    tracks = pa.Table.from_pandas(tracks, preserve_index=False)
    full = evaluation.evaluate(tracks, x, "euclidean", "none")
    monkeypatch.setattr(evaluation, "SAMPLE", 200)
    sampled = evaluation.evaluate(tracks, x, "euclidean", "none")
    assert full["sampled"] is None and sampled["sampled"] == 200
    for method in neighbours.HUBNESS:
        got, want = sampled["methods"][method], full["methods"][method]
        assert got["precision"]["folder@5"]["tracks"] == 200
        assert abs(got["precision"]["folder@5"]["micro"] - want["precision"]["folder@5"]["micro"]) < 0.1
        assert len(got["k_occurrence"]) == 200
    assert "random tracks" in evaluation.markdown(sampled, {"signal": [0.5]}, {})


@pytest.fixture(params=neighbours.HUBNESS)
def approximate_index(request, tmp_path, monkeypatch):
    """The small library indexed with the approximate index (threshold 0), and the same indexed exactly."""
    library = small_library(tmp_path / "library")
    params = {"n_neighbors": 3, "hubness": request.param}
    run_stages(library, tmp_path / "exact", "exact", library / "metadata.csv", **params)
    monkeypatch.setattr(neighbours, "EXACT_BELOW", 0)
    records = run_stages(library, tmp_path / "data", "first", library / "metadata.csv", **params)
    return library, tmp_path / "data", tmp_path / "exact", records


def test_a_run_above_the_threshold_saves_its_approximate_index_and_reports_its_recall(approximate_index):
    library, data, exact, records = approximate_index
    current = storage.require_current(data)
    summary = storage.read_json(current / storage.SUMMARY)
    assert summary["neighbour_search"]["method"] == "hnsw"
    assert summary["neighbour_search"]["recall_at_3"] >= neighbours.TARGET_RECALL
    assert (current / storage.ANN_INDEX).is_file()
    assert not (storage.require_current(exact) / storage.ANN_INDEX).exists()
    got = storage.read_parquet(current / storage.RECOMMENDATIONS)
    want = storage.read_parquet(storage.require_current(exact) / storage.RECOMMENDATIONS)
    listed = ["track_key", "rank", "neighbor_key"]
    pd.testing.assert_frame_equal(got[listed], want[listed])


def test_the_graph_is_saved_once_a_run_and_by_build_index_where_duplicates_was_reused(approximate_index):
    library, data, _, records = approximate_index
    graph = Path(records["build_index"]["search"]["path"])
    assert graph == Path(records["reduce"]["run_dir"]) / storage.ANN_INDEX  # duplicates' graph, searched again
    hubness = records["build_index"]["hubness"]
    again = run_stages(library, data, "second", library / "metadata.csv", n_neighbors=2, hubness=hubness)
    assert again["duplicates"].get("reused") and not again["build_index"].get("reused")  # no graph of its own
    saved = Path(again["build_index"]["search"]["path"])
    assert saved == Path(again["reduce"]["run_dir"]) / storage.ANN_INDEX and saved.is_file()
    assert ann.fits(ann.load(storage.require_current(data) / storage.ANN_INDEX), 9, "cosine")


def test_similar_searches_the_saved_approximate_index_without_rebuilding_it(approximate_index, capsys, monkeypatch):
    library, data, _, _ = approximate_index
    monkeypatch.setattr(ann, "build", lambda *a, **k: pytest.fail("a query rebuilt the approximate index"))
    assert query.load(data).approximate is not None
    argv = ["--k", "3", "--json", "--data-dir", str(data)]
    assert cli.main(["similar", str(library / "low" / "2.wav"), *argv]) == 0
    similar = json.loads(capsys.readouterr().out)
    assert cli.main(["recommend", "low/2.wav", *argv]) == 0
    indexed = json.loads(capsys.readouterr().out)
    assert [n["track_key"] for n in similar["neighbours"]] == [n["track_key"] for n in indexed["neighbours"]]


def test_a_damaged_approximate_index_is_named_by_similar(approximate_index, capsys):
    library, data, _, _ = approximate_index
    graph = storage.require_current(data) / storage.ANN_INDEX
    graph.write_bytes(b"not a faiss index")
    assert cli.main(["similar", str(library / "low" / "2.wav"), "--data-dir", str(data)]) == 1
    assert f"{graph}: not a readable approximate index" in capsys.readouterr().err


def test_a_rerun_reuses_the_neighbours_and_their_approximate_index(approximate_index):
    library, data, _, records = approximate_index
    hubness = records["build_index"]["hubness"]
    again = run_stages(library, data, "second", library / "metadata.csv", n_neighbors=3, hubness=hubness)
    assert again["build_index"]["reused"] is True
    current = storage.require_current(data)
    assert current.name.endswith("second") and (current / storage.ANN_INDEX).is_file()
    assert again["build_index"]["search"]["path"] == str(current / storage.ANN_INDEX)


def test_discovery_stats_each_file_once_and_opens_none(tmp_path, monkeypatch):
    library = tmp_path / "library"
    for folder in ("a", "b", "c"):
        (library / folder).mkdir(parents=True)
        for i in range(20):
            (library / folder / f"{i}.mp3").touch()
    stats, opens = Counter(), []
    real_stat, real_open = os.stat, builtins.open

    def counted_stat(path, *args, **kwargs):
        stats[str(path)] += 1
        return real_stat(path, *args, **kwargs)

    def counted_open(file, *args, **kwargs):
        opens.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counted_stat)
    monkeypatch.setattr(builtins, "open", counted_open)
    scanned = discover.scan(library)
    monkeypatch.undo()
    audio = {p: n for p, n in stats.items() if p.endswith(".mp3")}
    assert len(scanned.files) == 60 and len(audio) == 60 and set(audio.values()) == {1}
    assert not [p for p in opens if p.endswith(".mp3")]
