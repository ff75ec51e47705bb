"""`musicrec recommend`, `similar` and `playlist` on a real index."""

from __future__ import annotations

import json

from musicrec import cli, storage


def _json(capsys, argv: list[str]) -> dict:
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_recommend_beyond_the_stored_k_with_an_artist_filter(capsys, small_index):
    body = _json(
        capsys,
        ["recommend", "low/0.wav", "--k", "8", "--exclude-same", "artist", "--json", "--data-dir", str(small_index)],
    )
    assert len(body["neighbors"]) == 6 and all(n["artist"] != "Ann" for n in body["neighbors"])


def test_similar_to_a_library_file_matches_the_index(capsys, small_index):
    library = storage.read_json(storage.require_current(small_index) / storage.SUMMARY)["library"]
    similar = _json(capsys, ["similar", f"{library}/low/2.wav", "--k", "3", "--json", "--data-dir", str(small_index)])
    indexed = _json(capsys, ["recommend", "low/2.wav", "--k", "3", "--json", "--data-dir", str(small_index)])
    assert [n["track_key"] for n in similar["neighbors"]] == [n["track_key"] for n in indexed["neighbors"]]


def test_similar_names_a_file_it_cannot_read(capsys, small_index, tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio")
    assert cli.main(["similar", str(bad), "--data-dir", str(small_index)]) == 2
    assert f"{bad}: not readable as audio" in capsys.readouterr().err


def test_a_playlist_is_written_as_m3u_relative_to_the_library(capsys, small_index, tmp_path):
    out = tmp_path / "flow.m3u"
    assert (
        cli.main(
            [
                "playlist",
                "Low Zero",
                "--length",
                "4",
                "--window",
                "1",
                "--out",
                str(out),
                "--data-dir",
                str(small_index),
            ]
        )
        == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "#EXTM3U" and lines[1].startswith("#EXTINF:1,Ann - Low Zero") and lines[2] == "low/0.wav"
    paths = lines[2::2]
    assert len(paths) == len(set(paths)) == 4 and not any(p.startswith("/") for p in paths)
    assert "flow.m3u" in capsys.readouterr().out
