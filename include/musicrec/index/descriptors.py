"""What a track is like, read from its features: its key and mode, and its tempo.

The key is the Krumhansl-Kessler estimate: the track's mean chroma (librosa's, C first) correlated with the
major and minor key profiles in each of the twelve tonics; the best is the key, and how far it stands
above the next best is its confidence (0 when two keys fit alike). The tempo is the feature `tempo_bpm`
(librosa's beat tracker over the onset strength).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NOTES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
CHROMA = [f"chroma_{i:02d}_mean" for i in range(1, 13)]
TEMPO = "tempo_bpm"
# Krumhansl and Kessler's probe-tone ratings (1982), tonic first.
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
KEYS = [f"{n} major" for n in NOTES] + [f"{n} minor" for n in NOTES]


def _profiles() -> np.ndarray:
    """(24, 12): each key's profile over the pitch classes, standardized (so a dot product is a correlation)."""
    rows = [np.roll(MAJOR, t) for t in range(12)] + [np.roll(MINOR, t) for t in range(12)]
    p = np.array(rows)
    return (p - p.mean(axis=1, keepdims=True)) / p.std(axis=1, keepdims=True)


def keys(chroma: np.ndarray) -> tuple[list[str | None], np.ndarray]:
    """Each row's key ("A minor") and its confidence, from (tracks, 12) mean chroma; None for a silent row."""
    c = np.asarray(chroma, dtype=float)
    spread = c.std(axis=1, keepdims=True)
    z = (c - c.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)
    fit = z @ _profiles().T / 12  # (tracks, 24) correlations
    ranked = np.sort(fit, axis=1)
    best = np.argmax(fit, axis=1)
    named = [KEYS[b] if s > 0 else None for b, s in zip(best, spread[:, 0], strict=True)]
    return named, np.where(spread[:, 0] > 0, ranked[:, -1] - ranked[:, -2], 0.0)


def describe(tracks: pd.DataFrame) -> pd.DataFrame:
    """`key`, `key_confidence` and `bpm` for a table with the chroma means and the tempo."""
    named, confidence = keys(tracks[CHROMA].to_numpy())
    return pd.DataFrame({"key": named, "key_confidence": confidence.round(3), "bpm": tracks[TEMPO].round(1)})


def parse_key(text: str) -> str:
    """ "a minor", "F# Major", "Bb minor" as a key of KEYS; ValueError naming the text otherwise."""
    words = text.strip().split()
    flats = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
    if len(words) == 2:
        note = words[0][0].upper() + words[0][1:].lower().replace("♯", "#").replace("♭", "b")
        name = f"{flats.get(note, note)} {words[1].lower()}"
        if name in KEYS:
            return name
    raise ValueError(f"{text!r} is not a key: say a note and major or minor, e.g. 'A minor' or 'F# major'")


def parse_bpm(text: str) -> tuple[float, float]:
    """ "90-110" (or "120", for 118-122) as a range of tempi; ValueError naming the text otherwise."""
    try:
        low, _, high = text.partition("-")
        bounds = (float(low), float(high)) if high else (float(low) - 2, float(low) + 2)
    except ValueError:
        raise ValueError(f"{text!r} is not a tempo range: say e.g. 90-110 (beats a minute)") from None
    if not 0 < bounds[0] <= bounds[1]:
        raise ValueError(f"{text!r} is not a tempo range: the low end first, both above 0")
    return bounds
