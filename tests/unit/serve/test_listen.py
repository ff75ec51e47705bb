"""/api/audio: a track of the index to listen to, in ranges; nothing else."""

import shutil

import pytest
from fastapi.testclient import TestClient

from musicrec.airflow import api
from musicrec.serve import listen
from support.runs import run_stages, small_library


def _client(data_dir) -> TestClient:
    app = api.create_app(str(data_dir))
    app.dependency_overrides[api.read_access] = lambda: None
    return TestClient(app)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("listen")
    library = small_library(root / "library")
    run_stages(library, root / "data", "listen", library / "metadata.csv", n_neighbors=3)
    return library, root / "data"


def test_a_track_is_sent_in_the_ranges_a_player_asks_for(indexed):
    library, data = indexed
    whole = (library / "low" / "1.wav").read_bytes()
    client = _client(data)
    part = client.get("/api/audio", params={"track": "low/1.wav"}, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert (
        part.headers["content-type"] == "audio/wav" and part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    )
    full = client.get("/api/audio", params={"track": "low/1.wav"})
    assert full.status_code == 200 and full.content == whole and full.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("track", ["nothing.wav", "../library/low/1.wav", "/etc/passwd", "low/../low/1.wav"])
def test_only_a_track_of_the_index_is_sent(indexed, track):
    answer = _client(indexed[1]).get("/api/audio", params={"track": track})
    assert answer.status_code == 404 and "no track" in answer.json()["detail"]


def test_a_file_gone_since_the_index_was_built_is_said_to_be(indexed, tmp_path):
    library, data = indexed
    kept = tmp_path / "kept.wav"
    shutil.move(library / "high" / "2.wav", kept)
    try:
        answer = _client(data).get("/api/audio", params={"track": "high/2.wav"})
    finally:
        shutil.move(kept, library / "high" / "2.wav")
    assert answer.status_code == 404 and "no such file any more" in answer.json()["detail"]


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, (0, 999)),
        ("bytes=0-", (0, 999)),
        ("bytes=10-19", (10, 19)),
        ("bytes=-100", (900, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=0-9, 20-29", (0, 9)),
    ],
)
def test_byte_ranges(header, expected):
    assert listen.byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=20-10", "lines=0-5", "bytes=-"])
def test_a_range_the_file_has_not_is_refused(header):
    with pytest.raises(listen.NotSatisfiable):
        listen.byte_range(header, 1000)


def test_one_answer_sends_at_most_a_chunk():
    assert listen.byte_range("bytes=0-", 10 * listen.CHUNK) == (0, listen.CHUNK - 1)
