"""The DAG under Airflow's real scheduler: the nightly run, a manual trigger, a backfill over dated folders,
and a run that finds the data dir busy."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest

from musicrec import demo
from musicrec.store import lock, storage
from support.airflow_stack import AirflowStack, require_services

DAG = "music_recommendation"
RUN_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("scheduled") / "library"
    demo.make_library(root, tracks_per_style=3, seconds=(4.0, 6.0))  # 12 tracks and a broken file
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory, library):
    require_services({5432: "PostgreSQL"})
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        "MUSICREC_LIBRARY": str(library),
        "MUSICREC_METADATA": str(library / "metadata.csv"),
        "MUSICREC_DATA_DIR": str(home / "data"),
        "MUSICREC_FILES_PER_SHARD": "4",
        "MUSICREC_WORKERS": "1",
        "MUSICREC_N_NEIGHBORS": "5",
        "NUMBA_CACHE_DIR": str(home / "numba-cache"),
    }
    airflow = AirflowStack(home, env)
    try:
        airflow.start()
        yield airflow
    finally:
        airflow.stop()


def _runs(stack) -> list[dict]:
    return stack.api("GET", f"/dags/{DAG}/dagRuns", params={"limit": 100}).json()["dag_runs"]


def _finished(stack, run_id: str) -> dict:
    def done():
        run = stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    return stack.wait(done, RUN_TIMEOUT_S, f"run {run_id}")


def _task_states(stack, run_id: str) -> dict[str, list[str]]:
    instances = stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).json()
    states: dict[str, list[str]] = {}
    for ti in instances["task_instances"]:
        states.setdefault(ti["task_id"], []).append(ti["state"])
    return states


def _summary(stack, run_id: str) -> dict:
    return storage.read_json(storage.run_dir(stack.env["MUSICREC_DATA_DIR"], run_id) / storage.SUMMARY)


def _trigger(stack, conf: dict) -> str:
    response = stack.api("POST", f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
    assert response.status_code in (200, 201), response.text
    return response.json()["dag_run_id"]


def test_the_nightly_run_manual_triggers_backfills_and_the_lock(stack, library):
    data_dir = stack.env["MUSICREC_DATA_DIR"]
    stack.wait(lambda: stack.api("GET", f"/dags/{DAG}").status_code == 200, 180, "the DAG to be parsed")

    # Unpausing starts the latest nightly interval at once.
    assert stack.api("PATCH", f"/dags/{DAG}", json={"is_paused": False}).status_code == 200
    nightly = stack.wait(lambda: [r for r in _runs(stack) if r["run_type"] == "scheduled"], 120, "the nightly run")[0]
    assert _finished(stack, nightly["dag_run_id"])["state"] == "success"
    states = _task_states(stack, nightly["dag_run_id"])
    assert states["extract_features"] == ["success"] * 4  # 13 files, 4 a shard
    assert states["publish"] == ["success"] and states["release_lock"] == ["success"]
    summary = _summary(stack, nightly["dag_run_id"])
    assert summary["files_extracted"] == 12 and [q["track_key"] for q in summary["quarantined"]] == [
        "deep_drones/broken download.mp3"
    ]
    assert storage.require_current(data_dir) == storage.run_dir(data_dir, nightly["dag_run_id"])

    # A manual trigger with a conf, nothing changed: a new index, nothing extracted, the broken file not retried.
    manual = _trigger(stack, {"n_neighbors": 3})
    assert _finished(stack, manual)["state"] == "success"
    assert _task_states(stack, manual)["extract_features"] == ["skipped"]
    summary = _summary(stack, manual)
    assert summary["files_extracted"] == 0 and summary["files_reused"] == 12 and len(summary["quarantined"]) == 1
    current = storage.require_current(data_dir)
    assert current == storage.run_dir(data_dir, manual)
    assert pd.read_parquet(current / storage.RECOMMENDATIONS).groupby("track_key").size().eq(3).all()

    # A backfill over two dates, a folder for each, with the code of the README's `make backfill`.
    for day, style in (("2026-11-10", "chip_arps"), ("2026-11-11", "soft_keys")):
        folder = library / "incoming" / day
        folder.mkdir(parents=True)
        for source in sorted((library / style).iterdir())[:2]:
            shutil.copy2(source, folder / f"new {source.name}")
    backfill = [sys.executable, "-m", "musicrec.airflow.backfill", "--from", "2026-11-10", "--to", "2026-11-11"]
    backfill += ["--folder-template", "incoming/{{ ds }}"]
    subprocess.run(backfill, env=stack.env, check=True, capture_output=True, timeout=120)
    dated = stack.wait(
        lambda: sorted((r for r in _runs(stack) if r["run_type"] == "backfill"), key=lambda r: r["logical_date"]),
        120,
        "the backfill's runs",
    )
    assert [r["logical_date"][:10] for r in dated] == ["2026-11-10", "2026-11-11"]
    for run in dated:
        assert _finished(stack, run["dag_run_id"])["state"] == "success"
    first, second = (_summary(stack, r["dag_run_id"]) for r in dated)
    assert first["files_extracted"] == 2 and first["tracks_indexed"] == 14
    assert second["files_extracted"] == 2 and second["tracks_indexed"] == 16  # built on the first one's index
    tracks = pd.read_parquet(storage.require_current(data_dir) / storage.TRACKS)
    assert tracks["track_key"].str.startswith("incoming/").sum() == 4

    # A run that finds the data dir held by another run fails at once, naming it; the index stays.
    before = storage.require_current(data_dir)
    lock.acquire(data_dir, "a-run-elsewhere")
    try:
        busy = _trigger(stack, {"lock_wait_minutes": 0})
        assert _finished(stack, busy)["state"] == "failed"
        states = _task_states(stack, busy)
        assert states["take_lock"] == ["failed"] and states["discover"] == ["upstream_failed"]
        assert lock.holder(data_dir)["holder"] == "a-run-elsewhere"
        assert storage.require_current(data_dir) == before
    finally:
        lock.release(data_dir, "a-run-elsewhere")
