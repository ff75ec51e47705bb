"""The rules that decide a duplicate: an excerpt is not a copy; the file kept is the best one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicrec.analysis import fingerprint
from musicrec.index import duplicates
from support.audio import notes

SR = 22050


def _judged(y: np.ndarray, other: np.ndarray) -> dict:
    prints = [fingerprint.of_signal(x, SR).tobytes() for x in (y, other)]
    return duplicates.judge(*prints, y.size / SR, other.size / SR)


def test_a_copy_trimmed_at_both_ends_is_the_same_recording_an_excerpt_is_not():
    y = notes(40.0, seed=4)
    trimmed = _judged(y, y[int(3.2 * SR) : -int(4.1 * SR)])
    assert trimmed["same"] and trimmed["offset_s"] == pytest.approx(-3.2, abs=0.05)
    excerpt = _judged(y, y[: int(0.7 * y.size)])  # its first 28 s: the bits agree, the ends do not
    assert excerpt["bit_error_rate"] < 0.05 and not excerpt["same"]


def test_a_file_without_a_fingerprint_is_never_the_same_recording_as_another():
    y = notes(20.0, seed=5)
    one = fingerprint.of_signal(y, SR).tobytes()
    for a, b in ((b"", one), (one, b""), (b"", b"")):
        judged = duplicates.judge(a, b, 20.0, 20.0)
        assert not judged["same"] and judged["bit_error_rate"] == 1.0 and judged["overlap_s"] == 0.0


def test_the_file_kept_is_lossless_then_of_the_higher_bitrate_then_the_longer():
    files = pd.DataFrame(
        {
            "track_key": ["a/x.mp3", "b/x.ogg", "c/x.wav", "d/x.flac", "e/x.m4a", "f/x.m4a"],
            "duration_s": [200.0, 200.0, 195.0, 200.0, 200.0, 200.0],
            "size_bytes": [3_200_000, 1_600_000, 34_000_000, 20_000_000, 6_400_000, 6_400_000],
            "album": ["One", "One", "One", "One", "Hits", "Own"],
            "artist": ["Ann", "Ann", "Ann", "Ann", "Ann", "Ann"],
        }
    )
    others = pd.DataFrame({"track_key": ["e/y.ogg", "e/z.ogg"], "album": ["Hits"] * 2, "artist": ["Bob", "Cid"]})
    with_compilation = pd.concat([files, others.assign(duration_s=100.0, size_bytes=1)], ignore_index=True)
    ranked = with_compilation.loc[duplicates.canonical_order(with_compilation), "track_key"].tolist()
    # "Hits" has three artists: a compilation; of two files alike, the album's own is kept
    assert ranked[:6] == ["d/x.flac", "c/x.wav", "f/x.m4a", "e/x.m4a", "a/x.mp3", "b/x.ogg"]
