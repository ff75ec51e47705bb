"""Fingerprints of generated audio: copies through real encoders and decoders match; other sounds do not."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from musicrec.analysis import features, fingerprint
from support.audio import notes

SR = 22050


def _fingerprint(y: np.ndarray, tmp_path, name: str = "x.flac", rate: int = SR) -> np.ndarray:
    path = tmp_path / name
    sf.write(path, y, rate)
    return np.frombuffer(features.extract_path(path)[features.FINGERPRINT], dtype="<u4")


def test_a_copy_matches_through_a_trim_a_gain_a_fade_and_another_rate(tmp_path):
    import soxr

    y = notes()
    original = _fingerprint(y, tmp_path)
    fade = np.minimum(1.0, np.arange(y.size) / (2 * SR))[::-1] * np.minimum(1.0, np.arange(y.size) / SR)
    copies = {
        "trimmed 1.37 s": y[int(1.37 * SR) :],
        "6 dB quieter, faded": 0.5 * y * fade,
        "at 44.1 kHz": soxr.resample(y, SR, 44100),
    }
    for name, copy in copies.items():
        rate = 44100 if "44.1" in name else SR
        found = fingerprint.match(original, _fingerprint(copy, tmp_path, rate=rate), max_offset=500)
        assert found.bit_error_rate < 0.1 and found.overlap > 0.9 * original.size - 40, name
    trimmed = fingerprint.match(original, _fingerprint(copies["trimmed 1.37 s"], tmp_path), max_offset=500)
    assert trimmed.offset == -round(1.37 * fingerprint.RATE / fingerprint.HOP)


@pytest.mark.parametrize("other", ["another piece", "5% faster", "a tone higher"])
def test_other_recordings_agree_no_more_than_chance(tmp_path, other):
    import soxr

    y = notes()
    changed = {
        "another piece": notes(seed=1),
        "5% faster": soxr.resample(y, SR, round(SR / 1.05)),  # played at SR: shorter and higher
        "a tone higher": soxr.resample(y, SR, round(SR / 2 ** (2 / 12)))[: y.size],
    }[other]
    found = fingerprint.match(_fingerprint(y, tmp_path), _fingerprint(changed, tmp_path, "y.flac"), max_offset=500)
    assert found.bit_error_rate > 0.35


def test_the_fingerprint_covers_the_tracks_start_only(tmp_path):
    frames = _fingerprint(notes(seconds=150.0), tmp_path).size
    assert frames == (int(fingerprint.SECONDS * fingerprint.RATE) - fingerprint.FRAME) // fingerprint.HOP
