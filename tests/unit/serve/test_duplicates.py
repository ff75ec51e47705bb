"""Copies of one recording found through real encoders, decoders and the pipeline's stages; other pieces
that sound alike kept apart; every list shows a recording once; `musicrec duplicates` and the API."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from musicrec import cli, settings
from musicrec.airflow import api
from musicrec.serve import query
from musicrec.store import storage
from support.audio import encode, notes
from support.runs import run_stages

SR = 22050
PARAMS = settings.defaults(".") | {"n_neighbors": 3, "n_components": 4}


@pytest.fixture(scope="module")
def library_with_copies(tmp_path_factory):
    """Three pieces; the first also as an MP3 on a compilation, trimmed by 2.3 s and 6 dB quieter in
    another folder; and a near miss: the second piece played 5% faster."""
    import soxr

    root = tmp_path_factory.mktemp("copies") / "library"
    for folder in ("album", "compilation", "other"):
        (root / folder).mkdir(parents=True)
    pieces = [notes(seed=seed) for seed in range(3)]
    for i, y in enumerate(pieces):
        sf.write(root / "album" / f"{i}.flac", y, SR)
    encode(pieces[0], root / "compilation" / "0.mp3", "libmp3lame", "mp3", SR, 128_000)
    sf.write(root / "other" / "0 trimmed.wav", 0.5 * pieces[0][int(2.3 * SR) :], SR)
    sf.write(root / "other" / "1 faster.flac", soxr.resample(pieces[1], SR, round(SR / 1.05)), SR)
    data = root.parent / "data"
    stages = run_stages(root, data, "first", **PARAMS)
    return root, data, stages


def test_copies_are_one_recording_and_a_near_miss_is_not(library_with_copies):
    _, data, stages = library_with_copies
    table = storage.read_parquet(storage.require_current(data) / storage.DUPLICATES).set_index("track_key")
    first = table.loc[["album/0.flac", "compilation/0.mp3", "other/0 trimmed.wav"], "recording"]
    assert first.nunique() == 1 and stages["duplicates"]["groups"] == 1
    assert table.at["other/1 faster.flac", "recording"] != table.at["album/1.flac", "recording"]
    assert table.loc["compilation/0.mp3", "canonical_key"] == "album/0.flac"  # lossless over lossy
    trimmed = table.loc["other/0 trimmed.wav"]
    assert trimmed["bit_error_rate"] < 0.1 and trimmed["offset_s"] == pytest.approx(-2.3, abs=0.05)


def test_every_list_shows_a_recording_once_by_the_file_kept(library_with_copies):
    _, data, _ = library_with_copies
    recs = pd.read_parquet(storage.require_current(data) / storage.RECOMMENDATIONS)
    copies = {"album/0.flac", "compilation/0.mp3", "other/0 trimmed.wav"}
    for _, mine in recs.groupby("track_key"):
        assert len(copies & set(mine["neighbor_key"])) <= 1
    assert not copies & set(recs.loc[recs["track_key"] == "album/0.flac", "neighbor_key"])
    kept_only = {"compilation/0.mp3", "other/0 trimmed.wav"}  # the FLAC stands for the recording
    assert not kept_only & set(recs["neighbor_key"]) and "album/0.flac" in set(recs["neighbor_key"])
    index = query.load(data)
    for k in (3, 6):  # stored, then computed from the embedding
        listed = [n["track_key"] for n in index.neighbours("album/2.flac", k)]
        assert not kept_only & set(listed) and len(listed) == len(set(listed))
    mixed = pd.read_parquet(storage.require_current(data) / storage.MIXES)
    assert copies & set(mixed["track_key"]) == {"album/0.flac"}
    from musicrec.serve import path, playlist, radio, tag_search

    tag = index.tags.mean().idxmax()
    lists = {
        "playlist": playlist.playlist(data, "album/2.flac", 6)["tracks"],
        "radio": radio.radio(data, ["album/1.flac", "album/2.flac"], 5)["tracks"],
        "path": path.path(data, ["album/1.flac", "album/2.flac"], 5)["tracks"],
        "tag search": tag_search.tag_search(data, tag, 10)["tracks"],
    }
    for name, tracks in lists.items():
        keys = [t["track_key"] for t in tracks]
        assert not kept_only & set(keys) and len(copies & set(keys)) <= 1, name


def test_musicrec_duplicates_and_the_api_show_the_group_with_its_evidence(library_with_copies, tmp_path, capsys):
    _, data, _ = library_with_copies
    assert cli.main(["duplicates", "--data-dir", str(data)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("album/0.flac  (kept; 2 more of this recording)")
    assert "other/0 trimmed.wav: " in said and "-2.30 s apart" in said and "1 recording held by 3 files" in said
    out = tmp_path / "duplicates.csv"
    assert cli.main(["duplicates", "--out", str(out), "--data-dir", str(data)]) == 0
    assert "1 recording held by 3 files -> " in capsys.readouterr().err
    written = pd.read_csv(out)
    assert set(written["track_key"]) == {"album/0.flac", "compilation/0.mp3", "other/0 trimmed.wav"}
    assert cli.main(["duplicates", "--out", "-", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == ",".join(written.columns)  # CSV on standard output
    assert cli.main(["duplicates", "--json", "--data-dir", str(data)]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    app = api.create_app(str(data))
    app.dependency_overrides[api.read_access] = lambda: None
    from_api = TestClient(app).get("/api/duplicates").json()
    assert from_api["files"] == from_cli["files"] == 3 and len(from_api["groups"]) == 1
    api_files, cli_files = from_api["groups"][0]["files"], from_cli["groups"][0]["files"]
    assert [{k: f[k] for k in a} for a, f in zip(api_files, cli_files, strict=True)] == api_files  # same names


def test_a_second_run_compares_no_pair_again(library_with_copies):
    root, data, _ = library_with_copies
    sf.write(root / "album" / "3.flac", notes(seed=3), SR)  # a new file: the index is built again
    second = run_stages(root, data, "second", **PARAMS)
    assert second["run"]["files_to_extract"] == 1
    assert second["duplicates"]["pairs_compared"] >= 2 and second["duplicates"]["groups"] == 1
    assert second["duplicates"]["pairs_reused"] >= 2  # the copies' pairs, judged by the first run
