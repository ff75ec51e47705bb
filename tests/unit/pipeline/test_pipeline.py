"""The pipeline's stages as plain functions, without Airflow."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest
import soundfile as sf

from musicrec import cli
from musicrec.analysis import features
from musicrec.pipeline import stages
from musicrec.serve import query
from musicrec.store import storage
from support.audio import tone
from support.runs import published_with


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "library"
    (root / "a").mkdir(parents=True)
    for i in range(3):
        sf.write(root / "a" / f"{i}.wav", tone(220.0 * (i + 1), seconds=0.5), 22050)
    return root


def _last_index_with_features(data_dir, content: bytes | pd.DataFrame):
    run = storage.run_dir(data_dir, "last")
    run.mkdir(parents=True)
    if isinstance(content, bytes):
        (run / storage.FEATURES).write_bytes(content)
    else:
        storage.write_parquet(content, run / storage.FEATURES)
    storage.publish(data_dir, run)


@pytest.mark.parametrize(
    "content, why",
    [
        (b"PAR1 this is not a parquet file", "features.parquet is unreadable"),
        (pd.DataFrame({"track_key": ["a/0.wav"], "size_bytes": [1]}), "columns missing: mtime_ns"),
    ],
)
def test_a_damaged_features_table_in_the_last_index_means_extracting_again(tmp_path, library, content, why):
    data_dir = tmp_path / "data"
    _last_index_with_features(data_dir, content)
    run = stages.discover(str(library), str(data_dir), "next")
    assert run["files_to_extract"] == 3 and run["files_reused"] == 0
    assert len(run["warnings"]) == 1 and why in run["warnings"][0] and "extracted again" in run["warnings"][0]
    assert storage.read_json(storage.stage_record(run["run_dir"], "discover"))["warnings"] == run["warnings"]


def test_features_that_cannot_be_copied_though_their_keys_read_mean_extracting_again(tmp_path, library, monkeypatch):
    """discover plans from the last index's keys alone, then copies the reused rows a block at a time: a
    block that cannot be read (a damaged page) leaves every file to extract, with the reason."""
    data_dir = tmp_path / "data"
    first = stages.discover(str(library), str(data_dir), "first")
    extracted = stages.extract_shard(stages.shard(first, 10)[0], str(library), workers=1)
    _last_index_with_features(data_dir, storage.read_parquet(extracted["features"]))
    reading = storage.read_blocks

    def damaged(source, columns=None, rows=None):
        if columns is None:  # the copy reads every column; planning reads the keys only
            raise OSError("Couldn't deserialize thrift: TProtocolException: Invalid data")
        yield from reading(source, columns, rows)

    monkeypatch.setattr(storage, "read_blocks", damaged)
    run = stages.discover(str(library), str(data_dir), "next")
    assert run["files_to_extract"] == 3 and run["files_reused"] == 0
    assert "Invalid data" in run["warnings"][0] and "extracted again" in run["warnings"][0]
    assert storage.row_count(run["reused_features"]) == 0
    monkeypatch.setattr(storage, "read_blocks", reading)
    again = stages.discover(str(library), str(data_dir), "again")
    assert again["files_reused"] == 3 and storage.row_count(again["reused_features"]) == 3


def test_a_last_index_with_other_features_is_extracted_again_without_a_warning(tmp_path, library):
    data_dir = tmp_path / "data"
    first = stages.discover(str(library), str(data_dir), "first")
    extracted = stages.extract_shard(stages.shard(first, 10)[0], str(library), workers=1)
    older = storage.read_parquet(extracted["features"]).drop(columns=features.MUSICNN_COLUMNS)
    _last_index_with_features(data_dir, older)  # as an earlier version, without the network's columns, wrote it
    run = stages.discover(str(library), str(data_dir), "next")
    assert run["files_to_extract"] == 3 and run["files_reused"] == 0 and run["warnings"] == []


@pytest.mark.parametrize(
    "recs, message",
    [
        (b"garbage", "recommendations.parquet: not a readable Parquet table"),
        (pd.DataFrame({"track_key": ["a/1.ogg"], "neighbour": ["a/2.ogg"]}), "columns missing: rank, neighbor_key"),
        (
            pd.DataFrame(
                {
                    "track_key": ["a/1.ogg", "a/2.ogg"],
                    "rank": [1, 1],
                    "neighbor_key": ["a/2.ogg", "a/1.ogg"],
                    "distance": [float("nan"), 0.2],
                }
            ),
            "1 distances are missing or not numbers",
        ),
    ],
)
def test_a_damaged_published_index_gives_a_clear_error(tmp_path, capsys, recs, message):
    data_dir = published_with(tmp_path / "data", recs)
    with pytest.raises(query.DamagedIndex, match=message):
        query.recommend(data_dir, "a/1.ogg")
    assert cli.main(["recommend", "a/1.ogg", "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_query_is_refused(tmp_path, capsys, text):
    recs = pd.DataFrame({"track_key": ["a/1.ogg"], "rank": [1], "neighbor_key": ["a/2.ogg"], "distance": [0.1]})
    data_dir = published_with(tmp_path / "data", recs)
    assert cli.main(["recommend", text, "--data-dir", str(data_dir)]) == 2
    assert "the query is empty" in capsys.readouterr().err


@pytest.mark.parametrize("k", ["-1", "0"])
def test_k_below_one_is_refused(tmp_path, capsys, k):
    recs = pd.DataFrame({"track_key": ["a/1.ogg"], "rank": [1], "neighbor_key": ["a/2.ogg"], "distance": [0.1]})
    data_dir = published_with(tmp_path / "data", recs)
    with pytest.raises(SystemExit) as exited:
        cli.main(["recommend", "a/1.ogg", "--k", k, "--data-dir", str(data_dir)])
    assert exited.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    with pytest.raises(query.InvalidQuery, match="k must be at least 1"):
        query.recommend(data_dir, "a/1.ogg", int(k))


def test_discover_counts_what_it_skipped_with_the_reason(tmp_path, library):
    os.mkfifo(library / "a" / "pipe.wav")
    os.symlink(library, library / "a" / "loop")
    run = stages.discover(str(library), str(tmp_path / "data"), "r1")
    assert run["files_found"] == 3 and run["files_skipped"] == 2
    assert run["skipped"] == [
        {"path": "a/loop", "reason": "folder already walked (a link loop or a second link)"},
        {"path": "a/pipe.wav", "reason": "not a regular file (a FIFO)"},
    ]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"library": "/no/such/library"}, "library_path: folder not found: /no/such/library"),
        ({"metadata_path": "/no/such.csv"}, "metadata_path: file not found: /no/such.csv"),
        ({"data_dir": "/proc/musicrec"}, "data_dir: cannot write to /proc/musicrec"),
        ({"folders": ["../elsewhere"]}, "folders must be relative to the library"),
        ({"index_params": {"playlists_dir": "/etc/passwd"}}, "playlists_dir: a file, not a folder: /etc/passwd"),
    ],
)
def test_inputs_that_cannot_work_fail_before_any_work_naming_the_parameter(tmp_path, library, change, message):
    args = {"library": str(library), "data_dir": str(tmp_path / "data"), "run_id": "r1", **change}
    with pytest.raises(stages.InputError, match=re.escape(message)):
        stages.discover(**args)
    assert not (tmp_path / "data" / "runs").exists()


def test_a_run_id_run_again_gets_a_folder_of_its_own_and_reads_only_its_own_shards(tmp_path):
    """A backfill that reprocesses its date, or a cleared DAG run, runs the same run id again: it must not read
    the first attempt's shards (Airflow may hand on their results when this attempt has nothing to extract),
    nor write into the index that the first attempt published."""
    from support.runs import run_stages, small_library

    library = small_library(tmp_path / "library")
    data = tmp_path / "data"
    first = run_stages(library, data, "backfill__2026-11-28")
    published = storage.current_dir(data)
    recs = storage.read_parquet(published / storage.RECOMMENDATIONS)
    first_shards = [
        stages.extract_shard(s, str(library), workers=1) for s in stages.shard(first["run"], 100)
    ]  # as the first attempt's mapped task returned them

    again = stages.discover(str(library), str(data), "backfill__2026-11-28", [], False, None)
    assert again["run_dir"] != first["run"]["run_dir"] and again["run_dir"].endswith(".attempt-2")
    assert again["files_to_extract"] == 0 and again["files_reused"] == 9
    tracks = stages.join(again, first_shards, stages.clean_metadata(again, None))
    assert tracks["tracks"] == 9 and tracks["extract"]["extracted"] == 0
    assert storage.current_dir(data) == published  # the published index untouched
    assert storage.read_parquet(published / storage.RECOMMENDATIONS).equals(recs)
    assert storage.run_name(again["run_dir"]) == storage.run_name(first["run"]["run_dir"])


def test_a_rerun_in_a_folder_of_the_same_name_reads_only_its_own_shards(tmp_path, library):
    """Publishing prunes old run folders: a re-run of a run whose folder is gone gets the same name again,
    and the earlier attempt's shard results (handed on by Airflow) point into it."""
    data = tmp_path / "data"
    earlier = stages.discover(str(library), str(data), "scheduled__2026-12-02")
    stale = [stages.extract_shard(s, str(library), workers=1) for s in stages.shard(earlier, 2)]
    storage.remove_tree(storage.path(earlier["run_dir"]))  # pruned

    again = stages.discover(str(library), str(data), "scheduled__2026-12-02")
    assert again["run_dir"] == earlier["run_dir"]
    own = [stages.extract_shard(s, str(library), workers=1) for s in stages.shard(again, 3)]
    tracks = stages.join(again, own + stale[len(own) :], stages.clean_metadata(again, None))
    assert tracks["tracks"] == 3 and tracks["extract"]["shards"] == 1
