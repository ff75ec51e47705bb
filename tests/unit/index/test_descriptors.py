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


def _clicks(bpm: float, seconds: int = 12) -> np.ndarray:
    y = np.zeros(seconds * SR)
    click = np.hanning(200) * np.sin(2 * np.pi * 2000 * np.arange(200) / SR)
    for start in np.arange(0, seconds, 60 / bpm):
        i = int(start * SR)
        y[i : i + 200] += click[: len(y) - i]
    return 0.5 * y


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_the_tempo_of_a_click_track(tmp_path, bpm):
    path = tmp_path / "clicks.wav"
    sf.write(path, _clicks(bpm), SR)
    row = features.extract_path(path)
    assert abs(row[descriptors.TEMPO] - bpm) < 0.04 * bpm
    assert row["tempo_confidence"] > 0.5  # the clicks repeat at exactly that period


@pytest.mark.parametrize("seconds", [0.18, 0.6, 2.0])
def test_a_track_shorter_than_a_beat_has_a_tempo_of_no_confidence(tmp_path, seconds):
    path = tmp_path / "short.wav"
    sf.write(path, np.random.default_rng(1).standard_normal(int(seconds * 44100)) * 0.3, 44100)
    assert 0.0 <= features.extract_path(path)["tempo_confidence"] <= 1.0


def test_a_click_track_is_a_surer_tempo_than_noise(tmp_path):
    sf.write(tmp_path / "clicks.wav", _clicks(120), SR)
    noise = np.random.default_rng(3).uniform(-0.3, 0.3, 12 * SR) * np.random.default_rng(4).uniform(0, 1, 12 * SR)
    sf.write(tmp_path / "noise.wav", noise, SR)
    clicks, hiss = (features.extract_path(tmp_path / f)["tempo_confidence"] for f in ("clicks.wav", "noise.wav"))
    assert clicks > 2 * hiss


@pytest.mark.parametrize("gain_db", [0.0, -6.0, -20.0])
def test_the_loudness_and_energy_of_a_tone_at_a_known_level(tmp_path, gain_db):
    """A 1 kHz sine at -20 dBFS RMS reads -20 LUFS (BS.1770's K-weighting is about +0.7 dB at 1 kHz, which
    its -0.691 offset cancels); each dB of gain is a dB of loudness, and the energy is the sine's RMS."""
    rms = 10 ** ((-20.0 + gain_db) / 20)
    t = np.arange(10 * SR) / SR
    path = tmp_path / "tone.flac"
    sf.write(path, rms * np.sqrt(2) * np.sin(2 * np.pi * 1000 * t), SR, subtype="PCM_24")
    row = features.extract_path(path)
    assert row[features.LOUDNESS] == pytest.approx(-20.0 + gain_db, abs=0.3)
    assert row["energy"] == pytest.approx(rms, rel=0.02)


def _loudness_signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)
    t = np.arange(20 * SR) / SR
    bursts = rng.standard_normal(t.size) * 0.3 * ((t % 4) < 1.5)  # loud, then silent: the gates matter
    swell = rng.standard_normal(t.size) * 0.2 * np.linspace(0.01, 1.0, t.size) ** 2  # quiet to loud
    return {
        "low hum": 0.4 * np.sin(2 * np.pi * 50 * t),  # where the high pass cuts
        "bright tone": 0.2 * np.sin(2 * np.pi * 8000 * t),  # where the shelf lifts
        "noise bursts": bursts,
        "swell": swell,
        "chords": _progression(A_MINOR, times=10),
    }


@pytest.mark.parametrize("name", list(_loudness_signals()))
def test_the_loudness_is_a_bs1770_meters_reading(tmp_path, name):
    """Measured from the analysis's spectrum, it reads what pyloudnorm's meter reads filtering the signal."""
    import pyloudnorm

    y = _loudness_signals()[name]
    path = tmp_path / "signal.flac"
    sf.write(path, y, SR, subtype="PCM_24")
    expected = pyloudnorm.Meter(SR).integrated_loudness(sf.read(path)[0])
    assert features.extract_path(path)[features.LOUDNESS] == pytest.approx(expected, abs=0.2)


