"""The pipeline's stages as plain functions over files: what each Airflow task runs.

Each stage reads the files its inputs name and writes Parquet into the run's folder. It returns a
small, JSON-able dict (`run_dir`, the paths it wrote, counts, seconds) that is all the DAG passes on
in XCom, and keeps the same dict in the run folder (`stages/`) for the run summary. As the DAG runs them:

    lock = publishing.take_lock(...)
    run = discover(...)                                                 # inputs checked, the library planned
    shards = [extract_shard(s, ...) for s in shard(run, ...)]           # one mapped task a shard
    meta = clean_metadata(run, ...)                                     # then validated (Great Expectations)
    tracks = join(run, shards, meta)
    embedded = reduce(scale(tracks, ...), ...)
    recordings = duplicates(embedded, tracks)                          # copies of one recording grouped
    index = build_index(embedded, tracks, recordings, ...)
    mixed = mixes(embedded, tracks, index, ...)                        # playlists made of clusters
    evaluated = evaluate(embedded, tracks, index)
    publishing.publish(run, evaluated, mixed)
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import time
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from musicrec import settings
from musicrec.analysis import extract, features
from musicrec.errors import InputError
from musicrec.index import ann, descriptors, embedding, encode, evaluation, neighbours, plots
from musicrec.index import duplicates as copies
from musicrec.index import mixes as clustering
from musicrec.library import discover as discovery
from musicrec.library import metadata, tags
from musicrec.pipeline import changes, inputs, publishing, results
from musicrec.store import lock, storage

log = logging.getLogger("musicrec")

# The stages in the order the run summary lists them.
# Skipped paths (special files, link loops) named in the log and the summary; the rest are counted.
SKIPPED_SHOWN = 20


class TooFewTracks(InputError):
    """Fewer than two tracks could be analysed: there is nothing to index."""


def stage(name: str, of_run: bool = True):
    """Time a stage and keep what it returns in the run folder, for the run summary.

    The stage returns a record with its `run_dir` (`musicrec.pipeline.results`); a shard's extraction also
    names its `shard`. `of_run`: the stage's first argument is a record of the run, whose data dir's lock
    is kept alive while the stage works (discover, which makes the run, has none yet).
    """

    def decorate(fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs) -> dict:
            started = time.monotonic()
            with _holding_lock(args[0]["run_dir"]) if of_run else contextlib.nullcontext():
                result = {**fn(*args, **kwargs), "seconds": round(time.monotonic() - started, 2)}
            record = f"{name}-{result['shard']:04d}" if "shard" in result else name
            storage.write_json(result, storage.stage_record(result["run_dir"], record))
            return result

        return timed

    return decorate


def _holding_lock(run_dir: str) -> contextlib.AbstractContextManager:
    """The data dir's lock kept alive (its heartbeat refreshed) while a stage works on the run."""
    return lock.heartbeat(storage.data_dir_of(run_dir), storage.run_name(run_dir))


@stage("discover", of_run=False)
def discover(
    library: str,
    data_dir: str,
    run_id: str,
    folders: list[str] | None = None,
    full_refresh: bool = False,
    metadata_path: str | None = None,
    index_params: dict | None = None,
) -> results.Run:
    """Check the inputs, scan the library, and choose what to reuse from the last index and what to extract."""
    # Each location resolved once (a local path, or object storage through its connection) for every step below.
    library, data = storage.root(library), storage.root(data_dir)
    metadata_file = storage.root(metadata_path) if metadata_path else None
    folders = discovery.normalize_folders(folders)
    playlists = (index_params or {}).get("playlists_dir")
    inputs.check(library, data, folders, metadata_file, storage.root(playlists) if playlists else None)
    run = storage.new_run_dir(data, run_id)
    plan = inputs.plan(library, data, folders, full_refresh, reused_to=run / storage.REUSED_FEATURES)
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
        "data_dir": str(data),
        "library": str(library),
        "folders": folders,
        "full_refresh": full_refresh,
        "inputs": changes.index_inputs(library, metadata_file, index_params or settings.defaults(".")),
        "worklist": str(storage.write_parquet(scanned, run / storage.WORKLIST)),
        "to_extract": str(storage.write_parquet(todo, run / storage.TO_EXTRACT)),
        "reused_features": str(run / storage.REUSED_FEATURES),
        "still_quarantined": str(storage.write_parquet(still, run / storage.STILL_QUARANTINED)),
        "files_found": len(scanned),
        "files_to_extract": len(todo),
        "files_reused": len(reused),
        "files_still_quarantined": len(still),
        "files_skipped": len(skipped),
        "skipped": skipped.head(SKIPPED_SHOWN).to_dict("records"),
        "warnings": plan["warnings"],
    }


