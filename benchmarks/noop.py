"""What a nightly run costs when nothing changed, against the first run that indexed the library.

    python benchmarks/noop.py LIBRARY              # a first and a second `musicrec run`, in one benchmark run
    python benchmarks/noop.py --generate 10000     # a no-op over 10,000 generated clips

`musicrec run` is timed as a whole command. With nothing changed it checks that a run would change
nothing and starts no Airflow; the DAG run that a schedule or a trigger starts all the same (the
nightly run) is timed too, through `musicrec run`'s own path (the DAG in a child process, in-process
tasks), and broken down by task; what the tasks do not account for is Airflow's start-up.
With --generate, the first index is synthesized (features of the right files, sizes and times, with
made-up values): what is measured is the no-op, whose work is discovery, planning and the index stages.
Writes benchmarks/NOOP.md (or --markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from musicrec.airflow import runner
from musicrec.analysis import extract, features
from musicrec.library import discover
from musicrec.store import storage

HERE = Path(__file__).resolve().parent


def cli_run(library: Path, data_dir: Path) -> dict:
    """`musicrec run` as a whole command; its output's last line and the current index's summary."""
    cmd = [sys.executable, "-m", "musicrec.cli", "run", "--library", str(library), "--data-dir", str(data_dir)]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"musicrec run failed:\n{proc.stderr[-3000:]}")
    summary = storage.read_json(storage.require_current(data_dir) / storage.SUMMARY)
    return {"wall_s": wall, "said": proc.stdout.strip().splitlines()[0], "summary": summary}


def dag_run(library: Path, data_dir: Path) -> dict:
    """One run of the DAG as `musicrec run` starts it, whether or not anything changed."""
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
    columns = features.feature_columns()
    values = pd.DataFrame(rng.standard_normal((len(files), len(columns))), columns=columns)
    table = pd.concat([files.assign(duration_s=0.25), values], axis=1).assign(
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
            noop = dag_run(library, root / "data")
            again = dag_run(library, root / "data")
            check = cli_run(library, root / "data")
            s, s2 = noop["summary"], again["summary"]
            lines += [
                f"## No-op over {args.generate} generated files\n",
                f"- `musicrec run`, nothing changed: **{check['wall_s']:.1f} s**: {check['said']}",
                f"- DAG run, first after the synthesized index (its index stages compute): {noop['wall_s']:.1f} s; "
                f"{s['files_found']} files, {s['files_reused']} reused, {s['files_extracted']} extracted",
                f"  - by task (s): {breakdown(noop)}",
                f"  - stages (s): {s['stage_seconds']}",
                f"- DAG run again, nothing changed (the index stages reuse): **{again['wall_s']:.1f} s**",
                f"  - by task (s): {breakdown(again)}",
                f"  - stages (s): {s2['stage_seconds']}\n",
            ]
        else:
            library = Path(args.library).resolve()
            first = cli_run(library, root / "data")
            second = cli_run(library, root / "data")
            nightly = dag_run(library, root / "data")
            lines += [
                f"## `{library.name}`: {first['summary']['files_found']} files, "
                f"{first['summary']['audio_hours']:.2f} h of audio\n",
                f"- first `musicrec run`: {first['wall_s']:.1f} s ({first['summary']['files_extracted']} extracted)",
                f"- second `musicrec run`, nothing changed: **{second['wall_s']:.1f} s**, "
                f"**{100 * second['wall_s'] / first['wall_s']:.1f}%** of the first (target under 10%): "
                f"{second['said']}",
                f"- the DAG run all the same (a nightly run, a trigger): **{nightly['wall_s']:.1f} s**, "
                f"{100 * nightly['wall_s'] / first['wall_s']:.1f}% of the first, "
                f"{nightly['summary']['files_extracted']} extracted",
                f"  - by task (s): {breakdown(nightly)}",
                f"  - stages (s): {nightly['summary']['stage_seconds']}\n",
            ]
    text = "\n".join(lines)
    Path(args.markdown).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
