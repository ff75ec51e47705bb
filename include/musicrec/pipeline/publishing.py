"""When a run's index becomes the current one, and who may write the data dir meanwhile.

A run takes the data dir's lock first (`take_lock`: it also removes the folders of runs that failed);
every stage keeps the lock alive; `publish` writes the run summary, swaps the `current` pointer to the
run's folder (`musicrec.store.storage.publish`, atomic) and gives the lock back. A run that fails or is
skipped gives the lock back with `release` and leaves `current` where it was.
"""

from __future__ import annotations

import logging

from musicrec.pipeline import inputs, results, summary
from musicrec.store import lock, storage

log = logging.getLogger("musicrec")


def publish(run: results.Run, evaluated: results.Evaluated) -> results.Published:
    """Write the run summary, then make this run's index (evaluated by `evaluate`) the current one."""
    run_summary = summary.summarize(run)
    storage.write_json(run_summary, storage.path(run["run_dir"]) / storage.SUMMARY)
    storage.publish(run["data_dir"], storage.path(evaluated["run_dir"]))
    lock.release(run["data_dir"], storage.run_name(run["run_dir"]))
    log.info(
        "publish: index of %d tracks (%.2f h of audio) is now current; %d extracted, %d reused, %d quarantined",
        run_summary["tracks_indexed"],
        run_summary["audio_hours"],
        run_summary["files_extracted"],
        run_summary["files_reused"],
        len(run_summary["quarantined"]),
    )
    return {
        "run_dir": run["run_dir"],
        "tracks_indexed": run_summary["tracks_indexed"],
        "files_extracted": run_summary["files_extracted"],
        "quarantined": len(run_summary["quarantined"]),
    }


def take_lock(data_dir: str, run_id: str, wait_minutes: float = 0.0, pid_holds_run: bool = False) -> results.Lock:
    """The data dir for this run alone until it publishes or fails (`musicrec.store.lock`); waits for another run.

    `pid_holds_run`: this process runs the whole run (`musicrec run`), so its death frees the lock at once.
    """
    data = storage.root(data_dir)
    inputs.check_writable(data)
    holder = storage.run_dir(data, run_id).name
    info = lock.acquire(data, holder, wait_s=60.0 * wait_minutes, pid_holds_run=pid_holds_run)
    removed = storage.remove_failed_runs(data)
    if removed:
        names = ", ".join(run.name for run in removed)
        log.info("take_lock: removed the folders of %d runs that failed: %s", len(removed), names)
    return {"data_dir": str(data), "holder": holder, "since": info["acquired_at"]}


def release(data_dir: str, run_id: str) -> bool:
    """Give back the data dir's lock if run `run_id` still holds it (a run that failed or was skipped)."""
    return lock.release(data_dir, storage.run_dir(data_dir, run_id).name)
