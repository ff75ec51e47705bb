"""Errors that say what went wrong and what to do, and the one place that puts failures of the disk and of
object storage into such words (`explained`)."""

from __future__ import annotations

import errno


class InputError(ValueError):
    """A library, metadata file or parameter that the pipeline cannot work with; the message names it."""


class StorageRefused(InputError):
    """The disk or object storage refuses the work (no space, no permission, credentials refused, no such
    connection): retrying the same run cannot help until a person acts."""


class StorageUnreachable(Exception):
    """Object storage did not answer, or could not be reached: a later try may work."""


# botocore's exceptions, by name (botocore is imported only where object storage is used).
_UNREACHABLE = {"ReadTimeoutError", "ConnectTimeoutError", "EndpointConnectionError", "ConnectionClosedError"}
_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError"}


def explained(exc: BaseException) -> StorageRefused | StorageUnreachable | None:
    """A failure of the disk or of object storage, in a sentence that says what to do; None for any other."""
    name = type(exc).__name__
    if isinstance(exc, (StorageRefused, StorageUnreachable)):
        return exc
    if name in _UNREACHABLE:
        return StorageUnreachable(
            f"object storage did not answer ({exc}): check that the endpoint of the connection is right and up; "
            "the run can be tried again"
        )
    if name in _NO_CREDENTIALS:
        return StorageRefused(f"object storage: {exc}: give the Airflow connection a key (login) and a secret")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return StorageRefused(
            f"no space left on the device{where}: free some space, then run again (each run starts by removing "
            "old runs' folders)"
        )
    if isinstance(exc, PermissionError) and exc.filename:
        return StorageRefused(f"{exc.strerror or 'permission denied'}: {exc.filename} (not writable by this user?)")
    if isinstance(exc, PermissionError):  # s3fs's, from the server's answer: refused credentials or access
        return StorageRefused(
            f"object storage refused access ({exc}): check the key (login) and secret (password) of the Airflow "
            "connection, and that they may read and write the bucket"
        )
    return None
