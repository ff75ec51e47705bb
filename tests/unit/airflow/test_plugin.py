"""The plugin's API on a real index: answers match the published tables, bad input is an HTTP error with a
message, never a traceback (who may call it: test_plugin_auth; the page in a browser: test_browser)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from musicrec.airflow import api
from musicrec.serve import query
from musicrec.store import storage
from support.audio import tone
from support.runs import published_with


@pytest.fixture
def plugin():
    """The module of the page's app, whose limits a test may lower."""
    return api


@pytest.fixture
def client(small_index):
    app = api.create_app(str(small_index))
    # Who may read is tested against a real API server (test_plugin_auth); here, what is read.
    app.dependency_overrides[api.read_access] = lambda: None
    return TestClient(app)


def _keys(rows: list[dict]) -> list[str]:
    return [r["track_key"] for r in rows]


def test_info_names_the_run_and_its_evaluation(client, small_index):
    info = client.get("/api/info").json()
    summary = storage.read_json(storage.require_current(small_index) / storage.SUMMARY)
    assert info["run_id"] == summary["run_id"] == "small" and info["tracks"] == 9 and info["neighbours_stored"] == 3
    assert info["feature_version"] == summary["feature_version"] and info["built_at"]
    assert info["evaluation"]["precision_folder_at_5"] == summary["evaluation"]["precision_folder_at_5"]
    assert client.get("/api/plots/map.png").headers["content-type"] == "image/png"


def test_search_is_paged(client):
    first = client.get("/api/tracks", params={"q": "high", "size": 2}).json()
    second = client.get("/api/tracks", params={"q": "high", "size": 2, "page": 2}).json()
    assert first["total"] == second["total"] == 5 and len(first["items"]) == len(second["items"]) == 2
    assert not set(_keys(first["items"])) & set(_keys(second["items"]))
    assert client.get("/api/tracks", params={"q": "nothing like it"}).json() == {
        "total": 0,
        "page": 1,
        "size": 20,
        "items": [],
    }


def test_stored_neighbours_are_those_of_the_published_table(client, small_index):
    body = client.get("/api/neighbours", params={"track": "low/0.wav", "k": 3}).json()
    recs = pd.read_parquet(storage.require_current(small_index) / storage.RECOMMENDATIONS)
    stored = recs[recs["track_key"] == "low/0.wav"].sort_values("rank")
    assert not body["computed"] and _keys(body["neighbours"]) == stored["neighbor_key"].tolist()
    assert [n["distance"] for n in body["neighbours"]] == pytest.approx(stored["distance"].tolist())
    assert all(n["why"] and n["why"][0]["relative_difference"] >= 0 for n in body["neighbours"])


def test_k_above_the_stored_neighbours_is_answered_in_full_from_the_embedding(client):
    body = client.get("/api/neighbours", params={"track": "low/0.wav", "k": 8}).json()
    stored = client.get("/api/neighbours", params={"track": "low/0.wav", "k": 3}).json()
    # The 8 other tracks, two of them the same audio (high/0.wav and its copy): 7 distinct ones.
    assert body["computed"] and len(body["neighbours"]) == 7
    assert _keys(body["neighbours"])[:3] == _keys(stored["neighbours"])
    assert [n["distance"] for n in body["neighbours"][:3]] == pytest.approx(
        [n["distance"] for n in stored["neighbours"]]
    )


def test_copies_of_the_same_audio_are_never_each_others_neighbours_nor_listed_twice(client, small_index):
    body = client.get("/api/neighbours", params={"track": "high/0.wav", "k": 8}).json()
    assert "high/copy of 0.wav" not in _keys(body["neighbours"]) and len(body["neighbours"]) == 7
    copies = {"high/0.wav", "high/copy of 0.wav"}
    for track in ("low/0.wav", "high/1.wav"):
        for k in (3, 8):  # stored and computed
            listed = _keys(client.get("/api/neighbours", params={"track": track, "k": k}).json()["neighbours"])
            assert len(copies & set(listed)) <= 1, (track, k, listed)
    recs = pd.read_parquet(storage.require_current(small_index) / storage.RECOMMENDATIONS)
    assert recs.groupby("track_key")["neighbor_key"].agg(lambda n: len(copies & set(n))).max() == 1


