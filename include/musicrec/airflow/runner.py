"""Running the project's DAG once, in-process, on the embedded default (SQLite, no server).

The in-process run has a metadata database of its own (`AIRFLOW_HOME/musicrec-run.db`), whatever the
environment names: a scheduler that shares a database schedules every running DAG run it finds there, so
beside `make airflow` (or any deployment) it would take over the in-process run's tasks, and the run would
show up in its UI. Runs of `musicrec run` are seen in the index they publish and in their own summary.

Airflow is imported inside these functions, so that `musicrec` starts fast for commands that need none.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from musicrec import settings

PROJECT_DIR = settings.PROJECT_DIR
DAG_ID = settings.DAG_ID
# Set in the child process of `musicrec run`: its one process runs every task of the run.
IN_PROCESS = "MUSICREC_IN_PROCESS"
# The in-process runs' own metadata database, in AIRFLOW_HOME, never a deployment's.
RUN_DATABASE = "musicrec-run.db"


def configure(project_dir: Path = PROJECT_DIR) -> Path:
    """Airflow settings for the project, unless the environment already gives them; the database is always the
    in-process runs' own. Returns AIRFLOW_HOME."""
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(project_dir / ".airflow")))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(project_dir / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(project_dir / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / RUN_DATABASE}"
    home.mkdir(parents=True, exist_ok=True)
    return home


def ensure_db(home: Path) -> None:
    """Create the in-process runs' database on first use (`airflow db migrate`)."""
    if (home / RUN_DATABASE).exists():
        return
    proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed:\n{proc.stderr[-3000:]}")


def load_dag(dags_folder: str | None = None):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder or os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError("DAG import errors:\n" + "\n".join(f"{k}: {v}" for k, v in bag.import_errors.items()))
    dag = bag.get_dag(DAG_ID)
    if dag is None:
        raise RuntimeError(f"DAG {DAG_ID!r} not found in {dags_folder}")
    return dag


def check_params(dag, conf: dict) -> None:
    """Raise InputError naming the first parameter that the DAG's params refuse, before any task runs."""
    from airflow.sdk.exceptions import ParamValidationError

    from musicrec.errors import InputError

    unknown = sorted(set(conf) - set(dag.params))
    if unknown:
        raise InputError(f"unknown parameters: {', '.join(unknown)}")
    for key, value in conf.items():
        try:
            dag.params.get_param(key).resolve(value=value)
        except ParamValidationError as exc:  # its message runs on with the whole JSON schema
            raise InputError(f"parameter {key}: {str(exc).strip().splitlines()[0]}") from None


def run_once(conf: dict, quiet_airflow: bool = True) -> dict:
    """Run the DAG once with `conf` as its params.

    Returns {"state", "run_id", "failed": the tasks that failed, "task_seconds": each task's duration,
    "setup_seconds": Airflow's start-up before the first task}. Tasks left undone because an upstream one
    failed are not listed: the failed ones are the cause.
    """
    started = time.monotonic()
    home = configure()
    if quiet_airflow:  # what went wrong is said by the run's own messages; Airflow's, with tracebacks, under -v
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "CRITICAL")
        os.environ.setdefault("TQDM_DISABLE", "1")  # Great Expectations' progress bars
    ensure_db(home)
    # dag.test() serves the task API in-process through starlette's test client, which warns about its own httpx use.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    dag = load_dag()
    check_params(dag, conf)
    logging.getLogger("musicrec").info("indexing %s into %s", conf.get("library_path"), conf.get("data_dir"))
    setup_s = time.monotonic() - started
    dag_run = dag.test(run_conf=conf)
    instances = dag_run.get_task_instances()
    failed = [_name(ti) for ti in instances if ti.state == "failed"]
    seconds = {_name(ti): round(ti.duration, 2) for ti in instances if ti.duration is not None}
    logging.getLogger("musicrec").debug("run %s ended %s", dag_run.run_id, dag_run.state)
    return {
        "state": str(dag_run.state),
        "run_id": dag_run.run_id,
        "failed": failed,
        "task_seconds": seconds,
        "setup_seconds": round(setup_s, 2),
    }


def _name(ti) -> str:
    return ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else "")


def run_in_child(conf: dict, data_dir: Path, verbose: bool = False) -> dict:
    """Run the DAG in a child process that Ctrl-C and SIGTERM stop, with its workers, publishing nothing.

    An in-process run catches these signals in its tasks and goes on to the next task, so the run is a
    process group of its own: on a signal it is terminated (then killed), and if the index moved in the
    meantime it is pointed back. Returns {"state", "run_id", "failed"}, or {"interrupted": signal number}.
    """
    from musicrec.store import storage

    before = storage.current_dir(data_dir)
    with tempfile.TemporaryDirectory(prefix="musicrec-run-") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "musicrec.airflow.runner", "--result", str(result_file), json.dumps(conf)]
        child = subprocess.Popen(cmd + (["--verbose"] if verbose else []), start_new_session=True)
        received = []

        def stop(signum, frame):
            received.append(signum)
            _stop_group(child)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if received:
            storage.restore_current(data_dir, before)
            return {"interrupted": received[0]}
        if not result_file.exists():
            return {
                "state": "failed",
                "run_id": None,
                "failed": [],
                "error": f"the run ended with code {child.returncode}",
            }
        return json.loads(result_file.read_text())


def _stop_group(child: subprocess.Popen, grace_s: float = 3.0) -> None:
    """SIGTERM the child's process group (the run, its pool workers, ffmpeg), then SIGKILL what is left."""
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """End this run when `musicrec run`, its parent, is killed outright (SIGKILL leaves it no time to stop
    its child): an orphaned run would go on and publish an index nobody asked for any more. Linux's
    PR_SET_PDEATHSIG; elsewhere nothing is done."""
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call: it would never fire
        os._exit(1)


class _ErrorsSaid(logging.Handler):
    """The run's own error messages (a task's bad input, say), for the closing lines of `musicrec run`."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() not in self.said:  # two tasks that hit a full disk say so once
            self.said.append(record.getMessage())


def main(argv: list[str] | None = None) -> int:
    """The child process of `run_in_child`: one run, its result written as JSON."""
    import argparse

    from musicrec.errors import InputError
    from musicrec.progress import show_progress

    parser = argparse.ArgumentParser(prog="python -m musicrec.airflow.runner")
    parser.add_argument("--result", required=True)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("conf")
    args = parser.parse_args(argv)
    _die_with_parent()
    show_progress(args.verbose)
    errors = _ErrorsSaid()
    logging.getLogger("musicrec").addHandler(errors)
    os.environ[IN_PROCESS] = "1"
    try:
        result = run_once(json.loads(args.conf), quiet_airflow=not args.verbose) | {"errors": errors.said}
    except InputError as exc:
        result = {"state": "refused", "run_id": None, "failed": [], "error": str(exc)}
    Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
