"""The evaluation protocol: every candidate similarity on the same extracted corpus, in one run.

    python research/evaluate.py DATA_DIR [--library DIR] [--second DATA_DIR] [--markdown research/EVALUATION.md]

DATA_DIR holds a current index (run `musicrec run` on the corpus first); its tracks' features are the
input of every candidate. The label is the top-level folder (one soundtrack, album or collection each);
no candidate sees it: each is unsupervised (standardizing, PCA, a distance, a re-ranking). The reference
is the default before the musicnn embedding (librosa's 133 features, PCA 24, cosine); the candidates
include the network's embedding alone, with the 133 features under one PCA, and as two feature groups
(a PCA each, unit length, equal weights: `model.embed`), which is the default now. `EXPLORED.md`, the
network's layers, patch counts and models measured before this run, is appended to the report.

With --library (the corpus's audio), the candidates also include a single-Gaussian timbre model per
track compared with the symmetric KL divergence (`gaussians.py`), alone and combined with the default,
each normalised by mutual proximity before they are averaged; block-level features (`blocks.py`),
texture-window percentiles (`textures.py`), and the peer systems musly and bliss (`peers.py`).

For each candidate: precision@5 micro and macro, precision@10, the k-occurrence skewness of the top-5
lists, and a 95% bootstrap interval over tracks of precision@5 and of its difference to the default
(paired: the same resampled tracks for both). Leave-one-folder-out: for each folder, the candidate that
scores best on the other folders' tracks is checked on that folder's tracks against the default.
A candidate may become the default only if it beats it on micro and macro precision by more than the
interval, on the whole corpus and in leave-one-folder-out, and on the second corpus when there is one.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from musicrec.analysis import features
from musicrec.index import embedding, evaluation, neighbours
from musicrec.store import storage

HERE = Path(__file__).resolve().parent
EXPLORED = HERE / "EXPLORED.md"  # candidates measured outside this script, appended to the report
K = 5
BOOTSTRAP = 1000


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    columns: Callable[[], list[str]]
    n_components: int | None = 24  # None: no PCA
    hubness: str = "none"
    grouped: bool = False  # a PCA per feature group, each unit length, weighted equally (`model.embed`)
    metric: str = "cosine"


def _without(*series: str) -> Callable[[], list[str]]:
    return lambda: [c for c in features.feature_columns("signal") if not c.startswith(series)]


def _signal() -> list[str]:
    return features.feature_columns("signal")


def _musicnn() -> list[str]:
    return features.MUSICNN_COLUMNS


MP = "mutual_proximity"

# The first is the reference every other is compared with: the default before the musicnn embedding.
CANDIDATES = [
    Candidate("previous default (133 features, PCA 24, cosine)", _signal),
    Candidate("mutual proximity", _signal, hubness=MP),
    Candidate("euclidean", _signal, metric="euclidean"),
    Candidate("PCA 12", _signal, n_components=12),
    Candidate("PCA 48", _signal, n_components=48),
    Candidate("no PCA", _signal, n_components=None),
    Candidate("without chroma", _without("chroma_")),
    Candidate(
        "timbre only (MFCC, deltas, contrast)",
        lambda: [c for c in _signal() if c.startswith(("mfcc", "spectral_contrast"))],
    ),
    Candidate("seed features (MFCC, centroid, ZCR)", lambda: features.feature_columns("seed")),
    Candidate("no PCA + mutual proximity", _signal, n_components=None, hubness=MP),
    Candidate("musicnn (384), PCA 24, cosine", _musicnn),
    Candidate("musicnn (384), PCA 48, cosine", _musicnn, 48),
    Candidate("musicnn (384), PCA 48 + mutual proximity", _musicnn, 48, MP),
    Candidate("133 features + musicnn (517), one PCA 24, cosine", features.feature_columns),
    Candidate("133 features + musicnn (517), one PCA 48 + mutual proximity", features.feature_columns, 48, MP),
    Candidate("2 groups (133 features, musicnn), PCA 48 each, cosine", features.feature_columns, 48, grouped=True),
    Candidate("2 groups, PCA 24 each + mutual proximity", features.feature_columns, 24, MP, True),
    Candidate(
        "default: 2 groups (133 features, musicnn), PCA 48 each + mutual proximity",
        features.feature_columns,
        48,
        MP,
        True,
    ),
]


def embed(tracks: pd.DataFrame, candidate: Candidate) -> np.ndarray:
    names = candidate.columns()
    x = tracks[names].to_numpy(dtype=np.float64)
    z = embedding.scale(x, embedding.fit_scaler(x))
    if candidate.grouped:
        return embedding.embed(z, names, embedding.fit_embedding(z, names, candidate.n_components))
    return z if candidate.n_components is None else embedding.reduce(z, embedding.fit_pca(z, candidate.n_components))


def mutual_proximity(d: np.ndarray) -> np.ndarray:
    """A full distance matrix normalised by mutual proximity (each track's distances as a normal law)."""
    off = d.copy()
    np.fill_diagonal(off, np.nan)
    spread = np.stack([np.nanmean(off, axis=1), np.maximum(np.nanstd(off, axis=1), 1e-12)])
    return neighbours.mutual_proximity(d, spread, spread).astype(np.float64)


def empirical_mutual_proximity(d: np.ndarray) -> np.ndarray:
    """Mutual proximity from each track's own distances, no normal law: 1 - P(D_x > d) P(D_y > d), with
    P the share of the track's other distances that are larger (for heavy-tailed divergences)."""
    n = len(d)
    ranks = np.argsort(np.argsort(d, axis=1, kind="stable"), axis=1, kind="stable")  # 0 is the track itself
    larger = (n - 1 - ranks) / max(n - 1, 1)
    return 1.0 - larger * larger.T


def distances(tracks: pd.DataFrame, candidate: Candidate) -> np.ndarray:
    vectors = embed(tracks, candidate)
    d = neighbours.distances(vectors, vectors, candidate.metric).astype(np.float64)
    return mutual_proximity(d) if candidate.hubness == "mutual_proximity" else d


def lists_from(d: np.ndarray, hashes: pd.Series, depth: int = 10) -> np.ndarray:
    """Neighbour indices, nearest first: never the track itself nor a copy of its audio."""
    d = d.copy()
    codes = pd.factorize(hashes)[0]
    d[codes[:, None] == codes[None, :]] = np.inf
    return np.argsort(d, axis=1, kind="stable")[:, :depth]


def per_track(tracks: pd.DataFrame, d: np.ndarray) -> dict:
    """Per-track precision@5 and @10 by folder, and the top-5 k-occurrence skewness."""
    lists = lists_from(d, tracks["content_hash"])
    folder = tracks["track_key"].str.split("/").str[0]
    return {
        "p5": evaluation.per_track_precision(lists, folder, K),
        "p10": evaluation.per_track_precision(lists, folder, 10),
        "skewness": evaluation.hubness(lists, K, tracks["track_key"].tolist())["k_occurrence_skewness"],
    }


def macro(scores: pd.Series, folder: pd.Series) -> float:
    return float(scores.groupby(folder.iloc[scores.index].to_numpy()).mean().mean())


def interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(BOOTSTRAP)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def candidate_distances(
    tracks: pd.DataFrame, library: str | None, cache: Path, notes: list[str]
) -> dict[str, np.ndarray]:
    found = {c.name: distances(tracks, c) for c in CANDIDATES}
    if library:
        found |= peer_distances(tracks, library, cache, notes)
        import gaussians

        models = gaussians.gaussians(library, tracks["track_key"].tolist(), cache)
        skl = gaussians.symmetric_kl([models[k] for k in tracks["track_key"]])
        found["timbre Gaussian, symmetric KL"] = skl
        found["timbre Gaussian, symmetric KL + mutual proximity (normal law)"] = mutual_proximity(skl)
        found["timbre Gaussian, symmetric KL + empirical mutual proximity"] = empirical_mutual_proximity(skl)
        default_d = found[CANDIDATES[0].name]
        found["previous default + timbre Gaussian (each empirical mutual proximity, averaged)"] = (
            empirical_mutual_proximity(default_d) + empirical_mutual_proximity(skl)
        ) / 2
        found |= block_level_distances(tracks, library, cache.with_name("blocks.parquet"), default_d, skl)
        found |= texture_distances(tracks, library, cache.with_name("textures.parquet"), default_d)
        found |= peer_fusions(found, default_d)
    return found


def peer_fusions(found: dict[str, np.ndarray], default_d: np.ndarray) -> dict[str, np.ndarray]:
    """musly's distances fused with the default and with the best texture-window candidate (each normalised,
    summed, then mutual proximity), where musly analysed every track."""
    import blocks

    musly = next((d for name, d in found.items() if name.startswith("peer: musly")), None)
    if musly is None or not np.isfinite(musly).all():
        return {}
    textures = found["texture-window percentiles (PCA 48, cosine)"]
    return {
        "previous default + musly (normalised, summed) + mutual proximity": mutual_proximity(
            blocks.normalised(musly) + blocks.normalised(default_d)
        ),
        "texture-window percentiles (PCA 48) + musly (normalised, summed) + mutual proximity": mutual_proximity(
            blocks.normalised(musly) + blocks.normalised(textures)
        ),
    }


def peer_distances(tracks: pd.DataFrame, library: str, cache: Path, notes: list[str]) -> dict[str, np.ndarray]:
    """The peer systems (`peers.py`) on the same tracks; where one cannot run here, the reason goes to `notes`."""
    import peers

    keys = tracks["track_key"].tolist()
    found = {}
    d, failed = peers.musly_distances(library, keys, cache.with_name("musly.parquet"))
    found["peer: musly timbre (pymusly 2.0.0, its own mutual proximity)"] = d
    notes.append(f"musly could not analyse {failed} of {len(keys)} tracks (they are no one's neighbour).")
    why = peers.bliss_runs(Path(library) / keys[0])
    if why is None:
        d, failed = peers.bliss_distances(library, keys, cache.with_name("bliss.parquet"))
        found["peer: bliss (bliss-audio 0.1.11, 20 features, Euclidean)"] = d
        notes.append(f"bliss could not analyse {failed} of {len(keys)} tracks.")
    else:
        notes.append(f"bliss not measured here: {why}.")
    return found


def texture_distances(tracks: pd.DataFrame, library: str, cache: Path, default_d: np.ndarray) -> dict[str, np.ndarray]:
    """Percentiles over 3-s texture windows (`textures.py`) as an embedding, alone and with the default."""
    import blocks
    import textures

    x = textures.textures(library, tracks["track_key"].tolist(), cache)
    z = embedding.scale(x, embedding.fit_scaler(x))
    found = {}
    for components in (24, 48):
        vectors = embedding.reduce(z, embedding.fit_pca(z, components))
        d = neighbours.distances(vectors, vectors, "cosine").astype(np.float64)
        found[f"texture-window percentiles (PCA {components}, cosine)"] = d
        found[f"texture-window percentiles (PCA {components}) + mutual proximity"] = mutual_proximity(d)
    d = found["texture-window percentiles (PCA 24, cosine)"]
    found["texture-window percentiles + previous default (normalised, summed) + mutual proximity"] = mutual_proximity(
        blocks.normalised(d) + blocks.normalised(default_d)
    )
    return found


def block_level_distances(
    tracks: pd.DataFrame, library: str, cache: Path, default_d: np.ndarray, skl: np.ndarray
) -> dict[str, np.ndarray]:
    """The block-level feature candidates: each pattern (L1), their sum after distance space normalisation,
    and that sum fused with the default and the timbre Gaussian; and the patterns as one embedding."""
    import blocks

    found_patterns = blocks.block_features(library, tracks["track_key"].tolist(), cache)
    each = {name: blocks.normalised(blocks.manhattan(x)) for name, x in found_patterns.items()}
    found = {f"block-level {name} (L1)": d for name, d in each.items()}
    blf = sum(each.values())
    found["block-level, 6 patterns (normalised L1, summed)"] = blf
    found["block-level, 6 patterns + mutual proximity"] = mutual_proximity(blf)
    fused = blocks.normalised(blf) + blocks.normalised(default_d) + blocks.normalised(skl)
    found["block-level + previous default + timbre Gaussian (normalised, summed)"] = fused
    found["block-level + previous default + timbre Gaussian + mutual proximity"] = mutual_proximity(fused)
    found["block-level + previous default (normalised, summed) + mutual proximity"] = mutual_proximity(
        blocks.normalised(blf) + blocks.normalised(default_d)
    )
    columns = []
    for x in found_patterns.values():
        z = embedding.scale(x, embedding.fit_scaler(x))
        columns.append(z / np.sqrt(x.shape[1]))  # each pattern weighs the same, whatever its size
    stacked = np.hstack(columns)
    vectors = embedding.reduce(stacked, embedding.fit_pca(stacked, 24))
    found["block-level patterns as one embedding (PCA 24, cosine)"] = neighbours.distances(
        vectors, vectors, "cosine"
    ).astype(np.float64)
    return found


def report(tracks: pd.DataFrame, title: str, library: str | None = None, cache: Path | None = None) -> list[str]:
    folder = tracks["track_key"].str.split("/").str[0]
    notes: list[str] = []
    results = {name: per_track(tracks, d) for name, d in candidate_distances(tracks, library, cache, notes).items()}
    default = results[CANDIDATES[0].name]
    rng = np.random.default_rng(0)
    lines = [
        f"## {title}\n",
        f"{len(tracks)} tracks in {folder.nunique()} folders; chance {evaluation.chance(folder):.3f}.\n",
        "| candidate | P@5 micro [95% CI] | P@5 macro | P@10 | skewness | P@5 minus previous default [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        p5 = r["p5"].to_numpy()
        low, high = interval(p5, rng)
        diff = r["p5"].to_numpy() - default["p5"].reindex(r["p5"].index).to_numpy()
        dlow, dhigh = interval(diff, rng)
        lines.append(
            f"| {name} | {p5.mean():.3f} [{low:.3f}, {high:.3f}] | {macro(r['p5'], folder):.3f} | "
            f"{r['p10'].mean():.3f} | {r['skewness']:.2f} | {diff.mean():+.3f} [{dlow:+.3f}, {dhigh:+.3f}] |"
        )
    lines += [""] + [f"- {note}" for note in notes]
    lines += ["", "Leave one folder out: the best candidate on the other folders, checked on the folder left out.", ""]
    lines += [
        "| folder left out | chosen on the others | its P@5 there | previous default's P@5 there |",
        "|---|---|---|---|",
    ]
    wins = 0
    for held in sorted(folder.unique()):
        rows = np.flatnonzero(folder.to_numpy() == held)
        chosen = max(results, key=lambda name, rows=rows: results[name]["p5"].drop(index=rows, errors="ignore").mean())
        mine, base = results[chosen]["p5"].reindex(rows).mean(), default["p5"].reindex(rows).mean()
        wins += mine > base
        lines.append(f"| {held} | {chosen} | {mine:.3f} | {base:.3f} |")
    lines.append(
        f"\nThe choice made without a folder beat the previous default on it for {wins} of "
        f"{folder.nunique()} folders.\n"
    )
    return lines


def load(data_dir: str) -> pd.DataFrame:
    return pd.read_parquet(storage.require_current(data_dir) / storage.TRACKS)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("--library", help="the corpus's audio: adds the timbre-model candidates")
    p.add_argument("--cache", default=str(HERE / "gaussians.parquet"), help="where the timbre models are kept")
    p.add_argument("--second", help="the data dir of a second corpus, to check choices on music they were not made on")
    p.add_argument("--markdown", default=str(HERE / "EVALUATION.md"))
    args = p.parse_args()
    lines = [
        "# Evaluation protocol: every candidate on the same features\n",
        f"{dt.date.today().isoformat()}; audio only, folder as the label, k = {K}; bootstrap of {BOOTSTRAP} "
        "resamples over tracks. Written by `python research/evaluate.py`.\n",
    ]
    lines += report(load(args.data_dir), f"`{Path(args.data_dir).name}`", args.library, Path(args.cache))
    if args.second:
        lines += report(load(args.second), f"second corpus `{Path(args.second).name}`")
    text = "\n".join(lines) + "\n\n" + EXPLORED.read_text()
    Path(args.markdown).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