def test_filters_leave_out_the_same_artist_or_album_and_keep_a_genre(client):
    same_artist = client.get("/api/neighbours", params={"track": "low/0.wav", "k": 8, "exclude_same": "artist"}).json()
    assert "low/1.wav" not in _keys(same_artist["neighbours"])  # Ann's other track
    assert all(n["artist"] != "Ann" for n in same_artist["neighbours"])
    rock = client.get("/api/neighbours", params={"track": "low/0.wav", "k": 8, "genre": "rock"}).json()
    assert rock["neighbours"] and all(n["genre"] == "rock" for n in rock["neighbours"])


@pytest.mark.parametrize(
    "params, status, message",
    [
        ({"track": "no/such.wav"}, 404, "no track 'no/such.wav' in the index"),
        ({"track": "low/0.wav", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"track": "low/0.wav", "k": 501}, 422, "k: Input should be less than or equal to 500"),
        ({"track": "low/0.wav", "k": "ten"}, 422, "k: Input should be a valid integer"),
        ({"track": "low/0.wav", "exclude_same": "year"}, 422, "Input should be 'artist' or 'album'"),
        ({}, 422, "track: Field required"),
    ],
)
def test_bad_requests_are_answered_with_a_status_and_a_sentence(client, params, status, message):
    response = client.get("/api/neighbours", params=params)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str) and message in response.json()["detail"]


def test_the_map_places_every_track(client):
    points = client.get("/api/map").json()
    assert len(points) == 9 and {"x", "y", "folder", "genre"} <= set(points[0])


def test_a_playlist_starts_at_the_seed_never_repeats_and_spreads_artists(client):
    body = client.get("/api/playlist", params={"seed": "low/0.wav", "length": 6, "window": 1}).json()
    keys = _keys(body["tracks"])
    assert keys[0] == "low/0.wav" and len(keys) == len(set(keys)) == 6
    artists = [t["artist"] for t in body["tracks"]]
    assert all(a != b for a, b in zip(artists, artists[1:], strict=False) if a)
    whole = client.get("/api/playlist", params={"seed": "high/0.wav", "length": 50}).json()
    assert len(whole["tracks"]) == 8 and "no other track qualifies" in whole["note"]  # the copy never comes in
    assert not {"high/0.wav", "high/copy of 0.wav"} <= set(_keys(whole["tracks"]))


