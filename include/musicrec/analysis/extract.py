"""Running feature extraction over a list of files, on all of a machine's cores.

The same code serves the mapped Airflow task (one shard) and `musicrec features`.
A file that no decoder reads goes to the quarantine table with the reason; the
run goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import importlib.machinery
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from musicrec.analysis import audio, cores, features, limits

log = logging.getLogger("musicrec")

# size and mtime tell whether a quarantined file changed since: an unchanged one is not decoded again.
QUARANTINE_COLUMNS = ["track_key", "folder", "file", "stage", "error", "size_bytes", "mtime_ns"]
# After the features: a silent-track flag, and what tells whether a file changed since its features were taken.
BOOKKEEPING_COLUMNS = [
    "analysed_s",
    "truncated",
    "is_silent",
    "feature_version",
    "size_bytes",
    "mtime_ns",
    "content_hash",
]
# What decoding and analysing one file may take beyond a warm worker's own memory (a file's first 30 minutes
# need about 0.3 GB): past it an allocation fails and the file is quarantined, rather than the machine swapping.
FILE_MEMORY_LIMIT = 2 * 2**30
# Longer tracks are analysed on their first 30 minutes: memory stays bounded (about 160 MB of signal)
# and half an hour says how a piece sounds; the cap is the DAG's `max_analysis_minutes` param.
DEFAULT_MAX_MINUTES = 30.0
PROGRESS_EVERY_S = 10.0


def warm_up() -> None:
    """Load the analysis tables and the decoders' modules once per process, before the first real file."""
    import av  # noqa: F401 - the decoders' modules, imported here once rather than in every forked worker
    import soundfile  # noqa: F401
    import soxr  # noqa: F401

    noise = np.random.default_rng(0).standard_normal(features.SETTINGS.sample_rate).astype(np.float32)
    features.compute(noise * 0.1)


def extract_one(library: str, track_key: str, max_seconds: float | None = None) -> tuple[str, dict | None, str | None]:
    """(track_key, feature row, None) or (track_key, None, reason)."""
    path = Path(library) / track_key
    try:
        stat = path.stat()
        with limits.time_limit(limits.ANALYSIS_LIMIT_S, "decoding and analysis"):
            row = features.extract_path(path, max_seconds=max_seconds)
    except (audio.DecodeError, limits.TimeLimitExceeded) as exc:
        return track_key, None, str(exc)
    except FileNotFoundError:
        return track_key, None, "file not found (removed during the run?)"
    except MemoryError:
        reason = f"needed more than the {FILE_MEMORY_LIMIT / 2**30:g} GB of memory a file may take"
        if not max_seconds:  # the whole of a very long file, asked for with max_analysis_minutes 0
            reason += ": analyse long files on their first minutes (max_analysis_minutes, 30 by default)"
        return track_key, None, reason
    except Exception as exc:  # a file must never bring the shard down; the reason is kept
        return track_key, None, f"{type(exc).__name__}: {exc}"
    row["size_bytes"] = stat.st_size
    row["mtime_ns"] = stat.st_mtime_ns
    row["content_hash"] = content_hash(path)
    return track_key, row, None


def content_hash(path: Path) -> str:
    """Hash of the file's bytes: the same audio under two names is found by it."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _worker_init() -> None:
    """One BLAS thread per worker (the pool already uses every core), warm up, then bound the memory that a
    file may take."""
    import resource

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    warm_up()
    with open("/proc/self/status") as status:
        warm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (1024 * warm_kb + FILE_MEMORY_LIMIT, hard))


def extract_supervised(
    library: str, track_key: str, max_seconds: float | None = None, time_limit_s: float = limits.ANALYSIS_LIMIT_S
) -> tuple[str, dict | None, str | None]:
    """`extract_one` in a supervised worker process, for one file from outside the library (`musicrec similar`,
    the API's upload): a file that crashes the decoder costs an error, not the process that asked."""
    with contextlib.closing(_results(library, [track_key], 1, max_seconds, time_limit_s)) as results:
        return next(results)  # closing the generator shuts its pool down now, not whenever it is collected


def _pool_context():
    """fork when this process runs no other thread; else a fork server that warmed up once.

    A forked worker starts at once with the analysis code already imported and compiled, but forking a
    process that has other threads (an Airflow task, an in-process run) can copy a lock one of them
    holds. The fork server is started clean, imports and compiles the analysis code once (`musicrec.analysis.warm`),
    and forks the workers from itself: the same warm start, without the threads.
    """
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["musicrec.analysis.warm"])
    return context


