"""Where a run's files live, and atomic writes.

    DATA_DIR/
      current -> runs/<run>     the last good index (a symlink, swapped atomically)
      runs/<run>/               everything one run wrote: its tables, model, summary, shards/, stages/

A run writes only into its own folder; only when the whole index is built does
`current` move to it, so a failed run leaves the last good index in place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

import pandas as pd

CURRENT = "current"
PREVIOUS = "previous"
# Run folders kept (the newest, besides current and previous, which are always kept).
KEEP_RUNS = 5

# Every file name of a run, in one place.
WORKLIST = "worklist.parquet"
TO_EXTRACT = "to_extract.parquet"
REUSED_FEATURES = "reused_features.parquet"
STILL_QUARANTINED = "still_quarantined.parquet"
FEATURES = "features.parquet"
QUARANTINE = "quarantine.parquet"
METADATA_CLEAN = "metadata_clean.parquet"
TRACKS = "tracks.parquet"
SCALED = "scaled.parquet"
EMBEDDINGS = "embeddings.parquet"
RECOMMENDATIONS = "recommendations.parquet"
MODEL = "model.json"
SUMMARY = "summary.json"
CLEANING_REPORT = "cleaning_report.json"
CLEANING_REPORT_MD = "cleaning_report.md"
VALIDATION = "validation.json"
EVALUATION = "evaluation.json"
EVALUATION_MD = "evaluation.md"
PLOT_VARIANCE = "explained_variance.png"
PLOT_MAP = "map.png"
PLOT_K_OCCURRENCE = "k_occurrence.png"
DATA_DOCS = "data_docs"
SHARDS = "shards"
STAGES = "stages"


def safe_name(text: str) -> str:
    """A run id made safe to use as a folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def run_dir(data_dir: str | Path, run_id: str) -> Path:
    """The folder of run `run_id` (not created here)."""
    return Path(data_dir).expanduser().resolve() / "runs" / safe_name(run_id)


def shard_files(run: str | Path, index: int) -> dict[str, Path]:
    """The work list of shard `index`, and the features and quarantine tables its extraction writes."""
    base = Path(run) / SHARDS / f"shard-{index:04d}"
    return {name: base.with_name(f"{base.name}.{name}.parquet") for name in ("files", "features", "quarantine")}


def stage_record(run: str | Path, stage: str) -> Path:
    """Where a stage keeps its summary (counts, seconds) for the run summary."""
    return Path(run) / STAGES / f"{stage}.json"


def current_dir(data_dir: str | Path) -> Path | None:
    """The published index folder, or None when nothing has been published yet."""
    link = Path(data_dir) / CURRENT
    return link.resolve() if link.exists() else None


def require_current(data_dir: str | Path) -> Path:
    current = current_dir(data_dir)
    if current is None:
        raise FileNotFoundError(f"no index in {data_dir}: run `musicrec run` first")
    return current


def atomic_write(path: str | Path, write) -> Path:
    """`write(tmp)` to a unique temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Short whatever the name's length: a name near the file system's limit must still get a temporary twin.
    tmp = path.with_name(f".{path.name[:64]}.{uuid.uuid4().hex[:16]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_json(obj, path: str | Path) -> Path:
    text = json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_text(text: str, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def _point(data_dir: Path, name: str, run: Path) -> Path:
    """Swap the link `name` (current, previous) to `run` atomically: a new link renamed over the old one."""
    link = data_dir / name
    tmp_link = data_dir / f".{name}.{os.getpid()}.tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(Path("runs") / run.name)
    os.replace(tmp_link, link)
    return link


def previous_dir(data_dir: str | Path) -> Path | None:
    """The index that was current before the current one: the rollback target."""
    link = Path(data_dir) / PREVIOUS
    return link.resolve() if link.exists() else None


def restore_current(data_dir: str | Path, before: Path | None) -> None:
    """Point `current` back at `before` (None: no index) if a run moved it."""
    data_dir = Path(data_dir).expanduser().resolve()
    if current_dir(data_dir) == before:
        return
    if before is None:
        (data_dir / CURRENT).unlink(missing_ok=True)
    else:
        _point(data_dir, CURRENT, before)


def publish(data_dir: str | Path, run: Path, keep: int = KEEP_RUNS) -> Path:
    """Make `run` the current index (the one it replaces becomes `previous`), then prune old run folders."""
    data_dir = Path(data_dir).expanduser().resolve()
    before = current_dir(data_dir)
    if before is not None and before != run.resolve():
        _point(data_dir, PREVIOUS, before)
    link = _point(data_dir, CURRENT, run)
    prune(data_dir, keep)
    return link


def prune(data_dir: str | Path, keep: int = KEEP_RUNS) -> list[Path]:
    """Delete all but the newest `keep` run folders, failed runs' included; never `current` nor `previous`."""
    data_dir = Path(data_dir).expanduser().resolve()
    protected = {current_dir(data_dir), previous_dir(data_dir)}
    runs = sorted((p for p in (data_dir / "runs").iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    removed = [old for old in runs[: max(0, len(runs) - keep)] if old.resolve() not in protected]
    for old in removed:
        shutil.rmtree(old, ignore_errors=True)
    return removed


def rollback(data_dir: str | Path) -> tuple[Path, Path]:
    """Swap `current` and `previous`: the last index becomes current again (run it twice to undo).

    Returns (new current, new previous).
    """
    data_dir = Path(data_dir).expanduser().resolve()
    current, previous = current_dir(data_dir), previous_dir(data_dir)
    if previous is None or not previous.is_dir():
        raise FileNotFoundError(f"no earlier index to roll back to in {data_dir}")
    _point(data_dir, CURRENT, previous)
    if current is not None:
        _point(data_dir, PREVIOUS, current)
    return previous, current