def test_an_uploaded_file_of_the_library_finds_what_the_index_finds_and_leaves_no_file(
    client, small_index, tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    library = storage.read_json(storage.require_current(small_index) / storage.SUMMARY)["library"]
    with open(f"{library}/high/1.wav", "rb") as f:
        response = client.post("/api/similar", params={"k": 4}, files={"file": ("mine.wav", f, "audio/wav")})
    assert response.status_code == 200, response.text
    body = response.json()
    # The same code, settings and model: the file lands where its track is, and itself is left out.
    indexed = client.get("/api/neighbours", params={"track": "high/1.wav", "k": 4}).json()["neighbours"]
    assert body["file"] == "mine.wav" and _keys(body["neighbours"]) == _keys(indexed)
    assert [n["distance"] for n in body["neighbours"]] == pytest.approx([n["distance"] for n in indexed], abs=1e-5)
    sample = tmp_path / "query.wav"
    sf.write(sample, tone(120.0, seconds=0.6), 22050)
    with open(sample, "rb") as f:
        low = client.post("/api/similar", params={"k": 2}, files={"file": ("query.wav", f, "audio/wav")}).json()
    assert [n["folder"] for n in low["neighbours"]] == ["low", "low"]
    broken = client.post("/api/similar", files={"file": ("broken.ogg", b"not audio at all", "audio/ogg")})
    assert broken.status_code == 400 and broken.json()["detail"].startswith("broken.ogg: not readable as audio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["query.wav"]  # the uploads' folders are gone


def test_an_oversized_upload_is_refused(client, plugin, monkeypatch):
    monkeypatch.setattr(plugin, "MAX_UPLOAD_BYTES", 1000)
    response = client.post("/api/similar", files={"file": ("big.wav", b"\0" * 5000, "audio/wav")})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


def test_an_index_of_another_feature_version_refuses_files(client, plugin, small_index, tmp_path, monkeypatch):
    data_dir = shutil.copytree(small_index, tmp_path / "data", symlinks=True)
    run = storage.require_current(data_dir)
    model = storage.read_json(run / storage.MODEL)
    storage.write_json(model | {"feature_version": "older"}, run / storage.MODEL)
    monkeypatch.setattr(client.app.state, "data_dir", str(data_dir))
    response = client.post("/api/similar", files={"file": ("q.wav", b"RIFF", "audio/wav")})
    assert response.status_code == 400 and "built with feature version older" in response.json()["detail"]


def test_the_index_is_read_once_per_published_version(small_index, tmp_path):
    data_dir = shutil.copytree(small_index, tmp_path / "data", symlinks=True)
    first = query.load(data_dir)
    assert query.load(data_dir) is first
    storage.publish(data_dir, shutil.copytree(storage.require_current(data_dir), data_dir / "runs" / "again"))
    assert query.load(data_dir) is not first and query.load(data_dir).run.name == "again"


def test_a_damaged_index_is_a_503_that_names_the_file(client, plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(client.app.state, "data_dir", str(published_with(tmp_path / "data", b"garbage")))
    response = client.get("/api/tracks", params={"q": "a"})
    assert response.status_code == 503
    assert "recommendations.parquet: not a readable Parquet table" in response.json()["detail"]


def test_no_index_is_a_503_that_says_what_to_do(client, plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(client.app.state, "data_dir", str(tmp_path / "nothing"))
    response = client.get("/api/info")
    assert response.status_code == 503 and "run `musicrec run` first" in response.json()["detail"]


def test_an_upload_declared_over_the_limit_is_refused_before_its_body_is_read(client, plugin, monkeypatch):
    monkeypatch.setattr(plugin, "MAX_UPLOAD_BYTES", 1000)
    sent = []

    def body():
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(200):  # 200 x 64 KB: 12.8 MB
            sent.append(1)
            yield b"\0" * 65536

    headers = {"content-type": "multipart/form-data; boundary=x", "content-length": str(200 * 65536 + 100)}
    response = client.post("/api/similar", content=body(), headers=headers)
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    assert sent == []


@pytest.mark.parametrize("filename", ["..", ".", "/etc/passwd", "x" * 300 + ".wav", "a\0b.wav", "line\nbreak.wav"])
def test_an_upload_is_answered_whatever_its_name(client, small_index, filename):
    """The name is the client's: it is shown, never used as a path (these were HTTP 500 before)."""
    library = storage.read_json(storage.require_current(small_index) / storage.SUMMARY)["library"]
    audio = (Path(library) / "low" / "1.wav").read_bytes()
    response = client.post("/api/similar", params={"k": 2}, files={"file": (filename, audio, "audio/wav")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["same_audio_as"] == ["low/1.wav"] and len(body["neighbours"]) == 2
    assert "\0" not in body["file"] and "\n" not in body["file"] and len(body["file"]) <= 200


def test_an_upload_that_trickles_in_slower_than_any_client_sends_is_given_up(plugin, client, monkeypatch):
    monkeypatch.setattr(plugin, "UPLOAD_GRACE_S", 0.0)
    monkeypatch.setattr(plugin, "UPLOAD_MIN_BYTES_PER_S", 10**12)  # every body is slower than that
    response = client.post("/api/similar", files={"file": ("slow.wav", b"RIFF" * 100)})
    assert response.status_code == 408
    assert (
        response.json()["detail"].startswith("the upload was given up: ")
        and "bytes a second" in response.json()["detail"]
    )
