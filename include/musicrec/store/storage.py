"""Where a run's files live, and atomic writes, on a local disk or on object storage.

    DATA_DIR/
      current -> runs/<run>     the last good index (a symlink, swapped atomically)
      runs/<run>/               everything one run wrote: its tables, model, summary, shards/, stages/

A run writes only into its own folder; only when the whole index is built does
`current` move to it, so a failed run leaves the last good index in place.

The library and the data dir may also be URLs, `s3://conn_id@bucket/prefix` (the Airflow connection
`conn_id` holds the credentials and the endpoint): they are then Airflow's `ObjectStoragePath`, which
has the same interface as `pathlib.Path`. Object storage has no rename and no links: a file is written
locally and uploaded in one request (readers see the whole object or none), and `current` and
`previous` are small pointer objects naming the run (`runs/<run>`), written last.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import pandas as pd

from musicrec.store.locations import is_url

RUNS = "runs"  # the run folders' folder: this module alone knows the layout
CURRENT = "current"
PREVIOUS = "previous"
# Run folders kept (the newest, besides current and previous, which are always kept).
KEEP_RUNS = 5
BLOCK_ROWS = 16_384  # rows of a table read or written at once by the stages that stream (a fingerprint: 20 KB)

# Every file name of a run, in one place.
WORKLIST = "worklist.parquet"
TO_EXTRACT = "to_extract.parquet"
REUSED_FEATURES = "reused_features.parquet"
STILL_QUARANTINED = "still_quarantined.parquet"
FEATURES = "features.parquet"
QUARANTINE = "quarantine.parquet"
METADATA_CLEAN = "metadata_clean.parquet"
TRACKS = "tracks.parquet"
EMBEDDINGS = "embeddings.parquet"
RECOMMENDATIONS = "recommendations.parquet"
ANN_INDEX = "neighbours.faiss"  # the approximate index, where the library is large enough to have one
DUPLICATES = "duplicates.parquet"  # each track's recording, the canonical member and the evidence
DUPLICATE_PAIRS = "duplicate_pairs.parquet"  # every pair of files compared, by content hash, with its evidence
MIXES = "mixes.parquet"
MIX_PLAYLISTS = "mixes"  # the mixes as M3U8 files, one a mix
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


def path(location):
    """A local path as `Path` (with `~` expanded), a URL as Airflow's `ObjectStoragePath`; either as it is."""
    if isinstance(location, Path) or hasattr(location, "fs"):
        return location
    if is_url(location):
        from musicrec.store.objects import object_path

        return object_path(str(location))
    return Path(str(location).removeprefix("file://")).expanduser()


def root(location):
    """A library or data dir: an absolute local path (links resolved), or the URL as it is."""
    where = path(location)
    return where.resolve() if isinstance(where, Path) else where


def safe_name(text: str) -> str:
    """A run id made safe to use as a folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def run_dir(data_dir: str | Path, run_id: str) -> Path:
    """The folder of run `run_id`'s first attempt (not created here)."""
    return root(data_dir) / RUNS / safe_name(run_id)


def new_run_dir(data_dir: str | Path, run_id: str) -> Path:
    """A folder of its own for this attempt at run `run_id` (not created here): `runs/<run id>`, or
    `runs/<run id>.attempt-2`, `-3`, ... where earlier attempts left theirs (a cleared DAG run, a backfill
    that reprocesses its date). So a re-run never reads another attempt's tables, and never writes into an
    index that an earlier attempt published."""
    first = run_dir(data_dir, run_id)
    folder, attempt = first, 1
    while folder.exists():
        attempt += 1
        folder = first.parent / f"{first.name}{_ATTEMPT}{attempt}"
    return folder


_ATTEMPT = ".attempt-"


def run_name(run: str | Path) -> str:
    """The run a run folder belongs to, whichever attempt it is: the name its lock is held under."""
    return re.sub(rf"{re.escape(_ATTEMPT)}\d+$", "", path(run).name)


def data_dir_of(run: str | Path):
    """The data dir that holds a run folder (`DATA/runs/<run>`)."""
    return path(run).parents[1]


