"""Airflow's real components on loopback for the integration tests: api-server, scheduler, dag-processor,
and for the CeleryExecutor, Celery workers.

A PostgreSQL database of its own (the machine's server on 127.0.0.1:5432); with Celery, the machine's Redis
(127.0.0.1:6379) as the broker, on a queue of its own. Every process is stopped by PID, with its children,
whatever happens to the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parents[2]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = "redis://127.0.0.1:6379/0"
TESTS_DIR = Path(__file__).resolve().parents[1]
# The `airflow` console script, as a user starts each component: a task's process pool must cope with it
# as `__main__` (started as `python -m airflow`, it hid a crash of every two-process shard).
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def require_services(services: dict[int, str]) -> None:
    """Skip the test when a server it needs is not on loopback ({port: name}), or psql is missing; in CI,
    fail instead: there they are part of the machine."""
    import shutil

    import pytest

    missing = [f"{name} on 127.0.0.1:{port}" for port, name in services.items() if not _listening(port)]
    if shutil.which("psql") is None:
        missing.append("the psql client")
    if missing:
        message = "needs " + ", ".join(missing)
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", PG["host"], "-p", str(PG["port"]), "-U", PG["user"], "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
    )


class AirflowStack:
    """Start with `start()`, talk to it with `api()`, stop with `stop()` (also on failure)."""

    def __init__(self, home: Path, extra_env: dict[str, str], executor: str = "LocalExecutor"):
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = f"musicrec_test_{uuid.uuid4().hex[:10]}"
        self.processes: dict[str, subprocess.Popen] = {}
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({"admin": "admin-pw"}))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "MUSICREC_"))},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{self.database}"
            ),
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "musicrec-test-secret-" + uuid.uuid4().hex,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "TQDM_DISABLE": "1",
            **(self._celery_env() if executor == "CeleryExecutor" else {}),
            **extra_env,
        }
        self.token = None

    def _celery_env(self) -> dict[str, str]:
        queue = f"musicrec-{uuid.uuid4().hex[:8]}"  # other runs on the same Redis never take these tasks
        return {
            "AIRFLOW__CELERY__BROKER_URL": REDIS,
            "AIRFLOW__CELERY__RESULT_BACKEND": (
                f"db+postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.database}"
            ),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            # Each worker reports its own name as the task instances' hostname (they share one machine).
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "support.worker_hostname.get",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])),
            # A task whose worker died is noticed within seconds, not the default five minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        }

    def start_worker(self, name: str) -> subprocess.Popen:
        """A Celery worker called `name` (its task instances' hostname), on this stack's queue."""
        queue = self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
        return self._airflow(
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@127.0.0.1",
            "--queues",
            queue,
            "--without-mingle",
            "--without-gossip",
            name=name,
            env={"MUSICREC_WORKER_NAME": name},
        )

    def kill(self, name: str) -> None:
        """SIGKILL a component with every process it started, as when its host goes away."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=10)

    def _airflow(self, *args: str, name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "w")  # noqa: SIM115 - the process writes it until stopped
        process = subprocess.Popen(
            [AIRFLOW, *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_DIR,
            start_new_session=True,  # its own process group: stopped with its children
        )
        self.processes[name] = process
        return process

    def start(self, timeout_s: float = 180) -> AirflowStack:
        _psql(f"CREATE DATABASE {self.database}")
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=self.env, check=True, capture_output=True
        )
        self._airflow("api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1", name="api")
        self._airflow("scheduler", name="scheduler")
        self._airflow("dag-processor", name="dag-processor")
        self.wait(lambda: self._healthy(), timeout_s, "the API server to answer")
        self.token = requests.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": "admin-pw"}, timeout=10
        ).json()["access_token"]
        return self

    def _healthy(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"airflow {name} exited:\n{self.log(name)}")
        try:
            return requests.get(f"{self.base}/api/v2/monitor/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def log(self, name: str, tail: int = 4000) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")[-tail:]

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, f"{self.base}/api/v2{path}", headers=headers, timeout=30, **kwargs)

    def wait(self, condition, timeout_s: float, what: str, every_s: float = 2.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(every_s)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{self.log('scheduler')}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        try:
            _psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        except subprocess.CalledProcessError:
            pass
