"""The musicnn embedding: the network against musicnn's own graph, its input against librosa's."""

from __future__ import annotations

import numpy as np
import pytest

from musicrec.analysis import musicnn
from support.audio import tone
from support.project import DATA_DIR

REFERENCE = DATA_DIR / "musicnn_reference.npz"


def test_model_equals_musicnns_own_graph():
    """`tools/musicnn_model.py` ran musicnn 0.1.0's TensorFlow graph on these patches (noise, a rising
    tone with harmonics, silence) and kept its time-pooled features (every layer up to the mid-end) and its
    tags' probabilities, labelled as musicnn labels them."""
    with np.load(REFERENCE) as ref:
        patches, mean_pool, max_pool, taggram = ref["patches"], ref["mean_pool"], ref["max_pool"], ref["taggram"]
        labels = ref["labels"].tolist()
    mean, peak, tags = musicnn.features(patches)
    assert mean.shape == peak.shape == (3, 753)
    np.testing.assert_allclose(mean, mean_pool, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(peak, max_pool, rtol=1e-4, atol=1e-4)
    assert tags.shape == (3, 50) and labels == musicnn.TAGS
    np.testing.assert_allclose(tags, taggram, atol=1e-5)
    # the patches are not alike to the network: noise, a tone and silence get different tags
    assert len({int(np.argmax(row)) for row in tags}) >= 2


def _librosa_log_mel(y: np.ndarray) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(
        y=y,
        sr=musicnn.SAMPLE_RATE,
        n_fft=musicnn.N_FFT,
        hop_length=musicnn.HOP,
        n_mels=musicnn.N_MELS,
        pad_mode="constant",
    ).T
    return np.log10(1.0 + 10000.0 * mel)


def _signal(sr: int, seconds: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (0.3 * rng.standard_normal(int(sr * seconds))).astype(np.float32) + tone(523.25, seconds, sr=sr)


def test_input_is_librosas_log_mel_at_16_khz():
    y = _signal(musicnn.SAMPLE_RATE)
    expected = _librosa_log_mel(y)
    patches = musicnn.log_mel_patches(y, musicnn.SAMPLE_RATE)
    starts = musicnn.patch_starts(expected.shape[0])
    assert len(patches) == len(starts) == 3  # 10 s hold three whole 3-s patches
    for patch, start in zip(patches, starts, strict=True):
        np.testing.assert_allclose(patch, expected[start : start + musicnn.PATCH_FRAMES], rtol=1e-4, atol=1e-4)


def test_each_patch_is_resampled_as_the_whole_track_would_be():
    import soxr

    sr = 22050
    y = _signal(sr, 40.0)
    expected = _librosa_log_mel(soxr.resample(y, sr, musicnn.SAMPLE_RATE))
    patches = musicnn.log_mel_patches(y, sr)
    starts = musicnn.patch_starts(expected.shape[0])
    assert starts[0] == 0 and len(patches) == len(starts) == musicnn.PATCHES
    # the whole track's first frame sees how the resampler starts the signal; every other frame is the same
    np.testing.assert_allclose(patches[0, 0], expected[0], atol=0.1)
    np.testing.assert_allclose(patches[0, 1:], expected[1 : musicnn.PATCH_FRAMES], atol=1e-4)
    for patch, start in zip(patches[1:], starts[1:], strict=True):
        np.testing.assert_allclose(patch, expected[start : start + musicnn.PATCH_FRAMES], atol=1e-4)


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        (1, [0]),  # shorter than a patch: one, padded with silence
        (187 * 3 + 5, [0, 187, 374]),  # every whole patch, end to end
    ],
)
def test_patches_of_a_short_track(frames, expected):
    assert musicnn.patch_starts(frames, patches=9).tolist() == expected


def test_patches_spread_evenly_over_a_long_track():
    starts = musicnn.patch_starts(187 * 40, patches=9)  # 40 whole patches: 9 taken, first and last among them
    assert starts[0] == 0 and starts[-1] == 187 * 39 and len(starts) == 9
    gaps = np.diff(starts) // 187
    assert set(gaps.tolist()) <= {4, 5}
    assert len(musicnn.patch_starts(187 * 1000)) == musicnn.PATCHES


def test_embedding_tells_timbres_apart_and_ignores_the_sample_rate():
    from musicrec.analysis import features

    sr = features.SETTINGS.sample_rate
    t = np.arange(sr * 9) / sr
    square = np.sign(np.sin(2 * np.pi * 220 * t)).astype(np.float32) * 0.5
    sine = tone(220, 9.0, sr=sr)
    noise = np.random.default_rng(2).standard_normal(t.size).astype(np.float32) * 0.3
    (a, tags), (b, _), (c, _) = (musicnn.embed(y, sr) for y in (square, sine, noise))
    assert a.shape == (2 * musicnn.ROWS,) and np.all(np.isfinite(a))
    assert len(features.MUSICNN_COLUMNS) == a.size
    assert tags.shape == (len(features.TAG_COLUMNS),) and np.all((tags >= 0) & (tags <= 1))
    # the same sound given at another rate is the same input to the network, near enough
    resampled, _ = musicnn.embed(tone(220, 9.0, sr=44100), 44100)
    assert np.linalg.norm(resampled - b) < 0.1 * min(np.linalg.norm(a - b), np.linalg.norm(c - b))