def shard_files(run: str | Path, index: int) -> dict[str, Path]:
    """The work list of shard `index`, and the features and quarantine tables its extraction writes."""
    folder = path(run) / SHARDS
    return {name: folder / f"shard-{index:04d}.{name}.parquet" for name in ("files", "features", "quarantine")}


def stage_record(run: str | Path, stage: str) -> Path:
    """Where a stage keeps its summary (counts, seconds) for the run summary."""
    return path(run) / STAGES / f"{stage}.json"


def _pointed(data_dir, name: str):
    """The run folder that `current` or `previous` names, or None."""
    data_dir = root(data_dir)
    if isinstance(data_dir, Path):
        link = data_dir / name
        return link.resolve() if link.exists() else None
    try:
        target = (data_dir / name).read_text().strip()
    except FileNotFoundError:
        return None
    if not re.fullmatch(rf"{RUNS}/[A-Za-z0-9_.-]+", target):
        raise ValueError(f"{data_dir / name}: not a pointer to a run folder ({target[:80]!r})")
    return data_dir / target


def current_dir(data_dir: str | Path) -> Path | None:
    """The published index folder, or None when nothing has been published yet."""
    return _pointed(data_dir, CURRENT)


def require_current(data_dir: str | Path) -> Path:
    current = current_dir(data_dir)
    if current is None:
        raise FileNotFoundError(f"no index in {data_dir}: run `musicrec run` first")
    return current


