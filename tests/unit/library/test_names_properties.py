"""Properties of file-name and key handling over generated names (hypothesis): whatever bytes a folder or
file name holds, a scan lists the file under its exact key or skips it with a reason, the work list keeps
every key through Parquet, and a key outside the library is refused."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicrec.library import discover
from musicrec.pipeline import stages
from musicrec.store import storage

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# A POSIX name: any bytes but "/" and NUL, not "." or "..", at most 255 bytes.
name_bytes = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))
names = name_bytes.filter(lambda b: b not in (b".", b".."))
suffixes = st.sampled_from([b".wav", b".mp3", b".FLAC", b".ogg", b".txt", b""])


@FUZZ
@given(files=st.lists(st.tuples(names, names, suffixes), min_size=1, max_size=8, unique_by=lambda t: t[:2]))
def test_every_file_is_listed_under_its_exact_key_or_skipped_with_a_reason(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("names")
    library = os.fsencode(root / "library")
    os.mkdir(library)
    made = set()
    for folder, stem, suffix in files:
        os.makedirs(os.path.join(library, folder), exist_ok=True)
        path = os.path.join(library, folder, stem + suffix)
        if os.path.isdir(path):
            continue
        with open(path, "wb") as out:
            out.write(b"RIFF0000WAVE")
        made.add(os.fsdecode(os.path.join(folder, stem + suffix)))
    scanned = discover.scan(os.fsdecode(library))
    listed = set(scanned.files["track_key"])
    skipped = dict(zip(scanned.skipped["path"], scanned.skipped["reason"], strict=True))
    # Hidden files and folders (".x", macOS's "._x" beside each file) are left out, as every player does.
    visible = {key for key in made if not any(part.startswith(".") for part in key.split("/"))}
    audio = {key for key in visible if key.lower().endswith((".wav", ".mp3", ".flac", ".ogg"))}
    utf8 = {key for key in audio if discover._is_utf8(key)}
    assert listed == utf8  # exactly the audio whose names are text, each under its own path
    assert all(skipped[discover._printable(key)] == discover.NOT_UTF8 for key in audio - utf8)
    assert all(os.path.isfile(os.path.join(library, os.fsencode(key))) for key in listed)
    if listed:
        run = stages.discover(os.fsdecode(library), str(root / "data"), "names")
        assert set(storage.read_parquet(run["worklist"])["track_key"]) == listed
    else:
        with pytest.raises(discover.LibraryError, match="no audio files found in .*skipped, the first: |no audio"):
            stages.discover(os.fsdecode(library), str(root / "data"), "names")
    shutil.rmtree(root)


@FUZZ
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4))
def test_a_folder_outside_the_library_is_refused_and_one_inside_is_kept(tmp_path_factory, folders):
    library = tmp_path_factory.mktemp("inside")
    try:
        wanted = discover.normalize_folders(folders)
    except ValueError as exc:
        assert "folder" in str(exc)
        return
    for folder in wanted:
        assert not folder.startswith("/") and ".." not in folder.split("/")
    try:
        discover.check_folders_inside(library, wanted)
    except ValueError as exc:
        assert "folder" in str(exc)


def test_a_folder_name_holding_a_nul_byte_is_refused_in_a_sentence():
    """Found by the property above: it reached the file system, whose ValueError named nothing."""
    with pytest.raises(discover.LibraryError, match="folders: a folder name cannot hold a NUL byte"):
        discover.normalize_folders(["rock", "a\0b"])
