"""Key, mode and tempo read from the features of generated audio of known key and tempo, through real
decoding; and the filters they give recommend and the API."""

import contextlib
import io
import json

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from musicrec import cli
from musicrec.airflow import api
from musicrec.analysis import features
from musicrec.index import descriptors
from musicrec.serve import query

SR = 22050


def _note(midi: int, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    return sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3, 4)) * np.hanning(len(t))


def _progression(chords: list[list[int]], seconds: float = 0.5, times: int = 4) -> np.ndarray:
    return 0.2 * np.concatenate([sum(_note(m, seconds) for m in chord) for chord in chords * times])


C_MAJOR = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]]  # C F G C
A_MINOR = [[57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64]]  # Am Dm E Am
E_FLAT_MAJOR = [[63, 67, 70], [68, 72, 75], [70, 74, 77], [63, 67, 70]]  # Eb Ab Bb Eb


@pytest.mark.parametrize(
    "chords, key", [(C_MAJOR, "C major"), (A_MINOR, "A minor"), (E_FLAT_MAJOR, "D# major")], ids=["C", "Am", "Eb"]
)
def test_the_key_of_a_chord_progression_in_a_known_key(tmp_path, chords, key):
    path = tmp_path / "chords.flac"
    sf.write(path, _progression(chords), SR)
    row = features.extract_path(path)
    named, confidence = descriptors.keys(np.array([[row[c] for c in descriptors.CHROMA]]))
    assert named == [key] and confidence[0] > 0


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_the_tempo_of_a_click_track(tmp_path, bpm):
    y = np.zeros(12 * SR)
    click = np.hanning(200) * np.sin(2 * np.pi * 2000 * np.arange(200) / SR)
    for start in np.arange(0, 12, 60 / bpm):
        i = int(start * SR)
        y[i : i + 200] += click[: len(y) - i]
    path = tmp_path / "clicks.wav"
    sf.write(path, 0.5 * y, SR)
    assert abs(features.extract_path(path)[descriptors.TEMPO] - bpm) < 0.04 * bpm


def test_silence_has_no_key():
    named, confidence = descriptors.keys(np.zeros((1, 12)))
    assert named == [None] and confidence[0] == 0


@pytest.mark.parametrize(
    "text, key", [("a minor", "A minor"), ("Bb major", "A# major"), ("F#  Major", "F# major"), ("e♭ minor", "D# minor")]
)
def test_keys_are_read_as_people_write_them(text, key):
    assert descriptors.parse_key(text) == key


@pytest.mark.parametrize("text", ["H minor", "A", "A dorian", ""])
def test_a_key_that_is_not_one_is_named(text):
    with pytest.raises(ValueError, match="is not a key"):
        descriptors.parse_key(text)


def test_tempo_ranges(small_index):
    assert descriptors.parse_bpm("90-110") == (90.0, 110.0) and descriptors.parse_bpm("120") == (118.0, 122.0)
    for text in ("fast", "110-90", "-5"):
        with pytest.raises(ValueError, match="is not a tempo range"):
            descriptors.parse_bpm(text)


def test_tracks_carry_their_key_and_tempo_and_recommend_filters_by_them(small_index, capsys):
    index = query.load(small_index)
    assert index.tracks["key"].notna().all() and index.tracks["bpm"].notna().all()
    some = index.tracks.iloc[1]
    found = query.recommend(small_index, "low/0.wav", k=8, in_key=some["key"])["neighbours"]
    assert found and {n["key"] for n in found} == {some["key"]}
    low, high = some["bpm"] - 1, some["bpm"] + 1
    found = query.recommend(small_index, "low/0.wav", k=8, bpm=(low, high))["neighbours"]
    assert found and all(low <= n["bpm"] <= high for n in found)
    assert cli.main(["recommend", "low/0.wav", "--key", "B minor", "--bpm", "1-2", "--data-dir", str(small_index)]) == 0
    assert "no track of the index passes the filters (tempo 1-2, key B minor)" in capsys.readouterr().out