def test_silence_reads_the_loudness_floor(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR // 10), SR)  # shorter than the meter's 400-ms block, too
    row = features.extract_path(path)
    assert row[features.LOUDNESS] == features.LOUDNESS_FLOOR and row["energy"] == 0.0


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


def _a_tag_some_tracks_have(index) -> str:
    counts = index.tagged.sum()
    return str(counts[(counts > 0) & (counts < len(index.tracks))].idxmax())


def test_tracks_carry_tags_loudness_and_energy_and_recommend_filters_by_them(small_index, capsys):
    index = query.load(small_index)
    assert index.tags.shape == (len(index.tracks), 50)
    assert index.tracks["loudness_lufs"].between(-70, 0).all() and index.tracks["energy"].between(0, 1).all()
    shown = index.tracks["tags"]
    assert shown.map(len).max() >= 1 and all(
        set(t) <= set(index.tagged.columns[row]) for t, row in zip(shown, index.tagged.to_numpy(), strict=True)
    )
    tag = _a_tag_some_tracks_have(index)
    found = query.recommend(small_index, "low/0.wav", k=8, tags=(tag,))["neighbours"]
    tagged = set(index.tracks["track_key"][index.tagged[tag]])
    assert found and {n["track_key"] for n in found} <= tagged
    level = index.tracks.set_index("track_key").at["high/1.wav", "loudness_lufs"]
    found = query.recommend(small_index, "low/0.wav", k=8, loudness=(level - 0.5, level + 0.5))["neighbours"]
    assert found and all(abs(n["loudness_lufs"] - level) <= 0.55 for n in found)
    argv = ["recommend", "low/0.wav", "--tag", "heavy metal", "--tag", "sad", "--loudness=-1..0"]
    assert cli.main([*argv, "--data-dir", str(small_index)]) == 0
    said = "no track of the index passes the filters (tag 'heavy metal', tag 'sad', loudness -1..0 LUFS)"
    assert said in capsys.readouterr().out


@pytest.mark.parametrize(
    "option, value, said",
    [
        ("--tag", "melow", "'melow' is not one of the 50 tags (closest: mellow"),
        ("--loudness", "loud", "'loud' is not a loudness range"),
        ("--loudness", "-10..-20", "the quieter end first"),
    ],
)
def test_a_bad_tag_or_loudness_is_named_before_anything_is_read(small_index, capsys, option, value, said):
    with pytest.raises(SystemExit) as exited:
        cli.main(["recommend", "low/0.wav", f"{option}={value}", "--data-dir", str(small_index)])
    assert exited.value.code == 2 and said in capsys.readouterr().err


def test_words_name_tags_as_people_write_them():
    assert descriptors.parse_tags("Mellow female vocals, hip hop and 80s") == (
        ["mellow", "female vocalists", "hip-hop", "80s"],
        ["and"],
    )
    assert descriptors.parse_tag("Female Vocals") == "female vocalists"


def test_search_ranks_by_every_tag_named_and_names_the_other_words(small_index, capsys):
    index = query.load(small_index)
    tag = _a_tag_some_tracks_have(index)
    assert cli.main(["search", tag, "floofy", "--k", "5", "--json", "--data-dir", str(small_index)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["tags"] == [tag] and answer["unknown"] == ["floofy"] and "floofy" in answer["note"]
    scores = [t["score"] for t in answer["tracks"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert answer["tracks"][0]["tag_probabilities"][tag] == pytest.approx(index.tags[tag].max(), abs=1e-4)
    # two tags: a track ranks by both (their geometric mean), so the first is not merely the likeliest of one
    other = index.tags.drop(columns=tag).mean().idxmax()
    both = json.loads(_cli_out(["search", tag, other, "--k", "50", "--json", "--data-dir", str(small_index)]))
    expected = np.sqrt(index.tags[tag] * index.tags[other])
    assert both["tracks"][0]["score"] == pytest.approx(expected.max(), abs=1e-4)
    app = api.create_app(str(small_index))
    app.dependency_overrides[api.read_access] = lambda: None
    client = TestClient(app)
    body = client.get("/api/search", params={"q": f"{tag} floofy", "k": 5}).json()
    assert [t["track_key"] for t in body["tracks"]] == [t["track_key"] for t in answer["tracks"]]
    refused = client.get("/api/search", params={"q": "floofy"})
    assert refused.status_code == 400 and "names a tag" in refused.json()["detail"]


def _cli_out(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(argv) == 0
    return out.getvalue()
