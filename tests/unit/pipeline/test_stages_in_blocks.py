"""The index stages in blocks of a few rows give the tables they give in one block: join's merge of reused
and new features, the scaler's and PCA's streamed moments, the projection and the neighbours written by
blocks."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicrec.index import embedding, neighbours
from musicrec.store import storage
from support.audio import tone
from support.runs import run_stages, small_library


@pytest.fixture
def in_small_blocks(monkeypatch):
    """Blocks of two rows, merge cursors of one row, projections of three rows; exact search against three
    tracks at a time, two queries a block; the approximate index from four tracks, built in blocks."""
    monkeypatch.setattr(storage, "BLOCK_ROWS", 2)
    monkeypatch.setattr(storage._Cursor, "BATCH_ROWS", 1)
    monkeypatch.setattr(embedding, "BLOCK_ROWS", 3)
    monkeypatch.setattr(neighbours, "POINT_CHUNK", 3)
    monkeypatch.setattr(neighbours, "BLOCK_CELLS", 6)
    monkeypatch.setattr(neighbours, "EXACT_BELOW", 4)


def _tables(data_dir) -> dict[str, pd.DataFrame]:
    current = storage.current_dir(data_dir)
    names = [storage.FEATURES, storage.TRACKS, storage.EMBEDDINGS, storage.RECOMMENDATIONS, storage.DUPLICATES]
    return {name: pd.read_parquet(current / name) for name in names} | {
        "model": storage.read_json(current / storage.MODEL)
    }


@pytest.fixture(scope="module")
def in_one_block(tmp_path_factory):
    """The small library indexed with the default blocks (each table one block), and its tables."""
    root = tmp_path_factory.mktemp("one-block")
    library = small_library(root / "library")
    run_stages(library, root / "data", "r1", library / "metadata.csv", hubness="mutual_proximity")
    return library, _tables(root / "data")


def _assert_same(got: dict, expected: dict) -> None:
    for name in (storage.FEATURES, storage.TRACKS, storage.DUPLICATES):
        pd.testing.assert_frame_equal(got[name], expected[name], check_dtype=False)
    emb = got[storage.EMBEDDINGS]
    assert emb["track_key"].tolist() == expected[storage.EMBEDDINGS]["track_key"].tolist()
    np.testing.assert_allclose(
        emb.drop(columns="track_key").to_numpy(), expected[storage.EMBEDDINGS].drop(columns="track_key"), atol=1e-5
    )
    recs, expected_recs = got[storage.RECOMMENDATIONS], expected[storage.RECOMMENDATIONS]
    assert recs[["track_key", "rank", "neighbor_key"]].equals(expected_recs[["track_key", "rank", "neighbor_key"]])
    np.testing.assert_allclose(recs["distance"], expected_recs["distance"], atol=1e-5)
    np.testing.assert_allclose(got["model"]["scaler"]["mean"], expected["model"]["scaler"]["mean"], rtol=1e-9)
    np.testing.assert_allclose(got["model"]["scaler"]["scale"], expected["model"]["scaler"]["scale"], rtol=1e-6)


def test_a_run_in_blocks_of_two_rows_gives_the_tables_of_one_block(tmp_path, in_one_block, in_small_blocks):
    library, expected = in_one_block
    run_stages(library, tmp_path / "data", "r1", library / "metadata.csv", hubness="mutual_proximity")
    got = _tables(tmp_path / "data")
    _assert_same(got, expected)
    search = storage.read_json(storage.stage_record(storage.current_dir(tmp_path / "data"), "build_index"))["search"]
    assert search["method"] == "hnsw" and search["recall_at_2"] == 1.0
    assert (storage.current_dir(tmp_path / "data") / storage.ANN_INDEX).exists()
    assert got[storage.TRACKS]["track_key"].is_monotonic_increasing
    assert len(got[storage.TRACKS]) == 9 and got[storage.TRACKS]["duplicate_of"].notna().sum() == 1


def test_new_files_between_reused_ones_are_merged_in_key_order_in_blocks(tmp_path, in_one_block, in_small_blocks):
    """A second run reuses the features of the first and extracts two new files whose keys fall between
    theirs: join merges both in blocks, and the tables are those of indexing all of them at once."""
    library, _ = in_one_block
    library = shutil.copytree(library, tmp_path / "library")
    run_stages(library, tmp_path / "data", "r1", library / "metadata.csv")
    sf.write(library / "low" / "1b.wav", tone(130.0, seconds=0.6), 22050)
    sf.write(library / "high" / "2b.wav", tone(2300.0, seconds=0.6), 22050)
    second = run_stages(library, tmp_path / "data", "r2", library / "metadata.csv")
    assert second["run"]["files_reused"] == 9 and second["run"]["files_to_extract"] == 2
    again = run_stages(library, tmp_path / "all", "r1", library / "metadata.csv")
    assert again["run"]["files_to_extract"] == 11
    got, expected = _tables(tmp_path / "data"), _tables(tmp_path / "all")
    assert got[storage.TRACKS]["track_key"].is_monotonic_increasing
    assert {"low/1b.wav", "high/2b.wav"} <= set(got[storage.TRACKS]["track_key"])
    _assert_same(got, expected)
