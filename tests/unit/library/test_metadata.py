"""Metadata cleaning on a crafted dirty table, and reading odd files."""

from __future__ import annotations

import pandas as pd
import pytest

from musicrec.library import metadata

DIRTY = """Folder,File,Track Title,Artist Name,Genre,Year,Length,Mood
rock,a.mp3,  Song   A ,The Beatles,Rock,1969,3:45,happy
rock,a.mp3,  Song   A ,The Beatles,Rock,1969,3:45,happy
rock,b.mp3,Song B,the beatles ,rock n roll,1969-09-26,225,sad
rock,c.mp3,Song C,The Beatels,ROCK,,1:02:03,
rock,d.mp3,Song D,The Beatles,Rock,0,-5,
jazz,e.mp3,Café,Beyoncé,Hip Hop,2016,4:00,
jazz,f.mp3,Cafe\u0301 2,Beyonce,hip-hop,2016,4:01,
jazz,g.mp3,,Bon Iver,Polka,2011,4:10,
jazz,h.mp3,Song H,Bon Jovi,HipHop,1986,4:10,
jazz,h.mp3,Song H,Bon Jovi,,,,
jazz,i.mp3,Song I,The Beatles,Rock,1970,abc,
,,No file,Nobody,Rock,1999,3:00,
"""


