"""The current index's duplicates (`musicrec.index.duplicates`): the recordings held by several files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from musicrec.serve import query
from musicrec.store import storage


def grouped(data_dir: str | Path) -> pd.DataFrame:
    """The rows of duplicates.parquet whose recording has two files or more, canonical member first."""
    index = query.load(data_dir)
    path = index.run / storage.DUPLICATES
    if not path.exists():
        raise query.QueryError("this index was built before duplicates were found: run the pipeline again")
    table = storage.read_parquet(path)
    table = table[table.groupby("recording")["track_key"].transform("size") > 1]
    return table.sort_values(["recording", "canonical", "track_key"], ascending=[True, False, True], kind="stable")


def listing(data_dir: str | Path) -> dict:
    """{'groups': [{'recording', 'canonical', 'files': [Track + evidence]}], 'files', 'note'}."""
    index = query.load(data_dir)
    table = grouped(data_dir)
    described = index.tracks.set_index("track_key")
    groups = []
    for recording, members in table.groupby("recording", sort=False):
        files = query.records(described.loc[members["track_key"]].reset_index())
        for file, row in zip(files, members.itertuples(), strict=True):
            file |= {
                "canonical": bool(row.canonical),
                "bit_error_rate": _number(row.bit_error_rate),
                "offset_s": _number(row.offset_s),
                "overlap_s": _number(row.overlap_s),
            }
        groups.append({"recording": int(recording), "canonical": members["canonical_key"].iloc[0], "files": files})
    note = None if groups else "no recording is held by two files or more"
    return {"groups": groups, "files": int(len(table)), "note": note}


def _number(value) -> float | None:
    return None if pd.isna(value) else float(value)
