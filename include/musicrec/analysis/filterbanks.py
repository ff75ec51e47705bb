"""librosa's mel and chroma filterbanks, and BS.1770's K-weighting over the same bins, computed once per
machine and kept on disk.

Importing librosa costs about two seconds a process (its numba-compiled core comes with it), and scipy's
filter design, which pyloudnorm's K-weighting filters use, a hundred megabytes; the analysis needs nothing
else from them: every extraction process (a CLI call, an Airflow task) loads the three arrays from a small
file instead. The file's name holds the libraries' versions and the settings, so a new version or new
settings compute them again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

log = logging.getLogger("musicrec")


def cache_dir() -> Path:
    return Path(os.environ.get("MUSICREC_CACHE_DIR") or Path.home() / ".cache" / "musicrec") / "filterbanks"


class Filterbanks(NamedTuple):
    mel: np.ndarray  # (n_mels, bins): librosa's Slaney mel filterbank
    chroma: np.ndarray  # (12, bins): librosa's chroma filterbank at tuning 0
    k_weighting: np.ndarray  # (bins,): the power response of BS.1770's K-weighting at each bin's frequency


def compute(sr: int, n_fft: int, n_mels: int) -> Filterbanks:
    """The filterbanks, float32 (the K-weighting float64): librosa's, and pyloudnorm's two K-weighting
    filters (a high shelf and a high pass, designed for this rate) evaluated at the bins' frequencies."""
    # librosa's numba-compiled core comes with the import: kept on disk, it is compiled once per machine.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir().parent / "numba"))
    import librosa
    from pyloudnorm.iirfilter import IIRfilter
    from scipy.signal import freqz

    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    chroma = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0, n_chroma=12)
    freq = np.fft.rfftfreq(n_fft, 1.0 / sr)
    k_weighting = np.ones(freq.size)
    for stage in (IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sr, "high_shelf"), IIRfilter(0.0, 0.5, 38.0, sr, "high_pass")):
        k_weighting *= np.abs(freqz(stage.b, stage.a, worN=freq, fs=sr)[1]) ** 2
    return Filterbanks(mel.astype(np.float32), chroma.astype(np.float32), k_weighting)


def load(sr: int, n_fft: int, n_mels: int) -> Filterbanks:
    """The filterbanks from the cache, computed and saved there first if missing or unreadable."""
    versions = "-".join(f"{p}-{importlib.metadata.version(p)}" for p in ("librosa", "pyloudnorm"))
    key = f"{versions}-{sr}-{n_fft}-{n_mels}"
    path = cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    try:
        with np.load(path) as saved:
            return Filterbanks(*(saved[name] for name in Filterbanks._fields))
    except (OSError, KeyError, ValueError):
        pass  # not cached yet, or damaged: computed again
    banks = compute(sr, n_fft, n_mels)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            np.savez(f, **banks._asdict(), key=np.array(key))
        os.replace(f.name, path)  # whole or not at all: a process reading it at the same time sees either
    except OSError as exc:
        log.debug("filterbanks not cached (%s): computed in every process", exc)
    return banks