def shard(run: results.Run, files_per_shard: int) -> list[results.Shard]:
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
    shard: results.Shard,
    library: str,
    workers: int | None = None,
    max_minutes: float | None = extract.DEFAULT_MAX_MINUTES,
) -> results.ShardResult:
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
def clean_metadata(run: results.Run, metadata_path: str | None) -> results.Metadata:
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
def join(run: results.Run, shard_results: list[results.ShardResult], meta: results.Metadata) -> results.Tracks:
    """All features of the run (reused and extracted) in one table sorted by track key, and the tracks'
    table beside it (the same rows: descriptive columns, the validated metadata at `meta["path"]`, the
    descriptors). Both are written a block of rows at a time: memory does not grow with the library."""
    folder = storage.path(run["run_dir"])
    shard_results = _of_this_attempt(run, shard_results)
    sources = [run["reused_features"], *(r["features"] for r in shard_results)]
    sources = [s for s in sources if storage.row_count(s)]  # an empty file's columns may have no type
    quarantine = pd.concat(
        [storage.read_parquet(run["still_quarantined"]).reindex(columns=extract.QUARANTINE_COLUMNS)]
        + [storage.read_parquet(r["quarantine"]) for r in shard_results],
        ignore_index=True,
    )
    empty = pa.Table.from_pandas(extract.features_frame([]), preserve_index=False)
    features_path = storage.write_blocks(
        storage.sorted_blocks(sources, "track_key"), folder / storage.FEATURES, None if sources else empty.schema
    )
    quarantine_path = storage.write_parquet(quarantine, folder / storage.QUARANTINE)
    count = storage.row_count(features_path)
    if count < 2:
        raise TooFewTracks(
            f"only {count} track(s) could be analysed ({len(quarantine)} quarantined): an index needs at least 2"
        )
    read = embedding.read_columns(storage.columns(features_path))
    first_copies = embedding.first_copies(storage.read_table(features_path, ["track_key", "content_hash"]))
    meta_table = storage.read_parquet(meta["path"])
    by_key = embedding.metadata_by_key(meta_table)
    blocks = (embedding.join(b, by_key, first_copies) for b in storage.read_blocks(features_path, read))
    path = storage.write_blocks(_typed_blocks(blocks, storage.schema(meta["path"])), folder / storage.TRACKS)
    summed = storage.read_table(path, ["has_metadata", "duration_s"])
    with_metadata = int(pc.sum(summed["has_metadata"]).as_py() or 0)
    log.info("join: %d tracks (%d with metadata), %d quarantined", count, with_metadata, len(quarantine))
    return {
        "run_dir": run["run_dir"],
        "path": str(path),
        "features": str(features_path),
        "quarantine": str(quarantine_path),
        "tracks": count,
        "with_metadata": with_metadata,
        "quarantined": len(quarantine),
        "audio_hours": round(float(pc.sum(summed["duration_s"]).as_py() or 0.0) / 3600, 4),
        "extract": _extraction(shard_results),
    }


def _typed_blocks(blocks, meta_schema: pa.Schema):
    """The tracks' blocks with the first one's schema, where a column of it that has no value in the first
    block takes its type from the metadata (else text): a later block may have values there."""
    schema = None
    for block in blocks:
        if schema is None:
            fields = [
                f.with_type(_known_type(meta_schema, f.name)) if pa.types.is_null(f.type) else f for f in block.schema
            ]
            schema = pa.schema(fields)
        yield block.cast(schema)


