"""Features: names, robustness on odd signals, block analysis, versioning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from conftest import ffmpeg_generate, tone
from musicrec import audio, features

SR = features.SETTINGS.sample_rate


def test_columns_are_readable_and_the_seed_set_is_a_subset():
    default = features.feature_columns()
    seed = features.feature_columns("seed")
    assert "mfcc_03_mean" in default and "spectral_centroid_std" in default and "tempo_bpm" in default
    assert set(seed) < set(default)
    assert {c.rsplit("_", 1)[0] for c in seed} >= {"mfcc_01", "spectral_centroid", "zero_crossing_rate"}


def test_brighter_sound_has_higher_centroid_and_zero_crossing_rate():
    low = features.compute(tone(220, 2.0))
    high = features.compute(tone(3000, 2.0))
    assert high["spectral_centroid_mean"] > 3 * low["spectral_centroid_mean"]
    assert high["zero_crossing_rate_mean"] > 3 * low["zero_crossing_rate_mean"]


def test_chroma_finds_the_pitch_class():
    row = features.compute(tone(440.0, 2.0))  # A4: chroma bin 10 when C is bin 1
    chroma = [row[f"chroma_{i:02d}_mean"] for i in range(1, 13)]
    assert int(np.argmax(chroma)) + 1 == 10


def test_block_analysis_matches_one_block():
    y = np.random.default_rng(3).standard_normal(SR * 6).astype(np.float32) * 0.2
    y += tone(330, 6.0)
    whole = features.compute(y, dataclasses.replace(features.SETTINGS, block_frames=100_000))
    blocks = features.compute(y, dataclasses.replace(features.SETTINGS, block_frames=37))
    for column in features.feature_columns():
        if column == "tempo_bpm":
            continue
        assert blocks[column] == pytest.approx(whole[column], rel=1e-3, abs=1e-3), column


@pytest.mark.parametrize("samples", [1, 1102, SR * 2])
def test_silence_and_tiny_clips_give_finite_features(tmp_path, samples):
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(samples, dtype=np.float32), SR)
    row = features.extract_path(path)
    assert row["is_silent"]
    values = np.array([row[c] for c in features.feature_columns()])
    assert np.all(np.isfinite(values))


def test_short_clip_of_sound_is_analysed(tmp_path):
    path = tmp_path / "blip.flac"
    sf.write(path, tone(1000, 0.05, sr=44100), 44100)
    row = features.extract_path(path)
    assert not row["is_silent"]
    assert row["duration_s"] == pytest.approx(0.05, abs=0.002)
    assert row["spectral_centroid_mean"] > 500


def test_feature_version_follows_settings_and_code(monkeypatch, tmp_path):
    assert features._version() == features.FEATURE_VERSION
    monkeypatch.setattr(features, "SETTINGS", dataclasses.replace(features.SETTINGS, n_mfcc=13))
    assert features._version() != features.FEATURE_VERSION
    monkeypatch.undo()
    changed = tmp_path / "features.py"
    changed.write_bytes(open(features.__file__, "rb").read() + b"\n# changed\n")
    monkeypatch.setattr(features, "__file__", str(changed))
    assert features._version() != features.FEATURE_VERSION


def test_every_row_records_the_feature_version(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(seconds=0.5), SR)
    assert features.extract_path(path)["feature_version"] == features.FEATURE_VERSION


def test_shortcut_features_equal_librosas():
    import librosa

    y = np.random.default_rng(5).standard_normal(SR * 3).astype(np.float32) * 0.3 + tone(500, 3.0)
    s = features.SETTINGS
    magnitude = np.abs(librosa.stft(y, n_fft=s.n_fft, hop_length=s.hop_length, center=False))
    centroid, bandwidth = features._centroid_bandwidth(magnitude, s)
    np.testing.assert_allclose(centroid, librosa.feature.spectral_centroid(S=magnitude, sr=SR), rtol=1e-4)
    np.testing.assert_allclose(bandwidth, librosa.feature.spectral_bandwidth(S=magnitude, sr=SR), rtol=1e-4)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=s.n_fft, hop_length=s.hop_length, center=False)
    np.testing.assert_allclose(features._zero_crossing_rate(y, s), zcr, atol=2 / s.n_fft)
    np.testing.assert_allclose(features._rolloff(magnitude, s), librosa.feature.spectral_rolloff(S=magnitude, sr=SR))


def test_tempo_of_a_click_track():
    beat = int(SR * 60 / 120)
    y = np.zeros(SR * 20, dtype=np.float32)
    for start in range(0, y.size - 200, beat):
        y[start : start + 200] = np.hanning(200) * np.sin(np.arange(200) * 0.8)
    assert features.compute(y)["tempo_bpm"] == pytest.approx(120, rel=0.03)


@pytest.mark.parametrize("name, extra", [("long.flac", []), ("long.m4a", ["-c:a", "aac"])])
def test_a_track_longer_than_the_cap_is_analysed_on_its_first_minutes(tmp_path, name, extra):
    path = ffmpeg_generate(tmp_path / name, seconds=75.0, sr=22050, channels=1, extra=extra)
    row = features.extract_path(path, max_seconds=30.0)
    assert row["truncated"] is True and row["analysed_s"] == pytest.approx(30.0, abs=0.05)
    assert row["duration_s"] == pytest.approx(75.0, abs=0.2)  # from the header, not the analysed part
    whole = features.extract_path(path, max_seconds=None)
    assert whole["truncated"] is False and whole["analysed_s"] == pytest.approx(75.0, abs=0.2)
    # a steady tone: the first minute sounds like the whole
    assert row["spectral_centroid_mean"] == pytest.approx(whole["spectral_centroid_mean"], rel=0.02)


def test_decoding_stops_at_the_cap_whatever_the_file_says(tmp_path):
    path = ffmpeg_generate(tmp_path / "long.wav", seconds=120.0, sr=44100, channels=2)
    for decoder in (audio.decode_soundfile, audio.decode_ffmpeg):
        assert decoder(path, 22050, 10.0).size == pytest.approx(10 * 22050, abs=2)
