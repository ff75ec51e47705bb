"""Texture-window statistics, for the evaluation protocol (`evaluate.py --library`); not in the pipeline.

The frame features of the pipeline's analysis (20 MFCCs, 7 spectral contrast bands, 12 chroma, from one
STFT: 22.05 kHz mono, peak-normalized, n_fft 2048, hop 1024) are summarised over texture windows of about
3 s (64 frames, half overlapping) by their mean and standard deviation; a track is the 10th, 50th and
90th percentiles over its windows of each of those, instead of one mean and one deviation over the track.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import track_cache
from musicrec.analysis import audio, features

WINDOW = 64
MAX_SECONDS = 30 * 60


def texture(path: Path) -> np.ndarray:
    import librosa

    s = features.SETTINGS
    y, _ = audio.peak_normalize(audio.decode(path, s.sample_rate, MAX_SECONDS))
    power = np.abs(librosa.stft(y, n_fft=s.n_fft, hop_length=s.hop_length)) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=s.sample_rate, n_mels=s.n_mels)
    frames = np.vstack(
        [
            librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20),
            librosa.feature.spectral_contrast(S=np.sqrt(power), sr=s.sample_rate),
            librosa.feature.chroma_stft(S=power, sr=s.sample_rate, tuning=0.0),
        ]
    )
    if frames.shape[1] < WINDOW:
        frames = np.pad(frames, ((0, 0), (0, WINDOW - frames.shape[1])), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(frames, WINDOW, axis=1)[:, :: WINDOW // 2]
    stats = np.concatenate([windows.mean(axis=2), windows.std(axis=2)])  # (2 * features, windows)
    return np.percentile(stats, [10, 50, 90], axis=1).ravel()


def _row(path: Path) -> dict[str, list[float]]:
    return {"texture": texture(path).astype(float).tolist()}


def textures(library: str | Path, keys: list[str], cache: Path) -> np.ndarray:
    """(tracks, dims) in the order of `keys`, computed once and kept in `cache` (Parquet)."""
    table = track_cache.per_track(library, keys, cache, _row)
    return np.stack([np.asarray(v, dtype=np.float64) for v in table["texture"]])