def atomic_write(target: str | Path, write) -> Path:
    """`write(tmp)` to a unique temporary file, then make it `target` at once: renamed over it on a local
    disk, uploaded in one request to object storage."""
    target = path(target)
    if not isinstance(target, Path):
        with tempfile.TemporaryDirectory(prefix="musicrec-upload-") as folder:
            tmp = Path(folder) / target.name[:64]
            write(tmp)
            target.fs.put_file(str(tmp), target.path)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Short whatever the name's length: a name near the file system's limit must still get a temporary twin.
    tmp = target.with_name(f".{target.name[:64]}.{uuid.uuid4().hex[:16]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def write_parquet(df: pd.DataFrame, target: str | Path) -> Path:
    return atomic_write(target, lambda tmp: df.to_parquet(tmp, index=False))


def write_table(table, target: str | Path) -> Path:
    """An Arrow table as Parquet."""
    import pyarrow.parquet as pq

    return atomic_write(target, lambda tmp: pq.write_table(table, tmp))


def write_blocks(blocks, target: str | Path, schema=None) -> Path:
    """Arrow tables, one after another, as one Parquet file (a row group or more each), written as they
    come so that only one is in memory; cast to the first one's schema (or `schema`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(tmp):
        writer = None
        for block in blocks:
            if writer is None:
                writer = pq.ParquetWriter(
                    tmp, schema or block.schema, use_dictionary=_repeating(schema or block.schema)
                )
            writer.write_table(block.cast(writer.schema))
        if writer is None:  # no block: the file still has its columns
            pq.write_table((schema or pa.schema([])).empty_table(), tmp)
        else:
            writer.close()

    return atomic_write(target, write)


def _repeating(schema) -> list[str]:
    """The columns worth a dictionary: text (folders, genres repeat); not numbers, which seldom do."""
    import pyarrow as pa

    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def write_json(obj, target: str | Path) -> Path:
    text = json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n"
    return atomic_write(target, lambda tmp: tmp.write_text(text))


def write_bytes(data: bytes, target: str | Path) -> Path:
    return atomic_write(target, lambda tmp: tmp.write_bytes(data))


def write_text(text: str, target: str | Path) -> Path:
    return atomic_write(target, lambda tmp: tmp.write_text(text))


def read_json(source: str | Path):
    return json.loads(path(source).read_text())


def read_parquet(source: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    source = path(source)
    if isinstance(source, Path):
        return pd.read_parquet(source, columns=columns)
    return pd.read_parquet(source.path, columns=columns, filesystem=source.fs)


def read_table(source: str | Path, columns: list[str] | None = None):
    """A Parquet file as an Arrow table (no pandas)."""
    return read_dataset([source], columns)


def parquet_file(source: str | Path):
    """A Parquet file opened for reading by row groups and batches. Without pre-buffering: with it, the
    reader keeps every row group it has read until the file is closed (the whole file, read through)."""
    import pyarrow.parquet as pq

    where = path(source)
    opened = str(where) if isinstance(where, Path) else where.fs.open(where.path, "rb")
    return pq.ParquetFile(opened, pre_buffer=False, buffer_size=1 << 20)


def read_blocks(source: str | Path, columns: list[str] | None = None, rows: int | None = None):
    """A Parquet file's rows as Arrow tables of `rows` rows each (the last one fewer), read a batch at a
    time: the blocks of two files of the same rows line up, whatever their row groups."""
    import pyarrow as pa

    rows = rows or BLOCK_ROWS
    held, count = [], 0
    for batch in parquet_file(source).iter_batches(batch_size=rows, columns=columns):
        held.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(held)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held)


def sorted_blocks(sources: list, key: str, columns: list[str] | None = None, rows: int | None = None):
    """The rows of Parquet files of the same columns, in the order of their `key` column, as Arrow tables of
    `rows` rows each: a merge that holds a few thousand rows of each file at most. A file is expected
    sorted by `key` (extraction and discover write them so); one that is not is read whole and sorted."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = rows or BLOCK_ROWS
    keys = [read_table(s, [key]).column(key).cast(pa.string()) for s in sources]
    cursors = [_Cursor(s, key, columns, len(k), _is_sorted(k)) for s, k in zip(sources, keys, strict=True)]
    source_of = np.repeat(np.arange(len(sources)), [len(k) for k in keys])
    source_of = source_of[pc.sort_indices(pa.chunked_array(keys, type=pa.string())).to_numpy()]
    del keys
    for start in range(0, len(source_of), rows):
        block = source_of[start : start + rows]
        counts = np.bincount(block, minlength=len(sources))
        parts = [cursors[s].take(int(counts[s])) for s in np.flatnonzero(counts)]
        # the parts hold the block's rows grouped by file, each file's in key order: put back in key order
        grouped = np.argsort(block, kind="stable")
        yield pa.concat_tables(parts, promote_options="permissive").take(np.argsort(grouped))


def _is_sorted(keys) -> bool:
    import pyarrow.compute as pc

    return len(keys) < 2 or pc.all(pc.less_equal(keys[:-1], keys[1:])).as_py() is not False


class _Cursor:
    """The rows of one Parquet file, taken in order a few at a time (a file not in key order: sorted whole)."""

    BATCH_ROWS = 4096  # rows of a file held at once while merging

    def __init__(self, source, key: str, columns: list[str] | None, rows: int, is_sorted: bool):
        self.source, self.key, self.columns, self.left, self.is_sorted = source, key, columns, rows, is_sorted
        self.blocks, self.held = None, None

    def take(self, n: int):
        import pyarrow as pa

        if self.blocks is None:
            if self.is_sorted:
                self.blocks = read_blocks(self.source, self.columns, self.BATCH_ROWS)
            else:
                table = read_table(self.source).sort_by(self.key)
                self.blocks = iter([table.select(self.columns) if self.columns else table])
            self.held = next(self.blocks)
        parts = []
        while n > 0:
            if self.held.num_rows == 0:
                self.held = next(self.blocks)
            part = self.held.slice(0, n)
            self.held, n = self.held.slice(part.num_rows), n - part.num_rows
            parts.append(part)
        self.left -= sum(part.num_rows for part in parts)
        if self.left == 0:  # the file read through: its reader let go
            self.blocks, self.held = None, None
        return pa.concat_tables(parts)


def sample_rows(source: str | Path, columns: list[str], row_groups: int, seed: int = 0):
    """The rows of up to `row_groups` of a Parquet file's row groups, chosen at random: a sample of a large
    table read in a few requests."""
    import numpy as np

    opened = parquet_file(source)
    chosen = np.random.default_rng(seed).permutation(opened.num_row_groups)[:row_groups]
    return opened.read_row_groups(sorted(chosen.tolist()), columns=columns)


def rows_of(source: str | Path, key: str, values: list, columns: list[str]):
    """The rows of a Parquet file whose `key` is one of `values`; a file sorted by `key` has only the row
    groups that may hold them read (their statistics say)."""
    import pyarrow.parquet as pq

    where = path(source)
    fs = None if isinstance(where, Path) else where.fs
    name = str(where) if isinstance(where, Path) else where.path
    return pq.read_table(name, columns=[key, *columns], filters=[(key, "in", values)], filesystem=fs)


def row_count(source: str | Path) -> int:
    """The rows of a Parquet file, from its footer."""
    return parquet_file(source).metadata.num_rows


def schema(source: str | Path):
    """The Arrow schema of a Parquet file, from its footer."""
    return parquet_file(source).schema_arrow


def columns(source: str | Path) -> list[str]:
    """The column names of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    where = path(source)
    if isinstance(where, Path):
        return pq.read_schema(where).names
    return pq.read_schema(where.path, filesystem=where.fs).names


def read_dataset(sources: list, columns: list[str] | None = None):
    """The rows of Parquet files with the same columns, read as one Arrow dataset (no pandas). Files with
    no rows are left out: their columns may have no type."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    paths = [path(s) for s in sources]
    remote = next((p for p in paths if not isinstance(p, Path)), None)
    fs = remote.fs if remote is not None else None
    names = [str(p) if isinstance(p, Path) else p.path for p in paths]
    kept = [name for name in names if pq.read_metadata(name, filesystem=fs).num_rows]
    if not kept:
        return pq.read_table(names[0], columns=columns, filesystem=fs) if names else pa.table({})
    schema = pa.unify_schemas([pq.read_schema(name, filesystem=fs) for name in kept], promote_options="permissive")
    return ds.dataset(kept, schema=schema, format="parquet", filesystem=fs).to_table(columns=columns)


def copy(source, target) -> None:
    """`source` as `target` too: a hard link where the file system allows it (files are never written in
    place), else a copy; on object storage a copy made by the server."""
    source, target = path(source), path(target)
    if not isinstance(target, Path):
        target.fs.copy(source.path, target.path)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copy2(source, tmp)
    os.replace(tmp, target)


def copy_tree(source, target) -> None:
    """A folder's files copied under `target` (merged with what is there), from a local disk or the same store."""
    source, target = path(source), path(target)
    if isinstance(target, Path):
        shutil.copytree(source, target, dirs_exist_ok=True)
        return
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        if isinstance(file, Path):
            target.fs.put_file(str(file), (target / file.relative_to(source).as_posix()).path)
        else:
            target.fs.copy(file.path, target.path + file.path[len(source.path) :])


@contextlib.contextmanager
def local_folder(target):
    """A local folder to write into, whose files end up under `target`: `target` itself on a local disk."""
    target = path(target)
    if isinstance(target, Path):
        target.mkdir(parents=True, exist_ok=True)
        yield target
        return
    with tempfile.TemporaryDirectory(prefix="musicrec-folder-") as folder:
        yield Path(folder)
        copy_tree(Path(folder), target)


@contextlib.contextmanager
def local_copy(source):
    """A local file with `source`'s bytes, for readers that need a path on disk: `source` itself if local."""
    source = path(source)
    if isinstance(source, Path):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="musicrec-download-") as folder:
        local = Path(folder) / source.name
        source.fs.get_file(source.path, str(local))
        yield local


