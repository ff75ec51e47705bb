"""The pipeline's stages as plain functions over files: what each Airflow task runs.

Each stage reads the files its inputs name and writes Parquet into the run's folder. It returns a
small, JSON-able dict (`run_dir`, the paths it wrote, counts, seconds) that is all the DAG passes on
in XCom, and keeps the same dict in the run folder (`stages/`) for the run summary:

    run = discover(...)
    shards = [extract_shard(s, ...) for s in shard(run, ...)]           # one mapped task a shard
    meta = clean_metadata(run, ...)                                     # then validated
    tracks = join(run, shards, meta)
    index = build_index(reduce(scale(tracks, ...), ...), tracks, ...)
    publish(run, index)
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import logging
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from musicrec import (
    ann,
    encode,
    evaluation,
    extract,
    features,
    lock,
    metadata,
    model,
    neighbours,
    plots,
    reuse,
    settings,
    storage,
    tags,
)
from musicrec import discover as discovery
from musicrec.errors import InputError, explained

log = logging.getLogger("musicrec")

# The stages in the order the run summary lists them.
# Skipped paths (special files, link loops) named in the log and the summary; the rest are counted.
SKIPPED_SHOWN = 20
STAGES = ["discover", "extract", "clean_metadata", "join", "scale", "reduce", "build_index", "evaluate"]


class TooFewTracks(InputError):
    """Fewer than two tracks could be analysed: there is nothing to index."""


def stage(name: str):
    """Time a stage and keep what it returns in the run folder, for the run summary.

    The stage returns a dict with its `run_dir`; a shard's extraction also names its `shard`.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs) -> dict:
            started = time.monotonic()
            with _holding_lock(args):
                result = {**fn(*args, **kwargs), "seconds": round(time.monotonic() - started, 2)}
            record = f"{name}-{result['shard']:04d}" if "shard" in result else name
            storage.write_json(result, storage.stage_record(result["run_dir"], record))
            return result

        return timed

    return decorate


def _holding_lock(args) -> contextlib.AbstractContextManager:
    """The data dir's lock kept alive while a stage works on a run (named by its first argument's run_dir)."""
    run_dir = next((a["run_dir"] for a in args if isinstance(a, dict) and "run_dir" in a), None)
    if run_dir is None:
        return contextlib.nullcontext()
    return lock.heartbeat(storage.data_dir_of(run_dir), storage.run_name(run_dir))


def _last_index_table(data_dir: str | Path, name: str, needed: list[str]) -> tuple[pd.DataFrame | None, list[str]]:
    """A table of the last index, to reuse; (None, [why]) when there is none or it cannot be trusted."""
    current = storage.current_dir(data_dir)
    path = current / name if current else None
    if path is None or not path.exists():
        return None, []
    try:
        table = storage.read_parquet(path)
        missing = [c for c in needed if c not in table.columns]
        if missing and set(missing) <= set(features.feature_columns()):
            # written by a version of musicrec with other features: nothing is wrong, they are all computed anew
            log.info("discover: the last index has other features (%d missing): every file is extracted", len(missing))
            return None, []
        if missing:
            raise ValueError(f"columns missing: {', '.join(missing[:5])}")
    except Exception as exc:  # a damaged table must not stop every later run: extract instead
        warning = f"the last index's table {path} is unreadable ({exc}); its files are extracted again"
        log.warning("discover: %s", warning)
        return None, [warning]
    return table, []


def check_inputs(library: str, data_dir: str, folders: list[str], metadata_path: str | None) -> None:
    """Fail before any work, naming the parameter, on input that cannot work."""
    if not storage.path(library).is_dir():
        raise discovery.LibraryError(f"library_path: folder not found: {library}")
    discovery.check_folders_inside(library, folders)
    if metadata_path and not storage.path(metadata_path).is_file():
        raise metadata.MetadataError(f"metadata_path: file not found: {metadata_path}")
    _check_writable(data_dir)


