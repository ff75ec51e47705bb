"""The fixed cost of one mapped shard under Airflow's real scheduler, and the shard size it implies.

    python benchmarks/shard_overhead.py LIBRARY [--files-per-shard 8] [--limit 48]

Starts Airflow's components on loopback (api-server, scheduler, dag-processor; LocalExecutor on a
PostgreSQL database of its own, as the integration tests do), runs the DAG once over the first `--limit`
files of LIBRARY in shards of `--files-per-shard`, and compares, for every mapped shard, the time from
being queued to finishing with the time its extraction itself took (the shard's own record). The rest is
the shard's fixed cost: queueing, the task process's start-up and imports, the pool's start.
Writes benchmarks/SHARDS.md (or --markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from musicrec.library import discover  # noqa: E402
from musicrec.store import storage  # noqa: E402
from support.airflow_stack import AirflowStack  # noqa: E402

DAG = "music_recommendation"


def _seconds(start: str, end: str) -> float:
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("library")
    p.add_argument("--files-per-shard", type=int, default=8)
    p.add_argument("--limit", type=int, default=16, help="files taken from LIBRARY (two shards at the default)")
    p.add_argument("--markdown", default=str(HERE / "SHARDS.md"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="musicrec-shards-") as tmp:
        home = Path(tmp)
        library = home / "library"
        for key in discover.scan(args.library).files["track_key"].head(args.limit):
            (library / key).parent.mkdir(parents=True, exist_ok=True)
            os.symlink((Path(args.library) / key).resolve(), library / key)
        env = {
            "MUSICREC_LIBRARY": str(library),
            "MUSICREC_DATA_DIR": str(home / "data"),
            "MUSICREC_FILES_PER_SHARD": str(args.files_per_shard),
            "NUMBA_CACHE_DIR": str(home / "numba"),
        }
        stack = AirflowStack(home, env)
        try:
            stack.start()
            stack.wait(lambda: stack.api("GET", f"/dags/{DAG}").status_code == 200, 180, "the DAG")
            stack.api("PATCH", f"/dags/{DAG}", json={"is_paused": False})
            run = stack.wait(lambda: stack.api("GET", f"/dags/{DAG}/dagRuns").json()["dag_runs"], 120, "a run")[0]
            run_id = run["dag_run_id"]
            state = stack.wait(
                lambda: (
                    stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}").json()["state"] in ("success", "failed")
                    and stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}").json()
                ),
                1800,
                "the run",
            )["state"]
            instances = stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances", params={"limit": 500}).json()
        finally:
            stack.stop()
        run_dir = storage.run_dir(env["MUSICREC_DATA_DIR"], run_id)
        rows = []
        for ti in instances["task_instances"]:
            if ti["task_id"] != "extract_features":
                continue
            record = storage.read_json(storage.stage_record(run_dir, f"extract-{ti['map_index']:04d}"))
            total = _seconds(ti["queued_when"], ti["end_date"])
            rows.append((ti["map_index"], record["files"], total, record["seconds"], total - record["seconds"]))
        others = [ti for ti in instances["task_instances"] if ti["task_id"] != "extract_features" and ti["end_date"]]
    per_file = sum(r[3] for r in rows) / sum(r[1] for r in rows)
    fixed = statistics.median(r[4] for r in rows)
    lines = [
        f"# The fixed cost of a shard under the scheduler\n\n{dt.date.today().isoformat()}, {os.cpu_count()} cores, "
        f"LocalExecutor; run {state}; {sum(r[1] for r in rows)} files of `{Path(args.library).name}` in "
        f"{len(rows)} shards of {args.files_per_shard}.\n",
        "| shard | files | queued to done (s) | extraction (s) | fixed cost (s) |",
        "|---|---|---|---|---|",
        *[f"| {i} | {n} | {t:.1f} | {e:.1f} | {f:.1f} |" for i, n, t, e, f in sorted(rows)],
        "",
        f"- fixed cost of a shard (median): **{fixed:.1f} s**; extraction: {per_file:.2f} s a file",
        f"- for the fixed cost to stay under 10% of a shard's time (fixed <= 0.1 x (fixed + n x per file)), "
        f"a shard needs n >= 9 x fixed / per file = **{9 * fixed / per_file:.0f} files**",
        "- other tasks, queued to done (s): "
        + ", ".join(
            f"{ti['task_id']} {_seconds(ti['queued_when'], ti['end_date']):.1f}" for ti in others if ti["queued_when"]
        ),
    ]
    text = "\n".join(lines) + "\n"
    Path(args.markdown).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
