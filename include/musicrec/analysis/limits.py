"""A wall-clock limit on work done for one file, so that no file can hold up a run for ever."""

from __future__ import annotations

import contextlib
import signal
import threading
import time

# Analysing a file (its first 30 minutes at most) takes seconds to a minute; reading its tags, less.
ANALYSIS_LIMIT_S = 900.0
TAGS_LIMIT_S = 30.0


class TimeLimitExceeded(Exception):
    """The work for one file took longer than its limit and was stopped."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise TimeLimitExceeded in the block after `seconds`.

    A SIGALRM timer, so it applies in a process's main thread only (pool workers and the CLI); elsewhere,
    as in a thread of an in-process Airflow run, the block runs unbounded. The alarm interrupts Python code
    between calls into C, which is where decoding loops over its blocks.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeLimitExceeded(f"{what} took longer than {seconds:g} s and was stopped")

    previous = signal.signal(signal.SIGALRM, expire)
    outer_left, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:  # an enclosing timer (Airflow's execution_timeout uses one) runs on with what it had left
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - started), 0.001))
