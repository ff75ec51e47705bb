"""Peer systems, measured beside musicrec in the same benchmark runs: bliss (bliss-rs, `bliss-audio` on
PyPI) and musly's timbre method (`pymusly`).

- bliss: `Song(path).analysis`, 20 features per whole track in bliss-audio 0.1.11 (23 in 0.2.0: tempo,
  timbre, loudness, chroma), decoded by its own statically linked ffmpeg; compared with the Euclidean
  distance, as blissify does. A file it cannot read raises a pyo3 panic, a BaseException. The 0.2.0 wheel
  on PyPI is built for CPUs with AVX-512 and dies of SIGILL elsewhere (no sdist to build it otherwise);
  0.1.11, the newest that runs on any x86-64, is pinned. `bliss_runs` tries it in a child process first.
- musly: a single Gaussian of MFCCs over a 30-s excerpt from the middle of the track (musly's default),
  compared by its jukebox, which normalises the distances with mutual proximity. Its wheel has no decoder:
  the audio comes from musicrec's decoder (22.05 kHz mono), as musly's own ffmpeg path would give it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

import track_cache
from musicrec.analysis import audio

MUSLY_EXCERPT_S = 30.0
MUSLY_START_S = 48.0  # musly's default: the excerpt starts at least this far into the track


def bliss_runs(path: str | Path) -> str | None:
    """None if bliss analyses `path` here, else why not (in a child: an illegal instruction kills it)."""
    code = "import sys, bliss_audio; bliss_audio.Song(sys.argv[1]).analysis"
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False)
    if out.returncode == 0:
        return None
    if out.returncode == -signal.SIGILL:
        return "this bliss-audio wheel uses instructions this CPU lacks (SIGILL; 0.2.0's needs AVX-512)"
    return f"bliss-audio failed (exit {out.returncode}): {out.stderr.strip()[-300:]}"


def bliss_analysis(path: Path) -> list[float] | None:
    """bliss's features of the track, None where it cannot read it."""
    import bliss_audio

    try:
        return [float(v) for v in bliss_audio.Song(str(path)).analysis]
    except BaseException:  # pyo3 turns a Rust panic into PanicException, a BaseException
        return None


def _bliss_row(path: Path) -> dict:
    return {"bliss": bliss_analysis(path)}


def bliss_distances(library: str | Path, keys: list[str], cache: Path) -> tuple[np.ndarray, int]:
    """(n, n) Euclidean distances between bliss analyses, inf for a track bliss could not read; and the
    number of such tracks."""
    table = track_cache.per_track(library, keys, cache, _bliss_row)
    failed = table["bliss"].isna().to_numpy()
    width = len(next(v for v in table["bliss"] if v is not None))
    x = np.stack([np.asarray(v, dtype=np.float64) if v is not None else np.zeros(width) for v in table["bliss"]])
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
    d[failed, :] = d[:, failed] = np.inf
    return d, int(failed.sum())


def musly_excerpt(y: np.ndarray, sr: int) -> np.ndarray:
    """musly's default excerpt: 30 s centred in the track, starting at least 48 s in (the whole of a short one)."""
    length = int(MUSLY_EXCERPT_S * sr)
    if len(y) <= length:
        return y
    start = min(int(MUSLY_START_S * sr), (len(y) - length) // 2)
    return y[start : start + length]


def musly_track(path: Path) -> dict:
    import pymusly

    jukebox = pymusly.MuslyJukebox(method="timbre", decoder="none")
    y = audio.decode(path, 22050).astype(np.float32)
    try:
        track = jukebox.track_from_audiodata(musly_excerpt(y, 22050).tolist())
    except pymusly.MuslyError:  # clips under about 1 s
        return {"musly": None}
    return {"musly": bytes(jukebox.serialize_track(track))}


def musly_distances(library: str | Path, keys: list[str], cache: Path) -> tuple[np.ndarray, int]:
    """(n, n) musly timbre distances (its jukebox's, mutual proximity included), inf for a track musly
    could not analyse; and the number of such tracks."""
    import pymusly

    table = track_cache.per_track(library, keys, cache, musly_track)
    failed = table["musly"].isna().to_numpy()
    jukebox = pymusly.MuslyJukebox(method="timbre", decoder="none")
    tracks = [jukebox.deserialize_track(blob) for blob in table["musly"][~failed]]
    jukebox.set_style(tracks)
    ids = list(range(len(tracks)))
    jukebox.add_tracks(list(zip(ids, tracks, strict=True)))
    pairs = list(zip(ids, tracks, strict=True))
    ok = np.flatnonzero(~failed)
    d = np.full((len(keys), len(keys)), np.inf)
    for i, seed in enumerate(pairs):
        d[ok[i], ok] = jukebox.compute_similarity(seed, pairs)
    return d, int(failed.sum())
