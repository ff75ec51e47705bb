"""librosa's mel and chroma filterbanks, computed once per machine and kept on disk.

Importing librosa costs about two seconds a process (its numba-compiled core comes with it), and the
analysis needs nothing else from it: every extraction process (a CLI call, an Airflow task) loads the two
matrices from a small file instead. The file's name holds librosa's version and the settings, so a new
librosa or new settings compute them again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger("musicrec")


def cache_dir() -> Path:
    return Path(os.environ.get("MUSICREC_CACHE_DIR") or Path.home() / ".cache" / "musicrec") / "filterbanks"


def compute(sr: int, n_fft: int, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """(mel, chroma): librosa's Slaney mel filterbank and its chroma filterbank at tuning 0, float32."""
    # librosa's numba-compiled core comes with the import: kept on disk, it is compiled once per machine.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir().parent / "numba"))
    import librosa

    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    chroma = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0, n_chroma=12)
    return mel.astype(np.float32), chroma.astype(np.float32)


def load(sr: int, n_fft: int, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """The filterbanks from the cache, computed and saved there first if missing or unreadable."""
    key = f"librosa-{importlib.metadata.version('librosa')}-{sr}-{n_fft}-{n_mels}"
    path = cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    try:
        with np.load(path) as saved:
            return saved["mel"], saved["chroma"]
    except (OSError, KeyError, ValueError):
        pass  # not cached yet, or damaged: computed again
    mel, chroma = compute(sr, n_fft, n_mels)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            np.savez(f, mel=mel, chroma=chroma, key=np.array(key))
        os.replace(f.name, path)  # whole or not at all: a process reading it at the same time sees either
    except OSError as exc:
        log.debug("filterbanks not cached (%s): computed in every process", exc)
    return mel, chroma
