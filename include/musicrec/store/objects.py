"""Object storage through Airflow: a URL such as `s3://conn_id@bucket/prefix` as an `ObjectStoragePath`,
whose file system takes its credentials and endpoint from the Airflow connection `conn_id` (for S3, an
`aws` connection with the key as login, the secret as password and `endpoint_url` in its extra).

Two things are settled before the first request:
- the connection must exist: Amazon's provider would otherwise go on without it, to the real AWS with
  whatever credentials the machine has;
- requests are bounded in time (TIMEOUTS, unless the connection's `config_kwargs` say otherwise): an
  endpoint that accepts and never answers fails in about a minute, not seven.
"""

from __future__ import annotations

from functools import cache
from urllib.parse import urlsplit

from airflow.sdk import ObjectStoragePath

from musicrec.errors import StorageRefused

# botocore's Config: seconds to connect and between bytes read, and two tries in all for each request.
TIMEOUTS = {"connect_timeout": 10, "read_timeout": 20, "retries": {"total_max_attempts": 2, "mode": "standard"}}


def object_path(url: str) -> ObjectStoragePath:
    parts = urlsplit(url)
    conn_id = parts.username
    if conn_id:
        _attach(parts.scheme, conn_id)
    return ObjectStoragePath(url)


@cache
def _attach(scheme: str, conn_id: str) -> None:
    """The connection's file system, with bounded requests, as Airflow's store for (scheme, conn_id)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.common.compat.sdk import AirflowNotFoundException
    from airflow.sdk.io import attach, get_fs

    try:
        connection = S3Hook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise StorageRefused(
            f"no Airflow connection {conn_id!r} (named in {scheme}://{conn_id}@...): add it (Admin > Connections, "
            f"or the environment variable AIRFLOW_CONN_{conn_id.upper()}), or correct the URL"
        ) from None
    own = (connection.extra_dejson or {}).get("config_kwargs", {})
    bounded = {name: value for name, value in TIMEOUTS.items() if name not in own}
    fs = get_fs(scheme, conn_id, storage_options=bounded)
    if "retries" not in own and hasattr(fs, "retries"):
        fs.retries = 1  # s3fs's own tries, each of botocore's: five would make a minute five
    attach(scheme, conn_id, fs=fs)
