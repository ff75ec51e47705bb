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


def group_columns(columns: list[str]) -> dict[str, list[str]]:
    found = {name: [c for c in columns if c.startswith(prefixes)] for name, prefixes in GROUPS.items()}
    return {name: cols for name, cols in found.items() if cols}


class Explainer:
    """The standardized audio features of an index, and each group's typical difference between tracks."""

    def __init__(self, run):
        scaled = storage.read_parquet(run / storage.SCALED).set_index("track_key")
        self.groups = group_columns([c for c in scaled.columns if not c.startswith("meta_")])
        self.scaled = scaled
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, len(scaled), size=(2, TYPICAL_PAIRS))
        values = scaled.to_numpy(dtype=np.float64)
        self.typical = {
            name: float(np.median(self._rms(values[a], values[b], scaled.columns.get_indexer(cols)))) or 1.0
            for name, cols in self.groups.items()
        }

    @staticmethod
    def _rms(x: np.ndarray, y: np.ndarray, columns: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean(np.square(x[..., columns] - y[..., columns]), axis=-1))

    def why(self, key: str, other: str, shown: int = 3) -> list[dict]:
        """The groups in which `other` is closest to `key`, relative to typical pairs, closest first."""
        x, y = self.scaled.loc[key].to_numpy(dtype=np.float64), self.scaled.loc[other].to_numpy(dtype=np.float64)
        ratios = [
            (name, float(self._rms(x, y, self.scaled.columns.get_indexer(cols))) / self.typical[name])
            for name, cols in self.groups.items()
        ]
        ratios.sort(key=lambda item: item[1])
        return [{"group": name, "relative_difference": round(r, 3)} for name, r in ratios[:shown]]
