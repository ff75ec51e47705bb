"""The data dir's lock: one run at a time, its holder named, broken when the holder is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from musicrec.store import lock


def test_a_second_run_waits_then_fails_naming_the_holder(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "POLL_S", 0.05)
    lock.acquire(tmp_path, "run-a")
    started = time.monotonic()
    with pytest.raises(lock.DataDirBusy, match=r"in use by run run-a on .* \(pid \d+\), since .*, last seen \d+ s ago"):
        lock.acquire(tmp_path, "run-b", wait_s=0.3)
    assert 0.3 <= time.monotonic() - started < 3
    assert lock.holder(tmp_path)["holder"] == "run-a"


def test_the_holder_takes_it_again_and_gives_it_back(tmp_path):
    lock.acquire(tmp_path, "run-a")
    lock.acquire(tmp_path, "run-a")  # a retried discover of the same run
    assert not lock.release(tmp_path, "run-b") and lock.holder(tmp_path)["holder"] == "run-a"
    assert lock.release(tmp_path, "run-a") and lock.holder(tmp_path) is None
    lock.acquire(tmp_path, "run-b")
    assert lock.holder(tmp_path)["holder"] == "run-b"


def test_a_lock_without_heartbeat_is_broken(tmp_path):
    lock.acquire(tmp_path, "run-a")
    info = lock.holder(tmp_path)
    (tmp_path / lock.LOCK).write_text(json.dumps(info | {"heartbeat": time.time() - lock.STALE_S - 1}))
    lock.acquire(tmp_path, "run-b")
    assert lock.holder(tmp_path)["holder"] == "run-b"


def test_a_lock_whose_process_died_is_broken_at_once(tmp_path):
    code = "import sys; from musicrec.store import lock; lock.acquire(sys.argv[1], 'killed-run', pid_holds_run=True)"
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)  # it exits holding the lock
    assert lock.holder(tmp_path)["holder"] == "killed-run"
    lock.acquire(tmp_path, "run-b")
    assert lock.holder(tmp_path)["holder"] == "run-b"


def test_a_task_process_that_exited_does_not_free_the_run_s_lock(tmp_path):
    # Under a scheduler each task is its own process: the run holds the lock, not discover's process.
    code = "import sys; from musicrec.store import lock; lock.acquire(sys.argv[1], 'scheduled-run')"
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    with pytest.raises(lock.DataDirBusy, match="scheduled-run"):
        lock.acquire(tmp_path, "run-b")


def test_the_heartbeat_keeps_the_lock_fresh_while_a_stage_works(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    lock.acquire(tmp_path, "run-a")
    info = lock.holder(tmp_path)
    (tmp_path / lock.LOCK).write_text(json.dumps(info | {"heartbeat": 0.0}))
    with lock.heartbeat(tmp_path, "run-a"):
        time.sleep(0.2)
    assert time.time() - lock.holder(tmp_path)["heartbeat"] < 1
    assert os.path.exists(tmp_path / lock.LOCK)


def test_two_runs_breaking_a_stale_lock_at_once_never_both_get_it(tmp_path):
    """Breaking a stale lock must be atomic: of two runs that find it stale together, one gets the lock."""
    import threading

    both = 0
    for trial in range(200):
        data_dir = tmp_path / f"d{trial}"
        data_dir.mkdir()
        (data_dir / lock.LOCK).write_text(json.dumps({"holder": "gone", "heartbeat": 0.0}))
        start, got = threading.Barrier(2), []

        def take(name, data_dir=data_dir, start=start, got=got):
            start.wait()
            try:
                lock.acquire(data_dir, name, wait_s=0.0)
                got.append(name)
            except lock.DataDirBusy:
                pass

        runs = [threading.Thread(target=take, args=(f"run-{i}",)) for i in range(2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        assert len(got) >= 1
        both += len(got) == 2
    assert both == 0, f"both runs got the lock in {both} of 200 trials"


FULL_DISK_LOCK = """
set -eu
mount -t tmpfs -o size=64k tmpfs "$DISK"
head -c 1m /dev/zero > "$DISK/ballast" 2>/dev/null || true
"$PYTHON" -c 'import sys; from musicrec import errors; from musicrec.store import lock
try:
    lock.acquire(sys.argv[1], "run-a")
except OSError as exc:
    print("refused:", errors.explained(exc))' "$DISK"
ls -A "$DISK"
"""


def test_a_full_disk_refuses_the_lock_in_a_sentence_and_leaves_no_empty_lock(tmp_path):
    """Before, ENOSPC while writing the lock left a 0-byte `.lock` that the next run had to get past."""
    import shutil

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("no mount namespaces here (unshare -rm)")
    (tmp_path / "disk").mkdir()
    env = os.environ | {"DISK": str(tmp_path / "disk"), "PYTHON": sys.executable}
    done = subprocess.run(
        ["unshare", "-rm", "bash", "-c", FULL_DISK_LOCK], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said, *left = done.stdout.splitlines()
    assert said.startswith("refused: no space left on the device")
    assert left == ["ballast"]
