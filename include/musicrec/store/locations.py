"""Local paths and object storage URLs, told apart without importing anything heavy (the DAG file and
the plugin use this at import time)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def is_url(location) -> bool:
    """True for object storage (`s3://...`), False for a local path."""
    return not isinstance(location, Path) and "://" in str(location) and not str(location).startswith("file://")


def with_conn_id(location: str | None, conn_id: str | None) -> str | None:
    """`s3://bucket/prefix` with the Airflow connection that reaches it: `s3://conn_id@bucket/prefix`."""
    if not conn_id or not location or not is_url(location):
        return location
    parts = urlsplit(str(location))
    return urlunsplit(parts._replace(netloc=f"{conn_id}@{parts.netloc.rpartition('@')[2]}"))
