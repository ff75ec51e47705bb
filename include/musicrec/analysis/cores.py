"""Cores shared between the shards of one deployment that run at once on one machine.

Airflow's own controls bound how many tasks run at once (the executor's parallelism, a Celery worker's
concurrency); they do not know that each shard starts a process per core. On a 2-core machine running
five shards that would be ten analyses at once and none faster. So a shard claims the cores it uses: one
token file per core, each held with an exclusive `flock` for as long as the shard runs. It takes the free
ones, up to what it wants; when none is free it waits for whichever frees first, saying which shards hold
them. The kernel releases a dead process's tokens, so none is ever lost.

The tokens belong to one installation (its package folder): another checkout of musicrec on the same host
is another deployment, and its runs neither wait for these cores nor take them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger("musicrec")

POLL_S = 0.5


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def token_folder() -> Path:
    """This deployment's tokens: the user's, and this installation's (another checkout has its own)."""
    deployment = hashlib.sha256(str(Path(__file__).resolve().parent).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"musicrec-cores-{os.getuid()}-{deployment}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _take_free(folder: Path, total: int, wanted: int, label: str) -> list[int]:
    """The tokens free now, up to `wanted`, each marked with who holds it."""
    held: list[int] = []
    for i in range(total):
        if len(held) >= wanted:
            break
        fd = os.open(folder / f"core-{i}", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{label} (process {os.getpid()})".encode(), 0)
        held.append(fd)
    return held


def holders(folder: Path, total: int) -> list[str]:
    """Who holds the tokens, as each holder wrote it."""
    names = []
    for i in range(total):
        with contextlib.suppress(OSError):
            names.append((folder / f"core-{i}").read_text().strip() or "?")
    return sorted(set(names))


@contextlib.contextmanager
def claim(wanted: int, total: int | None = None, folder: Path | None = None, label: str = "a shard"):
    """Yield how many cores this shard may use: the free ones, up to `wanted`, and at least one."""
    total = total or machine_cores()
    folder = folder or token_folder()
    held = _take_free(folder, total, wanted, label)
    try:
        if not held:
            started = time.monotonic()
            log.info("%s: waiting for a free core (held by %s)", label, "; ".join(holders(folder, total)))
            while not held:
                time.sleep(POLL_S)
                held = _take_free(folder, total, 1, label)
            log.info("%s: a core came free after %.0f s", label, time.monotonic() - started)
        yield len(held)
    finally:
        for fd in held:
            os.close(fd)
