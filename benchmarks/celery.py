"""The DAG on the CeleryExecutor with 1 and with 2 workers, against the embedded run, on the same library.

    python benchmarks/celery.py LIBRARY [--markdown benchmarks/CELERY.md]

Needs the machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379); starts SeaweedFS (S3 on
loopback). Every run extracts the whole library into a data dir of its own. The embedded run reads the
library from the local disk and writes a local data dir, then once more with both on object storage; the
Celery runs use object storage, as workers on several hosts would. The workers share this machine's
cores: with one worker, a shard at a time with a pool of as many processes as cores; with two, each worker
runs a shard at a time with an even share of the cores. The Celery runs are timed from the trigger to the
run's end, as the API reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from musicrec.airflow import runner  # noqa: E402
from musicrec.store import storage  # noqa: E402
from support.airflow_stack import AirflowStack  # noqa: E402
from support.object_store import CONN_ID, SeaweedFS  # noqa: E402

DAG = "music_recommendation"
FILES_PER_SHARD = 20


def embedded(library: str, data_dir: str, cores: int) -> dict:
    conf = {"library_path": library, "data_dir": data_dir, "metadata_path": None}
    conf |= {"files_per_shard": FILES_PER_SHARD, "workers": cores}
    started = time.monotonic()
    result = runner.run_in_child(conf, data_dir)
    if result.get("state") != "success":
        raise SystemExit(f"embedded run failed: {result}")
    return {"wall_s": time.monotonic() - started, "run_id": result["run_id"]}


def celery_run(stack: AirflowStack, library: str, data_dir: str, pool: int) -> dict:
    conf = {"library_path": library, "data_dir": data_dir, "metadata_path": None}
    conf |= {"files_per_shard": FILES_PER_SHARD, "workers": pool, "storage_conn_id": CONN_ID}
    started = time.monotonic()
    response = stack.api("POST", f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
    run_id = response.json()["dag_run_id"]

    def done():
        run = stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    run = stack.wait(done, 3600, f"run {run_id}", every_s=1.0)
    wall = time.monotonic() - started
    if run["state"] != "success":
        raise SystemExit(f"celery run failed:\n{stack.log('scheduler')}")
    instances = stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances", params={"limit": 200}).json()
    shards = [ti for ti in instances["task_instances"] if ti["task_id"] == "extract_features"]
    hosts = sorted({ti["hostname"] for ti in shards})
    return {"wall_s": wall, "run_id": run_id, "shards": len(shards), "hosts": hosts}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("library")
    p.add_argument("--markdown", default=str(HERE / "CELERY.md"))
    args = p.parse_args()
    library = Path(args.library).resolve()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="musicrec-celery-") as tmp:
        root = Path(tmp)
        local = embedded(str(library), str(root / "embedded"), cores)
        summary = storage.read_json(storage.run_dir(root / "embedded", local["run_id"]) / storage.SUMMARY)
        s3 = SeaweedFS(root / "seaweedfs").start()
        os.environ.update(s3.connection())
        home = root / "airflow"
        home.mkdir()
        stack = AirflowStack(home, {"NUMBA_CACHE_DIR": str(root / "numba"), **s3.connection()}, "CeleryExecutor")
        stack.env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = "1"
        try:
            started = time.monotonic()
            remote = s3.upload(library, "library")
            upload_s = time.monotonic() - started
            on_s3 = embedded(remote, s3.url("embedded"), cores)
            stack.start()
            stack.start_worker("worker-a")
            stack.wait(lambda: stack.api("GET", f"/dags/{DAG}").status_code == 200, 180, "the DAG to be parsed")
            stack.api("PATCH", f"/dags/{DAG}", json={"is_paused": False})
            stack.wait(lambda: _idle(stack), 900, "the nightly run that unpausing starts")
            plain = remote.replace(f"{CONN_ID}@", "")  # the Celery runs name the connection as a param
            one = celery_run(stack, plain, s3.url("one-worker"), pool=cores)
            stack.start_worker("worker-b")
            time.sleep(10)  # the second worker joins the queue
            two = celery_run(stack, plain, s3.url("two-workers"), pool=max(1, cores // 2))
        finally:
            stack.stop()
            s3.stop()
    lines = [
        "# The DAG on the CeleryExecutor, 1 and 2 workers, against the embedded run\n",
        f"{dt.date.today().isoformat()}, {platform.machine()}, {cores} cores, Python {platform.python_version()}; "
        f"`{library.name}`: {summary['files_found']} files, {summary['audio_hours']:.2f} h of audio, "
        f"{FILES_PER_SHARD} files a shard; every run extracts everything. Object storage: SeaweedFS on "
        f"loopback (uploading the library to it took {upload_s:.0f} s).\n",
        "| run | library and data dir | wall (s) | against the embedded run | shards | on |",
        "|---|---|---|---|---|---|",
        f"| embedded (`musicrec run`, one process, pool of {cores}) | local disk | {local['wall_s']:.1f} | 1.00x | | |",
        f"| embedded (`musicrec run`, one process, pool of {cores}) | S3 | {on_s3['wall_s']:.1f} | "
        f"{local['wall_s'] / on_s3['wall_s']:.2f}x | | |",
        f"| Celery, 1 worker (a shard at a time, pool of {cores}) | S3 | {one['wall_s']:.1f} | "
        f"{local['wall_s'] / one['wall_s']:.2f}x | {one['shards']} | {', '.join(one['hosts'])} |",
        f"| Celery, 2 workers (a shard each at a time, pool of {max(1, cores // 2)}) | S3 | {two['wall_s']:.1f} | "
        f"{local['wall_s'] / two['wall_s']:.2f}x | {two['shards']} | {', '.join(two['hosts'])} |",
        "",
        f"2 workers against 1: {one['wall_s'] / two['wall_s']:.2f}x.",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.markdown).write_text(text)
    print(text)
    return 0


def _idle(stack: AirflowStack) -> bool:
    runs = stack.api("GET", f"/dags/{DAG}/dagRuns", params={"limit": 20}).json()["dag_runs"]
    return bool(runs) and all(r["state"] in ("success", "failed") for r in runs)


if __name__ == "__main__":
    sys.exit(main())