def _known_type(schema: pa.Schema, name: str) -> pa.DataType:
    index = schema.get_field_index(name)
    return schema.field(index).type if index >= 0 and not pa.types.is_null(schema.field(index).type) else pa.string()


def _of_this_attempt(run: results.Run, shard_results: list[results.ShardResult]) -> list[results.ShardResult]:
    """The shards that this attempt at the run extracted. A re-run of a run id (a cleared run, a backfill
    that reprocesses its date) with nothing to extract skips the mapped task, and Airflow may still hand
    on what its shards returned in the earlier attempt: those features are in this attempt's plan already."""
    mine = [r for r in shard_results if r.get("attempt") == run["attempt"]]
    if len(mine) < len(shard_results):
        log.info("join: %d shard results of an earlier attempt at this run left out", len(shard_results) - len(mine))
    return mine


def _extraction(shard_results: list[results.ShardResult]) -> dict:
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
def scale(tracks: results.Tracks, metadata_weight: float = 0.0) -> results.Scaled:
    """The standardization of the audio features, and of the metadata features weighted by `metadata_weight`
    (0: audio only), fitted a block of rows at a time into the model file; `reduce` applies it."""
    columns = features.feature_columns()
    key = changes.key(
        [(tracks["features"], ["track_key", *columns]), (tracks["path"], _encoded(tracks))],
        {"metadata_weight": metadata_weight},
        [embedding, encode, features],
    )
    reused = changes.from_current_index("scale", key, tracks["run_dir"], [storage.MODEL])
    if reused:
        return reused
    folder = storage.path(tracks["run_dir"])
    scaler = embedding.Scaler()
    for block in storage.read_blocks(tracks["features"], columns):
        scaler.add(embedding.matrix(block, columns))
    described = storage.read_parquet(tracks["path"], columns=_encoded(tracks))
    encoder = encode.fit(described)
    meta_scaler = embedding.Scaler()
    for start in range(0, len(described), storage.BLOCK_ROWS):
        meta_scaler.add(encode.transform(described.iloc[start : start + storage.BLOCK_ROWS], encoder).to_numpy())
    meta_columns = encode.transform(described.iloc[:0], encoder).columns.tolist()
    model_path = storage.write_json(
        {
            "feature_version": features.FEATURE_VERSION,
            "feature_columns": columns,
            "scaler": scaler.fitted(),
            "metadata": {
                "weight": metadata_weight,
                "columns": meta_columns,
                "encoder": encoder,
                "scaler": meta_scaler.fitted(),
            },
        },
        folder / storage.MODEL,
    )
    return {
        "run_dir": tracks["run_dir"],
        "features": tracks["features"],
        "tracks": tracks["path"],
        "model": str(model_path),
        "columns": len(columns) + (len(meta_columns) if metadata_weight > 0 else 0),
        "metadata_weight": metadata_weight,
        "reuse_key": key,
    }


# The tracks' columns the metadata encoding reads (`musicrec.index.encode`).
ENCODED = ["track_key", "artist", "genre", "year", "duration_s", "play_count"]


def _encoded(tracks: results.Tracks) -> list[str]:
    return [c for c in ENCODED if c in storage.columns(tracks["path"])]


def scaled_blocks(scaled: results.Scaled, model: dict):
    """(track keys, standardized features with the weighted metadata features where they weigh) of the
    tracks, a block of rows at a time; and the features' names, first."""
    columns, meta = model["feature_columns"], model["metadata"]
    yield columns + (meta["columns"] if meta["weight"] > 0 else [])
    described = storage.read_blocks(scaled["tracks"], _encoded({"path": scaled["tracks"]}))
    for block, tracks in zip(storage.read_blocks(scaled["features"], ["track_key", *columns]), described, strict=True):
        z = embedding.scale(embedding.matrix(block, columns), model["scaler"], dtype=np.float32)
        if meta["weight"] > 0:
            encoded = encode.transform(tracks.to_pandas(), meta["encoder"]).to_numpy()
            weighted = embedding.scale(encoded, meta["scaler"], dtype=np.float32) * np.float32(meta["weight"])
            z = np.hstack([z, weighted])
        yield block.column("track_key"), z