@pytest.fixture
def cleaned(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text(DIRTY, encoding="utf-8")
    df, report = metadata.clean(metadata.read_table(path))
    return df.set_index("track_key"), report


def test_keys_and_duplicates(cleaned):
    df, report = cleaned
    assert set(df.index) == {
        "rock/a.mp3",
        "rock/b.mp3",
        "rock/c.mp3",
        "rock/d.mp3",
        "jazz/e.mp3",
        "jazz/f.mp3",
        "jazz/g.mp3",
        "jazz/h.mp3",
        "jazz/i.mp3",
    }
    assert report["duplicates_removed"] == {"exact": 1, "same_file": 1}
    assert report["rows_without_file_dropped"] == 1
    assert df.loc["jazz/h.mp3", "genre"] == "hip-hop"  # the more complete duplicate was kept
    assert report["rows_in"] == 12 and report["rows_out"] == 9


def test_text_is_normalized(cleaned):
    df, _ = cleaned
    assert df.loc["rock/a.mp3", "title"] == "Song A"
    assert df.loc["jazz/f.mp3", "title"] == "Café 2"  # combining accent composed (NFC)
    assert pd.isna(df.loc["jazz/g.mp3", "title"])


def test_durations_and_years(cleaned):
    df, report = cleaned
    assert df.loc["rock/a.mp3", "duration_s"] == 225.0
    assert df.loc["rock/b.mp3", "duration_s"] == 225.0
    assert df.loc["rock/c.mp3", "duration_s"] == 3723.0
    assert pd.isna(df.loc["rock/d.mp3", "duration_s"]) and pd.isna(df.loc["jazz/i.mp3", "duration_s"])
    assert df.loc["rock/b.mp3", "year"] == 1969
    assert pd.isna(df.loc["rock/d.mp3", "year"])
    assert report["invalid_values_set_missing"] == {
        "duration_s": {"count": 2, "examples": ["-5", "abc"]},
        "year": {"count": 1, "examples": ["0"]},
    }


def test_artist_spellings_merge_but_different_artists_stay_apart(cleaned):
    df, report = cleaned
    assert set(df.loc[["rock/a.mp3", "rock/b.mp3", "rock/c.mp3", "rock/d.mp3", "jazz/i.mp3"], "artist"]) == {
        "The Beatles"
    }
    assert df.loc["jazz/f.mp3", "artist"] == df.loc["jazz/e.mp3", "artist"]
    assert df.loc["jazz/g.mp3", "artist"] == "Bon Iver" and df.loc["jazz/h.mp3", "artist"] == "Bon Jovi"
    assert report["artist_spellings_merged"]["The Beatels"] == "The Beatles"


def test_genres_map_to_the_vocabulary_and_unknown_labels_are_listed(cleaned):
    df, report = cleaned
    assert df.loc["rock/b.mp3", "genre"] == "rock" and df.loc["rock/c.mp3", "genre"] == "rock"
    assert df.loc[["jazz/e.mp3", "jazz/f.mp3", "jazz/h.mp3"], "genre"].tolist() == ["hip-hop"] * 3
    assert df.loc["jazz/g.mp3", "genre"] == "unknown" and df.loc["jazz/g.mp3", "genre_label"] == "Polka"
    assert report["genre_labels_outside_vocabulary"] == ["Polka"]


def test_unknown_columns_are_kept(cleaned):
    df, _ = cleaned
    assert df.loc["rock/a.mp3", "mood"] == "happy"


def test_latin1_semicolons_bom_and_path_column(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path;artist;length\nx/Déjà vu.mp3;Zoë;1:00\n".encode("latin-1"))
    df, _ = metadata.clean(metadata.read_table(latin))
    assert df.loc[0, "track_key"] == "x/Déjà vu.mp3" and df.loc[0, "artist"] == "Zoë"
    assert df.loc[0, "folder"] == "x" and df.loc[0, "duration_s"] == 60.0
    bom = tmp_path / "bom.tsv"
    bom.write_bytes("\ufefffolder\tfile\tgenre\na\tb.wav\tjazz\n".encode("utf-8"))
    df, _ = metadata.clean(metadata.read_table(bom))
    assert df.loc[0, "track_key"] == "a/b.wav" and df.loc[0, "genre"] == "jazz"


def test_parquet_metadata(tmp_path):
    path = tmp_path / "m.parquet"
    pd.DataFrame({"folder": ["a"], "file": ["b.wav"], "duration": [12.5], "year": [2001]}).to_parquet(path)
    df, _ = metadata.clean(metadata.read_table(path))
    assert df.loc[0, "duration_s"] == 12.5 and df.loc[0, "year"] == 2001


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(metadata.MetadataError, match="missing.csv"):
        metadata.read_table(tmp_path / "missing.csv")
    malformed = tmp_path / "malformed.csv"
    malformed.write_text('folder,file,title\na,b.wav,"unclosed\nc,d.wav,ok,extra,fields\n')
    with pytest.raises(metadata.MetadataError, match="malformed.csv.*row 1"):
        metadata.read_table(malformed)
    no_key = tmp_path / "nokey.csv"
    no_key.write_text("title,artist\nx,y\n")
    with pytest.raises(metadata.MetadataError, match="folder"):
        metadata.clean(metadata.read_table(no_key))


def test_rows_outside_the_library_are_set_aside():
    df = pd.DataFrame({"track_key": ["a/1.wav", "a/2.wav"]})
    kept, orphans = metadata.restrict_to_library(df, {"a/1.wav"})
    assert kept["track_key"].tolist() == ["a/1.wav"] and orphans == ["a/2.wav"]


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("3:45", 225.0),
        ("1:02:03", 3723.0),
        ("245", 245.0),
        (" 12.5s", 12.5),
        ("0", None),
        ("-3", None),
        ("7:00:00", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_duration(value, seconds):
    assert metadata.parse_duration(value) == seconds


def test_tags_fill_what_the_file_leaves_missing_and_add_tracks_without_rows():
    raw = pd.DataFrame(
        {"folder": ["a", "a"], "file": ["1.mp3", "2.mp3"], "title": ["From file", None], "genre": [None, "Jazz"]}
    )
    tags = pd.DataFrame(
        {
            "track_key": ["a/1.mp3", "a/2.mp3", "b/3.ogg"],
            "title": ["Tag title", "Tag two", "Three"],
            "artist": ["Tagged", None, "Someone"],
            "album": [None, None, "LP"],
            "genre": ["Rock", "Blues", "hip hop"],
            "year": ["2001-02-03", None, "1999"],
            "duration_s": [61.5, None, 200.0],
        }
    )
    df, report = metadata.clean(raw, tags)
    df = df.set_index("track_key")
    assert df.loc["a/1.mp3", "title"] == "From file" and df.loc["a/1.mp3", "title_source"] == "metadata"
    assert df.loc["a/2.mp3", "title"] == "Tag two" and df.loc["a/2.mp3", "title_source"] == "tags"
    assert df.loc["a/1.mp3", "genre"] == "rock" and df.loc["a/1.mp3", "genre_source"] == "tags"
    assert df.loc["a/2.mp3", "genre"] == "jazz" and df.loc["a/2.mp3", "genre_source"] == "metadata"
    assert df.loc["a/1.mp3", "year"] == 2001 and df.loc["a/1.mp3", "duration_s"] == 61.5
    assert df.loc["b/3.ogg", "folder"] == "b" and df.loc["b/3.ogg", "genre"] == "hip-hop"
    assert pd.isna(df.loc["a/2.mp3", "artist_source"])
    assert report["filled_from_tags"]["title"] == 2


def test_a_clean_file_passes_unchanged(tmp_path):
    path = tmp_path / "clean.csv"
    path.write_text(
        "folder,file,title,artist,album,genre,year,duration_s\n"
        "a,1.flac,One,Ann Arbor,First,jazz,2001,61.5\n"
        "b,2.flac,Two,Bo Diddley,Second,blues,1958,150.0\n",
        encoding="utf-8",
    )
    df, report = metadata.clean(metadata.read_table(path))
    assert df[["title", "artist", "album", "genre", "genre_label"]].values.tolist() == [
        ["One", "Ann Arbor", "First", "jazz", "jazz"],
        ["Two", "Bo Diddley", "Second", "blues", "blues"],
    ]
    assert df["year"].tolist() == [2001, 1958] and df["duration_s"].tolist() == [61.5, 150.0]
    assert report["cells_whitespace_or_unicode_fixed"] == 0
    assert report["duplicates_removed"] == {"exact": 0, "same_file": 0}
    assert report["artist_spellings_merged"] == {} and report["genre_labels_outside_vocabulary"] == []
    assert all(v["count"] == 0 for v in report["invalid_values_set_missing"].values())
    assert report["rows_in"] == report["rows_out"] == 2


def test_keys_are_the_exact_paths_and_match_files_with_odd_whitespace(tmp_path):
    path = tmp_path / "meta.csv"
    pd.DataFrame(
        {
            "folder": ["a", "a", "a"],
            "file": ["two  spaces.wav", "new\nline.wav", "caf\u00e9.wav"],  # NFC here, NFD on disk
            "title": ["  Two   Spaces ", "New line", "Café"],
        }
    ).to_csv(path, index=False)
    df, _ = metadata.clean(metadata.read_table(path))
    assert df["track_key"].tolist() == ["a/two  spaces.wav", "a/new\nline.wav", "a/caf\u00e9.wav"]
    assert df["title"].tolist()[0] == "Two Spaces"  # values are still cleaned
    library = {"a/two  spaces.wav", "a/new\nline.wav", "a/cafe\u0301.wav"}
    kept, orphans = metadata.restrict_to_library(df, library)
    assert orphans == [] and set(kept["track_key"]) == library
    assert kept.set_index("track_key").loc["a/cafe\u0301.wav", "file"] == "cafe\u0301.wav"


@pytest.mark.parametrize(
    "header, used, ignored",
    [("Artist Name,artist", "Artist Name", "artist"), ("artist,Artist Name", "artist", "Artist Name")],
)
def test_columns_that_collide_are_named_and_the_first_is_used(tmp_path, header, used, ignored):
    path = tmp_path / "meta.csv"
    path.write_text(f"Folder,folder,File,{header}\nx,y,f.mp3,First,Second\n")
    df, report = metadata.clean(metadata.read_table(path))
    assert df["track_key"].tolist() == ["x/f.mp3"] and df["artist"].tolist() == ["First"]
    assert report["column_collisions"] == {
        "folder": {"used": "Folder", "ignored": ["folder"]},
        "artist": {"used": used, "ignored": [ignored]},
    }
    assert f"artist: used `{used}`, ignored `{ignored}`" in metadata.report_markdown(report)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_unicode_text_with_a_byte_order_mark_is_read(tmp_path, encoding):
    path = tmp_path / "meta.csv"
    text = "folder\tfile\tartist\nrock\ta.mp3\tBeyoncé\n"
    bom = {"utf-16": b"", "utf-16-be": "\ufeff".encode("utf-16-be"), "utf-32": b""}[encoding]
    path.write_bytes(bom + text.encode(encoding))
    df, _ = metadata.clean(metadata.read_table(path))
    assert df["track_key"].tolist() == ["rock/a.mp3"] and df["artist"].tolist() == ["Beyoncé"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("folder,file,artist\nalbum,a.ogg,A,extra\n", "line 2 has more fields than the header"),
        ("folder,file,artist\nalbum,a.ogg,A\nalbum,b.ogg,B,extra\n", "Expected 3 fields in line 3, saw 4"),
    ],
)
def test_a_row_with_more_fields_than_the_header_is_named_not_shifted(tmp_path, text, message):
    path = tmp_path / "meta.csv"
    path.write_text(text)
    with pytest.raises(metadata.MetadataError, match=message):
        metadata.read_table(path)
