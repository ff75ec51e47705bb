"""The mixes a run makes: M3U8 files beside the index and in a playlists folder, `musicrec mixes`, the API."""

from __future__ import annotations

import json
import os

from fastapi.testclient import TestClient

from musicrec import cli, settings
from musicrec.airflow import api
from musicrec.library import m3u
from musicrec.pipeline import publishing
from musicrec.store import storage
from support.runs import run_stages, small_library

PARAMS = settings.defaults(".") | {"n_neighbors": 2, "n_components": 3}


def _run(library, data, run_id, **changed):
    return run_stages(library, data, run_id, library / "metadata.csv", **(PARAMS | changed))


def test_mixes_go_beside_the_index_and_into_the_playlists_folder_with_paths_a_player_resolves(tmp_path):
    library = small_library(tmp_path / "library")
    playlists = library / "Playlists"  # inside the music folder, as Navidrome finds playlists
    playlists.mkdir()
    (playlists / "mine.m3u8").write_text("#EXTM3U\nlow/0.wav\n")  # a user's own: never touched
    stages = _run(library, tmp_path / "data", "first", mixes=2, playlists_dir=str(playlists))
    assert stages["mixes"]["mixes"] == 2 and stages["mixes"]["tracks"] == 8  # 9 files, one a copy
    beside = sorted((storage.require_current(tmp_path / "data") / storage.MIX_PLAYLISTS).glob("*.m3u8"))
    written = sorted(playlists.glob("0*.m3u8"))
    assert [p.name for p in beside] == [p.name for p in written] and len(written) == 2
    listed = []
    for path in written:
        lines = path.read_text().splitlines()
        assert lines[:2] == ["#EXTM3U", publishing.MIX_MARK] and lines[2].startswith("#PLAYLIST:")
        entries = m3u.entries(path)
        assert all((path.parent / e).resolve().is_file() for e in entries)  # relative to the playlist
        assert all(e.startswith("../") for e in entries)
        listed += [os.path.relpath((path.parent / e).resolve(), library) for e in entries]
    assert len(listed) == len(set(listed)) == 8  # every recording once, in one mix
    assert all(not e.startswith("..") for p in beside for e in m3u.entries(p))  # relative to the library's root
    summary = storage.read_json(storage.require_current(tmp_path / "data") / storage.SUMMARY)
    said = cli.format_summary(summary, 1.0)
    assert f"mixes: 2 ({', '.join(stages['mixes']['names'])}), in " in said and f"also in {playlists}" in said

    # one mix now: the mixes of the run before go, the user's playlist stays; an unchanged run reuses them
    third = _run(library, tmp_path / "data", "second", mixes=1, playlists_dir=str(playlists))
    assert len(list(playlists.glob("0*.m3u8"))) == 1 and (playlists / "mine.m3u8").exists()
    again = _run(library, tmp_path / "data", "third", mixes=1, playlists_dir=str(playlists))
    assert again["mixes"]["reused"] is True and again["mixes"]["names"] == third["mixes"]["names"]


def test_musicrec_mixes_lists_them_and_shows_one_as_the_api_does(tmp_path, capsys):
    library = small_library(tmp_path / "library")
    data = tmp_path / "data"
    _run(library, data, "first", mixes=2)
    assert cli.main(["mixes", "--json", "--data-dir", str(data)]) == 0
    listed = json.loads(capsys.readouterr().out)["mixes"]
    assert [m["mix"] for m in listed] == [1, 2] and sum(m["tracks"] for m in listed) == 8
    out = tmp_path / "mix.m3u"
    assert cli.main(["mixes", "2", "--json", "--out", str(out), "--data-dir", str(data)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == listed[1]["name"] and shown["tracks"][0]["track_key"] == listed[1]["first"]
    assert m3u.entries(out) == [t["track_key"] for t in shown["tracks"]]
    word = listed[0]["name"].split()[0].lower()
    assert cli.main(["mixes", word, "--data-dir", str(data)]) == 0
    assert f"mix 1: {listed[0]['name']}" in capsys.readouterr().out
    assert cli.main(["mixes", "polka", "--data-dir", str(data)]) == 1
    assert "no mix 'polka': give a number or a word of a name (1 " in capsys.readouterr().err

    app = api.create_app(str(data))
    app.dependency_overrides[api.read_access] = lambda: None
    client = TestClient(app)
    assert client.get("/api/mixes").json()["mixes"] == listed
    body = client.get("/api/mixes/2").json()
    assert [t["track_key"] for t in body["tracks"]] == [t["track_key"] for t in shown["tracks"]]
    assert client.get("/api/mixes/polka").status_code == 404
