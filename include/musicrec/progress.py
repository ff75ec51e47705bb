"""What a person sees while a command works: the `musicrec` logger's lines on stderr, with the time."""

from __future__ import annotations

import logging
import sys


def show_progress(verbose: bool) -> None:
    """The `musicrec` logger to stderr (DEBUG with `verbose`, else INFO), on its own: not through Airflow's."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log = logging.getLogger("musicrec")
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
