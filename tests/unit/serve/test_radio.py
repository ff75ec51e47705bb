"""`musicrec radio` and /api/radio on a real index (the small library: low tones, high tones, one copy)."""

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from musicrec import cli
from musicrec.airflow import api
from musicrec.errors import InputError
from musicrec.serve import query, radio


def _keys(found: dict) -> list[str]:
    return [t["track_key"] for t in found["tracks"]]


def test_a_radio_takes_turns_among_its_seeds_and_leaves_out_the_seeds_and_their_copies(small_index):
    found = radio.radio(small_index, ["low/0.wav", "high/0.wav"], length=6)
    keys = _keys(found)
    assert found["seeds"] == ["low/0.wav", "high/0.wav"] and len(keys) == 6
    assert not {"low/0.wav", "high/0.wav", "high/copy of 0.wav"} & set(keys)
    assert [t["seed"] for t in found["tracks"]] == ["low/0.wav", "high/0.wav"] * 3
    index = query.load(small_index)
    assert len(set(index.groups[index.row[keys].to_numpy()])) == len(keys)
    # each seed's turn brings a track of its own kind (the two folders are far apart)
    assert all(t["track_key"].split("/")[0] == t["seed"].split("/")[0] for t in found["tracks"])


def test_seeds_far_apart_are_said_to_be_and_seeds_together_are_not(small_index):
    assert "the seeds are far apart" in radio.radio(small_index, ["low/0.wav", "high/2.wav"], length=2)["note"]
    assert radio.radio(small_index, ["low/0.wav", "low/1.wav"], length=2)["note"] is None


def test_a_radio_spaces_artists_and_says_when_it_runs_out(small_index):
    found = radio.radio(small_index, ["low/0.wav", "high/0.wav"], length=20, window=1, spread_over=("artist",))
    artists = [t["artist"] for t in found["tracks"]]
    assert all(a != b for a, b in zip(artists, artists[1:], strict=False))
    assert "ended after" in found["note"]


def test_the_command_reads_seeds_from_an_m3u_and_writes_one(capsys, small_index, tmp_path):
    seeds = tmp_path / "seeds.m3u"
    seeds.write_text("#EXTM3U\n#EXTINF:1,Low Zero\nlow/0.wav\nhigh/1.wav\n")
    out = tmp_path / "radio.m3u"
    argv = ["radio", str(seeds), "--length", "4", "--out", str(out), "--data-dir", str(small_index)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "radio from low/0.wav, high/1.wav" in printed and "distance from the seed it came from" in printed
    assert len([line for line in out.read_text().splitlines() if not line.startswith("#")]) == 4
    assert cli.main(["radio", "Low Zero", "--length", "2", "--json", "--data-dir", str(small_index)]) == 0
    assert json.loads(capsys.readouterr().out)["seeds"] == ["low/0.wav"]


def test_the_api_answers_the_same_radio_and_never_reads_a_file_it_is_named(small_index, tmp_path):
    app = api.create_app(str(small_index))
    app.dependency_overrides[api.read_access] = lambda: None
    client = TestClient(app)
    body = client.get("/api/radio", params={"seed": ["low/0.wav", "high/1.wav"], "length": 4}).json()
    assert _keys(body) == _keys(radio.radio(small_index, ["low/0.wav", "high/1.wav"], 4))
    playlist = tmp_path / "seeds.m3u"
    playlist.write_text("low/0.wav\n")
    refused = client.get("/api/radio", params={"seed": str(playlist)})
    assert refused.status_code == 404 and "no track matches" in refused.json()["detail"]


def test_an_audio_file_is_a_seed_analysed_as_the_library_was(small_index, tmp_path, capsys):
    index = query.load(small_index)
    library = index.summary["library"]
    copy = tmp_path / "the same audio.wav"
    shutil.copy(f"{library}/low/0.wav", copy)
    found = radio.radio(small_index, ["high/1.wav"], length=4, files=[copy])
    assert found["seeds"] == ["high/1.wav", "the same audio.wav"]
    assert "low/0.wav" not in _keys(found) and "high/1.wav" not in _keys(found)  # a seed's own audio never comes
    assert [t["seed"] for t in found["tracks"]] == ["high/1.wav", "the same audio.wav"] * 2
    assert all(t["track_key"].startswith("low/") for t in found["tracks"] if t["seed"] == "the same audio.wav")
    assert cli.main(["radio", str(copy), "--length", "2", "--data-dir", str(small_index)]) == 0
    assert "radio from the same audio.wav" in capsys.readouterr().out


def test_a_file_no_decoder_reads_is_named(small_index, tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3 not audio at all")
    with pytest.raises(InputError, match="broken.mp3"):
        radio.radio(small_index, [], length=2, files=[broken])
