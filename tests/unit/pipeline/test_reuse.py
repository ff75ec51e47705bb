"""A run with nothing changed: the index stages reuse the current index's files, and `musicrec run` can tell
beforehand that a run would change nothing. The stages run as plain functions on real audio, without Airflow."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from musicrec import settings
from musicrec.pipeline import changes
from musicrec.store import storage
from support.audio import tone
from support.runs import run_stages

PARAMS = settings.defaults(".") | {"n_neighbors": 2, "n_components": 3}


def _run(library, data_dir, run_id: str, **changed) -> dict:
    return run_stages(library, data_dir, run_id, library / "metadata.csv", **(PARAMS | changed))


def _reused(stages: dict) -> dict:
    stage_names = ("scale", "reduce", "duplicates", "build_index", "mixes", "evaluate")
    return {name: stages[name].get("reused", False) for name in stage_names}


def test_a_run_with_nothing_changed_reuses_the_index_stages_of_the_current_index(tmp_path, library):
    data_dir = tmp_path / "data"
    first = _run(library, data_dir, "first")
    assert first["run"]["files_to_extract"] == 6 and _reused(first) == dict.fromkeys(_reused(first), False)
    second = _run(library, data_dir, "second")
    assert second["run"]["files_reused"] == 6
    assert all(_reused(second).values())
    for name in (storage.RECOMMENDATIONS, storage.EMBEDDINGS, storage.MODEL):
        assert (storage.run_dir(data_dir, "second") / name).read_bytes() == (
            storage.run_dir(data_dir, "first") / name
        ).read_bytes()
    # The records name the new run's files, which stay when the first run's folder goes.
    assert second["build_index"]["path"] == str(storage.run_dir(data_dir, "second") / storage.RECOMMENDATIONS)
    summary = storage.read_json(storage.require_current(data_dir) / storage.SUMMARY)
    assert summary["stages"]["build_index"]["reused"] is True


@pytest.mark.parametrize(
    "change, recomputed",
    [
        ({"n_neighbors": 3}, {"build_index"}),
        ({"hubness": "none"}, {"build_index", "evaluate"}),
        ({"n_components": 2}, {"reduce", "duplicates", "build_index", "mixes", "evaluate"}),
        ({"metadata_weight": 1.0}, {"scale", "reduce", "duplicates", "build_index", "mixes", "evaluate"}),
        ({"mixes": 3}, {"mixes"}),
    ],
)
def test_a_changed_parameter_recomputes_its_stage_and_those_after_it(tmp_path, library, change, recomputed):
    data_dir = tmp_path / "data"
    _run(library, data_dir, "first")
    second = _run(library, data_dir, "second", **change)
    assert {name for name, reused in _reused(second).items() if not reused} == recomputed
    recs = pd.read_parquet(storage.run_dir(data_dir, "second") / storage.RECOMMENDATIONS)
    assert recs.groupby("track_key").size().max() == second["build_index"]["neighbours"]


def test_a_changed_file_recomputes_every_index_stage(tmp_path, library):
    data_dir = tmp_path / "data"
    _run(library, data_dir, "first")
    sf.write(library / "a" / "1.wav", tone(880.0, seconds=0.7), 22050)
    second = _run(library, data_dir, "second")
    assert second["run"]["files_to_extract"] == 1
    assert not any(_reused(second).values())


def _unchanged(library, data_dir, **changed):
    params = PARAMS | changed
    return changes.unchanged_since_current(str(library), str(data_dir), [], str(library / "metadata.csv"), params)


def _touch(path):
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda lib: _touch(lib / "a" / "0.wav"), id="a file modified"),
        pytest.param(lambda lib: sf.write(lib / "b" / "new.wav", tone(500.0), 22050), id="a file added"),
        pytest.param(lambda lib: (lib / "b" / "2.wav").unlink(), id="a file removed"),
        pytest.param(lambda lib: (lib / "b" / "2.wav").write_bytes(b"not audio"), id="a file broken"),
        pytest.param(
            lambda lib: (lib / "metadata.csv").write_text("folder,file,artist\na,0.wav,Other\n"), id="metadata"
        ),
    ],
)
def test_a_run_would_change_the_index_when_any_input_changed(tmp_path, library, change):
    data_dir = tmp_path / "data"
    assert _unchanged(library, data_dir) is None  # no index yet
    _run(library, data_dir, "first")
    summary = _unchanged(library, data_dir)
    assert summary is not None and summary["run_id"] == "first"
    change(library)
    assert _unchanged(library, data_dir) is None


def _another_value(name: str, tmp_path):
    """A valid value of an index parameter other than the tests' own, from its declaration."""
    declared = settings.BY_NAME[name]
    if declared.choices:
        return next(c for c in declared.choices if c != PARAMS[name])
    if declared.type == "string":
        return str(tmp_path / name)
    return PARAMS[name] + 1


@pytest.mark.parametrize("name", settings.INDEX_PARAMS)
def test_every_index_parameter_changed_alone_makes_a_run_necessary_and_recomputes(tmp_path, library, name):
    """Made from the declaration: a parameter added there with shapes_index is checked here too, so that
    neither "nothing changed" nor a stage's reuse can overlook it. The playlists folder changes where the
    mixes go, not what any stage computes: the run writes them there."""
    data_dir = tmp_path / "data"
    _run(library, data_dir, "first")
    other = _another_value(name, tmp_path)
    assert _unchanged(library, data_dir, **{name: PARAMS[name]}) is not None
    assert _unchanged(library, data_dir, **{name: other}) is None
    second = _run(library, data_dir, "second", **{name: other})
    if name == "playlists_dir":
        assert all(_reused(second).values()) and any(Path(other).glob("*.m3u8"))
    else:
        assert not all(_reused(second).values())


def test_an_unchanged_quarantined_file_does_not_make_a_run_necessary(tmp_path, library):
    data_dir = tmp_path / "data"
    (library / "b" / "broken.wav").write_bytes(b"RIFF but not audio")
    _run(library, data_dir, "first")
    summary = _unchanged(library, data_dir)
    assert summary is not None and [q["track_key"] for q in summary["quarantined"]] == ["b/broken.wav"]


def test_a_damaged_summary_makes_a_run_necessary_not_an_error(tmp_path, library):
    data_dir = tmp_path / "data"
    _run(library, data_dir, "first")
    (storage.require_current(data_dir) / storage.SUMMARY).write_text("{not json")
    assert _unchanged(library, data_dir) is None
