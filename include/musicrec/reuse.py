"""A stage's outputs taken from the current index when what they depend on is unchanged.

A nightly run over an unchanged library joins the very tracks of the index it replaces: standardizing,
PCA and the neighbour search would compute the same tables again, and import scikit-learn to do it.
Each of those stages names what its result depends on (the values of its input tables, its parameters,
the code that computes it) as a key; when the current index's run recorded the same key for that stage,
its files are linked into the new run instead of computed.
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

from musicrec import storage

log = logging.getLogger("musicrec")


def table_digest(path: str | Path, columns: list[str] | None = None) -> str:
    """The values of a Parquet table, whatever dtypes the reading gave text columns (object, str, category)."""
    table = storage.read_parquet(path, columns=columns)
    text = [c for c in table.columns if not (ptypes.is_numeric_dtype(table[c]) or ptypes.is_bool_dtype(table[c]))]
    table[text] = table[text].astype(object).where(table[text].notna(), None).astype(str)
    digest = hashlib.sha256(json.dumps(table.columns.tolist()).encode())
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