def _check_writable(data_dir: str) -> None:
    data = storage.path(data_dir)
    try:
        if isinstance(data, Path):
            data.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=data):
                pass
        else:
            probe = data / f".write-probe-{uuid.uuid4().hex[:12]}"
            probe.write_bytes(b"")
            probe.unlink()
    except (OSError, ValueError) as exc:  # on object storage: no such bucket, refused credentials, ...
        said = explained(exc)
        problem = type(said) if said else InputError
        raise problem(f"data_dir: cannot write to {data}: {said or getattr(exc, 'strerror', None) or exc}") from None


def _plan(library: str, data_dir: str, folders: list[str], full_refresh: bool) -> dict:
    """The library scanned and planned against the current index: what to extract, reuse, leave quarantined."""
    scanned, skipped = discovery.scan(library)
    previous, warnings = _last_index_table(
        data_dir, storage.FEATURES, [*discovery.REUSE_KEYS, "feature_version", *features.feature_columns()]
    )
    # An older quarantine table without sizes and times is simply not reused: its files are tried again.
    quarantined, more = _last_index_table(data_dir, storage.QUARANTINE, [])
    if quarantined is not None and not set(discovery.REUSE_KEYS) <= set(quarantined.columns):
        quarantined = None
    todo, reused, still = discovery.plan(
        scanned, previous, features.FEATURE_VERSION, folders, full_refresh, quarantined=quarantined
    )
    return {
        "scanned": scanned,
        "skipped": skipped,
        "todo": todo,
        "reused": reused,
        "still": still,
        "previous": previous,
        "quarantined": quarantined,
        "warnings": warnings + more,
    }