def _allow_children() -> None:
    """Let this process start a pool where multiprocessing thinks it may not.

    A task of a Celery worker runs in a process forked from the worker's prefork pool (billiard), which marks
    it as daemonic, and a daemonic process may not start children; ours are the pool's workers, shut down
    with the pool before the task ends, so none is ever left behind. Billiard also gives it an authentication
    key of its own type, which multiprocessing's fork server refuses to pickle: it becomes multiprocessing's.
    """
    process = multiprocessing.current_process()
    if process.daemon:
        process._config["daemon"] = False  # the `daemon` setter refuses a process that has started
    key = process._config.get("authkey")
    if key is not None and type(key) is not multiprocessing.process.AuthenticationString:
        process._config["authkey"] = multiprocessing.process.AuthenticationString(bytes(key))


def _results(library: str, keys: list[str], workers: int, max_seconds: float | None, time_limit_s: float):
    """Each file decoded and analysed in a worker process that this one supervises (pebble's pool), as
    browsers and media servers treat untrusted media: a file that crashes its worker (a decoder's SIGSEGV),
    takes longer than `time_limit_s` (stopped from here: a timer inside cannot interrupt C code) or more
    memory than a worker may have costs that file alone; the worker is replaced and the rest go on."""
    import pebble

    context = _pool_context()
    if context.get_start_method() == "fork":
        warm_up()  # the forked workers inherit it
    _allow_children()
    _main_script_never_rerun()
    with pebble.ProcessPool(max_workers=workers, initializer=_worker_init, context=context) as pool:
        # One file a task, taken as each finishes: every core stays busy when file lengths differ a lot.
        futures = {
            pool.schedule(extract_one, args=(library, key, max_seconds), timeout=time_limit_s): key for key in keys
        }
        for future in cf.as_completed(futures):
            yield _outcome(futures[future], future, time_limit_s)


def _outcome(key: str, future, time_limit_s: float) -> tuple[str, dict | None, str | None]:
    """What a worker returned for `key`, or why it returned nothing."""
    import pebble

    try:
        return future.result()
    except cf.TimeoutError:
        return key, None, f"decoding and analysis took longer than {time_limit_s:g} s and was stopped"
    except pebble.ProcessExpired as exc:
        return key, None, _ended(exc.exitcode)


