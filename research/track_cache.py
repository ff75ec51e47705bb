"""Per-track results of the evaluation protocol's audio candidates, computed once and kept in a Parquet cache."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def _one(compute: Callable[[Path], dict], library: str, key: str) -> dict:
    return {"track_key": key, **compute(Path(library) / key)}


def per_track(library: str | Path, keys: list[str], cache: Path, compute: Callable[[Path], dict]) -> pd.DataFrame:
    """`compute(path)` (a dict of JSON-able columns) for each of `keys`, indexed by track key in their order.

    Tracks missing from `cache` are computed in a pool over every core and added to it. The pool is
    spawned: by then the caller's BLAS threads have run, and a fork would copy their state.
    """
    done = pd.read_parquet(cache) if cache.exists() else pd.DataFrame(columns=["track_key"])
    missing = sorted(set(keys) - set(done["track_key"]))
    if missing:
        spawn = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=len(os.sched_getaffinity(0)), mp_context=spawn) as pool:
            rows = list(pool.map(functools.partial(_one, compute, str(library)), missing))
        done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
        done.to_parquet(cache, index=False)
    return done.set_index("track_key").loc[keys]