def index_inputs(library: str, metadata_path: str | None, index_params: dict) -> dict:
    """What an index depends on beside its files: the metadata file's bytes, the parameters that shape the
    index, and the code. Recorded by discover; equal inputs and unchanged files rebuild the same index."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return {
        "library": str(storage.root(library)),
        "metadata_path": str(storage.root(metadata_path)) if metadata_path else None,
        "metadata_sha256": _sha256(metadata_path) if metadata_path else None,
        "params": {name: index_params[name] for name in settings.INDEX_PARAMS},
        "code_sha256": digest.hexdigest(),
    }


def _sha256(location: str) -> str:
    return hashlib.sha256(storage.path(location).read_bytes()).hexdigest()


def unchanged_since_current(
    library: str, data_dir: str, folders: list[str], metadata_path: str | None, index_params: dict
) -> dict | None:
    """The current index's summary if a run with these inputs would find nothing to change (no file added,
    changed or removed, the same metadata, parameters and code), else None."""
    current = storage.current_dir(data_dir)
    summary_path = current / storage.SUMMARY if current else None
    if summary_path is None or not summary_path.exists():
        return None
    try:
        summary = storage.read_json(summary_path)
        if summary.get("inputs") != index_inputs(library, metadata_path, index_params):
            return None
    except (OSError, ValueError):  # a damaged summary or an unreadable file: the run finds out and says so
        return None
    plan = _plan(library, data_dir, discovery.normalize_folders(folders), full_refresh=False)
    if plan["previous"] is None or not plan["todo"].empty or plan["warnings"]:
        return None
    kept = len(plan["reused"]) + len(plan["still"])
    indexed = len(plan["previous"]) + (len(plan["quarantined"]) if plan["quarantined"] is not None else 0)
    return summary if kept == indexed else None


@stage("discover")
def discover(
    library: str,
    data_dir: str,
    run_id: str,
    folders: list[str] | None = None,
    full_refresh: bool = False,
    metadata_path: str | None = None,
    index_params: dict | None = None,
) -> dict:
    """Check the inputs, scan the library, and choose what to reuse from the last index and what to extract."""
    folders = discovery.normalize_folders(folders)
    check_inputs(library, data_dir, folders, metadata_path)
    run = storage.new_run_dir(data_dir, run_id)
    plan = _plan(library, data_dir, folders, full_refresh)
    scanned, skipped, todo, reused, still = (plan[k] for k in ("scanned", "skipped", "todo", "reused", "still"))
    if todo.empty and reused.empty:
        where = f"{library}" + (f" (folders {folders})" if folders else "")
        first = skipped.iloc[0] if len(skipped) else None
        why = f"; {len(skipped)} skipped, the first: {first['path']}: {first['reason']}" if first is not None else ""
        raise discovery.LibraryError(f"no audio files found in {where}{why}")
    log.info(
        "discover: %d audio files, %d to extract, %d unchanged since the last index and reused, "
        "%d unchanged and still quarantined; %d skipped",
        len(scanned),
        len(todo),
        len(reused),
        len(still),
        len(skipped),
    )
    for row in skipped.head(SKIPPED_SHOWN).itertuples():
        log.warning("discover: skipped %s: %s", row.path, row.reason)
    return {
        "run_dir": str(run),
        "run_id": run_id,
        # Names this attempt at the run: a re-run may get the same folder again (an earlier one's was pruned).
        "attempt": uuid.uuid4().hex[:12],
        "data_dir": str(storage.root(data_dir)),
        "library": str(storage.root(library)),
        "folders": folders,
        "full_refresh": full_refresh,
        "inputs": index_inputs(library, metadata_path, index_params or settings.defaults(".")),
        "worklist": str(storage.write_parquet(scanned, run / storage.WORKLIST)),
        "to_extract": str(storage.write_parquet(todo, run / storage.TO_EXTRACT)),
        "reused_features": str(storage.write_parquet(reused, run / storage.REUSED_FEATURES)),
        "still_quarantined": str(storage.write_parquet(still, run / storage.STILL_QUARANTINED)),
        "files_found": len(scanned),
        "files_to_extract": len(todo),
        "files_reused": len(reused),
        "files_still_quarantined": len(still),
        "files_skipped": len(skipped),
        "skipped": skipped.head(SKIPPED_SHOWN).to_dict("records"),
        "warnings": plan["warnings"],
    }


def shard(run: dict, files_per_shard: int) -> list[dict]:
    """The files to extract in shards, each written as its own work list; [] when there is nothing to extract."""
    parts = discovery.split(storage.read_parquet(run["to_extract"]), files_per_shard)
    shards = []
    for i, part in enumerate(parts):
        files = storage.shard_files(run["run_dir"], i)
        storage.write_parquet(part, files["files"])
        shards.append(
            {
                "run_dir": run["run_dir"],
                "attempt": run["attempt"],
                "index": i,
                "files": len(part),
                "worklist": str(files["files"]),
                "label": discovery.shard_label(part, i, len(parts)),
            }
        )
    log.info("shard: %d files to extract in %d shards", run["files_to_extract"], len(shards))
    return shards


@stage("extract")
def extract_shard(
    shard: dict, library: str, workers: int | None = None, max_minutes: float | None = extract.DEFAULT_MAX_MINUTES
) -> dict:
    worklist = storage.read_parquet(shard["worklist"])
    label = shard["label"].split(":")[0]
    with storage.local_library(library, worklist) as local:
        feats, quarantine = extract.extract(
            str(local), worklist, workers, label, max_minutes, run=storage.run_name(shard["run_dir"])
        )
    files = storage.shard_files(shard["run_dir"], shard["index"])
    storage.write_parquet(feats, files["features"])
    storage.write_parquet(quarantine, files["quarantine"])
    return {
        "run_dir": shard["run_dir"],
        "attempt": shard["attempt"],
        "shard": shard["index"],
        "features": str(files["features"]),
        "quarantine": str(files["quarantine"]),
        "files": len(worklist),
        "extracted": len(feats),
        "quarantined": len(quarantine),
        "audio_hours": round(float(feats["duration_s"].sum()) / 3600, 4),
        "truncated": int(feats["truncated"].sum()),
    }


@stage("clean_metadata")
def clean_metadata(run: dict, metadata_path: str | None) -> dict:
    """Cleaned metadata for the library's tracks; rows naming files not in the library are counted and left out."""
    folder = storage.path(run["run_dir"])
    keys = storage.read_parquet(run["worklist"], columns=["track_key"])["track_key"].tolist()
    embedded = tags.library_tags(run["library"], keys)
    raw = metadata.read_table(metadata_path) if metadata_path else pd.DataFrame(columns=["folder", "file"])
    cleaned, report = metadata.clean(raw, embedded)
    for name, collision in report["column_collisions"].items():
        log.warning(
            "clean_metadata: columns %s all mean %s: using %r",
            [collision["used"], *collision["ignored"]],
            name,
            collision["used"],
        )
    cleaned, orphans = metadata.restrict_to_library(cleaned, set(keys))
    report = report | {
        "metadata_file": metadata_path,
        "rows_not_in_library": len(orphans),
        "rows_not_in_library_examples": orphans[:10],
        "rows_out": len(cleaned),
    }
    path = storage.write_parquet(cleaned, folder / storage.METADATA_CLEAN)
    storage.write_json(report, folder / storage.CLEANING_REPORT)
    storage.write_text(metadata.report_markdown(report), folder / storage.CLEANING_REPORT_MD)
    log.info(
        "clean_metadata: %s rows in the metadata file, tags of %d files; %d tracks described, "
        "%d rows name files not in the library",
        report["rows_in"],
        len(keys),
        len(cleaned),
        len(orphans),
    )
    return {
        "run_dir": run["run_dir"],
        "path": str(path),
        "rows_in": report["rows_in"],
        "rows_out": len(cleaned),
        "rows_not_in_library": len(orphans),
    }


