"""Run folders, publishing, pruning and rolling back."""

from __future__ import annotations

import os
import time

import pytest

from musicrec import cli
from musicrec.store import storage


def _run(data_dir, name, age_s: float = 0.0):
    run = storage.run_dir(data_dir, name)
    storage.write_json({"run_id": name}, run / storage.SUMMARY)
    stamp = time.time() - age_s
    os.utime(run, (stamp, stamp))
    return run


def test_pruning_keeps_the_current_and_previous_index_whatever_failed_since(tmp_path):
    data = tmp_path / "data"
    good_1 = _run(data, "good-1", age_s=100)
    storage.publish(data, good_1)
    good_2 = _run(data, "good-2", age_s=90)
    storage.publish(data, good_2)
    failed = [_run(data, f"failed-{i}", age_s=80 - i) for i in range(8)]  # newer than both good runs
    good_3 = _run(data, "good-3")
    storage.publish(data, good_3, keep=3)
    left = sorted(p.name for p in (data / "runs").iterdir())
    assert left == ["failed-6", "failed-7", "good-2", "good-3"]  # the newest 3, and previous
    assert storage.current_dir(data) == good_3 and storage.previous_dir(data) == good_2
    assert not any(f.exists() for f in failed[:6]) and not good_1.exists()


def test_rollback_makes_the_previous_index_current_and_can_be_undone(tmp_path, capsys):
    data = tmp_path / "data"
    first, second = _run(data, "first", age_s=10), _run(data, "second")
    storage.publish(data, first)
    storage.publish(data, second)
    assert cli.main(["rollback", "--data-dir", str(data)]) == 0
    assert storage.current_dir(data) == first and storage.previous_dir(data) == second
    assert "current index: runs/first (was runs/second" in capsys.readouterr().out
    storage.rollback(data)
    assert storage.current_dir(data) == second


def test_rollback_without_an_earlier_index_says_so(tmp_path, capsys):
    data = tmp_path / "data"
    storage.publish(data, _run(data, "only"))
    assert cli.main(["rollback", "--data-dir", str(data)]) == 2
    assert "no earlier index to roll back to" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        storage.rollback(data)
