"""Radio from several seeds: taking turns among the seeds' neighbours (`musicrec radio`) against the tracks
nearest to the seeds' centroid.

    python benchmarks/radio.py DATA_DIR [--sets 100] [--length 12]     # DATA_DIR: a published index

Seed sets of three tracks, drawn with a fixed seed from folders of ten tracks or more: "one folder" (all
three from one) and "mixed" (one from each of three). Reported per method: the share of the radio's tracks
from a seed's folder, the share of the seeds whose folder the radio represents, and the mean distance of a
track to its nearest seed (the index's own metric). Writes benchmarks/RADIO.md (or --markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
from pathlib import Path

import numpy as np

from musicrec.index import neighbours
from musicrec.serve import query, radio

HERE = Path(__file__).resolve().parent


def _centroid(index, d, seeds, length, data_dir):
    centre = index.embedding[seeds].mean(axis=0, keepdims=True)
    to_centre = neighbours.distances(centre, index.embedding, index.built_with["metric"])[0].astype(float)
    to_centre[np.isin(index.groups, index.groups[seeds])] = np.inf
    return [int(r) for r in neighbours.distinct(np.argsort(to_centre), index.groups, length)]


def _turns(index, d, seeds, length, data_dir):
    keys = index.tracks["track_key"]
    found = radio.radio(data_dir, [keys[s] for s in seeds], length)
    return [int(index.row[t["track_key"]]) for t in found["tracks"]]


def _sets(index, kind: str, n: int, rng) -> list[list[int]]:
    folders = index.tracks["folder"].to_numpy()
    big = [f for f in sorted(set(folders)) if (folders == f).sum() >= 10]
    if kind == "one folder":
        return [rng.choice(np.flatnonzero(folders == rng.choice(big)), 3, replace=False).tolist() for _ in range(n)]
    return [
        [int(rng.choice(np.flatnonzero(folders == f))) for f in rng.choice(big, 3, replace=False)] for _ in range(n)
    ]


def measure(data_dir: str, sets: int, length: int) -> dict:
    index = query.load(data_dir)
    d = neighbours.distances(index.embedding, index.embedding, index.built_with["metric"]).astype(float)
    folders = index.tracks["folder"].to_numpy()
    found = {}
    for kind in ("one folder", "mixed"):
        seed_sets = _sets(index, kind, sets, np.random.default_rng(0))
        for name, method in (("centroid", _centroid), ("taking turns (musicrec radio)", _turns)):
            scores = []
            for seeds in seed_sets:
                tracks = method(index, d, seeds, length, data_dir)
                scores.append(
                    (
                        np.mean([folders[t] in set(folders[seeds]) for t in tracks]),
                        np.mean([any(folders[t] == folders[s] for t in tracks) for s in seeds]),
                        np.mean([d[t, seeds].min() for t in tracks]),
                    )
                )
            found[(kind, name)] = np.mean(scores, axis=0).tolist()
    return {"tracks": len(d), "sets": sets, "length": length, "found": found}


def markdown(result: dict) -> str:
    lines = [
        "# Radio from several seeds",
        "",
        f"`python benchmarks/radio.py DATA_DIR --sets {result['sets']} --length {result['length']}` over the dev "
        f"corpus's index, {dt.date.today()}, {platform.machine()}: {result['tracks']} tracks, {result['sets']} "
        f"sets of three seeds each way, {result['length']} tracks a radio.",
        "",
        "| seeds | method | tracks from a seed's folder | seeds' folders represented | distance to the nearest seed |",
        "|---|---|---|---|---|",
    ]
    for (kind, name), (hit, covered, near) in result["found"].items():
        lines.append(f"| {kind} | {name} | {hit:.3f} | {covered:.3f} | {near:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("--sets", type=int, default=100)
    p.add_argument("--length", type=int, default=12)
    p.add_argument("--markdown", default=str(HERE / "RADIO.md"))
    args = p.parse_args()
    text = markdown(measure(args.data_dir, args.sets, args.length))
    Path(args.markdown).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
