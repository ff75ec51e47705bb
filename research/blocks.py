"""Block-level features (Seyerlehner, Widmer and Pohle, "Fusing block-level features for music similarity
estimation", DAFx 2010), for the evaluation protocol (`evaluate.py --library`); not in the pipeline.

A track's log-magnitude mel spectrogram (22.05 kHz mono, peak-normalized, n_fft 2048, hop 512) is cut into
blocks of frames; each block gives a pattern, and a percentile over the track's blocks summarises them:

- spectral pattern (SP): blocks of 10 frames, each band's values sorted; 90th percentile.
- delta spectral pattern (DSP): the same on the frame-to-frame differences (3 frames apart), blocks of 14.
- variance delta spectral pattern (VDSP): the variance over blocks of the DSP's sorted blocks.
- logarithmic fluctuation pattern (LFP): blocks of 512 frames (12 s), each band's modulation spectrum
  (0.25 to 10 Hz, 12 log-frequency bins); 60th percentile: rhythm.
- correlation pattern (CP): blocks of 256 frames, the correlations between bands; median.
- spectral contrast pattern (SCP): blocks of 40 frames, each band's peak minus valley in the block, sorted;
  10th percentile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import track_cache
from musicrec.analysis import audio, features

HOP = 512
BANDS = 40
LFP_BANDS = 24
MAX_SECONDS = 30 * 60
PATTERNS = ("SP", "DSP", "VDSP", "LFP", "CP", "SCP")


def _blocks(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """(blocks, bands, size) windows over the frames of x (bands, frames); one block for a short track."""
    if x.shape[1] < size:
        x = np.pad(x, ((0, 0), (0, size - x.shape[1])), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=1)[:, ::hop]
    return np.transpose(windows, (1, 0, 2))


def _fluctuation(mel_db: np.ndarray, sr: int) -> np.ndarray:
    """The log-frequency modulation spectrum of LFP_BANDS bands, per 512-frame block; 60th percentile."""
    coarse = np.stack([b.mean(axis=0) for b in np.array_split(mel_db, LFP_BANDS, axis=0)])
    blocks = _blocks(coarse, 512, 128)
    spectrum = np.abs(np.fft.rfft(blocks * np.hanning(512), axis=2))
    rate = sr / HOP / 512 * np.arange(spectrum.shape[2])  # modulation frequency of each bin, Hz
    edges = np.geomspace(0.25, 10.0, 13)  # each bin holds at least one of the FFT's (0.084 Hz apart)
    binned = np.stack(
        [spectrum[:, :, (rate >= lo) & (rate < hi)].mean(axis=2) for lo, hi in zip(edges[:-1], edges[1:], strict=True)],
        axis=2,
    )
    return np.percentile(np.log1p(binned), 60, axis=0).ravel()


def patterns(path: Path) -> dict[str, np.ndarray]:
    import librosa

    s = features.SETTINGS
    y, _ = audio.peak_normalize(audio.decode(path, s.sample_rate, MAX_SECONDS))
    mel = librosa.feature.melspectrogram(y=y, sr=s.sample_rate, n_fft=2048, hop_length=HOP, n_mels=BANDS)
    db = librosa.power_to_db(mel, top_db=80.0).astype(np.float32)
    sp = np.percentile(np.sort(_blocks(db, 10, 5), axis=2), 90, axis=0)
    delta = np.abs(db[:, 3:] - db[:, :-3])
    dsp_blocks = np.sort(_blocks(delta, 14, 7), axis=2)
    dsp = np.percentile(dsp_blocks, 90, axis=0)
    vdsp = dsp_blocks.var(axis=0)
    cp_blocks = _blocks(db, 256, 128)
    centred = cp_blocks - cp_blocks.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(centred, axis=2, keepdims=True) + 1e-9
    corr = np.einsum("kbt,kct->kbc", centred / norms, centred / norms)
    upper = np.triu_indices(BANDS, 1)
    cp = np.median(corr[:, upper[0], upper[1]], axis=0)
    scp_blocks = _blocks(db, 40, 20)
    contrast = np.sort(scp_blocks, axis=2)
    scp = np.percentile(contrast[:, :, -4:].mean(axis=2) - contrast[:, :, :4].mean(axis=2), 10, axis=0)
    return {
        "SP": sp.ravel(),
        "DSP": dsp.ravel(),
        "VDSP": vdsp.ravel(),
        "LFP": _fluctuation(db, s.sample_rate),
        "CP": cp,
        "SCP": scp,
    }


def _row(path: Path) -> dict[str, list[float]]:
    return {name: v.astype(float).tolist() for name, v in patterns(path).items()}


def block_features(library: str | Path, keys: list[str], cache: Path) -> dict[str, np.ndarray]:
    """{pattern: (tracks, dims)} in the order of `keys`, computed once and kept in `cache` (Parquet)."""
    table = track_cache.per_track(library, keys, cache, _row)
    return {name: np.stack([np.asarray(v, dtype=np.float64) for v in table[name]]) for name in PATTERNS}


def manhattan(x: np.ndarray) -> np.ndarray:
    """(n, n) L1 distances between the rows of x, as the block-level features are compared."""
    from scipy.spatial.distance import cdist

    return cdist(x, x, "cityblock")


def normalised(d: np.ndarray) -> np.ndarray:
    """Distance space normalisation: each distance as a z-score among its row's distances, made symmetric,
    so that distance matrices of different scales can be added."""
    off = d.copy()
    np.fill_diagonal(off, np.nan)
    z = (d - np.nanmean(off, axis=1, keepdims=True)) / np.maximum(np.nanstd(off, axis=1, keepdims=True), 1e-12)
    return (z + z.T) / 2
