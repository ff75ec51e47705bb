"""The DAG on the CeleryExecutor: two Celery workers with different hostnames, PostgreSQL and Redis on
loopback, and the library and the data dir on object storage (SeaweedFS, S3 on loopback): the workers
share no folder. The shards spread over both workers, the recommendations equal those of the embedded
run, and a worker killed in the middle of a shard costs a retry on the other one, not the run.

`make test-distributed` runs this (it needs the machine's PostgreSQL and Redis).
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
import soundfile as sf

from musicrec.store import storage
from musicrec.store.locations import with_conn_id
from support.airflow_stack import AirflowStack, require_services
from support.audio import tone
from support.object_store import CONN_ID
from support.runs import run_stages

DAG = "music_recommendation"
RUN_TIMEOUT_S = 900
WORKERS = ("worker-a", "worker-b")
# Each shard's process pool takes the worker's cores (workers=0), as a deployment's would.
PARAMS = {"n_neighbors": 4, "n_components": 8, "files_per_shard": 4, "workers": 0}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """16 tones in 4 folders: 4 shards of 4 files; long enough that a shard takes seconds."""
    root = tmp_path_factory.mktemp("distributed") / "library"
    for f, base in enumerate((110.0, 440.0, 1760.0, 3520.0)):
        (root / f"folder{f}").mkdir(parents=True)
        for i in range(4):
            sf.write(root / f"folder{f}" / f"{i}.wav", tone(base * (1 + 0.1 * i), seconds=20.0), 22050)
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory, library, s3):
    require_services({5432: "PostgreSQL", 6379: "Redis"})
    home = tmp_path_factory.mktemp("celery-home")
    env = {
        "MUSICREC_LIBRARY": s3.upload(library, "distributed/library").replace(f"{CONN_ID}@", ""),
        "MUSICREC_DATA_DIR": s3.url("distributed/data").replace(f"{CONN_ID}@", ""),
        "MUSICREC_STORAGE_CONN_ID": CONN_ID,
        "NUMBA_CACHE_DIR": str(home / "numba-cache"),
        **s3.connection(),
    }
    airflow = AirflowStack(home, env, executor="CeleryExecutor")
    try:
        airflow.start()
        for name in WORKERS:
            airflow.start_worker(name)
        airflow.wait(lambda: airflow.api("GET", f"/dags/{DAG}").status_code == 200, 180, "the DAG to be parsed")
        assert airflow.api("PATCH", f"/dags/{DAG}", json={"is_paused": False}).status_code == 200
        yield airflow
    finally:
        airflow.stop()


def _trigger(stack, conf: dict) -> str:
    response = stack.api("POST", f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
    assert response.status_code in (200, 201), response.text
    return response.json()["dag_run_id"]


def _instances(stack, run_id: str) -> list[dict]:
    path = f"/dags/{DAG}/dagRuns/{run_id}/taskInstances"
    return stack.api("GET", path, params={"limit": 100}).json()["task_instances"]


def _finished(stack, run_id: str) -> dict:
    def done():
        run = stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    return stack.wait(done, RUN_TIMEOUT_S, f"run {run_id}", every_s=1.0)


def _data_dir(stack) -> str:
    """The triggered runs' data dir: not the default one, which the nightly run (started by unpausing) takes."""
    return stack.env["MUSICREC_DATA_DIR"] + "-triggered"


def _conf(stack, **extra) -> dict:
    return {"metadata_path": None, "data_dir": _data_dir(stack), **PARAMS, **extra}


def _published(stack, run_id: str, name: str):
    """A file of the run, read as the test's own client of the object storage."""
    return storage.run_dir(with_conn_id(_data_dir(stack), CONN_ID), run_id) / name


def test_shards_run_on_both_workers_and_give_the_embedded_runs_recommendations(stack, library, tmp_path):
    run_id = _trigger(stack, _conf(stack))
    assert _finished(stack, run_id)["state"] == "success", stack.log("scheduler")
    shards = [ti for ti in _instances(stack, run_id) if ti["task_id"] == "extract_features"]
    assert len(shards) == 4 and {ti["state"] for ti in shards} == {"success"}
    assert {ti["hostname"] for ti in shards} == set(WORKERS)

    embedded = run_stages(library, tmp_path / "embedded", "embedded", **PARAMS)
    distributed = storage.read_parquet(_published(stack, run_id, storage.RECOMMENDATIONS))
    expected = pd.read_parquet(embedded["build_index"]["path"])
    pd.testing.assert_frame_equal(
        distributed[["track_key", "rank", "neighbor_key"]], expected[["track_key", "rank", "neighbor_key"]]
    )
    assert distributed["distance"].to_numpy() == pytest.approx(expected["distance"].to_numpy(), abs=1e-6)


def test_a_worker_killed_in_the_middle_of_a_shard_costs_a_retry_not_the_run(stack):
    run_id = _trigger(stack, _conf(stack, full_refresh=True))

    def a_shard_under_way():
        for ti in _instances(stack, run_id):
            if ti["task_id"] == "extract_features" and ti["state"] == "running" and ti["hostname"] in WORKERS:
                return ti
        return None

    victim = stack.wait(a_shard_under_way, 300, "a shard to start", every_s=0.5)
    time.sleep(1.0)  # in the middle of its files
    stack.kill(victim["hostname"])
    assert _finished(stack, run_id)["state"] == "success", stack.log("scheduler")
    shards = {ti["map_index"]: ti for ti in _instances(stack, run_id) if ti["task_id"] == "extract_features"}
    retried = shards[victim["map_index"]]
    survivor = next(name for name in WORKERS if name != victim["hostname"])
    assert retried["state"] == "success" and retried["try_number"] >= 2 and retried["hostname"] == survivor
    features = storage.read_parquet(_published(stack, run_id, storage.FEATURES))
    assert len(features) == 16 and features["track_key"].is_unique
    summary = storage.read_json(_published(stack, run_id, storage.SUMMARY))
    assert summary["files_extracted"] == 16
