"""The library and the data dir on object storage: a real S3 server (SeaweedFS) on loopback, reached through
an Airflow connection, and real DAG runs that read their audio from it and publish their index to it."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from musicrec import cli, errors
from musicrec.airflow import api
from musicrec.pipeline import inputs, publishing
from musicrec.store import lock, storage
from support.object_store import BUCKET, CONN_ID
from support.plugin import plugin_client
from support.project import PROJECT_DIR
from support.runs import run_stages, small_library


def _prefix(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _run(data: str, name: str):
    run = storage.run_dir(data, name)
    storage.write_parquet(pd.DataFrame({"track_key": ["a"]}), run / storage.WORKLIST)
    storage.write_json({"run_id": name}, run / storage.SUMMARY)
    return run


def test_publishing_switches_a_pointer_object_and_keeps_the_last_good_index(s3):
    data = s3.url(_prefix("publish"))
    good_1 = _run(data, "good-1")
    storage.publish(data, good_1)
    assert storage.current_dir(data) == good_1
    assert s3.filesystem().cat(f"{data.split('@', 1)[1]}/current") == b"runs/good-1\n"
    time.sleep(1.1)  # object times have a resolution of a second: pruning goes by them
    failed = [_run(data, f"failed-{i}") for i in range(3)]
    time.sleep(1.1)
    good_2 = _run(data, "good-2")
    storage.publish(data, good_2, keep=2)
    assert storage.current_dir(data) == good_2 and storage.previous_dir(data) == good_1
    assert storage.read_json(storage.current_dir(data) / storage.SUMMARY) == {"run_id": "good-2"}
    assert good_1.exists() and sum(run.exists() for run in failed) == 1  # the newest 2 and previous are kept
    assert storage.rollback(data) == (good_1, good_2)
    assert storage.current_dir(data) == good_1


def test_a_damaged_pointer_is_named_not_followed(s3):
    data = s3.url(_prefix("pointer"))
    storage.write_text("../../elsewhere\n", storage.path(data) / storage.CURRENT)
    with pytest.raises(ValueError, match="not a pointer to a run folder"):
        storage.current_dir(data)


def test_one_run_at_a_time_holds_a_data_dir_on_object_storage(s3):
    data = s3.url(_prefix("lock"))
    lock.acquire(data, "run-a")
    with pytest.raises(lock.DataDirBusy, match="run-a"):
        lock.acquire(data, "run-b")
    assert lock.acquire(data, "run-a")["holder"] == "run-a"  # a retried task of the holder
    assert not lock.release(data, "run-b") and lock.release(data, "run-a")
    storage.write_text('{"holder": "gone", "heartbeat": 0}', storage.path(data) / lock.LOCK)  # a dead run's
    assert lock.acquire(data, "run-b")["holder"] == "run-b"


def test_refused_credentials_are_named_before_any_work(s3, monkeypatch):
    bad = {"conn_type": "aws", "login": s3.key, "password": "wrong", "extra": {"endpoint_url": s3.endpoint}}
    monkeypatch.setenv("AIRFLOW_CONN_MUSICREC_BAD", json.dumps(bad))
    with pytest.raises(errors.InputError, match="data_dir: cannot write to s3://musicrec_bad@"):
        publishing.take_lock(f"s3://musicrec_bad@{BUCKET}/{_prefix('refused')}", "run")


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "music_recommendation.py"))
    assert bag.import_errors == {}
    return bag.get_dag("music_recommendation")


def test_a_dag_run_reads_the_library_from_and_publishes_to_object_storage(s3, dag, tmp_path, monkeypatch):
    library = small_library(tmp_path / "library")
    (library / "high" / "broken.mp3").write_bytes(b"not audio at all" * 100)
    prefix = _prefix("dag")
    plain = lambda url: url.replace(f"{CONN_ID}@", "")  # noqa: E731 - the connection comes from the param
    conf = {
        "library_path": plain(s3.upload(library, f"{prefix}/library")),
        "metadata_path": plain(s3.url(f"{prefix}/library/metadata.csv")),
        "data_dir": plain(s3.url(f"{prefix}/data")),
        "storage_conn_id": CONN_ID,
        "n_neighbors": 3,
        "n_components": 3,
        "files_per_shard": 4,
        "workers": 1,
        "folders": [],
        "folder_template": None,
        "full_refresh": False,
    }
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the audio is downloaded to, then removed
    assert dag.test(run_conf=conf).state == "success"
    data = s3.url(f"{prefix}/data")
    summary = storage.read_json(storage.current_dir(data) / storage.SUMMARY)
    assert summary["files_extracted"] == 9 and summary["tracks_indexed"] == 9
    assert summary["tracks_with_metadata"] == 8  # the metadata file was read from the bucket too
    [broken] = summary["quarantined"]
    assert broken["track_key"] == "high/broken.mp3" and "not readable as audio" in broken["error"]
    # Nothing downloaded is left (multiprocessing's own pymp- folder lives as long as its fork server).
    assert [p for p in scratch.iterdir() if not p.name.startswith("pymp-")] == []
    assert (storage.current_dir(data) / storage.DATA_DOCS / "index.html").exists()  # GX's, built locally, uploaded

    local = run_stages(library, tmp_path / "local", "local", library / "metadata.csv", n_neighbors=3)
    published = storage.read_parquet(storage.current_dir(data) / storage.RECOMMENDATIONS)
    expected = pd.read_parquet(local["build_index"]["path"])
    pd.testing.assert_frame_equal(published, expected)

    before = storage.current_dir(data)
    assert dag.test(run_conf=conf).state == "success"  # nothing changed: every table comes from the last index
    again = storage.read_json(storage.current_dir(data) / storage.SUMMARY)
    assert storage.current_dir(data) != before and storage.previous_dir(data) == before
    assert again["files_extracted"] == 0 and again["files_reused"] == 9 and len(again["quarantined"]) == 1
    assert again["stages"]["build_index"].get("reused") is True
    assert (storage.current_dir(data) / storage.DATA_DOCS / "index.html").exists()  # copied from the last index
    _read_by_the_cli_and_the_api(data, conf, library, monkeypatch)  # last: it sets the data dir in the environment
    pd.testing.assert_frame_equal(storage.read_parquet(storage.current_dir(data) / storage.RECOMMENDATIONS), expected)


def _read_by_the_cli_and_the_api(data: str, conf: dict, library: Path, monkeypatch) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["recommend", "Low Zero", "--k", "2", "--data-dir", data, "--json"]) == 0
    answer = json.loads(out.getvalue())
    assert answer["track"]["track_key"] == "low/0.wav" and len(answer["neighbours"]) == 2
    monkeypatch.setenv("MUSICREC_DATA_DIR", conf["data_dir"])  # as a deployment sets it: no connection in it
    monkeypatch.setenv("MUSICREC_STORAGE_CONN_ID", CONN_ID)
    client = plugin_client(monkeypatch)
    found = client.get("/api/neighbours", params={"track": "low/0.wav", "k": 2}).json()
    assert [n["track_key"] for n in found["neighbours"]] == [n["track_key"] for n in answer["neighbours"]]
    plot = client.get("/api/plots/map.png")
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    # A track to listen to, read a range at a time from the bucket through the library's connection.
    heard = client.get("/api/audio", params={"track": "low/0.wav"}, headers={"Range": "bytes=10-19"})
    assert heard.status_code == 206 and heard.headers["content-range"].startswith("bytes 10-19/")
    assert heard.content == (library / "low" / "0.wav").read_bytes()[10:20]


def test_a_library_path_on_object_storage_that_does_not_exist_is_named(s3):
    missing = s3.url(_prefix("nothing-here"))
    with pytest.raises(errors.InputError, match="library_path: folder not found"):
        inputs.check(storage.root(missing), storage.root(s3.url(_prefix("data"))), [], None)


@pytest.fixture(scope="module")
def silent_endpoint():
    """A server that accepts connections and never answers."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(64)], daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _connection(monkeypatch, name: str, conn: dict) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps({"conn_type": "aws", **conn}))
    return name