def _ended(exitcode: int | None) -> str:
    """Why a worker that was analysing a file ended, for a person."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if name == "SIGKILL":
            return "its worker was killed (SIGKILL: out of memory, or stopped from outside)"
        return f"crashed the decoder ({name})"
    return f"its worker ended with exit code {exitcode}"


def _main_script_never_rerun() -> None:
    """Workers that a fork server starts never run this process's `__main__` script again.

    multiprocessing re-runs the parent's main script in each such worker, so that its functions can be
    unpickled there. Ours live in this module, and the script may be a console script that must not run
    twice: in a task of `airflow standalone`, `airflow scheduler` or `airflow celery worker`, `__main__` is
    the `airflow` script, whose import in a task process fails on the task's deliberately unusable database
    URL (`Could not parse SQLAlchemy URL`), and every worker dies. The pool replaces workers at any time, so
    the main module is marked for good as one that multiprocessing does not run again: a spec named
    `__main__`, which is what it finds, and skips, for a package run as `python -m` (why that way of
    starting Airflow hid the crash).
    """
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is None and getattr(main, "__file__", None) is not None:
        main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)


def extract(
    library: str | Path,
    worklist: pd.DataFrame,
    workers: int | None = None,
    label: str = "extract",
    max_minutes: float | None = DEFAULT_MAX_MINUTES,
    run: str | None = None,
    time_limit_s: float = limits.ANALYSIS_LIMIT_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and quarantine tables for the files of `worklist` (columns track_key, folder, file).

    `workers` processes, or by default one per core that no other shard on this machine holds (see
    `musicrec.analysis.cores`). A file longer than `max_minutes` is analysed on its first `max_minutes` (0 or None:
    no cap). `label` names the shard in what it logs; `run`, the run it belongs to, where shards of another
    run wait for its cores. A file whose decoding and analysis take longer than `time_limit_s` is stopped and
    quarantined.
    """
    max_seconds = 60.0 * max_minutes if max_minutes else None
    library = str(Path(library).expanduser())
    if workers and workers > cores.machine_cores():  # each costs about 200 MB, and none would run faster
        log.info("%s: %d processes asked for, more than the cores here (%d)", label, workers, cores.machine_cores())
        workers = cores.machine_cores()
    wanted = max(1, min(workers or cores.machine_cores(), len(worklist) or 1))
    holder = f"{label} of run {run}" if run else label
    with cores.claim(wanted, label=holder) if not workers else contextlib.nullcontext(wanted) as granted:
        if granted < wanted:
            log.info("%s: %d of %d cores free (other shards run here)", label, granted, wanted)
        log.info("%s: %d files, %d process%s", label, len(worklist), granted, "" if granted == 1 else "es")
        return _extract_all(library, worklist, granted, label, max_seconds, time_limit_s)


def _extract_all(
    library: str, worklist: pd.DataFrame, workers: int, label: str, max_seconds: float | None, time_limit_s: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    meta = worklist.set_index("track_key")
    rows, bad = [], []
    started = last_report = time.monotonic()
    audio_s = 0.0
    keys = _largest_first(library, worklist["track_key"].tolist())
    for done, (key, row, error) in enumerate(_results(library, keys, workers, max_seconds, time_limit_s), start=1):
        folder, file = meta.loc[key, "folder"], meta.loc[key, "file"]
        if error is None:
            rows.append({"track_key": key, "folder": folder, "file": file, **row})
            audio_s += row["duration_s"]
        else:
            bad.append(
                {
                    "track_key": key,
                    "folder": folder,
                    "file": file,
                    "stage": "decode",
                    "error": error,
                    "size_bytes": meta.loc[key].get("size_bytes"),
                    "mtime_ns": meta.loc[key].get("mtime_ns"),
                }
            )
            log.warning("%s: quarantined %s: %s", label, key, error)
        now = time.monotonic()
        if now - last_report >= PROGRESS_EVERY_S or done == len(keys):
            last_report = now
            log.info(
                "%s: %d/%d files, %.2f h of audio, %d quarantined, %.0f s",
                label,
                done,
                len(keys),
                audio_s / 3600,
                len(bad),
                now - started,
            )
    quarantine = pd.DataFrame(bad, columns=QUARANTINE_COLUMNS).sort_values("track_key", ignore_index=True)
    return features_frame(rows), quarantine


def _largest_first(library: str, keys: list[str]) -> list[str]:
    """Longest files first, so that no core is left finishing one long track while the others idle."""

    def size(key):
        try:
            return os.stat(Path(library) / key).st_size
        except OSError:
            return 0

    return sorted(keys, key=size, reverse=True)


def features_frame(rows: list[dict]) -> pd.DataFrame:
    numeric = features.stored_columns()
    columns = ["track_key", "folder", "file", "duration_s", *numeric, features.FINGERPRINT, *BOOKKEEPING_COLUMNS]
    df = pd.DataFrame(rows, columns=columns).sort_values("track_key", ignore_index=True)
    # float32: seven significant digits are more than any feature carries, and half the disk of float64
    numbers = {c: "float32" for c in numeric} | {"duration_s": "float64", "analysed_s": "float64"}
    return df.astype(numbers | {"truncated": "bool"})
