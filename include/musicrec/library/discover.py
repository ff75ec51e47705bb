"""Finding the audio files of a library and splitting them into shards."""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path, PurePosixPath
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK
from typing import NamedTuple

import pandas as pd

from musicrec.analysis import audio
from musicrec.errors import InputError
from musicrec.store import storage
from musicrec.store.locations import is_url

# Well under Airflow's default max_map_length (1024), whatever the library size.
MAX_SHARDS = 256

WORKLIST_COLUMNS = ["track_key", "folder", "file", "size_bytes", "mtime_ns"]
SKIPPED_COLUMNS = ["path", "reason"]
# A file's features are reused when the last index holds it with these unchanged.
REUSE_KEYS = ["track_key", "size_bytes", "mtime_ns"]


class LibraryError(InputError):
    """The library path or folder selection is unusable."""


class Scanned(NamedTuple):
    files: pd.DataFrame  # WORKLIST_COLUMNS, sorted by key
    skipped: pd.DataFrame  # SKIPPED_COLUMNS: audio-named paths and folders left out, with the reason


def scan(library: str | Path, folders: list[str] | None = None) -> Scanned:
    """Every audio file under the library (or its selected folders), and what was skipped and why.

    Only regular files are audio: a FIFO, a device or a dangling link with an audio name is skipped with
    the reason, since reading it could block or never end. Symlinked files and folders are followed, but a
    folder reached a second time (a link loop, or a second link to it) is walked once. Hidden files and
    folders and files without an audio extension are ignored. Each file is stat'ed once; on object
    storage, the listing gives each file's size and time.
    """
    root = storage.path(library)
    if not isinstance(root, Path):
        return _scan_objects(root, normalize_folders(folders))
    if not root.is_dir():
        raise LibraryError(f"library folder not found: {root}")
    folders = normalize_folders(folders)
    missing = [f for f in folders if not (root / f).is_dir()]
    if missing:
        raise LibraryError(f"folders not found in library {root}: {', '.join(missing)}")
    rows, skipped, walked = [], [], set()
    for top in [root / f for f in folders] or [root]:
        for folder, dirnames, filenames in _walk(top):
            identity = _identity(folder)
            if identity in walked:
                dirnames[:] = []
                skipped.append(
                    (
                        _printable(folder.relative_to(root).as_posix()),
                        "folder already walked (a link loop or a second link)",
                    )
                )
                continue
            walked.add(identity)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                path = folder / name
                if name.startswith(".") or not audio.is_audio_file(path):
                    continue
                rel = path.relative_to(root)
                if not _is_utf8(rel.as_posix()):
                    skipped.append((_printable(rel.as_posix()), NOT_UTF8))
                    continue
                try:
                    stat = path.stat()
                except OSError as exc:
                    skipped.append((rel.as_posix(), f"cannot be read ({exc.strerror or exc}; a dangling link?)"))
                    continue
                if not S_ISREG(stat.st_mode):
                    skipped.append((rel.as_posix(), f"not a regular file ({_kind(stat.st_mode)})"))
                    continue
                parent = rel.parent.as_posix() if rel.parent != Path(".") else ""
                rows.append((rel.as_posix(), parent, name, stat.st_size, stat.st_mtime_ns))
    files = pd.DataFrame(rows, columns=WORKLIST_COLUMNS).sort_values("track_key", ignore_index=True)
    return Scanned(files, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS).sort_values("path", ignore_index=True))


# Track keys are text in every table: a name that is not UTF-8 (old Latin-1 names from CDs, zips and Samba
# shares) cannot be one, and costs that file alone.
NOT_UTF8 = "its name is not valid UTF-8 (shown with \ufffd for the bytes that are not): rename it (convmv) to index it"


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # the bytes that are not UTF-8 arrive as lone surrogates (surrogateescape)
        return False
    return True


