"""The current index's mixes (`musicrec.index.mixes`): listed, and each one's tracks in order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from musicrec.serve import query
from musicrec.store import storage


def _table(index: query.Index) -> pd.DataFrame:
    path = index.run / storage.MIXES
    if not path.exists():
        raise query.QueryError("this index has no mixes (it was built before they were made): run the pipeline again")
    return storage.read_parquet(path)


def listing(data_dir: str | Path) -> dict:
    """{'mixes': [{'mix', 'name', 'tracks', 'duration_s', 'first'}...]}: every mix, biggest first."""
    index = query.load(data_dir)
    table = _table(index)
    durations = index.tracks.set_index("track_key")["duration_s"]
    listed = [
        {
            "mix": int(number),
            "name": name,
            "tracks": len(mix),
            "duration_s": round(float(durations.reindex(mix["track_key"]).sum()), 1),
            "first": mix.sort_values("position")["track_key"].iloc[0],
        }
        for (number, name), mix in table.groupby(["mix", "name"], sort=True)
    ]
    return {"mixes": listed}


def mix(data_dir: str | Path, which: str) -> dict:
    """{'mix', 'name', 'tracks': [... with 'position' and 'step_distance'], 'note'}: the mix whose number
    is `which`, else the first whose name contains it (any case)."""
    index = query.load(data_dir)
    table = _table(index)
    chosen = table[table["mix"].astype(str) == which.strip()]
    if chosen.empty:
        chosen = table[table["name"].str.casefold().str.contains(which.strip().casefold(), regex=False)]
        chosen = chosen[chosen["mix"] == chosen["mix"].min()]
    if chosen.empty:
        names = ", ".join(f"{n} {name}" for n, name in table[["mix", "name"]].drop_duplicates().itertuples(index=False))
        raise query.QueryError(f"no mix {which!r}: give a number or a word of a name ({names})")
    chosen = chosen.sort_values("position")
    tracks = index.tracks.iloc[index.row[chosen["track_key"]].to_numpy()].assign(
        position=chosen["position"].to_numpy(), step_distance=chosen["step_distance"].to_numpy()
    )
    return {
        "mix": int(chosen["mix"].iloc[0]),
        "name": chosen["name"].iloc[0],
        "tracks": query.records(tracks),
        "note": None,
    }
