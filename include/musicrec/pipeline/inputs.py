"""A run's inputs: what it will do, decided before any work: its inputs checked (naming the parameter that cannot work),
and the library planned against the current index (what to extract, what to reuse, what stays quarantined).
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path

import pandas as pd

from musicrec.analysis import extract, features
from musicrec.errors import InputError, explained
from musicrec.library import discover as discovery
from musicrec.library import metadata
from musicrec.store import storage

log = logging.getLogger("musicrec")


def _last_index_table(
    data_dir: str | Path, name: str, needed: list[str], read: list[str] | None = None
) -> tuple[pd.DataFrame | None, list[str]]:
    """A table of the last index, to reuse (its columns `read`, all by default); (None, [why]) when there is
    none or it cannot be trusted."""
    current = storage.current_dir(data_dir)
    path = current / name if current else None
    if path is None or not path.exists():
        return None, []
    try:
        names = storage.columns(path)
        missing = [c for c in needed if c not in names]
        if missing and set(missing) <= {*features.stored_columns(), features.FINGERPRINT}:
            # written by a version of musicrec with other features: nothing is wrong, they are all computed anew
            log.info("discover: the last index has other features (%d missing): every file is extracted", len(missing))
            return None, []
        if missing:
            raise ValueError(f"columns missing: {', '.join(missing[:5])}")
        table = storage.read_parquet(path, columns=read)
    except Exception as exc:  # a damaged table must not stop every later run: extract instead
        return None, [_unreadable(path, exc)]
    return table, []


def _unreadable(path, exc: Exception) -> str:
    warning = f"the last index's table {path} is unreadable ({exc}); its files are extracted again"
    log.warning("discover: %s", warning)
    return warning


def check(
    library: Path, data: Path, folders: list[str], metadata_file: Path | None, playlists: Path | None = None
) -> None:
    """Fail before any work, naming the parameter, on input that cannot work. The locations are resolved
    (`storage.root`): a local `Path` or an `ObjectStoragePath`."""
    if not library.is_dir():
        raise discovery.LibraryError(f"library_path: folder not found: {library}")
    discovery.check_folders_inside(library, folders)
    if metadata_file and not metadata_file.is_file():
        raise metadata.MetadataError(f"metadata_path: file not found: {metadata_file}")
    if playlists and playlists.is_file():  # a folder is made where there is none; a file would stop publish
        raise InputError(f"playlists_dir: a file, not a folder: {playlists}; name a folder for the mixes")
    check_writable(data)


def check_writable(data: Path) -> None:
    """A file can be created in the data dir (a resolved location); else an error naming `data_dir`."""
    try:
        if isinstance(data, Path):
            data.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=data):
                pass
        else:
            probe = data / f".write-probe-{uuid.uuid4().hex[:12]}"
            probe.write_bytes(b"")
            probe.unlink()
    except (OSError, ValueError) as exc:  # on object storage: no such bucket, refused credentials, ...
        said = explained(exc)
        if said is None:
            raise InputError(f"data_dir: cannot write to {data}: {getattr(exc, 'strerror', None) or exc}") from None
        raise type(said)(f"data_dir: cannot write to {data}: {said}") from None


def plan(library: Path, data_dir: Path, folders: list[str], full_refresh: bool, reused_to: Path | None = None) -> dict:
    """The library scanned and planned against the current index: what to extract, reuse, leave quarantined.
    Only the last index's keys are read to plan; `reused_to`: the reused files' features are copied there
    from the last index, a block of rows at a time (a file too damaged to copy: everything is extracted)."""
    scanned, skipped = discovery.scan(library)
    previous, warnings = _last_index_table(
        data_dir,
        storage.FEATURES,
        [*discovery.REUSE_KEYS, "feature_version", *features.stored_columns(), features.FINGERPRINT],
        read=[*discovery.REUSE_KEYS, "feature_version"],
    )
    # An older quarantine table without sizes and times is simply not reused: its files are tried again.
    quarantined, more = _last_index_table(data_dir, storage.QUARANTINE, [])
    if quarantined is not None and not set(discovery.REUSE_KEYS) <= set(quarantined.columns):
        quarantined = None
    todo, reused, still = discovery.plan(
        scanned, previous, features.FEATURE_VERSION, folders, full_refresh, quarantined=quarantined
    )
    if reused_to is not None and previous is not None:
        source = storage.current_dir(data_dir) / storage.FEATURES
        try:
            _copy_reused(source, previous["track_key"].isin(reused["track_key"]).to_numpy(), reused_to)
        except Exception as exc:
            warnings.append(_unreadable(source, exc))
            todo, reused, still = discovery.plan(
                scanned, None, features.FEATURE_VERSION, folders, full_refresh, quarantined
            )
            previous = None
    if reused_to is not None and previous is None:
        storage.write_parquet(extract.features_frame([]), reused_to)
    return {
        "scanned": scanned,
        "skipped": skipped,
        "todo": todo,
        "reused": reused,
        "still": still,
        "previous": previous,
        "quarantined": quarantined,
        "warnings": warnings + more,
    }


def _copy_reused(source: Path, kept, target: Path) -> None:
    """The rows of the last index's features marked `kept` (a mask over its rows) into `target`,
    a block of rows at a time."""
    if not kept.any():
        storage.write_parquet(extract.features_frame([]), target)
        return

    def blocks():
        start = 0
        for block in storage.read_blocks(source):
            yield block.filter(kept[start : start + block.num_rows])
            start += block.num_rows

    storage.write_blocks(blocks(), target)