def _keyed(keys: pa.Array | pa.ChunkedArray, values: np.ndarray, names: list[str]) -> pa.Table:
    """A table of the track keys and one float column per column of `values`."""
    floats = [pa.array(values[:, j]) for j in range(values.shape[1])]
    return pa.Table.from_arrays([keys, *floats], ["track_key", *names])


@stage("reduce")
def reduce(scaled: results.Scaled, n_components: int) -> results.Embedded:
    """The embedding of the scaled features, a PCA per feature group (`embedding.fit_embedding`) fitted from
    their covariance summed a block at a time, then the tracks projected a block at a time; the fitted
    groups join the scaler in the model file."""
    key = changes.key([], {"n_components": n_components, "scaled": scaled["reuse_key"]}, [embedding])
    reused = changes.from_current_index("reduce", key, scaled["run_dir"], [storage.EMBEDDINGS, storage.MODEL])
    if reused:
        return reused
    folder = storage.path(scaled["run_dir"])
    model = storage.read_json(scaled["model"])
    blocks = scaled_blocks(scaled, model)
    names = next(blocks)
    fitted = embedding.fit_embedding_by_blocks((z for _, z in blocks), names, n_components)
    width = sum(len(g["pca"]["components"]) for g in fitted["groups"])
    projected = (
        _keyed(keys, embedding.embed(z, names, fitted, dtype=np.float32), embedding.component_columns(width))
        for keys, z in itertools.islice(scaled_blocks(scaled, model), 1, None)
    )
    path = storage.write_blocks(projected, folder / storage.EMBEDDINGS)
    model_path = storage.write_json(model | {"embedding": fitted}, scaled["model"])
    explained = {group: round(float(np.sum(r)), 4) for group, r in embedding.explained_variance(fitted).items()}
    log.info(
        "reduce: %d features -> %d components: %s",
        len(names),
        width,
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
        "components": width,
        "explained_variance": explained,
        "reuse_key": key,
    }


@stage("duplicates")
def duplicates(embedded: results.Embedded, tracks: results.Tracks, metric: str = "cosine") -> results.Duplicates:
    """Each track's recording (`musicrec.index.duplicates`): files of the same recording grouped, the
    canonical one named, with the evidence; pairs judged by an earlier run are not compared again."""
    compared = ["track_key", "duration_s", "content_hash", "feature_version"]
    key = changes.key(
        [embedded["path"], (tracks["features"], compared), (tracks["path"], ["track_key", "album", "artist"])],
        {"metric": metric},
        [copies],
    )
    folder = storage.path(embedded["run_dir"])
    reused = changes.from_current_index("duplicates", key, embedded["run_dir"], [storage.DUPLICATES])
    if reused:
        return reused
    described = _track_rows(tracks["features"], ["track_key", "duration_s", "content_hash"], _keys(embedded["path"]))
    durations = described.column("duration_s").to_numpy()
    contents = evaluation.encoded(described.column("content_hash"))  # a code a track, each hash held once
    hashes = contents.codes
    del described  # its strings are not held beside the graph
    pa.default_memory_pool().release_unused()
    keys, vectors, index, saved = _indexed_embedding(embedded["path"], metric)
    pairs = copies.candidate_pairs(vectors, durations, metric, index)
    if index is not None and saved is None:  # build_index searches it too
        _save_index(index, folder)
    del vectors, index
    pairs = pairs[hashes[pairs[:, 0]] != hashes[pairs[:, 1]]]  # identical bytes need no evidence
    prints = _fingerprints(tracks["features"], keys, np.unique(pairs))
    pair_hashes = contents.named(pairs.ravel()).to_numpy()
    evidence, judged = _judged_pairs(pair_hashes.reshape(-1, 2), durations, prints, pairs, embedded["run_dir"])
    same = copies.is_same(evidence)
    recording = copies.recordings(len(keys), pairs[same], hashes)
    links = evidence.assign(a=pairs[:, 0], b=pairs[:, 1])[same]
    table = _recordings_table(tracks, keys, recording, links)
    path = storage.write_blocks(
        (table.slice(start, storage.BLOCK_ROWS) for start in range(0, table.num_rows, storage.BLOCK_ROWS)),
        folder / storage.DUPLICATES,
        table.schema,
    )
    members = np.bincount(recording)[recording] > 1
    log.info(
        "duplicates: %d recording(s) held by %d files (%d pairs compared, %d judged by an earlier run)",
        len(np.unique(recording[members])),
        int(members.sum()),
        len(pairs),
        len(pairs) - judged,
    )
    return {
        "run_dir": embedded["run_dir"],
        "path": str(path),
        "groups": len(np.unique(recording[members])),
        "tracks_in_groups": int(members.sum()),
        "pairs_compared": int(len(pairs)),
        "pairs_reused": int(len(pairs) - judged),
        "reuse_key": key,
    }


