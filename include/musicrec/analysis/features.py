"""Audio features: one STFT per track, shared by every spectral feature.

The signal is analysed in blocks of frames (the frames are exactly those of a
centred STFT over the whole track), so the spectrogram of a long track is never
held whole. Every frame-series is summarised by its mean and standard deviation,
accumulated across blocks; tempo comes from the onset envelope of the whole track.

Each feature is librosa's definition, computed here in numpy on librosa's own filterbanks
(`musicrec.analysis.filterbanks`) with frames laid out one per row, so that every per-frame
reduction and sort runs over contiguous memory; a test holds every column to librosa's
functions. librosa itself is not imported to analyse a track.

Besides librosa's features, each track gets an embedding from a music-tagging network
(`musicrec.analysis.musicnn`), from the same decoded signal: `musicnn_001_mean` ... `musicnn_192_std`.

Column names say what they hold: `mfcc_03_mean`, `spectral_centroid_std`,
`chroma_07_mean`, `tempo_bpm`. `FEATURE_VERSION` is stored with every row; see it below.

Beside the features, and not part of the embedding, each row holds what the track is like for a listener
(`DESCRIPTOR_COLUMNS`): the network's 50 tags' probabilities (`tag_mellow`, `tag_female_vocalists`, ...),
the tempo's confidence, the integrated loudness (EBU R128) and the energy; `musicrec.index.descriptors`
reads them, with the key from the chroma.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicrec.analysis import audio, filterbanks, fingerprint, musicnn


@dataclass(frozen=True)
class Settings:
    """The analysis's parameters. A frame is a whole number of hops (n_fft a multiple of hop_length)."""

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

FFT_FRAMES = 64

# The seed's original set: MFCC, spectral centroid and zero-crossing rate statistics.
SEED_SERIES = ("mfcc", "spectral_centroid", "zero_crossing_rate")


# Bumped by hand whenever a feature's values change: decoding, resampling, this analysis, its settings, the
# network or its weights. tests/unit/analysis/test_features_golden.py holds the values of a fixed signal for
# this version and fails when they change under the same version. A docstring or a refactor that keeps the
# values keeps the version, so a deployed library is not extracted again for it (a million tracks are days of CPU).
FEATURE_VERSION = "2026.12-3"


def series_columns(name: str, rows: int) -> list[str]:
    if rows == 1:
        return [f"{name}_mean", f"{name}_std"]
    digits = max(2, len(str(rows)))
    return [f"{name}_{i:0{digits}d}_{stat}" for i in range(1, rows + 1) for stat in ("mean", "std")]


MUSICNN_COLUMNS = series_columns("musicnn", musicnn.ROWS)


def tag_column(tag: str) -> str:
    """ "female vocalists" -> "tag_female_vocalists", "Hip-Hop" -> "tag_hip_hop"."""
    return "tag_" + "".join(c if c.isalnum() else "_" for c in tag.lower())


TAG_COLUMNS = [tag_column(t) for t in musicnn.TAGS]
# Integrated loudness (LUFS) of the mono mix the analysis decodes (`integrated_loudness`); -70, the
# standard's absolute gate, for silence.
LOUDNESS = "loudness_lufs"
LOUDNESS_FLOOR = -70.0
DESCRIPTOR_COLUMNS = [LOUDNESS, "energy", "tempo_confidence", *TAG_COLUMNS]
# The acoustic fingerprint of the track's first `fingerprint.SECONDS` (`musicrec.analysis.fingerprint`):
# uint32 sub-fingerprints, little-endian, as bytes.
FINGERPRINT = "fingerprint"


def feature_columns(feature_set: str = "default") -> list[str]:
    """Numeric feature columns of a set: 'default' (all), 'signal' (librosa's features, without the
    network's embedding) or 'seed' (the seed's MFCC, centroid, ZCR)."""
    names = SEED_SERIES if feature_set == "seed" else tuple(SERIES)
    columns = [c for name in names for c in series_columns(name, SERIES[name])]
    if feature_set != "seed":
        columns.append("tempo_bpm")
    if feature_set == "default":
        columns += MUSICNN_COLUMNS
    return columns


