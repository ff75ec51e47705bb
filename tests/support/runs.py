"""A run of every stage without Airflow, and a small library to run it on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from support.audio import tone


def run_stages(library: Path, data: Path, run_id: str, metadata: Path | None = None, **params) -> dict:
    """Every stage of a run, in order, as the DAG chains them, without Airflow; returns each stage's record."""
    from musicrec import settings
    from musicrec.pipeline import publishing, stages

    params = settings.defaults(".") | {"n_neighbors": 2, "n_components": 3} | params
    meta = str(metadata) if metadata else None
    run = stages.discover(str(library), str(data), run_id, [], False, meta, index_params=params)
    shards = stages.shard(run, 100)
    extracted = [stages.extract_shard(s, str(library), workers=1) for s in shards]
    cleaned = stages.clean_metadata(run, meta)
    tracks = stages.join(run, extracted, cleaned)
    scaled = stages.scale(tracks, params["metadata_weight"])
    embedded = stages.reduce(scaled, params["n_components"])
    recordings = stages.duplicates(embedded, tracks, params["metric"])
    index = stages.build_index(embedded, tracks, recordings, params["n_neighbors"], params["metric"], params["hubness"])
    mixed = stages.mixes(embedded, tracks, index, recordings, params["mixes"])
    evaluated = stages.evaluate(embedded, tracks, index)
    published = publishing.publish(run, evaluated, mixed)
    return {
        "run": run,
        "shard": shards,
        "extract": extracted,
        "clean_metadata": cleaned,
        "join": tracks,
        "scale": scaled,
        "reduce": embedded,
        "duplicates": recordings,
        "build_index": index,
        "mixes": mixed,
        "evaluate": evaluated,
        "publish": published,
    }


SMALL_LIBRARY_METADATA = """folder,file,title,artist,album,genre
low,0.wav,Low Zero,Ann,First,ambient
low,1.wav,Low One,Ann,First,ambient
low,2.wav,Low Two,Bob,Second,ambient
low,3.wav,Low Three,Bob,Second,ambient
high,0.wav,High Zero,Cid,Third,rock
high,1.wav,High One,Cid,Third,rock
high,2.wav,High Two,Dee,Fourth,rock
high,3.wav,High Three,Dee,Fourth,rock
"""


def small_library(root: Path) -> Path:
    """Two folders of four tones each (low and high), with a copy of one file, and metadata naming them."""
    import soundfile as sf

    for folder, base in (("low", 110.0), ("high", 1760.0)):
        (root / folder).mkdir(parents=True)
        for i in range(4):
            sf.write(root / folder / f"{i}.wav", tone(base * (1 + 0.15 * i), seconds=0.6), 22050)
    (root / "high" / "copy of 0.wav").write_bytes((root / "high" / "0.wav").read_bytes())
    (root / "metadata.csv").write_text(SMALL_LIBRARY_METADATA)
    return root


def published_with(data_dir: Path, recs: bytes | pd.DataFrame) -> Path:
    """A data dir whose current index has two tracks and `recs` as its recommendations table (bytes: as is)."""
    from musicrec.serve import query
    from musicrec.store import storage

    run = storage.run_dir(data_dir, "r1")
    tracks = pd.DataFrame({c: ["a/1.ogg", "a/2.ogg"] if c == "track_key" else ["x", "y"] for c in query.SHOWN}).assign(
        duration_s=[1.0, 2.0]
    )
    storage.write_parquet(tracks, run / storage.TRACKS)
    if isinstance(recs, bytes):
        (run / storage.RECOMMENDATIONS).write_bytes(recs)
    else:
        storage.write_parquet(recs, run / storage.RECOMMENDATIONS)
    storage.publish(data_dir, run)
    return data_dir
