"""M3U playlists, as media players and servers read them: extended M3U, UTF-8 (M3U8), one path a line.

Paths are relative to the library's root, or to the folder the playlist is written into when that folder
is given (media servers such as Navidrome resolve a playlist's relative paths from where it lies).
"""

from __future__ import annotations

import os
from pathlib import Path


def text(
    tracks: list[dict],
    name: str | None = None,
    library: str | Path | None = None,
    into: str | Path | None = None,
    comment: str | None = None,
) -> tuple[str, list[str]]:
    """(the playlist's text, the track keys left out of it). `name` becomes its #PLAYLIST line, `comment`
    (a line starting with #) the line after #EXTM3U; with `library` and `into` (local folders), paths lead
    from `into` to each file of the library.

    M3U has one entry per line and no escaping: a file whose name holds a line break cannot be listed
    (it is left out, and said); in titles, line breaks become spaces.
    """
    lines, left_out = ["#EXTM3U", *([comment] if comment else [])], []
    if name:
        lines.append(f"#PLAYLIST:{' '.join(name.splitlines())}")
    for t in tracks:
        if any(c in t["track_key"] for c in "\r\n"):
            left_out.append(t["track_key"])
            continue
        who = f"{t['artist']} - " if t.get("artist") else ""
        title = " ".join(f"{who}{t['title']}".splitlines())
        where = t["track_key"] if into is None else os.path.relpath(Path(library) / t["track_key"], into)
        lines += [f"#EXTINF:{round(t['duration_s'] or -1)},{title}", where]
    return "\n".join(lines) + "\n", left_out


def entries(path: str | Path) -> list[str]:
    """The entries of an M3U playlist (paths relative to the library's root are track keys); comments left out."""
    lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]