def _plugin_app(monkeypatch, data_dir: str):
    app = api.create_app(data_dir)
    app.dependency_overrides[api.read_access] = lambda: None
    return TestClient(app)


@pytest.mark.parametrize(
    "case, said",
    [
        ("wrong secret", "object storage refused access"),
        ("no credentials", "object storage refused access"),
        ("unknown connection", "no Airflow connection 'musicrec_nowhere'"),
        ("silent endpoint", "object storage did not answer"),
    ],
)
def test_object_storage_that_refuses_or_does_not_answer_is_a_sentence(
    s3, silent_endpoint, monkeypatch, capsys, case, said
):
    """The CLI says it in one line (no traceback), the API answers 503 with it; nothing reaches real AWS; a
    silent endpoint is given up on in about a minute."""
    endpoint = {"endpoint_url": s3.endpoint, "region_name": "us-east-1"}
    conn_id = {
        "wrong secret": lambda: _connection(
            monkeypatch, "musicrec_wrong", {"login": s3.key, "password": "wrong", "extra": endpoint}
        ),
        "no credentials": lambda: _connection(monkeypatch, "musicrec_anonymous", {"extra": endpoint}),
        "unknown connection": lambda: "musicrec_nowhere",
        "silent endpoint": lambda: _connection(
            monkeypatch,
            "musicrec_silent",
            {"login": "k", "password": "secret", "extra": {"endpoint_url": silent_endpoint}},
        ),
    }[case]()
    data = f"s3://{conn_id}@{BUCKET}/{_prefix('refused')}"
    started = time.monotonic()
    assert cli.main(["recommend", "Low Zero", "--data-dir", data]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and said in err and err.count("\n") == 1, err
    answer = _plugin_app(monkeypatch, data).get("/api/info")
    assert answer.status_code == 503 and said in answer.json()["detail"]
    assert time.monotonic() - started < 180
    with pytest.raises(Exception) as raised:  # a run's first task: refused, it fails without retries
        publishing.take_lock(data, "run")
    assert said in str(errors.explained(raised.value) or raised.value)
    assert isinstance(raised.value, errors.InputError) == (case != "silent endpoint")
