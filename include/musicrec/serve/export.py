"""Writing the index's tables for other tools: where to (refusing what is not ours to replace) and how."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd

from musicrec.errors import InputError
from musicrec.store import storage

FORMATS = {".csv": "csv", ".parquet": "parquet"}
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def target(out: str, fmt: str | None) -> tuple[Path | None, str]:
    """(path, format) for `--out` and `--format`; path None means standard output (`-`).

    The file may be new or a regular file that is replaced atomically; a link, a device or a folder is
    refused, and so is a folder that does not exist. The format is `fmt`, else the file's extension.
    """
    if out == "-":
        return None, fmt or "csv"
    path = output_path(out)
    by_extension = FORMATS.get(path.suffix.lower())
    if fmt is None and by_extension is None:
        raise InputError(f"cannot tell the format of {out}: name it .csv or .parquet, or give --format")
    if fmt and by_extension and fmt != by_extension:
        raise InputError(f"--format {fmt} does not match the extension of {out}")
    return path, fmt or by_extension


def output_path(out: str) -> Path:
    """The file that an `--out` names, checked: every command that writes a file takes the same rule.

    The file may be new or a regular file that is replaced atomically; a link, a device or a folder is
    refused (as root, replacing /dev/null would replace the system's own), and so is a folder that does
    not exist.
    """
    path = Path(out).expanduser()
    if path.is_symlink():
        raise InputError(
            f"refusing to replace {out}: it is a symbolic link (give the file it points to, or - for standard output)"
        )
    if path.exists() and not path.is_file():
        raise InputError(f"refusing to write to {out}: not a regular file (a folder or a device)")
    if not path.parent.is_dir():
        raise InputError(f"folder not found: {path.parent} (create it first)")
    return path


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula, prefixed with an apostrophe (OWASP's advice)."""
    safe = table.copy()
    for column in safe.columns:
        if pd.api.types.is_string_dtype(safe[column]) or safe[column].dtype == object:
            values = safe[column]
            risky = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_STARTS)).astype(bool)
            safe[column] = values.where(~risky, "'" + values.astype(str))
    return safe


def write(table: pd.DataFrame, path: Path | None, fmt: str) -> None:
    """CSV (spreadsheet-safe) or Parquet (values as they are), atomically to `path` or to standard output."""
    if path is None:
        if fmt == "parquet":
            buffer = io.BytesIO()
            table.to_parquet(buffer, index=False)
            sys.stdout.buffer.write(buffer.getvalue())
        else:
            spreadsheet_safe(table).to_csv(sys.stdout, index=False)
        sys.stdout.flush()
    elif fmt == "parquet":
        storage.write_parquet(table, path)
    else:
        storage.write_text(spreadsheet_safe(table).to_csv(index=False), path)