def _fingerprints(path: str, keys: pa.Array, rows: np.ndarray) -> dict[int, bytes]:
    """The fingerprints of the tracks `rows` (of `keys`) by row: only the tracks of candidate pairs have
    theirs read."""
    if not len(rows):
        return {}
    wanted = keys.take(rows)
    found = storage.rows_of(path, "track_key", wanted.to_pylist(), [features.FINGERPRINT])
    at = pc.index_in(found.column("track_key").cast(pa.string()), value_set=wanted).to_numpy(zero_copy_only=False)
    prints = found.column(features.FINGERPRINT).to_pylist()
    return dict(zip(rows[at].tolist(), prints, strict=True))


def _judged_pairs(
    hashes: np.ndarray, durations: np.ndarray, prints: dict[int, bytes], pairs: np.ndarray, run_dir: str
) -> tuple[pd.DataFrame, int]:
    """The evidence of each candidate pair (PAIR_COLUMNS but the hashes; `hashes`: the pair's content hashes),
    from the current index's pairs where they were judged there, else by comparing fingerprints; and how
    many were compared now. Every pair's evidence is kept in the run for the next."""
    hashes = np.sort(hashes.astype(str), axis=1)
    asked = pd.DataFrame({"hash_a": hashes[:, 0], "hash_b": hashes[:, 1]}, dtype=str)
    current = storage.current_dir(storage.data_dir_of(run_dir))
    known = pd.DataFrame(columns=copies.PAIR_COLUMNS)
    if current is not None and (current / storage.DUPLICATE_PAIRS).exists():
        known = storage.read_parquet(current / storage.DUPLICATE_PAIRS)
    if list(known.columns) != copies.PAIR_COLUMNS:  # judged by other rules: judged again
        known = pd.DataFrame(columns=copies.PAIR_COLUMNS)
    known = known.astype({"hash_a": str, "hash_b": str})
    evidence = asked.merge(known, on=["hash_a", "hash_b"], how="left")
    todo = np.flatnonzero(evidence["bit_error_rate"].isna().to_numpy())
    judged = [copies.judge(prints.get(a), prints.get(b), durations[a], durations[b]) for a, b in pairs[todo]]
    if judged:
        evidence.loc[todo, copies.PAIR_COLUMNS[2:]] = pd.DataFrame(judged, index=todo)[copies.PAIR_COLUMNS[2:]]
    evidence = evidence.astype({"same": bool, "bit_error_rate": float, "offset_s": float, "overlap_s": float})
    kept = pd.concat([known, evidence], ignore_index=True).drop_duplicates(["hash_a", "hash_b"], keep="last")
    storage.write_parquet(kept[copies.PAIR_COLUMNS], storage.path(run_dir) / storage.DUPLICATE_PAIRS)
    return evidence[copies.PAIR_COLUMNS[2:]], len(todo)