def test_the_api_filters_by_key_and_tempo_and_names_a_bad_one(small_index):
    app = api.create_app(str(small_index))
    app.dependency_overrides[api.read_access] = lambda: None
    client = TestClient(app)
    key = query.load(small_index).tracks.iloc[1]["key"]
    body = client.get("/api/neighbours", params={"track": "low/0.wav", "key": key}).json()
    assert body["computed"] and {n["key"] for n in body["neighbours"]} == {key}
    refused = client.get("/api/neighbours", params={"track": "low/0.wav", "bpm": "fast"})
    assert refused.status_code == 400 and "'fast' is not a tempo range" in refused.json()["detail"]


def test_similarity_is_one_for_the_same_sound_and_falls_with_the_distance():
    from musicrec.index import neighbours

    np.testing.assert_allclose(neighbours.similarity([0.0, 1.0, 2.0], "cosine", "none"), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(neighbours.similarity([0.0, 0.25, 1.0], "cosine", "mutual_proximity"), [1, 0.75, 0])
    np.testing.assert_allclose(neighbours.similarity([0.0, 1.0, 3.0], "euclidean", "none"), [1.0, 0.5, 0.25])


def test_the_cli_and_the_api_give_the_same_neighbours_under_the_same_names(small_index, capsys):
    assert cli.main(["recommend", "low/0.wav", "--k", "4", "--json", "--data-dir", str(small_index)]) == 0
    from_cli = json.loads(capsys.readouterr().out)["neighbours"]
    app = api.create_app(str(small_index))
    app.dependency_overrides[api.read_access] = lambda: None
    from_api = TestClient(app).get("/api/neighbours", params={"track": "low/0.wav", "k": 4}).json()["neighbours"]
    shared = set(from_api[0]) - {"why"}
    assert shared <= set(from_cli[0]) and "similarity" in shared
    assert [{k: n[k] for k in shared} for n in from_cli] == [{k: n[k] for k in shared} for n in from_api]
    similarities = [n["similarity"] for n in from_api]
    assert all(0 <= s <= 1 for s in similarities) and similarities == sorted(similarities, reverse=True)


@pytest.mark.parametrize("command", ["playlist", "path", "radio"])
def test_every_list_of_tracks_takes_the_same_filters(small_index, command):
    """A playlist, a path (between its stops) and a radio hold only tracks that pass; the API's answer is the same."""
    index = query.load(small_index)
    key = index.tracks.set_index("track_key").at["high/1.wav", "key"]
    argv = {
        "playlist": ["playlist", "low/0.wav", "--length", "9"],
        "path": ["path", "low/0.wav", "high/3.wav", "--steps", "6"],
        "radio": ["radio", "low/0.wav", "high/3.wav", "--length", "9"],
    }[command]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main([*argv, "--key", key, "--json", "--data-dir", str(small_index)]) == 0
    tracks = json.loads(out.getvalue())["tracks"]
    stops = {"playlist": {"low/0.wav"}, "path": {"low/0.wav", "high/3.wav"}, "radio": set()}[command]
    between = [t for t in tracks if t["track_key"] not in stops]
    assert between and all(t["key"] == key for t in between)
    app = api.create_app(str(small_index))
    app.dependency_overrides[api.read_access] = lambda: None
    route, params = {
        "playlist": ("/api/playlist", {"seed": "low/0.wav", "length": 9}),
        "path": ("/api/path", {"from": "low/0.wav", "to": "high/3.wav", "steps": 6}),
        "radio": ("/api/radio", {"seed": ["low/0.wav", "high/3.wav"], "length": 9}),
    }[command]
    body = TestClient(app).get(route, params={**params, "key": key}).json()
    assert [t["track_key"] for t in body["tracks"]] == [t["track_key"] for t in tracks]
    refused = TestClient(app).get(route, params={**params, "key": "H minor"})
    assert refused.status_code == 400 and "'H minor' is not a key" in refused.json()["detail"]
