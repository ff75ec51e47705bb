"""Embedded tags (ID3, Vorbis comments, MP4 atoms, ...) read with mutagen: the second metadata source."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from musicrec.store import storage

log = logging.getLogger("musicrec")

TAG_FIELDS = ["title", "artist", "album", "genre", "year", "duration_s"]
# mutagen's "easy" keys for each field, in order of preference.
EASY_KEYS = {
    "title": ["title"],
    "artist": ["artist", "albumartist", "performer"],
    "album": ["album"],
    "genre": ["genre"],
    "year": ["date", "originaldate", "year"],
}


def read_tags(path: str | Path) -> dict:
    """The fields a file's tags give (strings, and duration in seconds); {} when it has none or is unreadable."""
    import mutagen

    from musicrec.analysis import limits

    try:
        with limits.time_limit(limits.TAGS_LIMIT_S, "reading tags"):
            if isinstance(path, Path | str):
                tagged = mutagen.File(str(path), easy=True)
            else:  # on object storage: mutagen reads the parts it needs, not the whole file
                with path.open("rb", block_size=1 << 16) as f:
                    tagged = mutagen.File(f, easy=True)
    except limits.TimeLimitExceeded as exc:
        log.warning("tags of %s not read: %s", path, exc)
        return {}
    except Exception as exc:  # a broken tag block must not stop the run; the audio may still decode
        log.debug("no tags read from %s: %s", path, exc)
        return {}
    if tagged is None:
        return {}
    fields = {}
    tags = tagged.tags or {}
    for field, keys in EASY_KEYS.items():
        for key in keys:
            try:
                values = tags.get(key)
            except (KeyError, ValueError):
                values = None
            if values:
                fields[field] = str(values[0] if isinstance(values, list) else values)
                break
    length = getattr(getattr(tagged, "info", None), "length", None)
    if length:
        fields["duration_s"] = float(length)
    return fields


def library_tags(library: str | Path, track_keys: list[str]) -> pd.DataFrame:
    """One row per track with the fields its tags give (missing where they give none)."""
    root = storage.path(library)
    rows = [{"track_key": key, **read_tags(root / key)} for key in track_keys]
    return pd.DataFrame(rows, columns=["track_key", *TAG_FIELDS])
