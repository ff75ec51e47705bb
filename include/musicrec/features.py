"""Audio features: one STFT per track, shared by every spectral feature.

The signal is analysed in blocks of frames (the frames are exactly those of a
centred STFT over the whole track), so the spectrogram of a long track is never
held whole. Every frame-series is summarised by its mean and standard deviation,
accumulated across blocks; tempo comes from the onset envelope of the whole track.

Column names say what they hold: `mfcc_03_mean`, `spectral_centroid_std`,
`chroma_07_mean`, `tempo_bpm`. `FEATURE_VERSION` changes whenever this module
or its settings change, and is stored with every row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from musicrec import audio


@dataclass(frozen=True)
class Settings:
    sample_rate: int = 22050
    n_fft: int = 2048
    # Half-overlapping frames (46 ms apart): the statistics of a track need no finer step, and it halves the cost.
    hop_length: int = 1024
    n_mels: int = 128
    n_mfcc: int = 20
    block_frames: int = 1024  # about 47 s of audio per block at the defaults (at least 8)
    tempo_window_s: float = 8.9  # librosa's tempogram window (384 frames of 512 samples at 22.05 kHz)
    silence_peak: float = 1e-4


SETTINGS = Settings()

# Frame-series, with the number of rows each has.
SERIES = {
    "mfcc": SETTINGS.n_mfcc,
    "mfcc_delta": SETTINGS.n_mfcc,
    "chroma": 12,
    "spectral_contrast": 7,
    "spectral_centroid": 1,
    "spectral_bandwidth": 1,
    "spectral_rolloff": 1,
    "spectral_flatness": 1,
    "rms": 1,
    "zero_crossing_rate": 1,
    "onset_strength": 1,
}

# The seed's original set: MFCC, spectral centroid and zero-crossing rate statistics.
SEED_SERIES = ("mfcc", "spectral_centroid", "zero_crossing_rate")


def _version() -> str:
    source = Path(__file__).read_bytes()
    settings = json.dumps(asdict(SETTINGS), sort_keys=True).encode()
    return hashlib.sha256(source + settings).hexdigest()[:12]


FEATURE_VERSION = _version()


def series_columns(name: str, rows: int) -> list[str]:
    if rows == 1:
        return [f"{name}_mean", f"{name}_std"]
    return [f"{name}_{i:02d}_{stat}" for i in range(1, rows + 1) for stat in ("mean", "std")]


def feature_columns(feature_set: str = "default") -> list[str]:
    """Numeric feature columns of a set: 'default' (all) or 'seed' (the seed's MFCC, centroid, ZCR)."""
    names = SEED_SERIES if feature_set == "seed" else tuple(SERIES)
    columns = [c for name in names for c in series_columns(name, SERIES[name])]
    if feature_set != "seed":
        columns.append("tempo_bpm")
    return columns


class _Stats:
    """Running sum and sum of squares of a (rows, frames) series, in float64."""

    def __init__(self, rows: int):
        self.sum = np.zeros(rows)
        self.sumsq = np.zeros(rows)
        self.count = 0

    def add(self, block: np.ndarray) -> None:
        block = np.nan_to_num(block.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        self.sum += block.sum(axis=1)
        self.sumsq += np.square(block).sum(axis=1)
        self.count += block.shape[1]

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.sum / max(self.count, 1)
        var = np.maximum(self.sumsq / max(self.count, 1) - np.square(mean), 0.0)
        return mean, np.sqrt(var)


class _Delta:
    """Delta (librosa, width 9) of a series that arrives in blocks, equal to the delta of the whole.

    Each block's last frames wait for the next block to give them their right-hand context.
    """

    HALF = 4

    def __init__(self):
        self.context: np.ndarray | None = None

    def push(self, block: np.ndarray, last: bool) -> np.ndarray:
        import librosa

        series = block if self.context is None else np.concatenate([self.context, block], axis=1)
        first = 0 if self.context is None else self.context.shape[1] - self.HALF
        stop = series.shape[1] if last else series.shape[1] - self.HALF
        if series.shape[1] >= 3:
            delta = librosa.feature.delta(series, width=9, mode="nearest")
        else:
            delta = np.zeros_like(series)
        self.context = series[:, -2 * self.HALF :]
        return delta[:, first:stop]


def _padded_slice(y: np.ndarray, start: int, stop: int) -> np.ndarray:
    """y[start:stop] with zeros where the range runs past either end."""
    out = np.zeros(stop - start, dtype=np.float32)
    lo, hi = max(start, 0), min(stop, y.size)
    if hi > lo:
        out[lo - start : hi - start] = y[lo:hi]
    return out


def _centroid_bandwidth(magnitude: np.ndarray, s: Settings) -> tuple[np.ndarray, np.ndarray]:
    """librosa's spectral centroid and (p=2) bandwidth, from the first two moments of each frame.

    Two matrix-vector products instead of librosa's broadcast over the whole spectrogram, which
    also recomputes the centroid: the same values, at a thirtieth of the cost.
    """
    import librosa

    freq = librosa.fft_frequencies(sr=s.sample_rate, n_fft=s.n_fft).astype(np.float32)
    total = magnitude.sum(axis=0) + np.finfo(np.float32).tiny
    centroid = freq @ magnitude / total
    bandwidth = np.sqrt(np.maximum(np.square(freq) @ magnitude / total - np.square(centroid), 0.0))
    return centroid[np.newaxis], bandwidth[np.newaxis]


def _rolloff(magnitude: np.ndarray, s: Settings, fraction: float = 0.85) -> np.ndarray:
    """librosa's spectral rolloff: the lowest frequency under which `fraction` of each frame's energy lies."""
    import librosa

    freq = librosa.fft_frequencies(sr=s.sample_rate, n_fft=s.n_fft)
    cumulative = np.cumsum(magnitude, axis=0)
    below = (cumulative < fraction * cumulative[-1]).sum(axis=0)
    return freq[np.minimum(below, freq.size - 1)][np.newaxis]


def _zero_crossing_rate(segment: np.ndarray, s: Settings) -> np.ndarray:
    """librosa's zero-crossing rate of the STFT's frames, counting each sample's crossing once."""
    import librosa

    crossings = np.concatenate([[0], np.cumsum(librosa.zero_crossings(segment, pad=False), dtype=np.int64)])
    starts = np.arange(0, segment.size - s.n_fft + 1, s.hop_length)
    return ((crossings[starts + s.n_fft] - crossings[starts]) / s.n_fft)[np.newaxis]


def _block_series(segment: np.ndarray, mel_basis: np.ndarray, s: Settings) -> dict[str, np.ndarray]:
    import librosa

    sr = s.sample_rate
    magnitude = np.abs(librosa.stft(segment, n_fft=s.n_fft, hop_length=s.hop_length, center=False))
    power = np.square(magnitude)
    log_mel = librosa.power_to_db(mel_basis @ power, ref=1.0, top_db=None)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=s.n_mfcc)
    centroid, bandwidth = _centroid_bandwidth(magnitude, s)
    return {
        "mfcc": mfcc,
        # An explicit tuning skips pitch tracking, which allocates several spectrogram-sized arrays a call.
        "chroma": librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0),
        "spectral_contrast": librosa.feature.spectral_contrast(S=magnitude, sr=sr),
        "spectral_centroid": centroid,
        "spectral_bandwidth": bandwidth,
        "spectral_rolloff": _rolloff(magnitude, s),
        "spectral_flatness": librosa.feature.spectral_flatness(S=power, power=1.0),  # the power we already have
        "rms": librosa.feature.rms(S=magnitude, frame_length=s.n_fft),
        "zero_crossing_rate": _zero_crossing_rate(segment, s),
        "log_mel": log_mel,
    }


