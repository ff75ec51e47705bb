"""`musicrec export`: where it writes, what it refuses, and cells that a spreadsheet would run."""

from __future__ import annotations

import io
import os

import pandas as pd
import pytest

from musicrec import cli
from musicrec.serve import export
from musicrec.store import storage


@pytest.fixture
def data_dir(tmp_path):
    """A published index with the two tables export reads."""
    data = tmp_path / "data"
    run = storage.run_dir(data, "run1")
    tracks = pd.DataFrame(
        {
            "track_key": ["a/1.ogg", "a/2.ogg"],
            "folder": ["a", "a"],
            "file": ["1.ogg", "2.ogg"],
            "title": ['=HYPERLINK("http://x")', "Plain"],
            "artist": ["@risky", "-dash"],
            "genre": ["rock", "+plus"],
            "duration_s": [-1.5, 2.0],
        }
    )
    storage.write_parquet(tracks, run / storage.TRACKS)
    storage.write_parquet(
        pd.DataFrame({"track_key": ["a/1.ogg", "a/2.ogg"], "pc_01": [-0.5, 0.5]}), run / storage.EMBEDDINGS
    )
    storage.publish(data, run)
    return data


def _export(data_dir, *args):
    return cli.main(["export", "--data-dir", str(data_dir), *args])


def test_csv_cells_that_would_run_as_formulas_are_neutralised(data_dir, tmp_path):
    assert _export(data_dir, "--out", str(tmp_path / "x.csv")) == 0
    table = pd.read_csv(tmp_path / "x.csv")
    assert table["title"].tolist() == ['\'=HYPERLINK("http://x")', "Plain"]
    assert table["artist"].tolist() == ["'@risky", "'-dash"] and table["genre"].tolist() == ["rock", "'+plus"]
    assert table["duration_s"].tolist() == [-1.5, 2.0] and table["pc_01"].tolist() == [-0.5, 0.5]  # numbers stay


def test_parquet_keeps_the_values_as_they_are(data_dir, tmp_path):
    assert _export(data_dir, "--out", str(tmp_path / "x.parquet")) == 0
    assert pd.read_parquet(tmp_path / "x.parquet")["title"].tolist() == ['=HYPERLINK("http://x")', "Plain"]


def test_dash_writes_to_standard_output(data_dir, capsys):
    assert _export(data_dir, "--out", "-") == 0
    out = capsys.readouterr().out
    assert pd.read_csv(io.StringIO(out))["track_key"].tolist() == ["a/1.ogg", "a/2.ogg"]


def test_a_symlink_is_refused_and_left_alone(data_dir, tmp_path, capsys):
    victim = tmp_path / "victim.csv"
    victim.write_text("keep me\n")
    os.symlink(victim, tmp_path / "link.csv")
    assert _export(data_dir, "--out", str(tmp_path / "link.csv")) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert (tmp_path / "link.csv").is_symlink() and victim.read_text() == "keep me\n"


@pytest.mark.parametrize("out", ["/dev/null", "{tmp}"])
def test_devices_and_folders_are_refused(data_dir, tmp_path, capsys, out):
    target = out.format(tmp=tmp_path)
    assert _export(data_dir, "--out", target, "--format", "csv") == 2
    assert "not a regular file" in capsys.readouterr().err


def test_a_missing_folder_is_not_created(data_dir, tmp_path, capsys):
    assert _export(data_dir, "--out", str(tmp_path / "no" / "such" / "x.csv")) == 2
    assert "folder not found" in capsys.readouterr().err and not (tmp_path / "no").exists()


def test_the_format_comes_from_the_flag_or_the_extension(tmp_path):
    assert export.target(str(tmp_path / "x.CSV"), None)[1] == "csv"
    assert export.target(str(tmp_path / "x.bin"), "parquet")[1] == "parquet"
    with pytest.raises(export.InputError, match="cannot tell the format"):
        export.target(str(tmp_path / "x.xml"), None)
    with pytest.raises(export.InputError, match="does not match"):
        export.target(str(tmp_path / "x.csv"), "parquet")


def test_a_name_near_the_length_limit_still_writes(data_dir, tmp_path):
    name = "n" * 250 + ".csv"
    assert _export(data_dir, "--out", str(tmp_path / name)) == 0
    assert len(pd.read_csv(tmp_path / name)) == 2
