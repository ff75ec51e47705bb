"""Fixtures the integration tests share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from support.airflow_stack import free_port
from support.project import PROJECT_DIR


@pytest.fixture(scope="module")
def api_server(airflow_db, small_index, tmp_path_factory):
    """Airflow's api-server, started by its console script, with the plugin's page over `small_index`; users
    "reader" (viewer) and "nobody" (no role)."""
    home = tmp_path_factory.mktemp("api-server")
    data_dir = small_index
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"reader": "reader-pw", "nobody": "nobody-pw"}))
    port = free_port()
    env = {
        **os.environ,
        "MUSICREC_DATA_DIR": str(data_dir),
        "MUSICREC_MAX_UPLOAD_MB": "0.01",
        "MUSICREC_UPLOAD_IDLE_S": "3",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        # "nobody" logs in but has no role: no access to any DAG.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "reader:viewer,nobody:",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "a-test-secret-that-is-long-enough-for-hs512-signing-0123456789",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = open(home / "api-server.log", "w")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("airflow")),
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=PROJECT_DIR,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, (home / "api-server.log").read_text()[-3000:]
        try:
            if requests.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(1)
    else:
        raise AssertionError("the API server did not start:\n" + (home / "api-server.log").read_text()[-3000:])
    yield base
    server.terminate()
    server.wait(timeout=30)
    log.close()
