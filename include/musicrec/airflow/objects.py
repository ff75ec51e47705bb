"""Object storage through Airflow: a URL such as `s3://conn_id@bucket/prefix` as an `ObjectStoragePath`,
whose file system takes its credentials and endpoint from the Airflow connection `conn_id` (for S3, an
`aws` connection with the key as login, the secret as password and `endpoint_url` in its extra)."""

from __future__ import annotations

from airflow.sdk import ObjectStoragePath


def object_path(url: str) -> ObjectStoragePath:
    return ObjectStoragePath(url)
