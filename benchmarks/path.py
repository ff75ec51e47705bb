"""How smooth a path between two tracks is: `musicrec path` against a random walk and a nearest-neighbour chain.

    python benchmarks/path.py DATA_DIR [--pairs 60] [--steps 10]     # DATA_DIR: a published index

For pairs of tracks from different top-level folders (drawn with a fixed seed), each method goes from the
first to the second in `--steps` steps:
- random walk: the tracks between are drawn at random;
- nearest-neighbour chain: from the current track, the one of its 10 nearest (not yet visited, no copy of a
  visited one) that is closest to the end;
- path: `musicrec.serve.path` (tracks near evenly spaced points between the two, the leg's largest step least).
Reported per method: the median and mean of each path's largest step, its mean step and its length; and the
least largest step any path can have whatever its length (the bottleneck distance, through the minimum
spanning tree), as the floor. Distances are the index's own metric. Writes benchmarks/PATH.md (or --markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from musicrec.index import neighbours
from musicrec.serve import path, query

HERE = Path(__file__).resolve().parent


def _pairs(index: query.Index, n: int, seed: int = 0) -> list[tuple[int, int]]:
    rng, folders, found = np.random.default_rng(seed), index.tracks["folder"].to_numpy(), []
    while len(found) < n:
        a, b = (int(x) for x in rng.choice(len(folders), 2, replace=False))
        if folders[a] != folders[b] and index.groups[a] != index.groups[b]:
            found.append((a, b))
    return found


def _random_walk(index, d, a, b, steps, rng):
    others = [r for r in range(len(d)) if index.groups[r] not in index.groups[[a, b]]]
    return [a, *rng.choice(others, steps - 1, replace=False).tolist(), b]


def _chain(index, d, a, b, steps, rng):
    rows = [a]
    while len(rows) < steps:
        near = [r for r in np.argsort(d[rows[-1]]) if index.groups[r] not in index.groups[rows + [b]]][:10]
        rows.append(min(near, key=lambda r: d[r, b]))
    return rows + [b]


def _ours(index, d, a, b, steps, rng, data_dir=None):
    keys = index.tracks["track_key"]
    found = path.path(data_dir, [keys[a], keys[b]], steps)
    return [int(index.row[t["track_key"]]) for t in found["tracks"]]


def _floor(d: np.ndarray):
    tree = minimum_spanning_tree(d).toarray()
    tree = np.maximum(tree, tree.T) > 0

    def bottleneck(a, b):
        _, pred = breadth_first_order(tree, a, directed=False, return_predecessors=True)
        rows = [b]
        while rows[-1] != a:
            rows.append(int(pred[rows[-1]]))
        return rows[::-1]

    return bottleneck


def measure(data_dir: str, pairs: int, steps: int) -> dict:
    index = query.load(data_dir)
    d = neighbours.distances(index.embedding, index.embedding, index.built_with["metric"]).astype(float)
    chosen = _pairs(index, pairs)
    methods = {
        "random walk": _random_walk,
        "nearest-neighbour chain": _chain,
        "musicrec path": lambda *a: _ours(*a, data_dir=data_dir),
    }
    rng = np.random.default_rng(1)
    found = {name: [fn(index, d, a, b, steps, rng) for a, b in chosen] for name, fn in methods.items()}
    floor = _floor(d)
    found["floor (any length)"] = [floor(a, b) for a, b in chosen]
    rows = {}
    for name, paths in found.items():
        largest = [max(d[r, s] for r, s in zip(p, p[1:], strict=False)) for p in paths]
        mean = [float(np.mean([d[r, s] for r, s in zip(p, p[1:], strict=False)])) for p in paths]
        rows[name] = {
            "largest_median": float(np.median(largest)),
            "largest_mean": float(np.mean(largest)),
            "step_mean": float(np.mean(mean)),
            "tracks_mean": float(np.mean([len(p) for p in paths])),
        }
    direct = float(np.median([d[a, b] for a, b in chosen]))
    return {
        "tracks": len(d),
        "pairs": pairs,
        "steps": steps,
        "metric": index.built_with["metric"],
        "direct": direct,
        "methods": rows,
    }


def markdown(found: dict, data_dir: str) -> str:
    lines = [
        "# Paths between tracks: how smooth",
        "",
        f"`python benchmarks/path.py {data_dir} --pairs {found['pairs']} --steps {found['steps']}`, "
        f"{dt.date.today()}, {platform.machine()}: {found['tracks']} tracks, {found['pairs']} pairs from different "
        f"folders, {found['steps']} steps, {found['metric']} distance (the pair's own distance: median "
        f"{found['direct']:.3f}).",
        "",
        "| method | largest step, median | largest step, mean | mean step | tracks |",
        "|---|---|---|---|---|",
    ]
    for name, r in found["methods"].items():
        lines.append(
            f"| {name} | {r['largest_median']:.3f} | {r['largest_mean']:.3f} | {r['step_mean']:.3f} | "
            f"{r['tracks_mean']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("--pairs", type=int, default=60)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--markdown", default=str(HERE / "PATH.md"))
    args = p.parse_args()
    found = measure(args.data_dir, args.pairs, args.steps)
    text = markdown(found, args.data_dir)
    Path(args.markdown).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
