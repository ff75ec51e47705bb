"""The hostname a Celery worker of the test stack reports for its task instances (`[core] hostname_callable`):
the workers share one machine, and the distributed test tells them apart by it."""

from __future__ import annotations

import os
import socket


def get() -> str:
    return os.environ.get("MUSICREC_WORKER_NAME") or socket.getfqdn()
