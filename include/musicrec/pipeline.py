"""The pipeline's stages as plain functions over files: what each Airflow task runs.

Each stage reads and writes Parquet in the run's folder and returns a small,
JSON-able summary (paths, counts, seconds) that is all the DAG passes on in XCom.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from musicrec import discover as discovery
from musicrec import encode, extract, features, metadata, model, storage, tags

log = logging.getLogger("musicrec")

DISCOVER_SUMMARY = "discover.json"
STAGES = ["discover", "extract", "clean_metadata", "join", "scale", "reduce", "build_index"]
REUSE_KEYS = ["track_key", "size_bytes", "mtime_ns", "feature_version"]


def _top_folder(track_key: str) -> str:
    return track_key.split("/", 1)[0] if "/" in track_key else ""


def _previous_features(data_dir: str | Path) -> pd.DataFrame | None:
    current = storage.current_dir(data_dir)
    path = current / storage.FEATURES if current else None
    return pd.read_parquet(path) if path and path.exists() else None


def discover(library: str, data_dir: str, run_id: str, folders: list[str] | None = None,
             full_refresh: bool = False, files_per_shard: int = 50) -> dict:
    """Scan the library, reuse unchanged features of the last index, shard the rest."""
    started = time.monotonic()
    run = storage.run_dir(data_dir, run_id)
    scanned = discovery.scan(library)
    folders = [f.strip("/") for f in (folders or []) if f.strip("/")]
    if folders:
        known = set(scanned["track_key"].map(_top_folder))
        missing = [f for f in folders if f not in known]
        if missing:
            raise discovery.LibraryError(f"folders with no audio in library {library}: {', '.join(missing)}")
    selected = scanned["track_key"].map(_top_folder).isin(folders) if folders else pd.Series(True, index=scanned.index)

    previous = None if full_refresh else _previous_features(data_dir)
    reused = pd.DataFrame(columns=REUSE_KEYS)
    if previous is not None:
        same_file = previous.merge(scanned[REUSE_KEYS[:3]], on=REUSE_KEYS[:3], how="inner")
        reused = same_file[same_file["feature_version"] == features.FEATURE_VERSION][previous.columns]
    if full_refresh:
        scanned = scanned[selected]
        selected = selected[selected]
    todo = scanned[selected & ~scanned["track_key"].isin(set(reused["track_key"]))]
    # Outside the selected folders, only what the last index already had is kept.
    reused = reused[reused["track_key"].isin(set(scanned["track_key"]))]

    storage.write_parquet(scanned.reset_index(drop=True), run / "worklist.parquet")
    reused_path = storage.write_parquet(reused.reset_index(drop=True), run / "reused_features.parquet")
    shards = discovery.split(todo.reset_index(drop=True), files_per_shard)
    descriptors = []
    for i, shard in enumerate(shards):
        path = storage.write_parquet(shard, run / "shards" / f"shard-{i:04d}-files.parquet")
        descriptors.append({"index": i, "files": len(shard), "worklist": str(path),
                            "label": discovery.shard_label(shard, i, len(shards))})
    if not descriptors and reused.empty:
        raise discovery.LibraryError(f"no audio files found in {library}" + (f" (folders {folders})" if folders else ""))
    summary = {
        "run_dir": str(run), "library": str(Path(library).expanduser().resolve()),
        "files_found": len(scanned), "files_to_extract": len(todo), "files_reused": len(reused),
        "shards": descriptors, "reused_features": str(reused_path),
        "seconds": round(time.monotonic() - started, 2),
    }
    storage.write_json(summary, run / DISCOVER_SUMMARY)
    log.info("discover: %d audio files, %d to extract in %d shards, %d unchanged since the last index",
             len(scanned), len(todo), len(descriptors), len(reused))
    return summary


def extract_shard(library: str, shard: dict, workers: int | None = None) -> dict:
    started = time.monotonic()
    worklist = pd.read_parquet(shard["worklist"])
    feats, quarantine = extract.extract(library, worklist, workers=workers, label=shard["label"].split(":")[0])
    base = Path(shard["worklist"]).with_name(Path(shard["worklist"]).name.replace("-files", ""))
    features_path = storage.write_parquet(feats, base.with_suffix(".features.parquet"))
    quarantine_path = storage.write_parquet(quarantine, base.with_suffix(".quarantine.parquet"))
    return {"index": shard["index"], "features": str(features_path), "quarantine": str(quarantine_path),
            "files": len(worklist), "extracted": len(feats), "quarantined": len(quarantine),
            "audio_hours": round(float(feats["duration_s"].sum()) / 3600, 4),
            "seconds": round(time.monotonic() - started, 2)}


def clean_metadata(metadata_path: str | None, run_dir: str) -> dict:
    """Cleaned metadata for the library's tracks; rows naming files not in the library are counted and left out."""
    started = time.monotonic()
    run = Path(run_dir)
    keys = pd.read_parquet(run / "worklist.parquet", columns=["track_key"])["track_key"].tolist()
    embedded = tags.library_tags(storage.read_json(run / DISCOVER_SUMMARY)["library"], keys)
    raw = metadata.read_table(metadata_path) if metadata_path else pd.DataFrame(columns=["folder", "file"])
    cleaned, report = metadata.clean(raw, embedded)
    cleaned, orphans = metadata.restrict_to_library(cleaned, set(keys))
    report["metadata_file"] = metadata_path
    report["rows_not_in_library"] = len(orphans)
    report["rows_not_in_library_examples"] = orphans[:10]
    report["rows_out"] = len(cleaned)
    path = storage.write_parquet(cleaned, run / storage.METADATA_CLEAN)
    storage.write_json(report, run / storage.CLEANING_REPORT)
    storage.write_text(metadata.report_markdown(report), run / storage.CLEANING_REPORT_MD)
    log.info("clean_metadata: %s rows in the metadata file, tags of %d files; %d tracks described, "
             "%d rows name files not in the library", report["rows_in"], len(keys), len(cleaned), len(orphans))
    return {"path": str(path), "rows_in": report["rows_in"], "rows_out": len(cleaned),
            "rows_not_in_library": len(orphans), "seconds": round(time.monotonic() - started, 2)}