def _recordings_table(tracks: results.Tracks, keys: pa.Array, recording: np.ndarray, links: pd.DataFrame) -> pa.Table:
    """duplicates.parquet: each track's recording, whether it is the canonical member, which one is, and
    the evidence that joined it to its group (none for the canonical member or a track alone). Only the
    tracks of groups are read and ranked (`copies.canonical_order`): every other track is its own."""
    n = len(keys)
    grouped = np.flatnonzero(np.bincount(recording, minlength=1)[recording] > 1)
    canonical_row, evidence = np.arange(n), np.full((n, len(copies.EVIDENCE)), np.nan)
    if len(grouped):
        members = _track_rows(tracks["features"], ["track_key", "duration_s", "size_bytes"], keys, grouped)
        named = _track_rows(tracks["path"], ["track_key", "album", "artist"], keys, grouped)
        table = members.to_pandas().assign(
            album=named.column("album").to_pandas(), artist=named.column("artist").to_pandas()
        )
        table = table.set_axis(grouped).assign(recording=recording[grouped])
        albums = storage.read_table(tracks["path"], ["album", "artist"])
        order = copies.canonical_order(table, copies.compilations(albums))
        del albums
        best = table.loc[order].drop_duplicates("recording").reset_index().set_index("recording")["index"]
        table["canonical_row"] = table["recording"].map(best)
        for link in links.itertuples():  # each member's evidence: the pair linking it to its canonical one, else any
            for member, other in ((link.a, link.b), (link.b, link.a)):
                if member == table.at[member, "canonical_row"]:
                    continue
                if other == table.at[member, "canonical_row"] or np.isnan(evidence[member]).all():
                    evidence[member] = [link.bit_error_rate, link.offset_s, link.overlap_s]
        canonical_row[grouped] = table["canonical_row"].to_numpy()
    columns = {
        "track_key": keys,
        "recording": pa.array(recording),
        "canonical": pa.array(canonical_row == np.arange(n)),
        "canonical_key": keys.take(canonical_row),
    }
    return pa.table(columns | {name: evidence[:, j] for j, name in enumerate(copies.EVIDENCE)})


@stage("build_index")
def build_index(
    embedded: results.Embedded,
    tracks: results.Tracks,
    recordings: results.Duplicates,
    n_neighbors: int,
    metric: str,
    hubness: str = "none",
) -> results.Index:
    """Each track's nearest neighbours in the embedding; files of the same recording are never each other's."""
    key = changes.key(
        [embedded["path"], (recordings["path"], ["track_key", "recording", "canonical_key"])],
        {"n_neighbors": n_neighbors, "metric": metric, "hubness": hubness},
        [neighbours, ann],
    )
    reused = changes.from_current_index(
        "build_index", key, embedded["run_dir"], [storage.RECOMMENDATIONS], optional=(storage.ANN_INDEX,)
    )
    if reused:
        return reused
    started = time.monotonic()
    keys, vectors, index, saved = _indexed_embedding(embedded["path"], metric)
    built = time.monotonic() - started
    recording, canonical = _recordings(recordings["path"], keys)
    found = neighbours.find(vectors, n_neighbors, metric, groups=recording, hubness=hubness, index=index)
    del vectors, index
    folder = storage.path(embedded["run_dir"])
    # the file kept of a recording stands for it, whichever of its files came nearest
    recs = neighbours.table_blocks(keys, found, shown=canonical, rows=storage.BLOCK_ROWS)
    path = storage.write_blocks(recs, folder / storage.RECOMMENDATIONS)
    search = found.search
    if found.index is not None:  # saved, so that queries of new files search it rather than rebuild it
        search = search | {"build_seconds": round(built, 2), "path": saved or _save_index(found.index, folder)}
    log.info("build_index: %d tracks, %s", len(keys), _search_line(search))
    return {
        "run_dir": embedded["run_dir"],
        "path": str(path),
        "tracks": len(keys),
        "neighbours": int(found.rows.shape[1]),
        "metric": metric,
        "hubness": hubness,
        "search": search,
        "reuse_key": key,
    }


