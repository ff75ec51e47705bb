"""Features: names, robustness on odd signals, block analysis, versioning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from musicrec.analysis import audio, features, filterbanks
from support.audio import ffmpeg_generate, tone

SR = features.SETTINGS.sample_rate


def test_columns_are_readable_and_the_seed_set_is_a_subset():
    default = features.feature_columns()
    seed = features.feature_columns("seed")
    assert "mfcc_03_mean" in default and "spectral_centroid_std" in default and "tempo_bpm" in default
    assert set(seed) < set(features.feature_columns("signal")) < set(default)
    assert {"musicnn_001_mean", "musicnn_192_std"} <= set(default)
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


def test_every_row_records_the_feature_version(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(seconds=0.5), SR)
    assert features.extract_path(path)["feature_version"] == features.FEATURE_VERSION


def _librosa_row(y: np.ndarray, s: features.Settings = features.SETTINGS) -> dict[str, float]:
    """The feature row as librosa's own functions compute it, over the whole signal at once."""
    import librosa

    magnitude = np.abs(librosa.stft(y, n_fft=s.n_fft, hop_length=s.hop_length, pad_mode="constant"))
    power = magnitude**2
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=SR, n_mels=s.n_mels), top_db=None)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=s.n_mfcc)
    zcr_frames = dict(frame_length=s.n_fft, hop_length=s.hop_length, center=False)
    series = {
        "mfcc": mfcc,
        "mfcc_delta": librosa.feature.delta(mfcc, width=9, mode="nearest"),
        "chroma": librosa.feature.chroma_stft(S=power, sr=SR, tuning=0.0),
        "spectral_contrast": librosa.feature.spectral_contrast(S=magnitude, sr=SR),
        "spectral_centroid": librosa.feature.spectral_centroid(S=magnitude, sr=SR),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(S=magnitude, sr=SR),
        "spectral_rolloff": librosa.feature.spectral_rolloff(S=magnitude, sr=SR),
        "spectral_flatness": librosa.feature.spectral_flatness(S=power, power=1.0),
        "rms": librosa.feature.rms(S=magnitude, frame_length=s.n_fft),
        # zero-padded like the STFT's frames (librosa's own centring repeats the edge samples)
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(np.pad(y, s.n_fft // 2), **zcr_frames),
        "onset_strength": np.maximum(0.0, np.diff(log_mel, axis=1, prepend=log_mel[:, :1])).mean(0, keepdims=True),
    }
    row = {}
    for name, values in series.items():
        stats = np.column_stack([values.mean(axis=1), values.std(axis=1)]).ravel()
        row.update(zip(features.series_columns(name, features.SERIES[name]), stats.tolist(), strict=True))
    envelope = series["onset_strength"][0]
    window = round(s.tempo_window_s * SR / s.hop_length)
    autocorrelation = librosa.autocorrelate(envelope, max_size=min(window, envelope.size))
    tempogram = np.zeros((window, 1))
    tempogram[: autocorrelation.size, 0] = np.maximum(autocorrelation, 0.0) / np.max(autocorrelation)
    row["tempo_bpm"] = float(librosa.feature.tempo(tg=tempogram, sr=SR, hop_length=s.hop_length)[0])
    return row


def test_every_feature_equals_librosas_own():
    """The analysis is numpy on librosa's filterbanks: every column agrees with librosa's functions."""
    t = np.arange(SR * 20) / SR
    y = np.random.default_rng(5).standard_normal(t.size) * 0.05 + 0.2 * np.sin(2 * np.pi * 97 * t)
    y += 0.4 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.5)  # on and off: onsets and a tempo
    y[SR * 5 : SR * 7] = 0.0  # digital silence: floors, empty frames, zero chroma
    y = y.astype(np.float32)
    ours = features.compute(y)  # one block: librosa's contrast clips 80 dB below the maximum of what it is given
    theirs = _librosa_row(y)
    described = {"tempo_confidence", features.LOUDNESS, features.FINGERPRINT, *features.TAG_COLUMNS}  # not energy
    assert set(ours) == set(features.feature_columns()) | described
    assert set(theirs) == set(features.feature_columns("signal"))
    assert set(theirs) == set(ours) - set(features.MUSICNN_COLUMNS) - described
    for column, expected in theirs.items():
        assert ours[column] == pytest.approx(expected, rel=1e-3, abs=1e-4), column


def test_filterbanks_are_computed_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICREC_CACHE_DIR", str(tmp_path))
    computed = []
    real = filterbanks.compute
    monkeypatch.setattr(filterbanks, "compute", lambda *a: computed.append(a) or real(*a))
    mel, chroma, k_weighting = filterbanks.load(SR, 2048, 128)
    again = filterbanks.load(SR, 2048, 128)
    assert len(computed) == 1
    np.testing.assert_array_equal(again[0], mel)
    np.testing.assert_array_equal(again[1], chroma)
    assert mel.shape == (128, 1025) and chroma.shape == (12, 1025) and k_weighting.shape == (1025,)
    np.testing.assert_array_equal(again.k_weighting, k_weighting)
    # a damaged file is computed again and replaced; an unwritable folder only costs the time
    (saved,) = (tmp_path / "filterbanks").iterdir()
    saved.write_bytes(b"not numpy")
    np.testing.assert_array_equal(filterbanks.load(SR, 2048, 128)[0], mel)
    assert len(computed) == 2 and filterbanks.load(SR, 2048, 128) is not None and len(computed) == 2
    monkeypatch.setenv("MUSICREC_CACHE_DIR", "/proc/no-such-place")
    np.testing.assert_array_equal(filterbanks.load(SR, 2048, 128)[1], chroma)


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
