"""Extraction over many files: the process pool, quarantine, and the standalone command."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
import soundfile as sf

from musicrec import cli
from musicrec.analysis import cores, extract, features, limits
from musicrec.library import discover, tags
from support.audio import tone


def _library(root):
    (root / "a").mkdir(parents=True)
    for i, freq in enumerate([220, 440, 880]):
        sf.write(root / "a" / f"t{i}.wav", tone(freq, 1.0), 22050)
    (root / "a" / "broken.mp3").write_bytes(b"\x00\xff" * 500)
    (root / "a" / "empty.ogg").write_bytes(b"")
    return root


def test_pool_extracts_good_files_and_quarantines_bad_ones(tmp_path):
    lib = _library(tmp_path / "lib")
    worklist = discover.scan(lib).files
    feats, quarantine = extract.extract(lib, worklist, workers=2)
    assert sorted(feats["track_key"]) == ["a/t0.wav", "a/t1.wav", "a/t2.wav"]
    assert sorted(quarantine["track_key"]) == ["a/broken.mp3", "a/empty.ogg"]
    assert quarantine.set_index("track_key").loc["a/empty.ogg", "error"] == "empty file (0 bytes)"
    assert list(feats.columns[:4]) == ["track_key", "folder", "file", "duration_s"]
    assert (feats["feature_version"] == features.FEATURE_VERSION).all()
    # One process gives the same numbers as the pool (up to BLAS threading's rounding).
    single, _ = extract.extract(lib, worklist, workers=1)
    pd.testing.assert_frame_equal(
        feats.sort_values("track_key", ignore_index=True),
        single.sort_values("track_key", ignore_index=True),
        rtol=1e-4,
        atol=1e-4,
    )


def test_a_file_removed_during_the_run_is_quarantined(tmp_path):
    lib = _library(tmp_path / "lib")
    worklist = discover.scan(lib).files
    (lib / "a" / "t1.wav").unlink()
    feats, quarantine = extract.extract(lib, worklist, workers=1)
    assert "a/t1.wav" in set(quarantine["track_key"]) and len(feats) == 2


def test_features_command_uses_the_same_extraction(tmp_path, capsys):
    lib = _library(tmp_path / "lib")
    out = tmp_path / "out" / "features.parquet"
    out.parent.mkdir()  # as for every --out, the folder must exist
    assert cli.main(["features", "--library", str(lib), "--out", str(out), "--workers", "1"]) == 0
    written = pd.read_parquet(out)
    expected, _ = extract.extract(lib, discover.scan(lib).files, workers=1)
    pd.testing.assert_frame_equal(written, expected)
    assert len(pd.read_parquet(out.with_name("features.quarantine.parquet"))) == 2
    assert "3 files" in capsys.readouterr().out


def _hanging(monkeypatch, tmp_path, limit: str, module, name: str) -> None:
    """A short file in tmp_path, `slow.wav`; the limit `limit` lowered to 0.3 s, and `module.name` made to hang."""
    sf.write(tmp_path / "slow.wav", tone(seconds=0.5), 22050)
    monkeypatch.setattr(limits, limit, 0.3)
    monkeypatch.setattr(module, name, lambda *args, **kwargs: time.sleep(30))


def test_a_file_that_takes_too_long_is_stopped_and_quarantined(tmp_path, monkeypatch):
    _hanging(monkeypatch, tmp_path, "ANALYSIS_LIMIT_S", features, "extract_path")
    started = time.monotonic()
    key, row, reason = extract.extract_one(str(tmp_path), "slow.wav")
    assert time.monotonic() - started < 5
    assert row is None and reason == "decoding and analysis took longer than 0.3 s and was stopped"


def test_tags_that_take_too_long_are_given_up(tmp_path, monkeypatch):
    import mutagen

    _hanging(monkeypatch, tmp_path, "TAGS_LIMIT_S", mutagen, "File")
    started = time.monotonic()
    assert tags.read_tags(tmp_path / "slow.wav") == {}
    assert time.monotonic() - started < 5


def test_an_enclosing_timer_keeps_running_after_a_file_limit():
    import signal

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.6)
        with limits.time_limit(5, "nothing"):
            time.sleep(0.1)
        assert 0.3 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.5
        time.sleep(1.0)
        assert fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_shards_running_together_share_the_cores(tmp_path):
    with cores.claim(3, total=4, folder=tmp_path) as first:
        assert first == 3
        with cores.claim(3, total=4, folder=tmp_path) as second:
            assert second == 1  # what the first left
    with cores.claim(3, total=4, folder=tmp_path) as again:
        assert again == 3  # given back


def test_a_shard_waits_for_a_core_when_every_one_is_taken(tmp_path):
    import threading

    got = []

    def second_shard():
        with cores.claim(2, total=2, folder=tmp_path) as granted:
            got.append(granted)

    with cores.claim(2, total=2, folder=tmp_path):
        waiter = threading.Thread(target=second_shard)
        waiter.start()
        time.sleep(0.3)
        assert got == []  # still waiting
    waiter.join(timeout=5)
    assert got == [1]


def test_a_waiting_shard_takes_whichever_core_frees_first_and_says_who_holds_them(tmp_path, caplog):
    import logging
    import threading

    got = []
    # This process's own pid names one token; the other one is the one to come free.
    first, other = (os.getpid() % 2, 1 - os.getpid() % 2)
    stack = contextlib.ExitStack()
    holds = {}
    for core, name in ((first, "shard 1/3"), (other, "shard 2/3")):
        holds[core] = stack.enter_context(contextlib.ExitStack())
        holds[core].enter_context(cores.claim(1, total=2, folder=tmp_path, label=name))

    def third_shard():
        with cores.claim(2, total=2, folder=tmp_path, label="shard 3/3") as granted:
            got.append(granted)

    with caplog.at_level(logging.INFO, logger="musicrec"), stack:
        waiter = threading.Thread(target=third_shard)
        waiter.start()
        time.sleep(0.5)
        assert got == []
        holds[other].close()  # not the token that the waiter's pid would have named
        waiter.join(timeout=5)
        assert got == [1]
    assert "shard 3/3: waiting for a free core (held by shard 1/3" in caplog.text
    assert "shard 2/3" in caplog.text


def test_each_installation_has_its_own_cores():
    folder = cores.token_folder()
    assert str(os.getuid()) in folder.name and folder.name != f"musicrec-cores-{os.getuid()}"


def test_a_pool_started_from_a_threaded_process_forks_from_a_warm_server(tmp_path):
    import threading

    lib = tmp_path / "lib"
    (lib / "a").mkdir(parents=True)
    for i in range(3):
        sf.write(lib / "a" / f"{i}.wav", tone(300.0 + 100 * i, seconds=0.5), 22050)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # as in an Airflow task: not the only thread
    other.start()
    try:
        assert extract._pool_context().get_start_method() == "forkserver"
        feats, quarantine = extract.extract(lib, discover.scan(lib).files, workers=2)
    finally:
        stop.set()
        other.join()
    assert len(feats) == 3 and quarantine.empty


def test_a_pool_in_a_threaded_console_script_does_not_run_the_script_again(tmp_path):
    """As in a task of `airflow standalone` started through the `airflow` console script: workers from the
    fork server must not import the parent's `__main__` script (the airflow one fails in a task process)."""
    lib = tmp_path / "lib"
    (lib / "a").mkdir(parents=True)
    for i in range(3):
        sf.write(lib / "a" / f"{i}.wav", tone(300.0 + 100 * i, seconds=0.5), 22050)
    script = tmp_path / "console-script"  # no .py, no package: as .venv/bin/airflow
    script.write_text(
        "import sys, threading\n"
        "if __name__ != '__main__':\n"
        "    raise SystemExit('the main script ran again in a worker')\n"
        "from musicrec.analysis import extract\nfrom musicrec.library import discover\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "feats, bad = extract.extract(sys.argv[1], discover.scan(sys.argv[1]).files, workers=2)\n"
        "print(len(feats), len(bad))\n"
    )
    done = subprocess.run([sys.executable, str(script), str(lib)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3", "0"]


def test_more_processes_than_cores_are_not_started(tmp_path, caplog, monkeypatch):
    import logging

    lib = _library(tmp_path / "lib")
    monkeypatch.setattr(cores, "machine_cores", lambda: 1)
    with caplog.at_level(logging.INFO, logger="musicrec"):
        feats, _ = extract.extract(lib, discover.scan(lib).files, workers=256, label="features")
    assert len(feats) == 3
    assert "features: 256 processes asked for, more than the cores here (1)" in caplog.text
    assert "features: 5 files, 1 process" in caplog.text


def _tag_bomb(path, frames: int):
    """An mp3 whose ID3 tag holds `frames` text frames: ffmpeg's tag parser takes time quadratic in them
    (200,000 took 221 s), all of it inside one C call that no timer in the process can interrupt."""
    from mutagen.id3 import ID3, TXXX

    from support.audio import ffmpeg_generate

    ffmpeg_generate(path, seconds=1.0, channels=1)
    tag = ID3()
    for i in range(frames):
        tag.add(TXXX(encoding=3, desc=f"k{i}", text=["v"]))
    tag.save(path)
    return path


def test_a_file_that_hangs_the_decoder_is_stopped_from_outside_and_the_shard_goes_on(tmp_path):
    lib = _library(tmp_path / "lib")
    _tag_bomb(lib / "a" / "bomb.mp3", 60_000)  # about 20 s in ffmpeg's parser here
    started = time.monotonic()
    feats, quarantine = extract.extract(lib, discover.scan(lib).files, workers=1, time_limit_s=3)
    assert time.monotonic() - started < 15
    reasons = dict(zip(quarantine["track_key"], quarantine["error"], strict=True))
    assert reasons["a/bomb.mp3"] == "decoding and analysis took longer than 3 s and was stopped"
    assert len(feats) == 3  # the good files, after the bomb, in a new worker


def test_a_worker_killed_mid_file_costs_that_file_alone(tmp_path):
    import threading

    import psutil

    lib = _library(tmp_path / "lib")
    sf.write(lib / "a" / "long.wav", tone(330.0, seconds=1800.0), 22050)  # analysed first: the largest
    me = psutil.Process()

    def kill_the_worker():  # as the kernel's OOM killer would
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # This thread makes the pool start its workers from a fork server: they are its children.
            workers = [p for p in me.children(recursive=True) if p.ppid() != me.pid]
            if workers:
                time.sleep(1.0)  # into the long file
                for worker in workers:
                    worker.kill()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    feats, quarantine = extract.extract(lib, discover.scan(lib).files, workers=1)
    killer.join()
    reasons = dict(zip(quarantine["track_key"], quarantine["error"], strict=True))
    assert reasons["a/long.wav"] == "its worker was killed (SIGKILL: out of memory, or stopped from outside)"
    assert len(feats) == 3


def test_a_worker_may_take_a_bounded_amount_of_memory_beyond_its_own():
    code = (
        "import resource; from musicrec.analysis import extract\n"
        "extract._worker_init()\n"
        "soft, _ = resource.getrlimit(resource.RLIMIT_AS)\n"
        "size = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmSize:')) * 1024\n"
        "print(soft - size)\n"
        "try:\n"
        "    bytearray(3 * 2**30)\n"
        "except MemoryError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    headroom, refused = done.stdout.split()
    assert 1.9 * 2**30 < int(headroom) <= 2 * 2**30 and refused == "refused"


@pytest.mark.parametrize("max_seconds, hint", [(None, True), (1800.0, False)])
def test_a_file_over_the_memory_bound_says_what_would_let_it_through(tmp_path, monkeypatch, max_seconds, hint):
    sf.write(tmp_path / "long.wav", tone(seconds=0.5), 22050)

    def too_big(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(features, "extract_path", too_big)
    _, row, reason = extract.extract_one(str(tmp_path), "long.wav", max_seconds=max_seconds)
    assert row is None and reason.startswith("needed more than the 2 GB of memory a file may take")
    assert ("analyse long files on their first minutes (max_analysis_minutes" in reason) == hint
