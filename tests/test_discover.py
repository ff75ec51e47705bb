"""Finding audio files and sharding them."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from musicrec import discover


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_scan_finds_audio_by_extension_in_any_case_and_skips_the_rest(tmp_path):
    _touch(tmp_path / "A" / "one.MP3")
    _touch(tmp_path / "A" / "two.flac")
    _touch(tmp_path / "A" / "cover.jpg")
    _touch(tmp_path / "A" / ".hidden.mp3")
    _touch(tmp_path / "B" / "deep" / "three.Opus")
    _touch(tmp_path / "root.wav")
    df = discover.scan(tmp_path)
    assert df["track_key"].tolist() == ["A/one.MP3", "A/two.flac", "B/deep/three.Opus", "root.wav"]
    assert df.set_index("track_key").loc["B/deep/three.Opus", "folder"] == "B/deep"
    assert df.set_index("track_key").loc["root.wav", "folder"] == ""


def test_scan_follows_symlinked_folders_and_files(tmp_path):
    real = tmp_path / "elsewhere"
    _touch(real / "x.ogg")
    lib = tmp_path / "lib"
    (lib / "linked").mkdir(parents=True)
    os.symlink(real, lib / "album")
    os.symlink(real / "x.ogg", lib / "linked" / "y.ogg")
    os.symlink(tmp_path / "missing.ogg", lib / "linked" / "dangling.ogg")
    assert discover.scan(lib)["track_key"].tolist() == ["album/x.ogg", "linked/y.ogg"]


def test_scan_selected_folders(tmp_path):
    _touch(tmp_path / "A" / "a.wav")
    _touch(tmp_path / "B" / "b.wav")
    assert discover.scan(tmp_path, ["B"])["track_key"].tolist() == ["B/b.wav"]
    with pytest.raises(discover.LibraryError, match="C"):
        discover.scan(tmp_path, ["C"])


def test_wrong_library_path_names_it(tmp_path):
    with pytest.raises(discover.LibraryError, match="nope"):
        discover.scan(tmp_path / "nope")


def test_empty_folder_gives_an_empty_worklist(tmp_path):
    df = discover.scan(tmp_path)
    assert df.empty and list(df.columns) == discover.WORKLIST_COLUMNS
    assert discover.split(df, 10) == []


@pytest.mark.parametrize("n, per_shard, expected", [(1, 50, 1), (100, 50, 2), (101, 50, 3), (10**6, 1, 256)])
def test_shard_count_is_bounded(n, per_shard, expected):
    assert discover.shard_count(n, per_shard) == expected


def test_split_covers_every_file_once_in_near_equal_shards():
    df = pd.DataFrame({"track_key": [f"f/{i:04d}.wav" for i in range(1003)], "folder": "f", "file": "x"})
    shards = discover.split(df, 100)
    sizes = [len(s) for s in shards]
    assert len(shards) == 11 and max(sizes) - min(sizes) <= 1
    assert pd.concat(shards)["track_key"].tolist() == df["track_key"].tolist()
    assert discover.shard_label(shards[0], 0, 11).startswith("shard 1/11: 91 files, f")
