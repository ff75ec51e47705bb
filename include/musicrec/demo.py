"""A synthetic demo library: a few clearly different styles, and a dirty metadata CSV.

Each style is a folder; its tracks share timbre, register and rhythm but differ in
key, tempo and length, so a good recommender finds a track's neighbours in its own folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SR = 22050

STYLES = {
    # folder: (artist, genre label as a messy file would have it)
    "deep_drones": ("Lowland Hum", "Ambient"),
    "chip_arps": ("Pixel Parade", "chip tune"),
    "noise_beats": ("Concrete Rhythm Unit", "Electronica"),
    "soft_keys": ("Mira Castell", "classical"),
}
# Misspellings a hand-typed file would have, used for some rows.
MISSPELLED = {"Lowland Hum": "lowland  hum", "Pixel Parade": "Pixel Prade", "Mira Castell": "Mira Castel"}
GENRE_VARIANTS = {"Ambient": "AMBIENT ", "chip tune": "Chiptune", "Electronica": "electronic", "classical": "Classical"}


def _envelope(n: int, attack: float, decay: float, rate: float = SR) -> np.ndarray:
    t = np.arange(n) / rate
    return np.minimum(1.0, t / max(attack, 1e-3)) * np.exp(-t / decay)


def _note(freq: float, seconds: float, kind: str, rng) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if kind == "square":
        tone = np.sign(np.sin(2 * np.pi * freq * t)) * 0.5
        return tone * _envelope(n, 0.005, seconds * 0.8)
    if kind == "piano":
        tone = sum(np.sin(2 * np.pi * freq * h * t) / h**1.5 for h in range(1, 6))
        return tone * _envelope(n, 0.01, 0.5)
    raise ValueError(kind)


def _sequence(notes: list[np.ndarray], step: int, total: int) -> np.ndarray:
    out = np.zeros(total)
    for i, note in enumerate(notes):
        start = i * step
        if start >= total:
            break
        end = min(total, start + note.size)
        out[start:end] += note[: end - start]
    return out


def render(style: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    bpm = {"deep_drones": 60, "chip_arps": 150, "noise_beats": 120, "soft_keys": 80}[style] * rng.uniform(0.9, 1.1)
    beat = int(SR * 60 / bpm)
    if style == "deep_drones":
        f = root / 2
        y = sum(np.sin(2 * np.pi * f * m * t + rng.uniform(0, 6)) / m for m in (1, 1.5, 2, 3))
        y *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.1 * t)
        y += 0.02 * rng.standard_normal(n)
    elif style == "chip_arps":
        degrees = [0, 4, 7, 12, 16, 12, 7, 4]
        step = beat // 4
        notes = [_note(root * 4 * 2 ** (degrees[i % 8] / 12), step / SR, "square", rng) for i in range(n // step + 1)]
        y = _sequence(notes, step, n)
    elif style == "noise_beats":
        kick = np.sin(2 * np.pi * 60 * t[: beat // 2] * np.exp(-t[: beat // 2] * 8)) * _envelope(beat // 2, 0.001, 0.08)
        hat = rng.standard_normal(beat // 4) * _envelope(beat // 4, 0.0005, 0.02) * 0.4
        y = _sequence([kick] * (n // beat + 1), beat, n) + _sequence([hat] * (2 * n // beat + 2), beat // 2, n)
        y += 0.05 * rng.standard_normal(n)
    else:
        scale = [0, 2, 4, 5, 7, 9, 11, 12]
        notes = [
            _note(root * 2 * 2 ** (scale[rng.integers(0, 8)] / 12), 1.2, "piano", rng) for _ in range(n // beat + 1)
        ]
        y = _sequence(notes, beat, n)
    y = y / (np.max(np.abs(y)) or 1.0) * rng.uniform(0.3, 0.9)
    return y.astype(np.float32)


def make_library(
    dest: str | Path, tracks_per_style: int = 6, seconds: tuple[float, float] = (8.0, 20.0), seed: int = 7
) -> dict:
    """Write the demo library under `dest` and its dirty `metadata.csv`; returns counts."""
    import soundfile as sf

    dest = Path(dest)
    rng = np.random.default_rng(seed)
    formats = [("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS")]
    rows = []
    for s, (style, (artist, genre)) in enumerate(STYLES.items()):
        folder = dest / style
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(tracks_per_style):
            ext, subtype = formats[(i + s) % len(formats)]
            name = f"{style.replace('_', ' ').title()} {i + 1:02d}.{ext}"
            y = render(style, float(rng.uniform(*seconds)), rng)
            stereo = i % 2 == 0
            data = np.column_stack([y, y * 0.9]) if stereo else y
            sf.write(folder / name, data, SR, subtype=subtype)
            duration = len(y) / SR
            messy_artist = MISSPELLED.get(artist, artist) if i % 3 == 1 else artist
            messy_genre = GENRE_VARIANTS[genre] if i % 2 else genre
            length = f"{int(duration // 60)}:{int(duration % 60):02d}" if i % 2 else f"{duration:.1f}"
            rows.append(
                {
                    "Folder": style,
                    "File": name,
                    "Track Title": f"  {style.split('_')[1].title()} no. {i + 1}",
                    "Artist Name": messy_artist,
                    "Genre": messy_genre if i != 4 else "",
                    "Year": str(2000 + s * 3 + i) if i != 2 else "",
                    "Length": length,
                }
            )
    rows.append(dict(rows[0]))  # an exact duplicate row
    rows.append({**rows[1], "Year": ""})  # the same file again, less complete
    rows.append(
        {
            "Folder": "lost_album",
            "File": "gone.mp3",
            "Track Title": "Not in the library",
            "Artist Name": "Nobody",
            "Genre": "Rock",
            "Year": "1999",
            "Length": "3:00",
        }
    )
    broken = dest / list(STYLES)[0] / "broken download.mp3"
    broken.write_bytes(rng.bytes(4096))
    with open(dest / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {
        "tracks": tracks_per_style * len(STYLES),
        "styles": len(STYLES),
        "broken_files": 1,
        "metadata_rows": len(rows),
        "metadata": str(dest / "metadata.csv"),
    }