@stage("join")
def join(run: dict, shard_results: list[dict], meta: dict) -> dict:
    """All features of the run (reused and extracted) joined with the validated metadata at `meta["path"]`."""
    folder = storage.path(run["run_dir"])
    shard_results = _of_this_attempt(run, shard_results)
    feats = storage.read_dataset([run["reused_features"], *(r["features"] for r in shard_results)])
    if feats.num_rows == 0:
        feats = pa.Table.from_pandas(extract.features_frame([]), preserve_index=False)
    feats = feats.sort_by("track_key")
    quarantine = pd.concat(
        [storage.read_parquet(run["still_quarantined"]).reindex(columns=extract.QUARANTINE_COLUMNS)]
        + [storage.read_parquet(r["quarantine"]) for r in shard_results],
        ignore_index=True,
    )
    features_path = storage.write_table(feats, folder / storage.FEATURES)
    quarantine_path = storage.write_parquet(quarantine, folder / storage.QUARANTINE)
    if feats.num_rows < 2:
        raise TooFewTracks(
            f"only {feats.num_rows} track(s) could be analysed ({len(quarantine)} quarantined): "
            "an index needs at least 2"
        )
    tracks = model.join(feats, storage.read_parquet(meta["path"]))
    del feats
    path = storage.write_table(tracks, folder / storage.TRACKS)
    with_metadata = int(pc.sum(tracks["has_metadata"]).as_py() or 0)
    log.info("join: %d tracks (%d with metadata), %d quarantined", tracks.num_rows, with_metadata, len(quarantine))
    return {
        "run_dir": run["run_dir"],
        "path": str(path),
        "features": str(features_path),
        "quarantine": str(quarantine_path),
        "tracks": tracks.num_rows,
        "with_metadata": with_metadata,
        "quarantined": len(quarantine),
        "audio_hours": round(float(pc.sum(tracks["duration_s"]).as_py() or 0.0) / 3600, 4),
        "extract": _extraction(shard_results),
    }


def _of_this_attempt(run: dict, shard_results: list[dict]) -> list[dict]:
    """The shards that this attempt at the run extracted. A re-run of a run id (a cleared run, a backfill
    that reprocesses its date) with nothing to extract skips the mapped task, and Airflow may still hand
    on what its shards returned in the earlier attempt: those features are in this attempt's plan already."""
    mine = [r for r in shard_results if r.get("attempt") == run["attempt"]]
    if len(mine) < len(shard_results):
        log.info("join: %d shard results of an earlier attempt at this run left out", len(shard_results) - len(mine))
    return mine


