"""What decides that something changed, in one place. Each detector names what it depends on:

- a file's features: its size, modification time and `FEATURE_VERSION` (`musicrec.analysis.features`), a
  version bumped by hand when a value changes and guarded by a golden test
  (tests/unit/analysis/test_features_golden.py), so an edit that changes no value extracts nothing again;
- a stage's outputs (scale, reduce, build_index, evaluate): `stage_key`, the values of its input tables, its
  parameters and the source of the modules that compute it; equal keys link the current index's files;
- a whole run: `index_inputs`, the metadata file's bytes, the index parameters (`settings.INDEX_PARAMS`)
  and the package's source; with no file changed, `unchanged_since_current` starts no run at all;
- the metadata's validation: `musicrec.library.expectations.fingerprint`, the cleaned table's values and the
  suite's own version;
- the mel filterbanks: cached per process by their parameters (`musicrec.analysis.filterbanks`).

A stage's outputs are taken from the current index when its key is unchanged: a nightly run over an
unchanged library joins the very tracks of the index it replaces, and standardizing, PCA and the neighbour
search would compute the same tables again.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from pathlib import Path
from types import ModuleType

import pandas as pd
from pandas.api import types as ptypes

from musicrec import settings
from musicrec.library import discover as discovery
from musicrec.pipeline import inputs
from musicrec.store import storage

log = logging.getLogger("musicrec")


def table_digest(path: str | Path, columns: list[str] | None = None) -> str:
    """The values of a Parquet table, whatever dtypes the reading gave text columns (object, str, category);
    read a block of rows at a time (the digest is that of the whole table)."""
    names = columns or storage.columns(path)
    digest = hashlib.sha256(json.dumps(names).encode())
    for block in storage.read_blocks(path, names):
        table = block.to_pandas()
        text = [c for c in table.columns if not (ptypes.is_numeric_dtype(table[c]) or ptypes.is_bool_dtype(table[c]))]
        table[text] = table[text].astype(object).where(table[text].notna(), None).astype(str)
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def key(tables: list[str | Path | tuple[str | Path, list[str]]], params: dict, code: list[ModuleType]) -> str:
    """What a stage's result depends on: its input tables (a path, or a path and the columns read), its
    parameters and the source of the modules that compute it."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for table in tables:
        path, columns = table if isinstance(table, tuple) else (table, None)
        digest.update(table_digest(path, columns).encode())
    for module in code:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()


def from_current_index(
    stage: str, stage_key: str, run_dir: str | Path, outputs: list[str], optional: tuple[str, ...] = ()
) -> dict | None:
    """The stage's record with its `outputs` (file names) linked into `run_dir` from the current index,
    if that index's run recorded the same key for the stage and still holds them; else None. The
    `optional` outputs are linked too where that run has them."""
    run_dir = storage.path(run_dir)
    current = storage.current_dir(storage.data_dir_of(run_dir))
    record_path = storage.stage_record(current, stage) if current else None
    if record_path is None or not record_path.exists():
        return None
    record = storage.read_json(record_path)
    if record.get("reuse_key") != stage_key or not all((current / name).exists() for name in outputs):
        return None
    for name in outputs + [name for name in optional if (current / name).exists()]:
        storage.copy(current / name, run_dir / name)
    old = record["run_dir"]
    log.info("%s: inputs unchanged since the current index: its %s reused", stage, ", ".join(outputs))
    return {k: _moved(v, old, str(run_dir)) for k, v in record.items()} | {"reused": True}


def _moved(value, old_run: str, new_run: str):
    if isinstance(value, dict):
        return {k: _moved(v, old_run, new_run) for k, v in value.items()}
    if isinstance(value, str) and value.startswith(old_run):
        return new_run + value[len(old_run) :]
    return value


def index_inputs(library: Path, metadata_file: Path | None, index_params: dict) -> dict:
    """What an index depends on beside its files: the metadata file's bytes, the parameters that shape the
    index, and the code. Recorded by discover; equal inputs and unchanged files rebuild the same index.
    The locations are resolved (`storage.root`)."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).resolve().parents[1].rglob("*.py")):  # the whole musicrec package
        digest.update(source.read_bytes())
    return {
        "library": str(library),
        "metadata_path": str(metadata_file) if metadata_file else None,
        "metadata_sha256": hashlib.sha256(metadata_file.read_bytes()).hexdigest() if metadata_file else None,
        "params": {name: index_params[name] for name in settings.INDEX_PARAMS},
        "code_sha256": digest.hexdigest(),
    }


def unchanged_since_current(
    library: str, data_dir: str, folders: list[str], metadata_path: str | None, index_params: dict
) -> dict | None:
    """The current index's summary if a run with these inputs would find nothing to change (no file added,
    changed or removed, the same metadata, parameters and code), else None."""
    library, data = storage.root(library), storage.root(data_dir)
    metadata_file = storage.root(metadata_path) if metadata_path else None
    current = storage.current_dir(data)
    summary_path = current / storage.SUMMARY if current else None
    if summary_path is None or not summary_path.exists():
        return None
    try:
        summary = storage.read_json(summary_path)
        if summary.get("inputs") != index_inputs(library, metadata_file, index_params):
            return None
    except (OSError, ValueError):  # a damaged summary or an unreadable file: the run finds out and says so
        return None
    plan = inputs.plan(library, data, discovery.normalize_folders(folders), full_refresh=False)
    if plan["previous"] is None or not plan["todo"].empty or plan["warnings"]:
        return None
    kept = len(plan["reused"]) + len(plan["still"])
    indexed = len(plan["previous"]) + (len(plan["quarantined"]) if plan["quarantined"] is not None else 0)
    return summary if kept == indexed else None
