"""docker-compose.yaml, the Dockerfile and .env.example, checked without a Docker engine: against the compose
specification (its schema as pydantic models, and the compose-spec parser) and against this project's settings."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from compose_spec import ComposeSpecification, PyCompose

from support.project import PROJECT_DIR

COMPOSE = PROJECT_DIR / "docker-compose.yaml"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}


def _example_env() -> dict[str, str]:
    lines = (PROJECT_DIR / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def _interpolated(text: str, env: dict[str, str]) -> str:
    """`${VAR}`, `${VAR:-default}` and `${VAR:?error}` replaced as compose does; `$$` is a literal `$`."""

    def value(match: re.Match) -> str:
        name, default = match.group(1), match.group(3) or ""
        if name not in env and match.group(2) == ":?":
            raise KeyError(f"{name} must be set: {default}")
        return env.get(name, default if match.group(2) == ":-" else "")

    replaced = re.sub(r"(?<!\$)\$\{([A-Z0-9_]+)(?:(:[-?])([^}]*))?\}", value, text)
    return replaced.replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict:
    # With .env.example's values, anchors and merge keys resolved: what compose would run.
    return yaml.safe_load(_interpolated(COMPOSE.read_text(), _example_env()))


def test_the_file_follows_the_compose_specification(compose):
    ComposeSpecification.model_validate(compose)
    assert set(PyCompose.from_json(json.dumps(compose)).service_names()) == set(compose["services"])


def test_the_services_of_airflows_official_shape_each_with_a_health_check(compose):
    services = compose["services"]
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "redis", "seaweedfs"}
    for name, service in services.items():
        if name != "airflow-init":
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale airflow-worker=N` works
    assert worker["command"] == "celery worker"
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_airflow_runs_the_built_image_with_its_settings(compose):
    from airflow.configuration import conf

    known = conf.configuration_description  # Airflow's settings and its providers' (Celery's)
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service["build"] == "." and service["image"] == "musicrec-airflow:latest"
        env = service["environment"]
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in env
        for key in (k for k in env if k.startswith("AIRFLOW__")):
            section, option = key.removeprefix("AIRFLOW__").lower().split("__", 1)
            assert option in known.get(section, {}).get("options", {}), f"{name}: {key} is no Airflow setting"
        musicrec = {k for k in env if k.startswith("MUSICREC_")} - {"MUSICREC_ADMIN_PASSWORD"}
        read = set(re.findall(r"MUSICREC_[A-Z0-9_]+", (PROJECT_DIR / "include/musicrec/settings.py").read_text()))
        assert musicrec <= read, f"{name}: {musicrec - read} are read by nothing"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        volumes = service["volumes"]
        assert "airflow-logs:/opt/airflow/logs" in volumes
        assert any(v.endswith(":/music:ro") for v in volumes)  # the library, read-only
        assert service["depends_on"]["seaweedfs"]["condition"] == "service_healthy"


def test_the_data_dir_is_on_the_object_storage_service_through_an_airflow_connection(compose):
    from airflow.models.connection import Connection

    storage = compose["services"]["seaweedfs"]
    assert "musicrec-data:/data" in storage["volumes"] and "-dir=/data" in storage["command"]
    assert "-bucket=musicrec" in storage["command"]
    port = int(storage["expose"][0])
    assert f"http://127.0.0.1:{port}/healthz" in storage["healthcheck"]["test"]
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["MUSICREC_DATA_DIR"] == "s3://musicrec/data"
        conn_id = env["MUSICREC_STORAGE_CONN_ID"]
        conn = Connection.from_json(env[f"AIRFLOW_CONN_{conn_id.upper()}"], conn_id=conn_id)
        assert conn.conn_type == "aws" and conn.extra_dejson["endpoint_url"] == f"http://seaweedfs:{port}"
        example = _example_env()
        assert (conn.login, conn.password) == (example["S3_ACCESS_KEY"], example["S3_SECRET_KEY"])
        assert (storage["environment"]["AWS_ACCESS_KEY_ID"], storage["environment"]["AWS_SECRET_ACCESS_KEY"]) == (
            conn.login,
            conn.password,
        )


def test_the_login_the_readme_gives_is_written_where_the_api_server_reads_it(compose):
    init, api = compose["services"]["airflow-init"], compose["services"]["airflow-apiserver"]
    passwords = init["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert passwords in "\n".join(init["command"]) and passwords.startswith("/opt/airflow/auth/")
    assert "airflow-auth:/opt/airflow/auth" in init["volumes"] and "airflow-auth:/opt/airflow/auth" in api["volumes"]
    assert api["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"


def test_secrets_come_from_an_uncommitted_env_file_that_the_example_documents():
    text = COMPOSE.read_text()
    required = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+):\?", text))
    assert {"POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "MUSICREC_ADMIN_PASSWORD", "S3_SECRET_KEY"} <= required
    example = _example_env()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)[:}]", text))
    assert used <= set(example), f"{used - set(example)} are not in .env.example"
    assert ".env" in (PROJECT_DIR / ".gitignore").read_text().splitlines()
    assert "change-me" not in text  # no default secret in the compose file itself


def test_the_image_is_the_official_airflow_of_the_pinned_version_with_the_decoder():
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    requirements = (PROJECT_DIR / "requirements.txt").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", requirements, re.M).group(1)
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned)}-python3\.11$", dockerfile, re.M)
    # the decoder's libraries come with the PyAV wheel of the runtime lock, which the image installs as it is
    assert re.search(r"^av==", requirements, re.M)
    assert "pip install --no-cache-dir -r /opt/musicrec/requirements.txt" in dockerfile
    assert "COPY --chown=airflow:root requirements-dev" not in dockerfile
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in dockerfile
