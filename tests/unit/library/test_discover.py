"""Finding audio files and sharding them."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import soundfile as sf

from musicrec.library import discover
from musicrec.pipeline import stages
from musicrec.store import storage
from support.audio import tone


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
    df = discover.scan(tmp_path).files
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
    files, skipped = discover.scan(lib)
    assert files["track_key"].tolist() == ["album/x.ogg", "linked/y.ogg"]
    assert skipped["path"].tolist() == ["linked/dangling.ogg"] and "dangling" in skipped["reason"][0]


def test_scan_selected_folders(tmp_path):
    _touch(tmp_path / "A" / "a.wav")
    _touch(tmp_path / "B" / "b.wav")
    assert discover.scan(tmp_path, ["B"]).files["track_key"].tolist() == ["B/b.wav"]
    with pytest.raises(discover.LibraryError, match="C"):
        discover.scan(tmp_path, ["C"])


def test_only_regular_files_are_audio(tmp_path):
    _touch(tmp_path / "A" / "real.wav")
    os.mkfifo(tmp_path / "A" / "x.wav")
    os.symlink("/dev/zero", tmp_path / "A" / "z.wav")
    (tmp_path / "A" / "folder.mp3").mkdir()
    files, skipped = discover.scan(tmp_path)
    assert files["track_key"].tolist() == ["A/real.wav"]
    assert dict(zip(skipped["path"], skipped["reason"], strict=True)) == {
        "A/x.wav": "not a regular file (a FIFO)",
        "A/z.wav": "not a regular file (a character device)",
    }


def test_a_link_loop_is_walked_once(tmp_path):
    _touch(tmp_path / "album" / "song.ogg")
    os.symlink(".", tmp_path / "album" / "a")  # album/a -> album
    os.symlink("a", tmp_path / "album" / "b")  # album/b -> album/a -> album
    os.symlink(tmp_path, tmp_path / "album" / "up")  # back to the library root
    files, skipped = discover.scan(tmp_path)
    assert files["track_key"].tolist() == ["album/song.ogg"]
    assert skipped["path"].tolist() == ["album/a", "album/b", "album/up"]
    assert set(skipped["reason"]) == {"folder already walked (a link loop or a second link)"}


@pytest.mark.parametrize("folder", ["../b", "/etc", "a/../../b"])
def test_selected_folders_stay_inside_the_library(tmp_path, folder):
    (tmp_path / "lib" / "a").mkdir(parents=True)
    _touch(tmp_path / "b" / "outside.wav")
    with pytest.raises(discover.LibraryError, match="relative to the library"):
        discover.scan(tmp_path / "lib", [folder])
    with pytest.raises(discover.LibraryError, match="relative to the library"):
        discover.plan(discover.scan(tmp_path / "lib").files, None, 3, folders=[folder])


def test_wrong_library_path_names_it(tmp_path):
    with pytest.raises(discover.LibraryError, match="nope"):
        discover.scan(tmp_path / "nope")


def test_empty_folder_gives_an_empty_worklist(tmp_path):
    df = discover.scan(tmp_path).files
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


def _files(*keys, size=100, mtime=1):
    return pd.DataFrame(
        {
            "track_key": list(keys),
            "folder": [k.rsplit("/", 1)[0] if "/" in k else "" for k in keys],
            "file": [k.rsplit("/", 1)[-1] for k in keys],
            "size_bytes": size,
            "mtime_ns": mtime,
        }
    )


def _previous(scanned, version=3, **changes):
    """The features table of a last index that holds `scanned` as it is."""
    prev = scanned[discover.REUSE_KEYS].assign(feature_version=version, mfcc_01_mean=0.5)
    for key, column_value in changes.items():
        column, value = column_value
        prev.loc[prev["track_key"] == key, column] = value
    return prev


def _plan(scanned, previous, **kwargs):
    todo, reused, _ = discover.plan(scanned, previous, 3, **kwargs)
    return todo["track_key"].tolist(), reused["track_key"].tolist()


def test_plan_without_a_last_index_extracts_everything():
    scanned = _files("A/1.ogg", "B/2.ogg")
    assert _plan(scanned, None) == (["A/1.ogg", "B/2.ogg"], [])


def test_plan_reuses_unchanged_files_and_extracts_changed_new_and_outdated_ones():
    scanned = _files("A/1.ogg", "A/2.ogg", "A/3.ogg", "A/new.ogg")
    previous = _previous(scanned[scanned["track_key"] != "A/new.ogg"])
    previous.loc[previous["track_key"] == "A/2.ogg", "mtime_ns"] = 0  # touched since
    previous.loc[previous["track_key"] == "A/3.ogg", "feature_version"] = 2  # older features
    todo, reused = _plan(scanned, previous)
    assert todo == ["A/2.ogg", "A/3.ogg", "A/new.ogg"] and reused == ["A/1.ogg"]


def test_plan_of_an_unchanged_library_extracts_nothing():
    scanned = _files("A/1.ogg", "B/2.ogg")
    todo, reused, _ = discover.plan(scanned, _previous(scanned), 3)
    assert todo.empty and reused["track_key"].tolist() == ["A/1.ogg", "B/2.ogg"]
    assert reused["mfcc_01_mean"].tolist() == [0.5, 0.5]  # the features themselves come along


def test_plan_drops_files_removed_from_the_library():
    previous = _previous(_files("A/1.ogg", "A/gone.ogg"))
    assert _plan(_files("A/1.ogg"), previous) == ([], ["A/1.ogg"])


def test_plan_with_folders_processes_them_and_keeps_only_what_the_last_index_had_elsewhere():
    scanned = _files("A/1.ogg", "A/new.ogg", "B/2.ogg", "B/new.ogg", "incoming/2026-11-29/x.ogg")
    previous = _previous(scanned[scanned["track_key"].isin(["A/1.ogg", "B/2.ogg"])])
    assert _plan(scanned, previous, folders=["B"]) == (["B/new.ogg"], ["A/1.ogg", "B/2.ogg"])
    assert _plan(scanned, previous, folders=["incoming/2026-11-29/"]) == (
        ["incoming/2026-11-29/x.ogg"],
        ["A/1.ogg", "B/2.ogg"],
    )


def test_plan_full_refresh_extracts_the_selection_again():
    scanned = _files("A/1.ogg", "B/2.ogg")
    previous = _previous(scanned)
    assert _plan(scanned, previous, full_refresh=True) == (["A/1.ogg", "B/2.ogg"], [])
    assert _plan(scanned, previous, folders=["B"], full_refresh=True) == (["B/2.ogg"], ["A/1.ogg"])


def test_plan_names_selected_folders_that_hold_no_audio():
    scanned = _files("A/1.ogg", "AB/2.ogg")
    with pytest.raises(discover.LibraryError, match="selected folders: A/x, nope"):
        discover.plan(scanned, None, 3, folders=["A", "A/x", "nope"])
    # "A" selects A/1.ogg, not AB/2.ogg: folders match whole path components.
    assert _plan(scanned, None, folders=["A"]) == (["A/1.ogg"], [])


def test_plan_leaves_an_unchanged_quarantined_file_in_quarantine_until_a_full_refresh():
    scanned = _files("A/good.ogg", "A/broken.mp3", "A/fixed.mp3")
    previous = _previous(scanned[scanned["track_key"] == "A/good.ogg"])
    quarantined = scanned[scanned["track_key"] != "A/good.ogg"][discover.REUSE_KEYS].assign(error="bad")
    quarantined.loc[quarantined["track_key"] == "A/fixed.mp3", "mtime_ns"] = 0  # replaced since
    todo, reused, still = discover.plan(scanned, previous, 3, quarantined=quarantined)
    assert todo["track_key"].tolist() == ["A/fixed.mp3"] and reused["track_key"].tolist() == ["A/good.ogg"]
    assert still["track_key"].tolist() == ["A/broken.mp3"] and still["error"].tolist() == ["bad"]
    todo, _, still = discover.plan(scanned, previous, 3, full_refresh=True, quarantined=quarantined)
    assert sorted(todo["track_key"]) == ["A/broken.mp3", "A/fixed.mp3", "A/good.ogg"] and still.empty


def test_a_folder_template_renders_with_the_logical_date():
    import datetime as dt

    when = dt.datetime(2026, 11, 29, 2, 0, tzinfo=dt.UTC)
    assert discover.render_folder_template("incoming/{{ ds }}", when) == "incoming/2026-11-29"
    assert discover.render_folder_template("{{ logical_date.year }}/{{ ds_nodash }}/", when) == "2026/20261129"
    with pytest.raises(discover.LibraryError, match="cannot be rendered"):
        discover.render_folder_template("incoming/{{ nope }}", when)
    with pytest.raises(discover.LibraryError, match="relative to the library"):
        discover.render_folder_template("../{{ ds }}", when)


def test_a_folder_linking_out_of_the_library_is_refused(tmp_path):
    (tmp_path / "lib" / "inside").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "lib" / "escape")
    discover.check_folders_inside(tmp_path / "lib", ["inside"])
    with pytest.raises(discover.LibraryError, match="escape leads out of the library"):
        discover.check_folders_inside(tmp_path / "lib", ["escape"])


def test_a_name_that_is_not_utf8_costs_that_file_alone(tmp_path):
    """A Latin-1 name from an old CD rip or a Samba share made every run fail writing the work list."""
    library = tmp_path / "library"
    (library / "a").mkdir(parents=True)
    sf.write(library / "a" / "good.wav", tone(440.0, seconds=0.3), 22050)
    bad = os.path.join(os.fsencode(library / "a"), b"bad\xff\xfename.wav")
    with open(bad, "wb") as out:
        out.write((library / "a" / "good.wav").read_bytes())
    run = stages.discover(str(library), str(tmp_path / "data"), "r1")
    assert run["files_found"] == 1 and run["files_skipped"] == 1
    assert run["skipped"] == [{"path": "a/bad\ufffd\ufffdname.wav", "reason": discover.NOT_UTF8}]
    assert storage.read_parquet(run["worklist"])["track_key"].tolist() == ["a/good.wav"]


def test_a_library_nested_deeper_than_pythons_recursion_limit_is_scanned(tmp_path):
    library = deep = tmp_path / "library"
    library.mkdir()
    for _ in range(1100):  # one level at a time: Path.mkdir(parents=True) recurses too
        deep = deep / "d"
        deep.mkdir()
    sf.write(tmp_path / "x.wav", tone(440.0, seconds=0.3), 22050)
    (deep / "x.wav").write_bytes((tmp_path / "x.wav").read_bytes())  # libsndfile does not open so long a path
    try:
        found = discover.scan(library).files
        assert found["track_key"].tolist() == ["/".join(["d"] * 1100) + "/x.wav"]
    finally:  # one level at a time: shutil.rmtree, which cleans up tmp_path, recurses too
        (deep / "x.wav").unlink()
        while deep != library:
            deep.rmdir()
            deep = deep.parent