def join(run_dir: str, shard_results: list[dict]) -> dict:
    started = time.monotonic()
    run = Path(run_dir)
    parts = [pd.read_parquet(run / "reused_features.parquet")]
    parts += [pd.read_parquet(r["features"]) for r in shard_results]
    parts = [p for p in parts if not p.empty]
    feats = pd.concat(parts, ignore_index=True) if parts else extract.features_frame([])
    feats = feats.sort_values("track_key", ignore_index=True)
    quarantine = pd.concat([pd.read_parquet(r["quarantine"]) for r in shard_results] or
                           [pd.DataFrame(columns=extract.QUARANTINE_COLUMNS)], ignore_index=True)
    storage.write_parquet(feats, run / storage.FEATURES)
    storage.write_parquet(quarantine, run / storage.QUARANTINE)
    if len(feats) < 2:
        raise ValueError(f"only {len(feats)} track(s) could be analysed ({len(quarantine)} quarantined): "
                         "an index needs at least 2")
    tracks = model.join(feats, pd.read_parquet(run / storage.METADATA_CLEAN))
    storage.write_parquet(tracks, run / storage.TRACKS)
    log.info("join: %d tracks (%d with metadata), %d quarantined", len(tracks), int(tracks["has_metadata"].sum()),
             len(quarantine))
    return {"tracks": len(tracks), "with_metadata": int(tracks["has_metadata"].sum()),
            "quarantined": len(quarantine), "audio_hours": round(float(tracks["duration_s"].sum()) / 3600, 4),
            "seconds": round(time.monotonic() - started, 2)}


def scale(run_dir: str, metadata_weight: float = 0.0) -> dict:
    """Standardized audio features, and metadata features weighted by `metadata_weight` (0: audio only)."""
    started = time.monotonic()
    run = Path(run_dir)
    tracks = pd.read_parquet(run / storage.TRACKS)
    columns = features.feature_columns()
    scaler = model.fit_scaler(tracks[columns].to_numpy())
    scaled = pd.DataFrame(model.scale(tracks[columns].to_numpy(), scaler), columns=columns)
    encoder = encode.fit(tracks)
    meta = encode.transform(tracks, encoder)
    meta_scaler = model.fit_scaler(meta.to_numpy())
    if metadata_weight > 0:
        weighted = model.scale(meta.to_numpy(), meta_scaler) * metadata_weight
        scaled = pd.concat([scaled, pd.DataFrame(weighted, columns=meta.columns)], axis=1)
    scaled.insert(0, "track_key", tracks["track_key"])
    storage.write_parquet(scaled, run / "scaled.parquet")
    storage.write_json({"feature_version": features.FEATURE_VERSION, "feature_columns": columns, "scaler": scaler,
                        "metadata": {"weight": metadata_weight, "columns": meta.columns.tolist(), "encoder": encoder,
                                     "scaler": meta_scaler}},
                       run / storage.MODEL)
    return {"columns": scaled.shape[1] - 1, "metadata_weight": metadata_weight,
            "seconds": round(time.monotonic() - started, 2)}