def _extraction(shard_results: list[dict]) -> dict:
    """The shards' extraction, summed up for the run summary."""
    seconds = [r["seconds"] for r in shard_results]
    return {
        "shards": len(shard_results),
        "extracted": sum(r["extracted"] for r in shard_results),
        "quarantined": sum(r["quarantined"] for r in shard_results),
        "audio_hours": round(sum(r["audio_hours"] for r in shard_results), 4),
        "seconds": round(sum(seconds), 2),
        "slowest_shard_seconds": round(max(seconds, default=0.0), 2),
    }


@stage("scale")
def scale(tracks: dict, metadata_weight: float = 0.0) -> dict:
    """Standardized audio features, and metadata features weighted by `metadata_weight` (0: audio only)."""
    key = reuse.key([tracks["path"]], {"metadata_weight": metadata_weight}, [model, encode, features])
    reused = reuse.from_current_index("scale", key, tracks["run_dir"], [storage.SCALED, storage.MODEL])
    if reused:
        return reused
    folder = storage.path(tracks["run_dir"])
    columns = features.feature_columns()
    x = model.matrix(storage.read_table(tracks["path"], columns), columns)
    scaler = model.fit_scaler(x)
    z = model.scale(x, scaler, dtype=np.float32)
    del x
    encoded = [c for c in ENCODED if c in storage.columns(tracks["path"])]
    described = storage.read_parquet(tracks["path"], columns=encoded)
    encoder = encode.fit(described)
    meta = encode.transform(described, encoder)
    meta_scaler = model.fit_scaler(meta.to_numpy())
    names = list(columns)
    if metadata_weight > 0:
        weighted = model.scale(meta.to_numpy(), meta_scaler, dtype=np.float32) * np.float32(metadata_weight)
        z, names = np.hstack([z, weighted]), names + meta.columns.tolist()
    path = storage.write_table(_keyed(pa.array(described["track_key"]), z, names), folder / storage.SCALED)
    model_path = storage.write_json(
        {
            "feature_version": features.FEATURE_VERSION,
            "feature_columns": columns,
            "scaler": scaler,
            "metadata": {
                "weight": metadata_weight,
                "columns": meta.columns.tolist(),
                "encoder": encoder,
                "scaler": meta_scaler,
            },
        },
        folder / storage.MODEL,
    )
    return {
        "run_dir": tracks["run_dir"],
        "path": str(path),
        "model": str(model_path),
        "columns": len(names),
        "metadata_weight": metadata_weight,
        "reuse_key": key,
    }


# The tracks' columns the metadata encoding reads (`musicrec.encode`).
ENCODED = ["track_key", "artist", "genre", "year", "duration_s", "play_count"]


def _keyed(keys: pa.Array | pa.ChunkedArray, values: np.ndarray, names: list[str]) -> pa.Table:
    """A table of the track keys and one float column per column of `values`."""
    floats = [pa.array(values[:, j]) for j in range(values.shape[1])]
    return pa.Table.from_arrays([keys, *floats], ["track_key", *names])


@stage("reduce")
def reduce(scaled: dict, n_components: int) -> dict:
    """The embedding of the scaled features, a PCA per feature group (`model.fit_embedding`); the fitted groups
    join the scaler in the model file."""
    key = reuse.key([scaled["path"]], {"n_components": n_components}, [model])
    reused = reuse.from_current_index("reduce", key, scaled["run_dir"], [storage.EMBEDDINGS, storage.MODEL])
    if reused:
        return reused
    folder = storage.path(scaled["run_dir"])
    table = storage.read_table(scaled["path"])
    keys = table.column("track_key")
    names = table.column_names[1:]
    z = model.matrix(table, names, dtype=np.float32)
    del table
    fitted = model.fit_embedding(z, names, n_components)
    embedding = model.embed(z, names, fitted, dtype=np.float32)
    emb = _keyed(keys, embedding, model.component_columns(embedding.shape[1]))
    path = storage.write_table(emb, folder / storage.EMBEDDINGS)
    model_path = storage.write_json(storage.read_json(scaled["model"]) | {"embedding": fitted}, scaled["model"])
    explained = {group: round(float(np.sum(r)), 4) for group, r in model.explained_variance(fitted).items()}
    log.info(
        "reduce: %d features -> %d components: %s",
        z.shape[1],
        embedding.shape[1],
        "; ".join(
            f"{g['name']} {len(g['columns'])} features -> {len(g['pca']['components'])} "
            f"({100 * explained[g['name']]:.0f}% of their variance)"
            for g in fitted["groups"]
        ),
    )
    return {
        "run_dir": scaled["run_dir"],
        "path": str(path),
        "model": str(model_path),
        "components": embedding.shape[1],
        "explained_variance": explained,
        "reuse_key": key,
    }


