"""`musicrec recommend`, `similar` and `playlist` on a real index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from musicrec import cli
from musicrec.store import storage


def _json(capsys, argv: list[str]) -> dict:
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_recommend_beyond_the_stored_k_with_an_artist_filter(capsys, small_index):
    body = _json(
        capsys,
        ["recommend", "low/0.wav", "--k", "8", "--exclude-same", "artist", "--json", "--data-dir", str(small_index)],
    )
    assert len(body["neighbours"]) == 6 and all(n["artist"] != "Ann" for n in body["neighbours"])


def test_similar_to_a_library_file_matches_the_index(capsys, small_index):
    library = storage.read_json(storage.require_current(small_index) / storage.SUMMARY)["library"]
    similar = _json(capsys, ["similar", f"{library}/low/2.wav", "--k", "3", "--json", "--data-dir", str(small_index)])
    indexed = _json(capsys, ["recommend", "low/2.wav", "--k", "3", "--json", "--data-dir", str(small_index)])
    assert [n["track_key"] for n in similar["neighbours"]] == [n["track_key"] for n in indexed["neighbours"]]


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


def test_a_filter_that_nothing_passes_is_said(capsys, small_index):
    assert cli.main(["recommend", "low/0.wav", "--genre", "polka", "--data-dir", str(small_index)]) == 0
    assert "no track of the index passes the filters (genre 'polka')" in capsys.readouterr().out


def test_similar_says_when_the_file_is_the_same_audio_as_an_indexed_track(capsys, small_index, tmp_path):
    library = storage.read_json(storage.require_current(small_index) / storage.SUMMARY)["library"]
    copy = tmp_path / "my copy.wav"
    copy.write_bytes((Path(library) / "low" / "2.wav").read_bytes())
    assert cli.main(["similar", str(copy), "--k", "3", "--data-dir", str(small_index)]) == 0
    out = capsys.readouterr().out
    assert f"{copy} is the same audio as low/2.wav" in out
    body = _json(capsys, ["similar", str(copy), "--k", "3", "--json", "--data-dir", str(small_index)])
    assert body["same_audio_as"] == ["low/2.wav"] and "low/2.wav" not in [n["track_key"] for n in body["neighbours"]]


def test_a_playlist_says_what_its_numbers_are(capsys, small_index):
    assert cli.main(["playlist", "Low Zero", "--length", "3", "--data-dir", str(small_index)]) == 0
    assert "each number is the distance from the track before it" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["playlist", "features", "export"])
@pytest.mark.parametrize("out, why", [("no/such/folder/x.parquet", "folder not found"), ("/dev/null", "not a regular")])
def test_every_out_takes_one_rule(capsys, small_index, tmp_path, monkeypatch, command, out, why):
    monkeypatch.chdir(tmp_path)
    argv = {
        "playlist": ["playlist", "Low Zero", "--data-dir", str(small_index)],
        "features": ["features", "--library", str(tmp_path)],
        "export": ["export", "--data-dir", str(small_index)],
    }[command]
    assert cli.main([*argv, "--out", out]) == 2
    assert why in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_export_into_a_closed_pipe_ends_quietly(small_index):
    read, write = os.pipe()
    os.close(read)  # as `| head -1` once it has its line
    done = subprocess.run(
        [sys.executable, "-m", "musicrec.cli", "export", "--out", "-", "--data-dir", str(small_index)],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write)
    assert done.returncode == 141 and "Traceback" not in done.stderr, done.stderr


def test_bad_run_input_is_one_sentence_before_airflow_starts(tmp_path, small_index):
    library = storage.read_json(storage.require_current(small_index) / storage.SUMMARY)["library"]
    not_a_table = tmp_path / "meta.csv"
    not_a_table.write_text('folder,file\n"low,0.wav\n')
    for extra, sentence in (
        (["--folders", "../x"], "error: folders must be relative to the library, without '..': ../x"),
        (["--metadata", str(not_a_table)], f"error: {not_a_table}: malformed CSV"),
    ):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "musicrec.cli",
                "run",
                "--library",
                library,
                "--data-dir",
                str(tmp_path / "d"),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2 and done.stderr.startswith(sentence), done.stderr
        assert len(done.stderr.splitlines()) == 1


def test_an_m3u_never_breaks_a_line_inside_an_entry():
    from musicrec.library import m3u

    tracks = [
        {"track_key": "a/one.wav", "artist": "Ann", "title": "Two\nlines", "duration_s": 3.0},
        {"track_key": "a/new\nline.wav", "artist": None, "title": "x", "duration_s": 1.0},
    ]
    text, left_out = m3u.text(tracks)
    assert text.splitlines() == ["#EXTM3U", "#EXTINF:3,Ann - Two lines", "a/one.wav"]
    assert left_out == ["a/new\nline.wav"]


def test_a_read_only_data_dir_is_one_sentence(capsys, small_index, monkeypatch):
    """As a read-only data dir answers (this suite runs as root, whom a mode does not stop)."""

    def refused(data_dir):
        raise PermissionError(13, "Permission denied", str(small_index / "current"))

    monkeypatch.setattr(storage, "rollback", refused)
    assert cli.main(["rollback", "--data-dir", str(small_index)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: Permission denied: {small_index / 'current'} (not writable by this user?)\n"


def test_what_a_failed_run_left_current_is_looked_at_not_assumed(small_index, tmp_path):
    data = shutil.copytree(small_index, tmp_path / "data", symlinks=True)
    current = storage.require_current(data)
    assert cli._last_index(data) == f"the last good index is unchanged (run {current.name})"
    (current / storage.RECOMMENDATIONS).unlink()  # as when the bucket or the folder went during the run
    assert cli._last_index(data) == f"the current index ({current.name}) is not there any more: run again to build one"
    shutil.rmtree(current)
    assert cli._last_index(data) == "no index is current in the data dir (none was published yet, or it has gone)"
