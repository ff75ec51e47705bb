"""Embedded tags as a metadata source."""

from __future__ import annotations

import pytest
import soundfile as sf

from musicrec.library import tags
from support.audio import ffmpeg_generate, tone


def test_tags_of_flac_and_mp3(tmp_path):
    from mutagen.flac import FLAC

    flac = tmp_path / "a" / "x.flac"
    flac.parent.mkdir()
    sf.write(flac, tone(seconds=1.5, sr=44100), 44100)
    tagged = FLAC(flac)
    tagged.update({"title": "Flac Song", "artist": "Someone", "genre": "Jazz", "date": "2004-05-06"})
    tagged.save()
    ffmpeg_generate(
        tmp_path / "a" / "y.mp3",
        seconds=2.0,
        extra=["-metadata", "title=Mp3 Song", "-metadata", "artist=Other", "-metadata", "album=LP"],
    )
    (tmp_path / "a" / "z.wav").write_bytes(b"not audio")
    df = tags.library_tags(tmp_path, ["a/x.flac", "a/y.mp3", "a/z.wav"]).set_index("track_key")
    assert df.loc["a/x.flac", ["title", "artist", "genre", "year"]].tolist() == [
        "Flac Song",
        "Someone",
        "Jazz",
        "2004-05-06",
    ]
    assert df.loc["a/x.flac", "duration_s"] == pytest.approx(1.5, abs=0.01)
    assert df.loc["a/y.mp3", ["title", "artist", "album"]].tolist() == ["Mp3 Song", "Other", "LP"]
    assert df.loc["a/z.wav"].drop("duration_s").isna().all()
