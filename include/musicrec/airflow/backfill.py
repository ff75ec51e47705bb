"""`make backfill`: Airflow's `airflow backfill create` for the project's DAG, as a person means it.

- `--from` and `--to` are dates, both included: the runs of every schedule time on those days.
- Airflow allows one running backfill per DAG, and a backfill counts as running until the scheduler has
  marked it complete, a little after its last run ended. A second backfill asked for meanwhile waits for it
  (saying so) instead of failing with `AlreadyRunningBackfill`.
- Airflow's own start-up logs are left out; a failure ends with Airflow's one-line reason.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from musicrec.airflow.runner import DAG_ID

WAIT_S = 900.0
POLL_S = 5.0
BUSY = "AlreadyRunningBackfill"
# SQLite, the embedded default, lets one writer in at a time: while the scheduler writes, Airflow's CLI can
# find the database locked. That passes; it is waited out like a running backfill.
LOCKED = "database is locked"


def command(args: argparse.Namespace) -> list[str]:
    cmd = [
        str(Path(sys.executable).parent / "airflow"),
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        args.from_date,
        "--to-date",
        f"{args.to_date}T23:59:59",
        "--max-active-runs",
        "1",
        "--reprocess-behavior",
        args.reprocess,
    ]
    if args.folder_template:
        cmd += ["--dag-run-conf", json.dumps({"folder_template": args.folder_template})]
    return cmd


def reason(output: str) -> str:
    """Airflow's own sentence: the last line of its traceback, or of what it printed."""
    lines = [line for line in output.strip().splitlines() if line.strip() and "sqlalche.me/e/" not in line]
    return lines[-1] if lines else "no output"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="from_date", required=True, help="first date, YYYY-MM-DD")
    parser.add_argument("--to", dest="to_date", required=True, help="last date, YYYY-MM-DD (included)")
    parser.add_argument("--reprocess", choices=["none", "failed", "completed"], default="none")
    parser.add_argument("--folder-template", help="the folder each date ingests, e.g. incoming/{{ ds }}")
    args = parser.parse_args(argv)
    env = os.environ | {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    deadline = time.monotonic() + WAIT_S
    said_waiting = False
    while True:
        done = subprocess.run(command(args), env=env, capture_output=True, text=True)
        output = done.stdout + done.stderr
        if done.returncode == 0:
            print(output.strip())
            print(f"backfill of {DAG_ID} from {args.from_date} to {args.to_date} created: the scheduler runs it now")
            return 0
        if (BUSY not in output and LOCKED not in output) or time.monotonic() > deadline:
            print(f"error: {reason(output)}", file=sys.stderr)
            return 1
        if BUSY in output and not said_waiting:
            print(f"waiting for the backfill of {DAG_ID} that is still running to finish ...", file=sys.stderr)
            said_waiting = True
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main())