@contextlib.contextmanager
def local_library(library, worklist: pd.DataFrame):
    """The library as a local folder holding the work list's files: itself on a local disk; from object
    storage, a temporary folder into which they are downloaded (with the times discover saw, so that
    features are reused by them later), removed after."""
    library = root(library)
    if isinstance(library, Path):
        yield library
        return
    with tempfile.TemporaryDirectory(prefix="musicrec-audio-") as folder:
        remote = [(library / key).path for key in worklist["track_key"]]
        local = [str(Path(folder) / key) for key in worklist["track_key"]]
        for target in local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            library.fs.get(remote, local)  # concurrently
        except FileNotFoundError:  # one was removed since discover: the others one by one; it is reported missing
            for source, target in zip(remote, local, strict=True):
                with contextlib.suppress(FileNotFoundError):
                    library.fs.get_file(source, target)
        for target, mtime_ns in zip(local, worklist["mtime_ns"], strict=True):
            if os.path.exists(target):
                os.utime(target, ns=(int(mtime_ns), int(mtime_ns)))
        yield Path(folder)


def remove_tree(folder) -> None:
    folder = path(folder)
    if isinstance(folder, Path):
        shutil.rmtree(folder, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            folder.fs.rm(folder.path, recursive=True)
        with contextlib.suppress(FileNotFoundError):  # a server that keeps folders (SeaweedFS) lists it till then
            folder.fs.rm_file(folder.path + "/")


def _point(data_dir, name: str, run) -> None:
    """Make `name` (current, previous) name `run` at once: a new link renamed over the old one, or on
    object storage a pointer object written in one request."""
    if not isinstance(data_dir, Path):
        write_text(f"{RUNS}/{run.name}\n", data_dir / name)
        return
    link = data_dir / name
    tmp_link = data_dir / f".{name}.{os.getpid()}.tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(Path(RUNS) / run.name)
    os.replace(tmp_link, link)


def previous_dir(data_dir: str | Path) -> Path | None:
    """The index that was current before the current one: the rollback target."""
    return _pointed(data_dir, PREVIOUS)


def restore_current(data_dir: str | Path, before: Path | None) -> None:
    """Point `current` back at `before` (None: no index) if a run moved it."""
    data_dir = root(data_dir)
    if current_dir(data_dir) == before:
        return
    if before is None:
        (data_dir / CURRENT).unlink(missing_ok=True)
    else:
        _point(data_dir, CURRENT, before)


def publish(data_dir: str | Path, run: Path, keep: int = KEEP_RUNS) -> Path:
    """Make `run` the current index (the one it replaces becomes `previous`), then prune old run folders."""
    data_dir, run = root(data_dir), root(run)
    before = current_dir(data_dir)
    if before is not None and before != run:
        _point(data_dir, PREVIOUS, before)
    _point(data_dir, CURRENT, run)
    prune(data_dir, keep)
    return data_dir / CURRENT


def _started(run) -> float:
    """When a run folder was last written to; on object storage, where folders have no time, when its work
    list was written (0 for a run that failed before it)."""
    if isinstance(run, Path):
        return run.stat().st_mtime
    try:
        return (run / WORKLIST).stat().st_mtime
    except FileNotFoundError:
        return 0.0


def prune(data_dir: str | Path, keep: int = KEEP_RUNS) -> list[Path]:
    """Delete all but the newest `keep` run folders, failed runs' included; never `current` nor `previous`."""
    data_dir = root(data_dir)
    protected = {current_dir(data_dir), previous_dir(data_dir)}
    runs = sorted((p for p in (data_dir / RUNS).iterdir() if p.is_dir()), key=_started)
    removed = [old for old in runs[: max(0, len(runs) - keep)] if root(old) not in protected]
    for old in removed:
        remove_tree(old)
    return removed


def remove_failed_runs(data_dir: str | Path) -> list[Path]:
    """Delete the folders of runs that never published (no summary), never `current` nor `previous`: a
    failed run's partial tables (shards that filled the disk, say) are of no use to any later run, which
    reads only the current index. Only for the lock's holder: a run in progress has no summary yet."""
    data_dir = root(data_dir)
    if not (data_dir / RUNS).is_dir():
        return []
    protected = {current_dir(data_dir), previous_dir(data_dir)}
    failed = [p for p in (data_dir / RUNS).iterdir() if p.is_dir() and not (p / SUMMARY).exists()]
    removed = [run for run in failed if root(run) not in protected]
    for run in removed:
        remove_tree(run)
    return removed


def rollback(data_dir: str | Path) -> tuple[Path, Path]:
    """Swap `current` and `previous`: the last index becomes current again (run it twice to undo).

    Returns (new current, new previous).
    """
    data_dir = root(data_dir)
    current, previous = current_dir(data_dir), previous_dir(data_dir)
    if previous is None or not previous.is_dir():
        raise FileNotFoundError(f"no earlier index to roll back to in {data_dir}")
    _point(data_dir, CURRENT, previous)
    if current is not None:
        _point(data_dir, PREVIOUS, current)
    return previous, current
