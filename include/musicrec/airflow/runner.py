"""Running the project's DAG once, in-process, on the embedded default (SQLite, no server).

Airflow is imported inside these functions, so that `musicrec` starts fast for commands that need none.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[3]
DAG_ID = "music_recommendation"


def configure(project_dir: Path = PROJECT_DIR) -> Path:
    """Airflow settings for the project, unless the environment already gives them. Returns AIRFLOW_HOME."""
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(project_dir / ".airflow")))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(project_dir / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(project_dir / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}")
    home.mkdir(parents=True, exist_ok=True)
    return home


def ensure_db(home: Path) -> None:
    """Create the metadata database on first use (`airflow db migrate`)."""
    conn = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if conn.startswith("sqlite:") and (home / "airflow.db").exists():
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


def run_once(conf: dict, quiet_airflow: bool = True) -> tuple[str, str, list[str]]:
    """Run the DAG once with `conf` as its params. Returns (state, run_id, ids of the tasks that failed).

    Tasks left undone because an upstream one failed are not listed: the failed ones are the cause.
    """
    home = configure()
    if quiet_airflow:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("TQDM_DISABLE", "1")  # Great Expectations' progress bars
    ensure_db(home)
    # dag.test() serves the task API in-process through starlette's test client, which warns about its own httpx use.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    dag = load_dag()
    dag_run = dag.test(run_conf=conf)
    failed = [
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else "")
        for ti in dag_run.get_task_instances()
        if ti.state == "failed"
    ]
    logging.getLogger("musicrec").debug("run %s ended %s", dag_run.run_id, dag_run.state)
    return str(dag_run.state), dag_run.run_id, failed