def reduce(run_dir: str, n_components: int) -> dict:
    started = time.monotonic()
    run = Path(run_dir)
    scaled = pd.read_parquet(run / "scaled.parquet")
    z = scaled.drop(columns="track_key").to_numpy()
    pca = model.fit_pca(z, n_components)
    embedding = model.reduce(z, pca)
    emb = pd.DataFrame(embedding, columns=model.component_columns(embedding.shape[1]))
    emb.insert(0, "track_key", scaled["track_key"])
    storage.write_parquet(emb, run / storage.EMBEDDINGS)
    saved = storage.read_json(run / storage.MODEL)
    storage.write_json(saved | {"pca": pca}, run / storage.MODEL)
    explained = float(np.sum(pca["explained_variance_ratio"]))
    log.info("reduce: %d features -> %d components (%.0f%% of the variance)", z.shape[1], embedding.shape[1],
             100 * explained)
    return {"components": embedding.shape[1], "explained_variance": round(explained, 4),
            "seconds": round(time.monotonic() - started, 2)}


def build_index(run_dir: str, n_neighbors: int, metric: str) -> dict:
    started = time.monotonic()
    run = Path(run_dir)
    emb = pd.read_parquet(run / storage.EMBEDDINGS)
    hashes = pd.read_parquet(run / storage.TRACKS, columns=["track_key", "content_hash"]).set_index("track_key")
    recs = model.nearest_neighbours(emb["track_key"].tolist(), emb.drop(columns="track_key").to_numpy(),
                                    n_neighbors, metric, groups=hashes.loc[emb["track_key"], "content_hash"].tolist())
    storage.write_parquet(recs, run / storage.RECOMMENDATIONS)
    return {"tracks": len(emb), "neighbors": int(recs.groupby("track_key").size().min()) if len(recs) else 0,
            "metric": metric, "seconds": round(time.monotonic() - started, 2)}


def publish(data_dir: str, run_dir: str, run_id: str, stages: dict) -> dict:
    """Write the run summary and make this run the current index."""
    run = Path(run_dir)
    quarantine = pd.read_parquet(run / storage.QUARANTINE)
    shard_results = stages.pop("extract", [])
    stages["extract"] = {
        "shards": len(shard_results),
        "extracted": sum(r["extracted"] for r in shard_results),
        "quarantined": sum(r["quarantined"] for r in shard_results),
        "audio_hours": round(sum(r["audio_hours"] for r in shard_results), 4),
        "seconds": round(sum(r["seconds"] for r in shard_results), 2),
        "slowest_shard_seconds": round(max((r["seconds"] for r in shard_results), default=0.0), 2),
    }
    discovered = storage.read_json(run / DISCOVER_SUMMARY)
    stages["discover"] = {k: v for k, v in discovered.items() if k != "shards"}
    summary = {
        "run_id": run_id,
        "library": discovered["library"],
        "tracks_indexed": stages["join"]["tracks"],
        "tracks_with_metadata": stages["join"]["with_metadata"],
        "audio_hours": stages["join"]["audio_hours"],
        "files_found": discovered["files_found"],
        "files_extracted": stages["extract"]["extracted"],
        "files_reused": discovered["files_reused"],
        "quarantined": quarantine[["track_key", "error"]].to_dict("records"),
        "metadata_rows_not_in_library": stages["clean_metadata"]["rows_not_in_library"],
        "feature_version": features.FEATURE_VERSION,
        "identical_audio": int(pd.read_parquet(run / storage.TRACKS, columns=["duplicate_of"])["duplicate_of"].notna().sum()),
        "validation_result": str(run / storage.VALIDATION),
        "validation_data_docs": str(run / storage.DATA_DOCS / "index.html"),
        "cleaning_report": str(run / storage.CLEANING_REPORT_MD),
        "stages": {name: stages[name] for name in STAGES if name in stages},
        "stage_seconds": {name: stages[name].get("seconds") for name in STAGES if name in stages},
    }
    storage.write_json(summary, run / storage.SUMMARY)
    storage.publish(data_dir, run)
    log.info("publish: index of %d tracks (%.2f h of audio) is now current; %d quarantined",
             summary["tracks_indexed"], summary["audio_hours"], len(summary["quarantined"]))
    return {"run_dir": str(run), "tracks_indexed": summary["tracks_indexed"],
            "quarantined": len(summary["quarantined"])}
