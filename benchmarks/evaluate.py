"""How well the index finds similar music: precision@k with the top-level folder as the label.

    python benchmarks/evaluate.py [DATA_DIR] [--k 5] [--n-components 24]

On the dev corpus each top folder is one game's soundtrack, so a neighbour "counts" when it comes
from the same soundtrack. Variants, on the features of the current index:
  seed         the seed's features only (MFCC, spectral centroid, zero-crossing rate statistics)
  default      the default feature set, audio only (metadata_weight 0)
  default+meta the default set with metadata features at weight 1 (genre, artist, decade, duration)
Each: StandardScaler, PCA, nearest neighbours (cosine and euclidean), as the pipeline does.
Writes benchmarks/EVALUATION.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from musicrec import encode, features, model, neighbours, storage

HERE = Path(__file__).resolve().parent


def precision_at_k(tracks: pd.DataFrame, x: np.ndarray, k: int, n_components: int, metric: str) -> float:
    z = model.scale(x, model.fit_scaler(x))
    embedding = model.reduce(z, model.fit_pca(z, n_components))
    recs = neighbours.nearest_neighbours(tracks["track_key"].tolist(), embedding, k, metric)
    label = dict(zip(tracks["track_key"], tracks["track_key"].str.split("/").str[0], strict=False))
    return float((recs["track_key"].map(label) == recs["neighbor_key"].map(label)).mean())


def chance(tracks: pd.DataFrame) -> float:
    sizes = tracks["track_key"].str.split("/").str[0].value_counts()
    n = len(tracks)
    return float((sizes * (sizes - 1)).sum() / (n * (n - 1)))


def variants(tracks: pd.DataFrame) -> dict[str, np.ndarray]:
    audio = tracks[features.feature_columns()].to_numpy()
    meta = encode.transform(tracks, encode.fit(tracks)).to_numpy()
    meta_z = model.scale(meta, model.fit_scaler(meta))
    return {
        "seed": tracks[features.feature_columns("seed")].to_numpy(),
        "default": audio,
        # Scaled again inside precision_at_k: standardizing twice changes nothing, the weight (1) is kept.
        "default+meta": np.hstack([model.scale(audio, model.fit_scaler(audio)), meta_z]),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", default="data")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--n-components", type=int, default=24)
    p.add_argument("--markdown", default=str(HERE / "EVALUATION.md"))
    args = p.parse_args()
    current = storage.require_current(args.data_dir)
    tracks = pd.read_parquet(current / storage.TRACKS)
    lines = [
        f"# Precision@{args.k} by top-level folder\n",
        f"{dt.date.today().isoformat()}; {len(tracks)} tracks in "
        f"{tracks['track_key'].str.split('/').str[0].nunique()} folders (run `{current.name}`); "
        f"PCA {args.n_components} components; random neighbours would score {chance(tracks):.3f}.\n",
        "| features | cosine | euclidean |",
        "|---|---|---|",
    ]
    for name, x in variants(tracks).items():
        scores = [precision_at_k(tracks, x, args.k, args.n_components, m) for m in ("cosine", "euclidean")]
        lines.append(f"| {name} ({x.shape[1]} columns) | {scores[0]:.3f} | {scores[1]:.3f} |")
    text = "\n".join(lines) + "\n"
    Path(args.markdown).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