def compute(y: np.ndarray, s: Settings = SETTINGS) -> dict[str, float]:
    """Features of a mono, peak-normalized signal at `s.sample_rate`."""
    import librosa

    mel_basis = librosa.filters.mel(sr=s.sample_rate, n_fft=s.n_fft, n_mels=s.n_mels)
    stats = {name: _Stats(rows) for name, rows in SERIES.items()}
    n_frames = 1 + y.size // s.hop_length
    half = s.n_fft // 2
    onset_envelope = []
    previous_log_mel = None
    mfcc_delta = _Delta()
    for first in range(0, n_frames, s.block_frames):
        frames = min(s.block_frames, n_frames - first)
        last = first + frames >= n_frames
        start = first * s.hop_length - half
        segment = _padded_slice(y, start, start + (frames - 1) * s.hop_length + s.n_fft)
        series = _block_series(segment, mel_basis, s)
        log_mel = series.pop("log_mel")
        # Onset strength as librosa defines it (lag 1, mean over mel bands), continuous across blocks.
        reference = log_mel[:, :1] if previous_log_mel is None else previous_log_mel
        onset = np.maximum(0.0, np.diff(log_mel, axis=1, prepend=reference)).mean(axis=0, keepdims=True)
        series["onset_strength"] = onset
        series["mfcc_delta"] = mfcc_delta.push(series["mfcc"], last)
        onset_envelope.append(onset[0])
        previous_log_mel = log_mel[:, -1:]
        for name, block in series.items():
            stats[name].add(block)

    row: dict[str, float] = {}
    for name, acc in stats.items():
        mean, std = acc.mean_std()
        values = np.column_stack([mean, std]).ravel()
        row.update(zip(series_columns(name, SERIES[name]), values.tolist(), strict=False))
    row["tempo_bpm"] = _tempo(np.concatenate(onset_envelope), s)
    return row


def _tempo(envelope: np.ndarray, s: Settings) -> float:
    """librosa's tempo estimate, from one autocorrelation of the whole onset envelope.

    librosa's default builds a tempogram (one autocorrelation per frame) and averages it;
    a single global autocorrelation gives the averaged picture for a fraction of the cost.
    """
    import librosa

    win_length = round(s.tempo_window_s * s.sample_rate / s.hop_length)
    if envelope.size < 4 or not np.any(envelope):
        return 0.0
    autocorrelation = librosa.autocorrelate(envelope, max_size=min(win_length, envelope.size))
    tempogram = np.zeros((win_length, 1))
    tempogram[: autocorrelation.size, 0] = np.maximum(autocorrelation, 0.0) / (np.max(autocorrelation) or 1.0)
    tempo = librosa.feature.tempo(tg=tempogram, sr=s.sample_rate, hop_length=s.hop_length)
    return float(np.nan_to_num(tempo[0]))


def extract_path(path: Path, s: Settings = SETTINGS, max_seconds: float | None = None) -> dict:
    """Decode, peak-normalize and analyse one file, or its first `max_seconds` when it is longer.

    Raises audio.DecodeError when no decoder reads it. `analysed_s` says how much was analysed; a longer
    file is `truncated`, and its `duration_s` comes from its header.
    """
    y = audio.decode(path, s.sample_rate, max_seconds)
    analysed = y.size / s.sample_rate
    truncated = bool(max_seconds) and y.size >= int(max_seconds * s.sample_rate)
    duration = (audio.duration_s(path) or analysed) if truncated else analysed
    y, peak = audio.peak_normalize(y)
    row = {
        "duration_s": duration,
        "analysed_s": analysed,
        "truncated": truncated,
        "is_silent": peak < s.silence_peak,
        "feature_version": FEATURE_VERSION,
    }
    row.update(compute(y, s))
    return row
