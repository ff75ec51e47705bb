"""Tables read, merged and written a block of rows at a time: every block boundary crossed."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicrec.pipeline import changes
from musicrec.store import storage


def _file(path, keys: list[str], row_group_size: int = 2):
    table = pa.table({"track_key": keys, "value": [float(len(k)) + i for i, k in enumerate(keys)]})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path, table


@pytest.fixture
def small_cursors(monkeypatch):
    monkeypatch.setattr(storage._Cursor, "BATCH_ROWS", 2)


def test_sorted_blocks_merge_interleaved_files_in_key_order(tmp_path, small_cursors):
    a, ta = _file(tmp_path / "a.parquet", ["a/1", "b/1", "b/3", "c/2", "d/9"])
    b, tb = _file(tmp_path / "b.parquet", ["a/2", "b/2", "c/1"], row_group_size=1)
    c, tc = _file(tmp_path / "c.parquet", ["e/2", "a/0", "e/1"])  # not sorted: read whole and sorted
    blocks = list(storage.sorted_blocks([a, b, c], "track_key", rows=3))
    assert [block.num_rows for block in blocks] == [3, 3, 3, 2]
    merged = pa.concat_tables(blocks)
    expected = pa.concat_tables([ta, tb, tc]).sort_by("track_key")
    assert merged.equals(expected)


def test_sorted_blocks_read_only_the_columns_asked(tmp_path, small_cursors):
    a, _ = _file(tmp_path / "a.parquet", ["x", "z"])
    b, _ = _file(tmp_path / "b.parquet", ["y"])
    merged = pa.concat_tables(storage.sorted_blocks([a, b], "track_key", ["value"], rows=2))
    assert merged.column_names == ["value"] and merged.column("value").to_pylist() == [1.0, 1.0, 2.0]


def test_blocks_of_two_files_line_up_whatever_their_row_groups(tmp_path):
    a, ta = _file(tmp_path / "a.parquet", [f"k{i}" for i in range(7)], row_group_size=3)
    b, _ = _file(tmp_path / "b.parquet", [f"k{i}" for i in range(7)], row_group_size=2)
    pairs = list(zip(storage.read_blocks(a, rows=4), storage.read_blocks(b, rows=4), strict=True))
    assert [(x.num_rows, y.num_rows) for x, y in pairs] == [(4, 4), (3, 3)]
    assert all(x.column("track_key").equals(y.column("track_key")) for x, y in pairs)
    assert pa.concat_tables(x for x, _ in pairs).equals(ta)


def test_written_blocks_make_one_table_and_no_block_still_has_the_columns(tmp_path):
    _, table = _file(tmp_path / "a.parquet", ["a", "b", "c", "d", "e"])
    written = storage.write_blocks((table.slice(i, 2) for i in range(0, 5, 2)), tmp_path / "out.parquet")
    assert pq.read_table(written).equals(table)
    assert pq.ParquetFile(written).num_row_groups == 3
    empty = storage.write_blocks(iter([]), tmp_path / "empty.parquet", table.schema)
    assert pq.read_table(empty).schema.names == ["track_key", "value"] and storage.row_count(empty) == 0


def test_a_tables_digest_does_not_depend_on_the_block_size(tmp_path, monkeypatch):
    path, _ = _file(tmp_path / "a.parquet", [f"k{i}" for i in range(9)])
    whole = changes.table_digest(path)
    monkeypatch.setattr(storage, "BLOCK_ROWS", 2)
    assert changes.table_digest(path) == whole
    _file(tmp_path / "a.parquet", [f"k{i}" for i in range(8)] + ["other"])
    assert changes.table_digest(path) != whole


def test_rows_of_a_sorted_file_are_found_by_key(tmp_path):
    path, _ = _file(tmp_path / "a.parquet", [f"k{i}" for i in range(9)])
    found = storage.rows_of(path, "track_key", ["k7", "k2", "missing"], ["value"])
    assert sorted(found.column("track_key").to_pylist()) == ["k2", "k7"]