@stage("build_index")
def build_index(embedded: dict, tracks: dict, n_neighbors: int, metric: str, hubness: str = "none") -> dict:
    """Each track's nearest neighbours in the embedding; copies of the same audio are never each other's."""
    key = reuse.key(
        [embedded["path"], (tracks["path"], ["track_key", "content_hash"])],
        {"n_neighbors": n_neighbors, "metric": metric, "hubness": hubness},
        [neighbours, ann],
    )
    reused = reuse.from_current_index(
        "build_index", key, embedded["run_dir"], [storage.RECOMMENDATIONS], optional=(storage.ANN_INDEX,)
    )
    if reused:
        return reused
    emb = storage.read_parquet(embedded["path"])
    hashes = storage.read_parquet(tracks["path"], columns=["track_key", "content_hash"]).set_index("track_key")
    found = neighbours.find(
        emb.drop(columns="track_key").to_numpy(dtype=np.float32),
        n_neighbors,
        metric,
        groups=hashes.loc[emb["track_key"], "content_hash"].tolist(),
        hubness=hubness,
    )
    folder = storage.path(embedded["run_dir"])
    path = storage.write_parquet(neighbours.table(emb["track_key"].tolist(), found), folder / storage.RECOMMENDATIONS)
    search = found.search
    if found.index is not None:  # saved, so that queries of new files search it rather than rebuild it
        search = search | {"path": str(storage.write_bytes(ann.to_bytes(found.index), folder / storage.ANN_INDEX))}
    log.info("build_index: %d tracks, %s", len(emb), _search_line(search))
    return {
        "run_dir": embedded["run_dir"],
        "path": str(path),
        "tracks": len(emb),
        "neighbours": int(found.rows.shape[1]),
        "metric": metric,
        "hubness": hubness,
        "search": search,
        "reuse_key": key,
    }


def _search_line(search: dict) -> str:
    if search["method"] == "exact":
        return "exact search"
    recall = next(v for k, v in search.items() if k.startswith("recall_at_"))
    return (
        f"approximate search (HNSW, breadth {search['ef_search']}): recall {recall:.3f} against exact "
        f"on {search['recall_sample']} queries"
    )


EVALUATION_FILES = [
    storage.EVALUATION,
    storage.EVALUATION_MD,
    storage.PLOT_VARIANCE,
    storage.PLOT_MAP,
    storage.PLOT_K_OCCURRENCE,
]