def stored_columns() -> list[str]:
    """Every number a row of the features table holds: the features, then the descriptors."""
    return [*feature_columns(), *DESCRIPTOR_COLUMNS]


class _Stats:
    """Running sum and sum of squares of a (frames, rows) series, in float64."""

    def __init__(self, rows: int):
        self.sum = np.zeros(rows)
        self.sumsq = np.zeros(rows)
        self.count = 0

    def add(self, block: np.ndarray) -> None:
        block = np.nan_to_num(block.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        self.sum += block.sum(axis=0)
        self.sumsq += np.square(block).sum(axis=0)
        self.count += block.shape[0]

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.sum / max(self.count, 1)
        var = np.maximum(self.sumsq / max(self.count, 1) - np.square(mean), 0.0)
        return mean, np.sqrt(var)


@dataclass(frozen=True)
class _Tables:
    """What every block's analysis multiplies by: window, filterbanks, DCT, frequencies, contrast bands."""

    window: np.ndarray  # (n_fft,) periodic Hann, as scipy's get_window gives librosa
    mel: np.ndarray  # (bins, n_mels), librosa's Slaney mel filterbank, transposed
    chroma: np.ndarray  # (bins, 12), librosa's chroma filterbank at tuning 0, transposed
    dct: np.ndarray  # (n_mels, n_mfcc), orthonormal DCT-II: librosa's MFCC of a log-mel spectrogram
    freq: np.ndarray  # (bins,) the bins' frequencies in Hz
    bands: tuple[tuple[int, int, int], ...]  # spectral contrast's sub-bands: (first bin, stop, quantile count)
    k_weights: np.ndarray  # (bins,) a frame's power spectrum times these: its K-weighted mean square


@functools.cache
def _tables(s: Settings = SETTINGS) -> _Tables:
    n = np.arange(s.n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / s.n_fft)
    freq = np.fft.rfftfreq(s.n_fft, 1.0 / s.sample_rate)
    mel, chroma, k_weighting = filterbanks.load(s.sample_rate, s.n_fft, s.n_mels)
    k, m = np.arange(s.n_mfcc)[np.newaxis], np.arange(s.n_mels)[:, np.newaxis]
    dct = np.cos(np.pi * k * (2 * m + 1) / (2 * s.n_mels)) * np.sqrt(2.0 / s.n_mels)
    dct[:, 0] /= np.sqrt(2.0)
    return _Tables(
        window=window,
        mel=np.ascontiguousarray(mel.T),
        chroma=np.ascontiguousarray(chroma.T),
        dct=dct.astype(np.float32),
        freq=freq,
        bands=_contrast_bands(freq, s.sample_rate),
        k_weights=_k_weights(k_weighting, window, s),
    )


def _k_weights(k_weighting: np.ndarray, window: np.ndarray, s: Settings) -> np.ndarray:
    """BS.1770's K-weighting (`filterbanks`: pyloudnorm's two filters at this rate) as weights over the
    STFT's bins, scaled so that a frame's power spectrum times them is the frame's K-weighted mean square
    (Parseval: each bin but DC and Nyquist stands for two, and the window's energy is taken out)."""
    sides = np.full(k_weighting.size, 2.0)
    sides[0] = sides[-1] = 1.0
    return (k_weighting * sides / (s.n_fft * np.sum(window**2))).astype(np.float32)


def _contrast_bands(freq: np.ndarray, sr: int, n_bands: int = 6, fmin: float = 200.0, quantile: float = 0.02):
    """librosa's spectral-contrast sub-bands (octaves from fmin), as contiguous bin ranges."""
    octaves = np.zeros(n_bands + 2)
    octaves[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    bands = []
    for k, (low, high) in enumerate(zip(octaves[:-1], octaves[1:], strict=True)):
        inside = np.flatnonzero((freq >= low) & (freq <= high))
        first = inside[0] - 1 if k > 0 else inside[0]
        stop = freq.size if k == n_bands else inside[-1] + 1
        count = stop - first
        # librosa counts the band's bins before dropping the last one of every band but the top
        take = max(int(np.rint(quantile * count)), 1)
        bands.append((int(first), int(stop if k == n_bands else stop - 1), take))
    return tuple(bands)


def _power_to_db(power: np.ndarray, top_db: float | None = None) -> np.ndarray:
    """librosa's power_to_db with ref 1.0 and amin 1e-10."""
    db = 10.0 * np.log10(np.maximum(power, np.float32(1e-10)))
    return db if top_db is None else np.maximum(db, db.max() - top_db)


def _spectral_contrast(magnitude: np.ndarray, t: _Tables) -> np.ndarray:
    """librosa's spectral contrast: the dB difference of each band's top and bottom quantile.

    Each band is sorted along the frame's own bins, which lie contiguous in memory here (librosa sorts
    across the frequency axis of a (bins, frames) array): numpy's vectorised sort, several times faster.
    """
    peak = np.empty((magnitude.shape[0], len(t.bands)), dtype=np.float64)
    valley = np.empty_like(peak)
    for k, (first, stop, take) in enumerate(t.bands):
        band = np.sort(magnitude[:, first:stop], axis=1)
        valley[:, k] = band[:, :take].mean(axis=1)
        peak[:, k] = band[:, -take:].mean(axis=1)
    return _power_to_db(peak, top_db=80.0) - _power_to_db(valley, top_db=80.0)


def _delta(series: np.ndarray) -> np.ndarray:
    """librosa's delta (width 9, order 1, mode 'nearest') along frames: Savitzky-Golay of order 1 is the
    least-squares slope over the window, a fixed weighted sum of the neighbours."""
    half = _Delta.HALF
    padded = np.concatenate([np.repeat(series[:1], half, axis=0), series, np.repeat(series[-1:], half, axis=0)])
    n = series.shape[0]
    out = np.zeros_like(series)
    for lag in range(1, half + 1):
        out += lag * (padded[half + lag : half + lag + n] - padded[half - lag : half - lag + n])
    return out / np.float32(2 * sum(lag * lag for lag in range(1, half + 1)))


class _Delta:
    """Delta of a series that arrives in blocks, equal to the delta of the whole.

    Each block's last frames wait for the next block to give them their right-hand context.
    """

    HALF = 4

    def __init__(self):
        self.context: np.ndarray | None = None

    def push(self, block: np.ndarray, last: bool) -> np.ndarray:
        series = block if self.context is None else np.concatenate([self.context, block], axis=0)
        first = 0 if self.context is None else self.context.shape[0] - self.HALF
        stop = series.shape[0] if last else series.shape[0] - self.HALF
        delta = _delta(series) if series.shape[0] >= 3 else np.zeros_like(series)
        self.context = series[-2 * self.HALF :]
        return delta[first:stop]


def _magnitude(segment: np.ndarray, s: Settings, t: _Tables) -> np.ndarray:
    """|STFT| of the segment's frames (no centring), (frames, bins), float32.

    The FFT runs in float64, as librosa's does: in float32, its rounding noise would stand in for the quiet
    bins that spectral contrast's valleys are made of. Frames go FFT_FRAMES at a time, which keeps the
    float64 copies in cache.
    """
    frames = np.lib.stride_tricks.sliding_window_view(segment, s.n_fft)[:: s.hop_length]
    magnitude = np.empty((frames.shape[0], s.n_fft // 2 + 1), dtype=np.float32)
    for first in range(0, frames.shape[0], FFT_FRAMES):
        chunk = frames[first : first + FFT_FRAMES]
        magnitude[first : first + chunk.shape[0]] = np.abs(np.fft.rfft(chunk * t.window, axis=1))
    return magnitude


def _centroid_bandwidth(magnitude: np.ndarray, t: _Tables) -> tuple[np.ndarray, np.ndarray]:
    """librosa's spectral centroid and (p=2) bandwidth, from the first two moments of each frame."""
    freq = t.freq.astype(np.float32)
    total = magnitude.sum(axis=1) + np.finfo(np.float32).tiny
    centroid = magnitude @ freq / total
    bandwidth = np.sqrt(np.maximum(magnitude @ np.square(freq) / total - np.square(centroid), 0.0))
    return centroid[:, np.newaxis], bandwidth[:, np.newaxis]


def _rolloff(magnitude: np.ndarray, t: _Tables, fraction: float = 0.85) -> np.ndarray:
    """librosa's spectral rolloff: the lowest frequency under which `fraction` of each frame's energy lies."""
    cumulative = np.cumsum(magnitude, axis=1)
    below = (cumulative < fraction * cumulative[:, -1:]).sum(axis=1)
    return t.freq[np.minimum(below, t.freq.size - 1)][:, np.newaxis]


def _flatness(power: np.ndarray) -> np.ndarray:
    """librosa's spectral flatness of the power spectrogram (power=1.0): geometric over arithmetic mean."""
    floored = np.maximum(power, np.float32(1e-10))
    return (np.exp(np.log(floored).mean(axis=1)) / floored.mean(axis=1))[:, np.newaxis]


def _rms(power: np.ndarray, s: Settings) -> np.ndarray:
    """librosa's RMS from a magnitude spectrogram: DC and Nyquist bins count half."""
    total = power.sum(axis=1) - 0.5 * power[:, 0] - 0.5 * power[:, -1]
    return np.sqrt(2.0 * total / s.n_fft**2)[:, np.newaxis]


def _chroma(power: np.ndarray, t: _Tables) -> np.ndarray:
    """librosa's chroma_stft at tuning 0: each frame scaled to a maximum of 1 (silent frames left at 0)."""
    raw = power @ t.chroma
    peak = raw.max(axis=1, keepdims=True)
    return raw / np.where(peak < np.finfo(np.float32).tiny, 1.0, peak)


def _zero_crossing_rate(segment: np.ndarray, s: Settings) -> np.ndarray:
    """librosa's zero-crossing rate of the STFT's frames, counting each sample's crossing once.

    A sample within 1e-10 of zero counts as positive, as librosa's threshold makes it. Crossings are
    counted once per hop, and each frame adds up the hops it spans (frames are whole hops long).
    """
    negative = segment < -1e-10
    flips = np.empty(segment.size, dtype=bool)
    flips[0] = False
    np.not_equal(negative[1:], negative[:-1], out=flips[1:])
    hops = s.n_fft // s.hop_length
    per_hop = np.concatenate([[0], np.cumsum(flips.reshape(-1, s.hop_length).sum(axis=1))])
    return ((per_hop[hops:] - per_hop[:-hops]) / s.n_fft)[:, np.newaxis]


def _block_series(segment: np.ndarray, s: Settings, t: _Tables) -> dict[str, np.ndarray]:
    """Every frame-series of one block, each (frames, rows)."""
    magnitude = _magnitude(segment, s, t)
    power = np.square(magnitude)
    log_mel = _power_to_db(power @ t.mel)
    centroid, bandwidth = _centroid_bandwidth(magnitude, t)
    return {
        "mfcc": log_mel @ t.dct,
        "chroma": _chroma(power, t),
        "spectral_contrast": _spectral_contrast(magnitude, t),
        "spectral_centroid": centroid,
        "spectral_bandwidth": bandwidth,
        "spectral_rolloff": _rolloff(magnitude, t),
        "spectral_flatness": _flatness(power),
        "rms": _rms(power, s),
        "zero_crossing_rate": _zero_crossing_rate(segment, s),
        "log_mel": log_mel,
        "k_weighted_power": power @ t.k_weights,
    }


def compute(y: np.ndarray, s: Settings = SETTINGS, peak: float = 1.0) -> dict[str, float | bytes]:
    """Features of a mono, peak-normalized signal at `s.sample_rate`; `peak`, the peak it was normalized
    from, sets the level its loudness is measured at."""
    t = _tables(s)
    stats = {name: _Stats(rows) for name, rows in SERIES.items()}
    n_frames = 1 + y.size // s.hop_length
    half = s.n_fft // 2
    onset_envelope, k_weighted_power = [], []
    previous_log_mel = None
    mfcc_delta = _Delta()
    for first in range(0, n_frames, s.block_frames):
        frames = min(s.block_frames, n_frames - first)
        last = first + frames >= n_frames
        start = first * s.hop_length - half
        segment = audio.padded_slice(y, start, start + (frames - 1) * s.hop_length + s.n_fft)
        series = _block_series(segment, s, t)
        log_mel = series.pop("log_mel")
        k_weighted_power.append(series.pop("k_weighted_power"))
        # Onset strength as librosa defines it (lag 1, mean over mel bands), continuous across blocks.
        reference = log_mel[:1] if previous_log_mel is None else previous_log_mel
        onset = np.maximum(0.0, np.diff(log_mel, axis=0, prepend=reference)).mean(axis=1, keepdims=True)
        series["onset_strength"] = onset
        series["mfcc_delta"] = mfcc_delta.push(series["mfcc"], last)
        onset_envelope.append(onset[:, 0])
        previous_log_mel = log_mel[-1:]
        for name, block in series.items():
            stats[name].add(block)

    row: dict[str, float] = {}
    for name, acc in stats.items():
        mean, std = acc.mean_std()
        values = np.column_stack([mean, std]).ravel()
        row.update(zip(series_columns(name, SERIES[name]), values.tolist(), strict=False))
    row["tempo_bpm"], row["tempo_confidence"] = _tempo(np.concatenate(onset_envelope), s)
    # measured at the level the signal had before it was peak-normalized
    row[LOUDNESS] = integrated_loudness(np.concatenate(k_weighted_power) * peak**2, s)
    row[FINGERPRINT] = fingerprint.of_signal(y, s.sample_rate).tobytes()
    embedding, tags = musicnn.embed(y, s.sample_rate)
    row.update(zip(MUSICNN_COLUMNS, embedding.tolist(), strict=True))
    row.update(zip(TAG_COLUMNS, tags.tolist(), strict=True))
    return row


def _tempo(envelope: np.ndarray, s: Settings, start_bpm: float = 120.0, max_bpm: float = 320.0) -> tuple[float, float]:
    """librosa's tempo estimate (its default log-normal prior around 120 BPM, at most 320 BPM), from one
    autocorrelation of the whole onset envelope; and its confidence, the envelope's correlation with itself
    one period later, around its mean (1: the onsets repeat exactly at that tempo, 0: no more than noise's do).

    librosa's default builds a tempogram (one autocorrelation per frame) and averages it;
    a single global autocorrelation gives the averaged picture for a fraction of the cost.
    """
    win_length = round(s.tempo_window_s * s.sample_rate / s.hop_length)
    if envelope.size < 4 or not np.any(envelope):
        return 0.0, 0.0
    size = min(win_length, envelope.size)
    spectrum = np.fft.rfft(envelope.astype(np.float64), n=2 * envelope.size)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2)[:size]
    tempogram = np.zeros(win_length)
    tempogram[:size] = np.maximum(autocorrelation, 0.0) / (np.max(autocorrelation) or 1.0)
    with np.errstate(divide="ignore"):
        bpms = 60.0 * s.sample_rate / (s.hop_length * np.arange(win_length))
        logprior = -0.5 * (np.log2(bpms) - np.log2(start_bpm)) ** 2
    logprior[: int(np.argmax(bpms < max_bpm))] = -np.inf
    best = int(np.argmax(np.log1p(1e6 * tempogram) + logprior))
    if best >= envelope.size - 1:  # a period as long as the track: nothing repeats within it
        return float(bpms[best]), 0.0
    centred = np.fft.rfft(envelope - envelope.mean(), n=2 * envelope.size)
    correlation = np.fft.irfft(np.abs(centred) ** 2)[: best + 2]
    confidence = correlation[max(best - 1, 0) : best + 2].max() / correlation[0] if correlation[0] > 0 else 0.0
    return float(bpms[best]), float(np.clip(confidence, 0.0, 1.0))


def integrated_loudness(power: np.ndarray, s: Settings = SETTINGS) -> float:
    """Integrated loudness in LUFS after ITU-R BS.1770-4 (as EBU R128 uses it), from the K-weighted mean
    square of each STFT frame (`_k_weights`): 400-ms blocks every 100 ms (each the frames centred in it),
    an absolute gate at -70 LUFS and a relative one 10 LU below the loudness of the blocks above it;
    LOUDNESS_FLOOR where no block passes.

    The same measure as a meter filtering the signal in time (pyloudnorm's, which a test holds it to), made
    from the spectrum the analysis computes anyway: filtering the whole signal would add a fifth to it."""
    hop_s = s.hop_length / s.sample_rate
    centres = np.arange(power.size) * hop_s
    starts = np.arange(0.0, max(centres[-1] + hop_s - 0.4, 0.0) + 1e-9, 0.1) if power.size else np.zeros(0)
    first, stop = np.searchsorted(centres, starts), np.searchsorted(centres, starts + 0.4)
    sums = np.concatenate([[0.0], np.cumsum(power, dtype=np.float64)])
    filled = stop > first
    blocks = (sums[stop] - sums[first])[filled] / (stop - first)[filled]
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(blocks)
    audible = blocks[levels >= LOUDNESS_FLOOR]
    if not audible.size:
        return LOUDNESS_FLOOR
    relative = -0.691 + 10 * np.log10(audible.mean()) - 10
    gated = blocks[(levels >= LOUDNESS_FLOOR) & (levels > relative)]
    return max(float(-0.691 + 10 * np.log10(gated.mean())), LOUDNESS_FLOOR)


def _signal_rms(y: np.ndarray, block: int = 1 << 20) -> float:
    """The signal's RMS, summed in float64 a block at a time (a float64 copy of a long track is 50 MB)."""
    if not y.size:
        return 0.0
    parts = np.array_split(y, max(1, y.size // block))
    total = sum(float(np.dot(wide, wide)) for wide in (part.astype(np.float64) for part in parts))
    return float(np.sqrt(total / y.size))


def extract_path(path: Path, s: Settings = SETTINGS, max_seconds: float | None = None) -> dict:
    """Decode, peak-normalize and analyse one file, or its first `max_seconds` when it is longer.

    Raises audio.DecodeError when no decoder reads it. `analysed_s` says how much was analysed; a longer
    file is `truncated`, and its `duration_s` comes from its header.
    """
    y = audio.decode(path, s.sample_rate, max_seconds)
    analysed = y.size / s.sample_rate
    truncated = bool(max_seconds) and y.size >= int(max_seconds * s.sample_rate)
    duration = (audio.duration_s(path) or analysed) if truncated else analysed
    energy = _signal_rms(y)
    y, peak = audio.peak_normalize(y)
    row = {
        "duration_s": duration,
        "analysed_s": analysed,
        "truncated": truncated,
        "is_silent": peak < s.silence_peak,
        "feature_version": FEATURE_VERSION,
    }
    row.update(compute(y, s, peak))
    # The energy: the RMS of the signal as decoded (1 for a full-scale square wave, 0.71 for a full-scale sine):
    # how much power the track carries on average, where the loudness weighs it as the ear does.
    row["energy"] = energy
    return row
