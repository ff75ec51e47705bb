"""What a nightly run costs when nothing changed, against the first run that indexed the library.

    python benchmarks/noop.py LIBRARY              # a first and a second `musicrec run`, in one benchmark run
    python benchmarks/noop.py --generate 10000     # a no-op over 10,000 generated clips

Both runs go through `musicrec run`'s own path (the DAG in a child process, in-process tasks). With
--generate, the first index is synthesized (features of the right files, sizes and times, with made-up
values): the run measured is the no-op, whose work is discovery, planning and rebuilding the index.
Each run's time is broken down by task; what the tasks do not account for is Airflow's start-up.
Writes benchmarks/NOOP.md (or --markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from musicrec import discover, extract, features, storage
from musicrec.airflow import runner

HERE = Path(__file__).resolve().parent


def run(library: Path, data_dir: Path) -> dict:
    conf = {"library_path": str(library), "data_dir": str(data_dir), "metadata_path": None}
    started = time.monotonic()
    result = runner.run_in_child(conf, data_dir)
    wall = time.monotonic() - started
    if result.get("state") != "success":
        raise SystemExit(f"run failed: {result}")
    summary = storage.read_json(storage.run_dir(data_dir, result["run_id"]) / storage.SUMMARY)
    return {"wall_s": wall, **result, "summary": summary}


def generate(root: Path, n: int) -> Path:
    """n clips of a quarter second, 100 a folder, and a last index that holds them all unchanged."""
    library, data_dir = root / "library", root / "data"
    clip = (0.1 * np.sin(np.linspace(0, 2 * np.pi * 110, 5512))).astype(np.float32)
    for i in range(n):
        folder = library / f"album-{i // 100:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"clip-{i:05d}.wav", clip, 22050)
    files = discover.scan(library).files
    rng = np.random.default_rng(0)
    table = files.assign(duration_s=0.25)
    for column in features.feature_columns():
        table[column] = rng.standard_normal(len(files))
    table = table.assign(
        analysed_s=0.25,
        truncated=False,
        is_silent=False,
        feature_version=features.FEATURE_VERSION,
        content_hash=[f"{i:032x}" for i in range(len(files))],
    )
    run = storage.run_dir(data_dir, "synthesized")
    storage.write_parquet(table[extract.features_frame([]).columns.tolist()], run / storage.FEATURES)
    storage.write_parquet(pd.DataFrame(columns=extract.QUARANTINE_COLUMNS), run / storage.QUARANTINE)
    storage.publish(data_dir, run)
    return library


def breakdown(result: dict) -> str:
    tasks = result["task_seconds"]
    shown = ", ".join(f"{k} {v:.1f}" for k, v in sorted(tasks.items(), key=lambda kv: -kv[1]))
    other = result["wall_s"] - sum(tasks.values())
    return f"{shown}; outside the tasks (process and Airflow start-up, scheduling) {other:.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("library", nargs="?")
    p.add_argument("--generate", type=int, help="a no-op over this many generated clips")
    p.add_argument("--markdown", default=str(HERE / "NOOP.md"))
    args = p.parse_args()
    if not args.library and not args.generate:
        p.error("give a LIBRARY or --generate N")
    lines = [
        f"# Nightly no-op cost\n\n{dt.date.today().isoformat()}, {platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}.\n"
    ]
    with tempfile.TemporaryDirectory(prefix="musicrec-noop-") as tmp:
        root = Path(tmp)
        if args.generate:
            library = generate(root, args.generate)
            noop = run(library, root / "data")
            s = noop["summary"]
            lines += [
                f"## No-op over {args.generate} generated files\n",
                f"- {s['files_found']} files, {s['files_reused']} reused, {s['files_extracted']} extracted: "
                f"**{noop['wall_s']:.1f} s**",
                f"- by task (s): {breakdown(noop)}",
                f"- stages (s): {s['stage_seconds']}\n",
            ]
        else:
            library = Path(args.library).resolve()
            first = run(library, root / "data")
            second = run(library, root / "data")
            share = second["wall_s"] / first["wall_s"]
            lines += [
                f"## `{library.name}`: {first['summary']['files_found']} files, "
                f"{first['summary']['audio_hours']:.2f} h of audio\n",
                f"- first run: {first['wall_s']:.1f} s ({first['summary']['files_extracted']} extracted)",
                f"- second run, nothing changed: {second['wall_s']:.1f} s "
                f"({second['summary']['files_extracted']} extracted), **{100 * share:.1f}%** of the first "
                f"(target under 10%)",
                f"- second run by task (s): {breakdown(second)}\n",
            ]
    text = "\n".join(lines)
    Path(args.markdown).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