def _printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _walk(top: Path):
    """`os.walk(top, followlinks=True)` without recursion: Python 3.11's recurses once per folder level, and
    a library nested about 1,000 folders deep raised RecursionError. Yields (folder, dirnames, filenames);
    the caller may prune `dirnames` in place, as with os.walk. Folders that cannot be listed are passed
    over, as os.walk does."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        dirnames, filenames = [], []
        for entry in entries:
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                is_dir = False
            (dirnames if is_dir else filenames).append(entry.name)
        yield folder, dirnames, filenames
        stack.extend(folder / name for name in reversed(dirnames))


def _scan_objects(root, folders: list[str]) -> Scanned:
    """`scan` of a library on object storage: a listing of the objects under the library (or its folders)."""
    if not root.is_dir():
        raise LibraryError(f"library folder not found: {root}")
    missing = [f for f in folders if not (root / f).is_dir()]
    if missing:
        raise LibraryError(f"folders not found in library {root}: {', '.join(missing)}")
    rows = []
    for top in [root / f for f in folders] or [root]:
        for key, info in top.fs.find(top.path, detail=True).items():
            rel = PurePosixPath(key).relative_to(root.path)
            if any(part.startswith(".") for part in rel.parts) or not audio.is_audio_file(rel):
                continue
            modified = info.get("LastModified") or info.get("mtime") or info.get("created")
            mtime_ns = int(modified.timestamp() * 1e9) if hasattr(modified, "timestamp") else int(float(modified) * 1e9)
            parent = rel.parent.as_posix() if rel.parent != PurePosixPath(".") else ""
            rows.append((rel.as_posix(), parent, rel.name, int(info["size"]), mtime_ns))
    files = pd.DataFrame(rows, columns=WORKLIST_COLUMNS).drop_duplicates("track_key")
    return Scanned(files.sort_values("track_key", ignore_index=True), pd.DataFrame(columns=SKIPPED_COLUMNS))


def _identity(folder: Path) -> tuple[int, int] | str:
    try:
        stat = folder.stat()
        return stat.st_dev, stat.st_ino
    except OSError:
        return str(folder)


def _kind(mode: int) -> str:
    for test, kind in (
        (S_ISFIFO, "a FIFO"),
        (S_ISCHR, "a character device"),
        (S_ISBLK, "a block device"),
        (S_ISSOCK, "a socket"),
        (S_ISDIR, "a folder"),
    ):
        if test(mode):
            return kind
    return "a special file"


def shard_count(n_files: int, files_per_shard: int) -> int:
    if n_files == 0:
        return 0
    return min(MAX_SHARDS, math.ceil(n_files / max(1, files_per_shard)))


def split(worklist: pd.DataFrame, files_per_shard: int) -> list[pd.DataFrame]:
    """Contiguous shards of near-equal size (so a shard mostly holds one folder)."""
    n = shard_count(len(worklist), files_per_shard)
    if n == 0:
        return []
    bounds = [round(i * len(worklist) / n) for i in range(n + 1)]
    return [worklist.iloc[bounds[i] : bounds[i + 1]].reset_index(drop=True) for i in range(n)]


def shard_label(shard: pd.DataFrame, index: int, total: int) -> str:
    folders = [f or "(root)" for f in shard["folder"].unique()]
    where = folders[0] if len(folders) == 1 else f"{folders[0]} … {folders[-1]}"
    return f"shard {index + 1}/{total}: {len(shard)} files, {where}"


def normalize_folders(folders: list[str] | None) -> list[str]:
    """Folder names relative to the library root, without trailing slashes; blanks dropped.

    A folder must lie inside the library: an absolute path or one with `..` is refused, and so is a name
    holding a NUL byte, which no file system allows.
    """
    names = [f.strip().rstrip("/") for f in (folders or []) if f.strip().rstrip("/")]
    if any("\0" in f for f in names):
        raise LibraryError(f"folders: a folder name cannot hold a NUL byte: {[f for f in names if chr(0) in f]}")
    outside = [f for f in names if PurePosixPath(f).is_absolute() or ".." in PurePosixPath(f).parts]
    if outside:
        raise LibraryError(f"folders must be relative to the library, without '..': {', '.join(outside)}")
    return [PurePosixPath(f).as_posix() for f in names]


def in_folders(track_keys: pd.Series, folders: list[str]) -> pd.Series:
    """True for the keys under one of `folders` (top-level or nested); every key when `folders` is empty."""
    if not folders:
        return pd.Series(True, index=track_keys.index)
    return track_keys.map(lambda key: any(key.startswith(f"{folder}/") for folder in folders)).astype(bool)


class Plan(NamedTuple):
    todo: pd.DataFrame  # rows of the scan to extract
    reused: pd.DataFrame  # rows of the last index's features to reuse
    quarantined: pd.DataFrame  # rows of the last index's quarantine that stay there, not decoded again


def plan(
    scanned: pd.DataFrame,
    previous: pd.DataFrame | None,
    feature_version: int,
    folders: list[str] | None = None,
    full_refresh: bool = False,
    quarantined: pd.DataFrame | None = None,
) -> Plan:
    """What a run extracts, what it reuses, and which quarantined files it leaves in quarantine.

    - A file is reused when the last index (`previous`, its features table) holds it with the same size,
      modification time and feature version, unless it lies in the selected folders and `full_refresh` is set.
    - A file the last index quarantined (`quarantined`) stays quarantined, with its reason, while its size
      and modification time are unchanged; under the same exception (`full_refresh` retries it).
    - Every other file in the selected folders (all of the library when none are selected) is extracted.
    - A file outside the selected folders that the last index cannot give is left out of this run.
    """
    folders = normalize_folders(folders)
    selected = in_folders(scanned["track_key"], folders)
    empty = [f for f in folders if not in_folders(scanned["track_key"], [f]).any()]
    if empty:
        raise LibraryError(f"no audio files under the selected folders: {', '.join(empty)}")
    reused = pd.DataFrame(columns=REUSE_KEYS + ["feature_version"])
    if previous is not None and not previous.empty:
        same_file = previous.merge(scanned[REUSE_KEYS], on=REUSE_KEYS, how="inner")
        reused = same_file[same_file["feature_version"] == feature_version]
        if full_refresh:
            reused = reused[~in_folders(reused["track_key"], folders)]
    still = pd.DataFrame(columns=REUSE_KEYS)
    if quarantined is not None and not quarantined.empty and set(REUSE_KEYS) <= set(quarantined.columns):
        still = quarantined.merge(scanned[REUSE_KEYS], on=REUSE_KEYS, how="inner")
        if full_refresh:
            still = still[~in_folders(still["track_key"], folders)]
    settled = set(reused["track_key"]) | set(still["track_key"])
    todo = scanned[selected & ~scanned["track_key"].isin(settled)]
    return Plan(todo.reset_index(drop=True), reused.reset_index(drop=True), still.reset_index(drop=True))


def render_folder_template(template: str, logical_date: dt.datetime) -> str:
    """The folder a run ingests, from `template` and the run's logical date (Jinja: `incoming/{{ ds }}`).

    Variables: `ds` (YYYY-MM-DD), `ds_nodash` (YYYYMMDD) and `logical_date` (a datetime).
    """
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        rendered = env.from_string(template).render(
            ds=logical_date.strftime("%Y-%m-%d"), ds_nodash=logical_date.strftime("%Y%m%d"), logical_date=logical_date
        )
    except jinja2.TemplateError as exc:
        raise LibraryError(f"folder_template {template!r} cannot be rendered: {exc}") from None
    return normalize_folders([rendered])[0] if rendered.strip() else ""


def check_folders_inside(library: str | Path, folders: list[str]) -> None:
    """Refuse a selected folder that leads out of the library, through `..` or through a link."""
    if is_url(library):
        normalize_folders(folders)  # object storage has no links: `..` is all there is to refuse
        return
    root = Path(library).expanduser().resolve()
    for folder in normalize_folders(folders):
        target = (root / folder).resolve()
        if target != root and root not in target.parents:
            raise LibraryError(f"folder {folder} leads out of the library (to {target}): refused")
