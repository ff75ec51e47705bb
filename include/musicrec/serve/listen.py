"""A track of the index as its audio file, to listen to.

Only a track of the current index can be asked for, by its key: the file is found under the library the
index was built from (its summary says which), never at a path the request names. A local file is sent by
the web server as it is, ranges included; a file on object storage is read a range at a time through the
library's connection, so that a player can seek without the whole file being fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

from musicrec.serve import query
from musicrec.store import storage

MEDIA_TYPES = {
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
}
# The most one answer sends of a file on object storage; a player asks for the rest as it plays.
CHUNK = 4 * 1024 * 1024


class NotSatisfiable(ValueError):
    """A Range header that asks for bytes the file does not have."""


def source(index: query.Index, track: str) -> tuple[Path, str]:
    """The file of `track` (a local Path or an ObjectStoragePath) and its media type."""
    index.track(track)  # a track of the index, or QueryError
    where = storage.path(index.summary["library"]) / track
    if not where.is_file():
        raise query.QueryError(
            f"{track}: the library holds no such file any more (moved or removed since the index was built)"
        )
    return where, MEDIA_TYPES.get(Path(track).suffix.lower(), "application/octet-stream")


def byte_range(header: str | None, size: int) -> tuple[int, int]:
    """The bytes (first, last) to send for a Range header (`bytes=a-b`, `bytes=a-`, `bytes=-n`; the first
    range only), at most CHUNK of them."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)(?:,.*)?", (header or "bytes=0-").strip())
    if not match or match.groups() == ("", ""):
        raise NotSatisfiable(f"not a byte range: {header!r}")
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise NotSatisfiable(f"bytes {start}-{end} of a file of {size}")
    return start, min(end, start + CHUNK - 1)


def read(where, start: int, end: int) -> bytes:
    with where.open("rb") as f:
        f.seek(start)
        return f.read(end - start + 1)
