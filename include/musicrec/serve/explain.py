"""Why two tracks are close: which groups of audio features bring them closest.

Each group's difference between the two tracks (root mean square over its standardized features) is
compared with the same difference between typical pairs of the library: 0.3 means the two tracks are
three times closer than usual in that respect.
"""

from __future__ import annotations

import numpy as np

from musicrec.store import storage

GROUPS = {
    "timbre (MFCC)": ("mfcc_0", "mfcc_1", "mfcc_2"),
    "timbre changes (MFCC deltas)": ("mfcc_delta_",),
    "harmony (chroma)": ("chroma_",),
    "spectral contrast": ("spectral_contrast_",),
    "brightness (spectral shape)": ("spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "spectral_flatness"),
    "loudness and noisiness": ("rms_", "zero_crossing_rate"),
    "rhythm (onsets, tempo)": ("onset_strength", "tempo_bpm"),
}
TYPICAL_PAIRS = 2000
SAMPLED_BLOCKS = 8  # row groups of the features read for the typical differences, at random


def group_columns(columns: list[str]) -> dict[str, list[str]]:
    found = {name: [c for c in columns if c.startswith(prefixes)] for name, prefixes in GROUPS.items()}
    return {name: cols for name, cols in found.items() if cols}


class Explainer:
    """The standardized audio features of an index (its features and the scaler in its model), and each
    group's typical difference between tracks, from pairs of a sample of the tracks."""

    def __init__(self, run):
        model = storage.read_json(run / storage.MODEL)
        self.features = run / storage.FEATURES
        self.columns = model["feature_columns"]
        self.mean, self.scale = np.asarray(model["scaler"]["mean"]), np.asarray(model["scaler"]["scale"])
        self.groups = {name: self.positions(cols) for name, cols in group_columns(self.columns).items()}
        values = self.standardized(storage.sample_rows(self.features, self.columns, SAMPLED_BLOCKS))
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, len(values), size=(2, TYPICAL_PAIRS))
        self.typical = {
            name: float(np.median(self._rms(values[a], values[b], cols))) or 1.0 for name, cols in self.groups.items()
        }

    def positions(self, names: list[str]) -> np.ndarray:
        return np.array([self.columns.index(name) for name in names])

    def standardized(self, table) -> np.ndarray:
        values = np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in self.columns])
        return (values - self.mean) / self.scale

    @staticmethod
    def _rms(x: np.ndarray, y: np.ndarray, columns: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean(np.square(x[..., columns] - y[..., columns]), axis=-1))

    def why(self, key: str, other: str, shown: int = 3) -> list[dict]:
        """The groups in which `other` is closest to `key`, relative to typical pairs, closest first."""
        rows = storage.rows_of(self.features, "track_key", [key, other], self.columns)
        found = dict(zip(rows.column("track_key").to_pylist(), self.standardized(rows), strict=True))
        x, y = found[key], found[other]
        ratios = [(name, float(self._rms(x, y, cols)) / self.typical[name]) for name, cols in self.groups.items()]
        ratios.sort(key=lambda item: item[1])
        return [{"group": name, "relative_difference": round(r, 3)} for name, r in ratios[:shown]]
