"""The run summary: what a run indexed, extracted, reused and quarantined, and the time of each stage, from
the records the stages kept in the run folder (`stages/`).
"""

from __future__ import annotations

import datetime
import logging

from musicrec.analysis import features
from musicrec.pipeline import results
from musicrec.store import storage

log = logging.getLogger("musicrec")

STAGES = [
    "discover",
    "extract",
    "clean_metadata",
    "join",
    "scale",
    "reduce",
    "duplicates",
    "build_index",
    "mixes",
    "evaluate",
]


def _stage_records(run: results.Run) -> dict:
    """What each stage of this run kept, in pipeline order; the shards' extraction as join summed it up."""
    records = {
        name: storage.read_json(storage.stage_record(run["run_dir"], name)) for name in STAGES if name != "extract"
    }
    records["extract"] = records["join"].pop("extract")
    return {name: records[name] for name in STAGES}


def summarize(run: results.Run) -> dict:
    """The run summary: what was indexed, extracted, reused and quarantined, and the time per stage."""
    folder = storage.path(run["run_dir"])
    stages = _stage_records(run)
    quarantine = storage.read_parquet(folder / storage.QUARANTINE)
    duplicates = storage.read_parquet(folder / storage.TRACKS, columns=["duplicate_of"])["duplicate_of"].notna().sum()
    return {
        "run_id": run["run_id"],
        "built_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "library": run["library"],
        "tracks_indexed": stages["join"]["tracks"],
        "tracks_with_metadata": stages["join"]["with_metadata"],
        "audio_hours": stages["join"]["audio_hours"],
        "files_found": run["files_found"],
        "files_extracted": stages["extract"]["extracted"],
        "files_reused": run["files_reused"],
        "files_skipped": run["files_skipped"],
        "skipped": run["skipped"],
        "warnings": run["warnings"],
        "inputs": run["inputs"],
        "quarantined": quarantine[["track_key", "error"]].to_dict("records"),
        "metadata_rows_not_in_library": stages["clean_metadata"]["rows_not_in_library"],
        "feature_version": features.FEATURE_VERSION,
        "identical_audio": int(duplicates),
        "neighbour_search": stages["build_index"].get("search", {"method": "exact"}),
        "mixes": {
            "names": stages["mixes"]["names"],
            "folder": str(folder / storage.MIX_PLAYLISTS),
            "playlists_dir": run["inputs"]["params"].get("playlists_dir"),
        },
        "validation_result": str(folder / storage.VALIDATION),
        "validation_data_docs": str(folder / storage.DATA_DOCS / "index.html"),
        "cleaning_report": str(folder / storage.CLEANING_REPORT_MD),
        "evaluation": {
            **{k: v for k, v in stages["evaluate"].items() if k not in ("run_dir", "path", "reuse_key", "seconds")},
            "report": str(folder / storage.EVALUATION_MD),
            "plots": [
                str(folder / name) for name in (storage.PLOT_VARIANCE, storage.PLOT_MAP, storage.PLOT_K_OCCURRENCE)
            ],
        },
        "stages": stages,
        "stage_seconds": {name: record.get("seconds") for name, record in stages.items()},
    }
