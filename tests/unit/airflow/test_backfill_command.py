"""`make backfill`'s wrapper around `airflow backfill create`: what it waits out and what it reports."""

from __future__ import annotations

import sys

import pytest

from musicrec.airflow import backfill


def _airflow_answering(tmp_path, *answers: tuple[int, str]) -> list[str]:
    """A stand-in for `airflow backfill create` that gives each answer in turn (exit code, output)."""
    script = tmp_path / "answers.py"
    count = tmp_path / "count"
    script.write_text(
        "import pathlib, sys\n"
        f"count = pathlib.Path({str(count)!r})\n"
        "n = int(count.read_text()) if count.exists() else 0\n"
        "count.write_text(str(n + 1))\n"
        f"code, text = {list(answers)!r}[n]\n"
        "print(text)\n"
        "sys.exit(code)\n"
    )
    return [sys.executable, str(script)]


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(backfill, "POLL_S", 0.01)


ARGS = ["--from", "2026-11-28", "--to", "2026-11-29"]
LOCKED = (
    "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked\n"
    "(Background on this error at: https://sqlalche.me/e/21/e3q8)"
)


def test_a_locked_sqlite_database_and_a_running_backfill_are_waited_out(tmp_path, monkeypatch, quick, capsys):
    answers = _airflow_answering(tmp_path, (1, LOCKED), (1, "AlreadyRunningBackfill: wait"), (0, "created"))
    monkeypatch.setattr(backfill, "command", lambda args: answers)
    assert backfill.main(ARGS) == 0
    out, err = capsys.readouterr()
    assert "created: the scheduler runs it now" in out
    assert err.count("waiting for the backfill") == 1
    assert (tmp_path / "count").read_text() == "3"


def test_any_other_failure_ends_with_airflows_sentence_not_sqlalchemys_link(tmp_path, monkeypatch, quick, capsys):
    other = "sqlalchemy.exc.OperationalError: no such table: dag\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"
    answers = _airflow_answering(tmp_path, (1, other))
    monkeypatch.setattr(backfill, "command", lambda args: answers)
    assert backfill.main(ARGS) == 1
    assert capsys.readouterr().err.strip() == "error: sqlalchemy.exc.OperationalError: no such table: dag"
