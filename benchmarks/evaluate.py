"""The evaluation protocol: every candidate similarity on the same extracted corpus, in one run.

    python benchmarks/evaluate.py DATA_DIR [--second DATA_DIR] [--markdown benchmarks/EVALUATION.md]

DATA_DIR holds a current index (run `musicrec run` on the corpus first); its tracks' features are the
input of every candidate. The label is the top-level folder (one soundtrack, album or collection each);
no candidate sees it: each is unsupervised (standardizing, PCA, a distance, a re-ranking).

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

from musicrec import evaluation, features, model, storage

HERE = Path(__file__).resolve().parent
K = 5
BOOTSTRAP = 1000


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    columns: Callable[[], list[str]]
    n_components: int | None = 24  # None: no PCA
    metric: str = "cosine"
    hubness: str = "none"


def _without(*series: str) -> Callable[[], list[str]]:
    return lambda: [c for c in features.feature_columns() if not c.startswith(series)]


CANDIDATES = [
    Candidate("default (133 features, PCA 24, cosine)", features.feature_columns),
    Candidate("mutual proximity", features.feature_columns, hubness="mutual_proximity"),
    Candidate("euclidean", features.feature_columns, metric="euclidean"),
    Candidate("PCA 12", features.feature_columns, n_components=12),
    Candidate("PCA 48", features.feature_columns, n_components=48),
    Candidate("no PCA", features.feature_columns, n_components=None),
    Candidate("without chroma", _without("chroma_")),
    Candidate(
        "timbre only (MFCC, deltas, contrast)",
        lambda: [c for c in features.feature_columns() if c.startswith(("mfcc", "spectral_contrast"))],
    ),
    Candidate("seed features (MFCC, centroid, ZCR)", lambda: features.feature_columns("seed")),
    Candidate("no PCA + mutual proximity", features.feature_columns, n_components=None, hubness="mutual_proximity"),
]


def embed(tracks: pd.DataFrame, candidate: Candidate) -> np.ndarray:
    x = tracks[candidate.columns()].to_numpy(dtype=np.float64)
    z = model.scale(x, model.fit_scaler(x))
    return z if candidate.n_components is None else model.reduce(z, model.fit_pca(z, candidate.n_components))


def per_track(tracks: pd.DataFrame, candidate: Candidate) -> dict:
    """Per-track precision@5 and @10 by folder, and the top-5 k-occurrence skewness."""
    lists = evaluation.neighbour_lists(
        embed(tracks, candidate), tracks["content_hash"].tolist(), candidate.metric, candidate.hubness, 10
    )
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


def report(tracks: pd.DataFrame, title: str) -> list[str]:
    folder = tracks["track_key"].str.split("/").str[0]
    results = {c.name: per_track(tracks, c) for c in CANDIDATES}
    default = results[CANDIDATES[0].name]
    rng = np.random.default_rng(0)
    lines = [
        f"## {title}\n",
        f"{len(tracks)} tracks in {folder.nunique()} folders; chance {evaluation.chance(folder):.3f}.\n",
        "| candidate | P@5 micro [95% CI] | P@5 macro | P@10 | skewness | P@5 minus default [95% CI] |",
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
    lines += ["", "Leave one folder out: the best candidate on the other folders, checked on the folder left out.", ""]
    lines += ["| folder left out | chosen on the others | its P@5 there | default's P@5 there |", "|---|---|---|---|"]
    wins = 0
    for held in sorted(folder.unique()):
        rows = np.flatnonzero(folder.to_numpy() == held)
        chosen = max(results, key=lambda name, rows=rows: results[name]["p5"].drop(index=rows, errors="ignore").mean())
        mine, base = results[chosen]["p5"].reindex(rows).mean(), default["p5"].reindex(rows).mean()
        wins += mine > base
        lines.append(f"| {held} | {chosen} | {mine:.3f} | {base:.3f} |")
    lines.append(
        f"\nThe choice made without a folder beat the default on it for {wins} of {folder.nunique()} folders.\n"
    )
    return lines


def load(data_dir: str) -> pd.DataFrame:
    return pd.read_parquet(storage.require_current(data_dir) / storage.TRACKS)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("--second", help="the data dir of a second corpus, to check choices on music they were not made on")
    p.add_argument("--markdown", default=str(HERE / "EVALUATION.md"))
    args = p.parse_args()
    lines = [
        "# Evaluation protocol: every candidate on the same features\n",
        f"{dt.date.today().isoformat()}; audio only, folder as the label, k = {K}; bootstrap of {BOOTSTRAP} "
        "resamples over tracks. Written by `python benchmarks/evaluate.py`.\n",
    ]
    lines += report(load(args.data_dir), f"`{Path(args.data_dir).name}`")
    if args.second:
        lines += report(load(args.second), f"second corpus `{Path(args.second).name}`")
    text = "\n".join(lines) + "\n"
    Path(args.markdown).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