@stage("evaluate")
def evaluate(embedded: dict, tracks: dict, index: dict) -> dict:
    """Precision by label, coverage and hubness of the index, for each hubness setting, with plots."""
    key = reuse.key(
        [embedded["path"], tracks["path"]],
        {"metric": index["metric"], "hubness": index["hubness"]},
        [evaluation, plots],
    )
    reused = reuse.from_current_index("evaluate", key, index["run_dir"], EVALUATION_FILES)
    if reused:
        return reused
    folder = storage.path(index["run_dir"])
    emb = storage.read_parquet(embedded["path"])
    table = storage.read_parquet(tracks["path"]).set_index("track_key").loc[emb["track_key"]].reset_index()
    embedding = emb.drop(columns="track_key").to_numpy()
    report = evaluation.evaluate(table, embedding, index["metric"], index["hubness"])
    explained = model.explained_variance(storage.read_json(embedded["model"])["embedding"])
    labels = evaluation.labels(table)
    colour = "genre" if "genre" in labels else "folder"
    plots.explained_variance(explained, folder / storage.PLOT_VARIANCE)
    plots.library_map(embedding[:, :2], labels[colour], f"the library by {colour}", folder / storage.PLOT_MAP)
    occurrence = {method: m.pop("k_occurrence") for method, m in report["methods"].items()}
    plots.k_occurrence(occurrence, evaluation.K[0], folder / storage.PLOT_K_OCCURRENCE)
    shown = {
        "explained variance": storage.PLOT_VARIANCE,
        "map": storage.PLOT_MAP,
        "k-occurrence": storage.PLOT_K_OCCURRENCE,
    }
    report |= {"explained_variance": explained}
    storage.write_json(report, folder / storage.EVALUATION)
    storage.write_text(evaluation.markdown(report, explained, shown), folder / storage.EVALUATION_MD)
    figures = evaluation.headline(report)
    log.info(
        "evaluate: precision@5 by folder %.3f (macro %.3f), coverage %.2f, k-occurrence skewness %.2f",
        figures["precision_folder_at_5"],
        figures["precision_folder_at_5_macro"],
        figures["coverage_at_5"],
        figures["k_occurrence_skewness"],
    )
    return {"run_dir": index["run_dir"], "path": str(folder / storage.EVALUATION), **figures, "reuse_key": key}


def _stage_records(run: dict) -> dict:
    """What each stage of this run kept, in pipeline order; the shards' extraction as join summed it up."""
    records = {
        name: storage.read_json(storage.stage_record(run["run_dir"], name)) for name in STAGES if name != "extract"
    }
    records["extract"] = records["join"].pop("extract")
    return {name: records[name] for name in STAGES}


def summarize(run: dict) -> dict:
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


def publish(run: dict, evaluated: dict) -> dict:
    """Write the run summary, then make this run's index (evaluated by `evaluate`) the current one."""
    summary = summarize(run)
    storage.write_json(summary, storage.path(run["run_dir"]) / storage.SUMMARY)
    storage.publish(run["data_dir"], storage.path(evaluated["run_dir"]))
    lock.release(run["data_dir"], storage.run_name(run["run_dir"]))
    log.info(
        "publish: index of %d tracks (%.2f h of audio) is now current; %d extracted, %d reused, %d quarantined",
        summary["tracks_indexed"],
        summary["audio_hours"],
        summary["files_extracted"],
        summary["files_reused"],
        len(summary["quarantined"]),
    )
    return {
        "run_dir": run["run_dir"],
        "tracks_indexed": summary["tracks_indexed"],
        "files_extracted": summary["files_extracted"],
        "quarantined": len(summary["quarantined"]),
    }


def take_lock(data_dir: str, run_id: str, wait_minutes: float = 0.0, pid_holds_run: bool = False) -> dict:
    """The data dir for this run alone until it publishes or fails (`musicrec.lock`); waits for another run.

    `pid_holds_run`: this process runs the whole run (`musicrec run`), so its death frees the lock at once.
    """
    _check_writable(data_dir)
    holder = storage.run_dir(data_dir, run_id).name
    info = lock.acquire(data_dir, holder, wait_s=60.0 * wait_minutes, pid_holds_run=pid_holds_run)
    removed = storage.remove_failed_runs(data_dir)
    if removed:
        names = ", ".join(run.name for run in removed)
        log.info("take_lock: removed the folders of %d runs that failed: %s", len(removed), names)
    return {"data_dir": str(storage.root(data_dir)), "holder": holder, "since": info["acquired_at"]}


def release(data_dir: str, run_id: str) -> bool:
    """Give back the data dir's lock if run `run_id` still holds it (a run that failed or was skipped)."""
    return lock.release(data_dir, storage.run_dir(data_dir, run_id).name)