@stage("mixes")
def mixes(
    embedded: results.Embedded,
    tracks: results.Tracks,
    index: results.Index,
    recordings: results.Duplicates,
    count: int = 0,
) -> results.Mixes:
    """The library clustered into mixes (`musicrec.index.mixes`), as a table and as M3U8 files in the run."""
    described = ["track_key", "folder", *[c for c in features.TAG_COLUMNS if c in storage.columns(tracks["path"])]]
    key = changes.key(
        [
            embedded["path"],
            (tracks["path"], described),
            (recordings["path"], ["track_key", "recording", "canonical_key"]),
        ],
        {"mixes": count, "metric": index["metric"]},
        [clustering],
    )
    folder = storage.path(embedded["run_dir"])
    reused = changes.from_current_index("mixes", key, embedded["run_dir"], [storage.MIXES])
    if not reused:
        keys, vectors = _embedding(embedded["path"])
        recording, canonical = _recordings(recordings["path"], keys)
        named = _track_rows(tracks["path"], described, keys, clustering.naming_rows(len(keys))).to_pandas()
        # the file kept of a recording stands for it; keys in Arrow's memory, not one Python string a track
        shown = keys.take(pa.array(canonical)).to_pandas(types_mapper=pd.ArrowDtype)
        made = clustering.make(
            shown,
            vectors,
            pd.Series(recording),
            descriptors.tag_probabilities(named),
            named["folder"],
            index["metric"],
            count,
        )
        storage.write_parquet(made, folder / storage.MIXES)
    written = publishing.write_mixes(folder, folder / storage.MIX_PLAYLISTS)
    names = [name for name, _ in written]
    log.info("mixes: %d mixes of %d tracks in all: %s", len(written), sum(n for _, n in written), ", ".join(names))
    if reused:
        return reused
    return {
        "run_dir": embedded["run_dir"],
        "path": str(folder / storage.MIXES),
        "mixes": len(written),
        "tracks": sum(n for _, n in written),
        "names": names,
        "reuse_key": key,
    }


def _keys(path: str) -> pa.Array:
    return storage.read_table(path, ["track_key"]).column("track_key").combine_chunks().cast(pa.string())


def _embedding(path: str) -> tuple[pa.Array, np.ndarray]:
    """The embedding's track keys and its vectors (float32), read a block at a time into one array: the
    vectors are held once, not also as the Arrow table they are read from."""
    keys, components = _keys(path), storage.columns(path)[1:]
    vectors, start = np.empty((len(keys), len(components)), dtype=np.float32), 0
    for block in storage.read_blocks(path, components):
        vectors[start : start + block.num_rows] = embedding.matrix(block, components, dtype=np.float32)
        start += block.num_rows
    return keys, vectors


def _indexed_embedding(path: str, metric: str) -> tuple[pa.Array, np.ndarray, object, str | None]:
    """`_embedding`, its approximate index where the library is large enough for one (else None), and where
    that index is saved in the run (None where it was built here): the one the run's duplicates stage saved,
    else built a block of rows at a time. The vectors are then the index's own (`ann.stored`), held once."""
    keys = _keys(path)
    if len(keys) < neighbours.EXACT_BELOW:
        return (*_embedding(path), None, None)
    saved = storage.path(path).parent / storage.ANN_INDEX
    if saved.exists():
        with storage.local_copy(saved) as local:
            index = ann.load(local)
        if ann.fits(index, len(keys), metric):
            return keys, ann.stored(index), index, str(saved)
    components = storage.columns(path)[1:]
    blocks = (embedding.matrix(b, components, np.float32) for b in storage.read_blocks(path, components))
    index = ann.build_from_blocks(blocks, metric)
    return keys, ann.stored(index), index, None


def _save_index(index, folder) -> str:
    return str(storage.atomic_write(folder / storage.ANN_INDEX, lambda tmp: ann.save(index, tmp)))


