"""Cores shared between the shards that run at once on one machine.

Several mapped shards can run on one worker host together; if each started a process per core, a
2-core machine running five shards would run ten analyses at once and none faster. A shard claims the
cores it uses: one token file per core under the temporary folder, each held with an exclusive `flock`
for as long as the shard runs. It takes the free ones (at least one, waiting for it), so the shards
share the machine; the kernel releases a dead process's tokens, so none is ever lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _token_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"musicrec-cores-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


@contextlib.contextmanager
def claim(wanted: int, total: int | None = None, folder: Path | None = None):
    """Yield how many cores this shard may use: the free ones, up to `wanted`, and at least one."""
    total = total or machine_cores()
    folder = folder or _token_folder()
    held: list[int] = []
    try:
        for i in range(total):
            if len(held) >= wanted:
                break
            fd = os.open(folder / f"core-{i}", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(fd)
            except BlockingIOError:
                os.close(fd)
        if not held:  # every core busy: wait for one (the first is as good as any)
            fd = os.open(folder / f"core-{os.getpid() % total}", os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            held.append(fd)
        yield len(held)
    finally:
        for fd in held:
            os.close(fd)
