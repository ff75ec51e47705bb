"""When a run's index becomes the current one, and who may write the data dir meanwhile.

A run takes the data dir's lock first (`take_lock`: it also removes the folders of runs that failed);
every stage keeps the lock alive; `publish` writes the run summary, swaps the `current` pointer to the
run's folder (`musicrec.store.storage.publish`, atomic) and gives the lock back. A run that fails or is
skipped gives the lock back with `release` and leaves `current` where it was.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from musicrec.library import m3u
from musicrec.pipeline import inputs, results, summary
from musicrec.store import lock, storage

log = logging.getLogger("musicrec")


# The second line of every mix's M3U8 file: a playlists folder's files that carry it were written by an
# earlier run, and those of mixes that are no more are removed.
MIX_MARK = "# a mix of musicrec's, rewritten by each run of the pipeline"
NOT_IN_FILE_NAMES = r'[\\/:*?"<>|\x00-\x1f]+'  # what Windows, macOS or Linux refuse in a file name


def publish(run: results.Run, evaluated: results.Evaluated, mixed: results.Mixes) -> results.Published:
    """Write the run summary, then make this run's index (evaluated by `evaluate`) the current one, and put
    its mixes in the playlists folder when the run names one."""
    run_summary = summary.summarize(run)
    storage.write_json(run_summary, storage.path(run["run_dir"]) / storage.SUMMARY)
    storage.publish(run["data_dir"], storage.path(evaluated["run_dir"]))
    lock.release(run["data_dir"], storage.run_name(run["run_dir"]))
    playlists_dir = run["inputs"]["params"].get("playlists_dir")
    if playlists_dir:
        written = write_mixes(storage.path(mixed["run_dir"]), storage.root(playlists_dir), run["library"])
        log.info("publish: %d mixes written to %s", len(written), playlists_dir)
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


def write_mixes(run_folder, folder, library: str | None = None) -> list[tuple[str, int]]:
    """The run's mixes as M3U8 files in `folder` ("01 Ambient & Chillout.m3u8"), replacing the mixes an
    earlier run wrote there and nothing else; [(name, tracks)] for each. Paths are relative to the library's
    root, or lead from `folder` to the library (`library`) where both are local folders."""
    table = storage.read_parquet(run_folder / storage.MIXES)
    # the mixes' tracks only: a mix's merge with every track of a large library would hash them all
    listed_keys = table["track_key"].unique().tolist()
    described = storage.rows_of(
        run_folder / storage.TRACKS, "track_key", listed_keys, ["title", "artist", "duration_s"]
    )
    described = described.to_pandas()
    into = folder if library and isinstance(folder, Path) and isinstance(storage.root(library), Path) else None
    folder = storage.path(folder)
    written, kept = [], set()
    for (number, name), mix in table.groupby(["mix", "name"], sort=True):
        listed = mix[["track_key"]].merge(described, on="track_key", how="left")
        tracks = listed.astype(object).where(listed.notna(), None).to_dict("records")
        text, _ = m3u.text(tracks, name, library, into, comment=MIX_MARK)
        file_name = f"{number:02d} {re.sub(NOT_IN_FILE_NAMES, ' ', name)}.m3u8"
        storage.write_text(text, folder / file_name)
        written.append((name, len(tracks)))
        kept.add(file_name)
    for old in folder.iterdir() if folder.exists() else ():
        if old.name.endswith(".m3u8") and old.name not in kept and _is_a_mix(old):
            old.unlink()
    return written


def _is_a_mix(path) -> bool:
    with path.open("r", errors="replace") as f:
        return [f.readline().rstrip("\n") for _ in range(2)][1] == MIX_MARK
