"""A timbre model per track, as musly's and the MIREX audio-similarity systems use: the mean and full
covariance of the track's MFCC frames (a single Gaussian), compared with the symmetric Kullback-Leibler
divergence. For the evaluation protocol (`evaluate.py --library`); not in the pipeline.

The frames are those of the pipeline's analysis (22.05 kHz mono, peak-normalized, n_fft 2048, hop 1024,
128 mel bands, 20 MFCCs); the first coefficient (loudness) is left out, as musly does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import track_cache
from musicrec.analysis import audio, features

COEFFICIENTS = slice(1, 20)
MAX_SECONDS = 30 * 60


def gaussian(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    s = features.SETTINGS
    y, _ = audio.peak_normalize(audio.decode(path, s.sample_rate, MAX_SECONDS))
    mfcc = librosa.feature.mfcc(
        y=y, sr=s.sample_rate, n_mfcc=s.n_mfcc, n_fft=s.n_fft, hop_length=s.hop_length, n_mels=s.n_mels
    )[COEFFICIENTS]
    return mfcc.mean(axis=1), np.cov(mfcc) + 1e-6 * np.eye(mfcc.shape[0])


def _row(path: Path) -> dict[str, list[float]]:
    mean, cov = gaussian(path)
    return {"mean": mean.tolist(), "cov": cov.ravel().tolist()}


def gaussians(library: str | Path, keys: list[str], cache: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each track's (mean, covariance), computed once and kept in `cache` (Parquet)."""
    table = track_cache.per_track(library, keys, cache, _row)
    d = len(table["mean"].iloc[0])
    return {k: (np.asarray(table.at[k, "mean"]), np.asarray(table.at[k, "cov"]).reshape(d, d)) for k in keys}


def symmetric_kl(models: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(n, n) symmetric KL divergences: 1/2 [tr(Si^-1 Sj) + tr(Sj^-1 Si) + (mi - mj)' (Si^-1 + Sj^-1) (mi - mj)] - d."""
    means = np.stack([m for m, _ in models])
    covs = np.stack([c for _, c in models])
    inverse = np.linalg.inv(covs)
    d = means.shape[1]
    traces = np.einsum("iab,jba->ij", inverse, covs)  # tr(Si^-1 Sj)
    diff = means[:, None, :] - means[None, :, :]
    both = inverse[:, None] + inverse[None, :]
    mahalanobis = np.einsum("ija,ijab,ijb->ij", diff, both, diff)
    return np.maximum(0.5 * (traces + traces.T + mahalanobis) - d, 0.0)
