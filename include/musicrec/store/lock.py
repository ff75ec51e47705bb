"""One run at a time per data dir: a lock file that names its holder.

A run takes the lock in `discover` and gives it back when it publishes or fails (the DAG's teardown
task). While it works, every stage refreshes the lock's heartbeat, so a lock whose holder is gone (a
killed run, a lost worker) is broken once its heartbeat is older than `STALE_S`, or at once when its
holding process on this host has died. Whoever finds it held waits, then fails naming the holder.

On object storage the lock is an object created only if it does not exist (a conditional write), the
same guarantee as the local file's exclusive create.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from musicrec.store import storage

log = logging.getLogger("musicrec")

LOCK = ".lock"
STALE_S = 900.0  # longer than any gap between two tasks of a run under a busy scheduler
HEARTBEAT_S = 30.0
POLL_S = 5.0


class DataDirBusy(RuntimeError):
    """Another run holds the data dir; the message names it."""


def _path(data_dir: str | Path) -> Path:
    return storage.root(data_dir) / LOCK


def holder(data_dir: str | Path) -> dict | None:
    """What the lock says of its holder, or None when the data dir is free."""
    try:
        return _read(_path(data_dir))
    except FileNotFoundError:
        return None


def _read(path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError):
        return {"holder": "?", "heartbeat": 0.0}  # a torn or foreign file: stale, so it is broken


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(info: dict) -> bool:
    if time.time() - float(info.get("heartbeat", 0.0)) > STALE_S:
        return True
    same_host = info.get("host") == socket.gethostname()
    return bool(same_host and info.get("pid") and info.get("pid_holds_run") and not _pid_alive(info["pid"]))


def _try_create(path: Path, info: dict) -> bool:
    if not isinstance(path, Path):
        try:
            with path.open("xb") as f:
                f.write(json.dumps(info).encode())
        except OSError:  # the server refused the write because the object exists, or failed
            if path.exists():
                return False
            raise
        return True
    # Written whole, then linked into place (which fails if the lock exists): an exclusive create followed
    # by a write would leave an empty lock for a moment, which another run reads as torn, so stale, and breaks.
    written = path.with_name(f"{LOCK}.{uuid.uuid4().hex[:12]}.new")
    try:
        written.write_text(json.dumps(info))  # on a full disk, this fails: nothing of it may stay
        os.link(written, path)
    except FileExistsError:
        return False
    finally:
        written.unlink(missing_ok=True)
    return True


def _break(path: Path, stale: dict) -> None:
    """Remove the stale lock `stale`, and only it.

    Two runs can find the same lock stale at once; the first breaks it and takes a fresh lock, and the
    second must not break that one. So breaking is done by one run at a time (an exclusive `flock` on a
    guard file beside the lock, which is never removed), and only while the lock still says what it said
    when it was found stale.
    """
    if not isinstance(path, Path):  # no rename there: deleted, and the conditional create decides who wins
        path.unlink(missing_ok=True)
        return
    with open(path.with_name(f"{LOCK}.guard"), "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            if _read(path) == stale:
                path.unlink()
        except FileNotFoundError:
            pass


def describe(info: dict) -> str:
    age = time.time() - float(info.get("heartbeat", 0.0))
    where = f" on {info['host']} (pid {info['pid']})" if info.get("host") else ""
    return f"run {info.get('holder', '?')}{where}, since {info.get('acquired_at', '?')}, last seen {age:.0f} s ago"


def acquire(data_dir: str | Path, run_id: str, wait_s: float = 0.0, pid_holds_run: bool = False) -> dict:
    """Take the data dir for `run_id` (again, if it already holds it), waiting up to `wait_s` for another run.

    `pid_holds_run`: this process runs the whole run (`musicrec run`), so its death frees the lock at once.
    Raises DataDirBusy naming the holder when the wait is over.
    """
    path = _path(data_dir)
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    waited = False
    while True:
        now = time.time()
        info = {
            "holder": run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_holds_run": pid_holds_run,
            "acquired_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "heartbeat": now,
        }
        if _try_create(path, info):
            return info
        current = holder(data_dir)
        if current is None:
            continue
        if current.get("holder") == run_id:  # a retried task of the run that holds it
            beat(data_dir, run_id)
            return current
        if _is_stale(current):
            _break(path, current)
            continue
        if time.monotonic() >= deadline:
            raise DataDirBusy(f"data dir {path.parent} is in use by {describe(current)}; try again when it is done")
        if not waited:
            log.info("waiting up to %.0f s for the data dir, in use by %s", wait_s, describe(current))
            waited = True
        time.sleep(POLL_S)


def beat(data_dir: str | Path, run_id: str) -> None:
    """Refresh the heartbeat, if `run_id` holds the lock."""
    path = _path(data_dir)
    info = holder(data_dir)
    if info and info.get("holder") == run_id:
        storage.write_text(json.dumps(info | {"heartbeat": time.time()}), path)


def release(data_dir: str | Path, run_id: str) -> bool:
    """Give the lock back if `run_id` holds it; True when it did."""
    info = holder(data_dir)
    if info and info.get("holder") == run_id:
        _path(data_dir).unlink(missing_ok=True)
        return True
    return False


@contextlib.contextmanager
def heartbeat(data_dir: str | Path, run_id: str):
    """Keep the lock's heartbeat fresh while the block runs."""
    stop = threading.Event()

    def loop():
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                beat(data_dir, run_id)

    with contextlib.suppress(OSError):
        beat(data_dir, run_id)
    thread = threading.Thread(target=loop, name="musicrec-lock-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