def _track_rows(path: str, columns: list[str], keys: pa.Array, rows: np.ndarray | None = None) -> pa.Table:
    """The `columns` (track_key among them) of a table that holds the embedding's tracks in its order (the
    tracks' table, the embedding), at the rows `rows` (sorted; all where None); read a block at a time,
    only those rows kept."""
    wanted = None
    if rows is not None:
        wanted = np.zeros(len(keys), dtype=bool)
        wanted[rows] = True
    parts, start = [], 0
    for block in storage.read_blocks(path, columns):
        if (
            not block.column("track_key")
            .cast(pa.string())
            .equals(pa.chunked_array([keys[start : start + block.num_rows]]))
        ):
            raise ValueError(f"{path}: its tracks are not the embedding's, in its order")
        parts.append(block if wanted is None else block.filter(wanted[start : start + block.num_rows]))
        start += block.num_rows
    if start != len(keys):
        raise ValueError(f"{path}: its tracks are not the embedding's, in its order")
    return pa.concat_tables(parts) if parts else storage.read_table(path, columns)


def _sample(n: int, size: int) -> np.ndarray:
    """Sorted rows of a random sample of `size` of n tracks, the same on every run; all of them up to `size`."""
    return neighbours.spread_rows(n, size, seed=4)


def _recordings(path: str, keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Of the tracks `keys` (the embedding's, in its order, as duplicates writes them): each one's recording
    number, and the row of the file kept of it (the recording's canonical member)."""
    table = _track_rows(path, ["track_key", "recording", "canonical"], keys)
    recording = table.column("recording").to_numpy().astype(np.int64)
    kept = table.column("canonical").to_numpy(zero_copy_only=False).astype(bool)
    row_of = np.zeros(int(recording.max()) + 1 if len(recording) else 0, dtype=np.int64)
    row_of[recording[kept]] = np.flatnonzero(kept)
    return recording, row_of[recording]


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
def evaluate(embedded: results.Embedded, tracks: results.Tracks, index: results.Index) -> results.Evaluated:
    """Precision by label, coverage and hubness of the index, for each hubness setting, with plots."""
    breadth = index["search"].get("ef_search", 0)  # the approximate index's, whose lists are evaluated
    key = changes.key(
        [embedded["path"], tracks["path"]],
        {"metric": index["metric"], "hubness": index["hubness"], "breadth": breadth},
        [evaluation, plots, neighbours, ann],
    )
    reused = changes.from_current_index("evaluate", key, index["run_dir"], EVALUATION_FILES)
    if reused:
        return reused
    folder = storage.path(index["run_dir"])
    keys = _keys(embedded["path"])
    table = _track_rows(tracks["path"], evaluation.READ, keys)
    labels = evaluation.labels(table)  # every key split once, for the figures and the map
    table = table.select(["track_key", "content_hash"])  # the labels' strings not held beside the graph
    pa.default_memory_pool().release_unused()
    _, vectors, ann_index, _ = _indexed_embedding(embedded["path"], index["metric"])
    report = evaluation.evaluate(table, vectors, index["metric"], index["hubness"], ann_index, breadth, labels)
    del vectors, ann_index
    tag_columns = [c for c in features.TAG_COLUMNS if c in storage.columns(tracks["path"])]
    tagged = _track_rows(
        tracks["path"], ["track_key", "genre", *tag_columns], keys, _sample(len(keys), evaluation.TAG_SAMPLE)
    )
    report["tags"] = evaluation.tag_agreement(tagged.to_pandas())
    explained = embedding.explained_variance(storage.read_json(embedded["model"])["embedding"])
    colour = "genre" if "genre" in labels else "folder"
    on_map = _sample(len(keys), evaluation.MAP_POINTS)
    first_two = storage.columns(embedded["path"])[:3]
    coords = embedding.matrix(_track_rows(embedded["path"], first_two, keys, on_map), first_two[1:], np.float32)
    plots.explained_variance(explained, folder / storage.PLOT_VARIANCE)
    plots.library_map(coords, labels[colour].named(on_map), f"the library by {colour}", folder / storage.PLOT_MAP)
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
