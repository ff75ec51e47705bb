"""The index stages by library size: each stage's time and memory, the approximate index's recall,
how both grow with the library; and discovery of a large library.

    python benchmarks/scale.py                          # 10k, 100k and 1M tracks; discovery of 200k files
    python benchmarks/scale.py --sizes 2000000 --crossover --files 0 --libraries 0 --pca 0

Synthetic features stand in for extraction: the shards' Parquet files that extraction would write (the
real columns and types, the current feature count; empty fingerprints), with clusters so that neighbours
mean something. Each stage of the DAG after extraction (join, scale, reduce, duplicates, build_index,
mixes, evaluate) runs the pipeline's own function in a fresh process, timed, with that process's peak
RSS; publishing is a pointer swap. The sizes measured are kept in benchmarks/scale.json with the code
version, so that sizes measured in separate runs (a long one in the background) join one table when the
code is the same. Also:
- the crossover: exact against approximate search (index, recall measurement and search) on embeddings
  of growing size, to set `neighbours.EXACT_BELOW`;
- PCA from the covariance matrix against a full SVD (float64) on 100,000 tracks;
- the libraries measured for the approximate index (faiss, hnswlib, usearch), where installed;
- discovery of a library of empty audio-named files (every file stat'ed once, none opened).
Writes benchmarks/SCALE.md (or --markdown) and, from two sizes, benchmarks/scale_growth.png.
"""

from __future__ import annotations

import argparse
import builtins
import concurrent.futures
import datetime as dt
import json
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from musicrec import settings
from musicrec.analysis import extract, features
from musicrec.index import ann, neighbours
from musicrec.pipeline import publishing, stages
from musicrec.store import storage

HERE = Path(__file__).resolve().parent
DEFAULTS = settings.defaults(HERE.parent)
SHARD_ROWS = 4000  # 250 shards for a million tracks, under discover.MAX_SHARDS
LATENT = 32  # dimensions of the synthetic tracks' structure (24 components then explain about 0.8)
TRACKS_PER_CLUSTER = 200
STAGES = ("join", "scale", "reduce", "duplicates", "build_index", "mixes", "evaluate")


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def in_child(fn, *args):
    """fn(*args) in a fresh spawned process: (its result, seconds, its peak RSS in GiB)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_timed, fn, *args).result()


def _timed(fn, *args):
    started = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - started, peak_rss_gib()


# --- synthetic shards -----------------------------------------------------------------------------


def write_shards(run_dir: Path, n: int, seed: int = 0) -> list[dict]:
    """The shards' feature tables extraction would write for n tracks, and their (empty) quarantines."""
    columns = features.feature_columns()
    rng = np.random.default_rng(seed)
    clusters = max(2, n // TRACKS_PER_CLUSTER)
    centres = rng.normal(size=(clusters, LATENT)) * 2.0
    mixing = rng.normal(size=(LATENT, len(columns)))
    units = np.exp(rng.uniform(-3, 7, size=len(columns)))  # features in their own units (Hz, ratios, dB)
    template = extract.features_frame([])
    results = []
    for index, start in enumerate(range(0, n, SHARD_ROWS)):
        rows = np.arange(start, min(n, start + SHARD_ROWS))
        latent = centres[rng.integers(0, clusters, len(rows))] + rng.normal(size=(len(rows), LATENT))
        values = (latent @ mixing + rng.normal(scale=LATENT**0.5, size=(len(rows), len(columns)))) * units
        folder = [f"folder{r // 1000:04d}" for r in rows]
        described = pd.DataFrame(
            {
                "track_key": [f"{f}/track{r:07d}.ogg" for f, r in zip(folder, rows, strict=True)],
                "folder": folder,
                "file": [f"track{r:07d}.ogg" for r in rows],
                "duration_s": rng.uniform(60, 420, len(rows)),
                "analysed_s": 30.0,
                "truncated": False,
                "is_silent": False,
                "feature_version": features.FEATURE_VERSION,
                "size_bytes": rng.integers(1 << 20, 1 << 24, len(rows)),
                "mtime_ns": 1_700_000_000 * 10**9 + rows,
                "content_hash": [f"{r:016x}" for r in rows],
            }
        )
        table = pd.concat([described, pd.DataFrame(values, columns=columns)], axis=1)
        for name in template.columns.difference(table.columns):  # descriptors, tags and the fingerprint
            table[name] = b"" if name == features.FINGERPRINT else rng.uniform(0, 1, len(rows))
        table = table[template.columns]
        files = storage.shard_files(run_dir, index)
        storage.write_parquet(table.astype(template.dtypes.to_dict()), files["features"])
        storage.write_parquet(pd.DataFrame(columns=extract.QUARANTINE_COLUMNS), files["quarantine"])
        results.append(
            {"run_dir": str(run_dir), "features": str(files["features"]), "quarantine": str(files["quarantine"])}
        )
    return results


def prepare_run(root: Path, n: int) -> tuple[dict, list[dict], dict]:
    """A run folder as discover, extraction and clean_metadata leave it: (run, shard results, metadata)."""
    data_dir = root / "data"
    run_dir = storage.run_dir(data_dir, f"scale_{n}")
    empty = extract.features_frame([])
    run = {
        "run_dir": str(run_dir),
        "attempt": "scale",
        "reused_features": str(storage.write_parquet(empty, run_dir / storage.REUSED_FEATURES)),
        "still_quarantined": str(
            storage.write_parquet(pd.DataFrame(columns=extract.QUARANTINE_COLUMNS), run_dir / storage.STILL_QUARANTINED)
        ),
    }
    shards = [
        r
        | {
            "shard": i,
            "attempt": "scale",
            "seconds": 0.0,
            "extracted": SHARD_ROWS,
            "quarantined": 0,
            "audio_hours": 0.0,
        }
        for i, r in enumerate(write_shards(run_dir, n))
    ]
    meta = {
        "path": str(
            storage.write_parquet(
                pd.DataFrame(columns=["folder", "file", "track_key"]), run_dir / storage.METADATA_CLEAN
            )
        )
    }
    return run, shards, meta


def index_stages(root: Path, n: int, n_components: int, n_neighbors: int, hubness: str) -> dict:
    """The index stages of n synthetic tracks as the DAG runs them (join, scale, reduce, duplicates,
    build_index, mixes, evaluate), each in its own process, then publish."""
    publishing.take_lock(str(root / "data"), f"scale_{n}")  # first: it removes the folders of unfinished runs
    started = time.monotonic()
    run, shards, meta = prepare_run(root, n)
    generated = time.monotonic() - started
    timings = {}
    tracks, timings["join"] = _stage(stages.join, run, shards, meta)
    scaled, timings["scale"] = _stage(stages.scale, tracks)
    embedded, timings["reduce"] = _stage(stages.reduce, scaled, n_components)
    recordings, timings["duplicates"] = _stage(stages.duplicates, embedded, tracks)
    index, timings["build_index"] = _stage(
        stages.build_index, embedded, tracks, recordings, n_neighbors, "cosine", hubness
    )
    _, timings["mixes"] = _stage(stages.mixes, embedded, tracks, index, recordings)
    _, timings["evaluate"] = _stage(stages.evaluate, embedded, tracks, index)
    started = time.monotonic()
    storage.publish(root / "data", Path(run["run_dir"]))
    timings["publish"] = {"seconds": time.monotonic() - started, "peak_rss_gib": peak_rss_gib()}
    publishing.release(str(root / "data"), f"scale_{n}")
    size = sum(f.stat().st_size for f in Path(run["run_dir"]).glob("*") if f.is_file())
    return {
        "tracks": n,
        "features": len(features.feature_columns()),
        "generated_s": generated,
        "stages": timings,
        "search": index["search"],
        "explained_variance": embedded["explained_variance"],
        "run_bytes": size,
    }


def _explained(by_group: dict[str, float]) -> str:
    return ", ".join(f"{group} {share:.3f}" for group, share in by_group.items())


def _stage(fn, *args) -> tuple[dict, dict]:
    result, seconds, rss = in_child(fn, *args)
    print(f"  {fn.__name__}: {seconds:.1f} s, peak RSS {rss:.2f} GiB", flush=True)
    return result, {"seconds": seconds, "peak_rss_gib": rss}


# --- exact against approximate ------------------------------------------------------------------------


def embedding(n: int, dims: int = 24, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(2, n // TRACKS_PER_CLUSTER), dims)) * np.linspace(3, 0.5, dims)
    noise = rng.normal(size=(n, dims)) * np.linspace(1.5, 0.3, dims)
    return (centres[rng.integers(0, len(centres), n)] + noise).astype(np.float32)


def crossover_point(n: int, k: int) -> dict:
    x = embedding(n)
    neighbours.find(x[:100], k, "cosine", exact_below=0)  # imports and thread pools started before timing
    started = time.monotonic()
    exact = neighbours.find(x, k, "cosine", exact_below=n + 1)
    exact_s = time.monotonic() - started
    started = time.monotonic()
    approx = neighbours.find(x, k, "cosine", exact_below=0)
    approx_s = time.monotonic() - started
    return {
        "tracks": n,
        "exact_s": exact_s,
        "approximate_s": approx_s,
        "recall_measured": approx.search[f"recall_at_{k}"],
        "recall_all": neighbours.recall_at_k(approx.rows, exact.rows),
        "ef_search": approx.search["ef_search"],
    }


def pca_comparison(n: int, root: Path) -> dict:
    """PCA as `reduce` fits it (covariance, float32) against a full SVD in float64, on n synthetic tracks."""
    from scipy.linalg import subspace_angles
    from sklearn.decomposition import PCA

    from musicrec.index import embedding

    columns = features.feature_columns()
    run, shards, _ = prepare_run(root, n)
    x = embedding.matrix(storage.read_dataset([s["features"] for s in shards], columns), columns)
    z = embedding.scale(x, embedding.fit_scaler(x))
    started = time.monotonic()
    full = PCA(n_components=24, svd_solver="full").fit(z)
    full_s = time.monotonic() - started
    started = time.monotonic()
    ours = embedding.fit_pca(z.astype(np.float32), 24)
    ours_s = time.monotonic() - started
    angles = subspace_angles(full.components_.T, np.asarray(ours["components"]).T)
    return {
        "tracks": n,
        "full_svd_s": full_s,
        "covariance_s": ours_s,
        "explained_full": float(full.explained_variance_ratio_.sum()),
        "explained_covariance": float(np.sum(ours["explained_variance_ratio"])),
        "largest_angle_deg": float(np.degrees(angles.max())),
    }


def libraries(n: int, k: int) -> list[dict]:
    """faiss, hnswlib and usearch HNSW (M=16, construction breadth 64, 2 threads) on the same vectors."""
    x = embedding(n)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = np.random.default_rng(2).choice(n, 1000, replace=False)
    sims = x[queries] @ x.T
    sims[np.arange(len(queries)), queries] = -np.inf
    truth = np.argsort(-sims, axis=1)[:, :k]
    rows = []
    for name, build in (("faiss", _faiss), ("hnswlib", _hnswlib), ("usearch", _usearch)):
        try:
            started = time.monotonic()
            search = build(x)
        except ImportError:
            continue
        built = time.monotonic() - started
        for ef in (32, 64):
            started = time.monotonic()
            found = search(x, k + 1, ef)
            searched = time.monotonic() - started
            hits = [
                len(set(f[f != q][:k]) & set(t)) / k for f, q, t in zip(found[queries], queries, truth, strict=True)
            ]
            rows.append(
                {"library": name, "build_s": built, "ef": ef, "search_all_s": searched, "recall": float(np.mean(hits))}
            )
    return rows


def _faiss(x):
    import faiss

    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(x.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(x)

    def search(q, k, ef):
        return index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=ef))[1]

    return search


def _hnswlib(x):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=x.shape[1])
    index.init_index(max_elements=len(x), M=16, ef_construction=64, random_seed=0)
    index.set_num_threads(2)
    index.add_items(x, np.arange(len(x)))

    def search(q, k, ef):
        index.set_ef(ef)
        return index.knn_query(q, k=k)[0]

    return search


def _usearch(x):
    from usearch.index import Index

    index = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=64)
    index.add(np.arange(len(x)), x, threads=2)

    def search(q, k, ef):
        index.expansion_search = ef
        return index.search(q, k, threads=2).keys

    return search


# --- HNSW against IVF-PQ ------------------------------------------------------------------------------

IVF_LISTS = 4096  # inverted lists of the IVF-PQ index
IVF_TRAIN = 200_000  # tracks its coarse quantizer and product quantizer are trained on
PQ_BYTES = 48  # bytes a track in the IVF-PQ index (two dimensions a byte at 96)
IVF_DEPTHS = (30, 100)  # IVF-PQ candidates re-scored exactly per query, fewest first
IVF_PROBES = (8, 16, 32, 64)  # lists visited, fewest first, until recall is reached
TIMED_QUERIES = 100_000  # queries whose search is timed, the time then given for every track


def compare_indexes(path: str, kind: str, k: int = 10) -> dict:
    """One approximate index over a run's embedding ("hnsw" as the pipeline builds it, or "ivfpq"), searched
    as build_index searches (candidates ranked by exact distances, with mutual proximity): its build time, size,
    the narrowest search that reaches the target recall on the pipeline's 1,000 queries, and the time to
    search every track at that setting. Run in a fresh process each: its peak RSS is the index's cost."""
    import faiss

    from musicrec.index.embedding import matrix

    components = storage.columns(path)[1:]
    started = time.monotonic()
    if kind == "hnsw":  # as build_index: built a block at a time, the index's own copy of the rows the only one
        blocks = (matrix(b, components, np.float32) for b in storage.read_blocks(path, components))
        index = ann.build_from_blocks(blocks, "cosine")
        x = ann.stored(index)
    else:  # the rows held beside the index: its candidates are re-scored from them
        x = stages._embedding(path)[1]
        for rows in neighbours.blocks(len(x), x.shape[1]):  # unit length in place: no second copy
            x[rows] /= np.maximum(np.linalg.norm(x[rows], axis=1, keepdims=True), np.float32(1e-12))
        index = faiss.IndexIVFPQ(
            faiss.IndexFlatIP(x.shape[1]), x.shape[1], IVF_LISTS, PQ_BYTES, 8, faiss.METRIC_INNER_PRODUCT
        )
        index.train(x[neighbours.spread_rows(len(x), IVF_TRAIN, seed=2)])
        for rows in neighbours.blocks(len(x), 1 << 10):
            index.add(x[rows])
    built = time.monotonic() - started
    n = len(x)
    search = neighbours.searcher(x, k, "cosine", None, DEFAULTS["hubness"])
    sample = neighbours.spread_rows(n, neighbours.RECALL_SAMPLE, seed=1)
    truth, _ = search.exact(sample)
    if kind == "hnsw":
        tried = [
            (f"breadth {search.depth(ef)}", search.depth(ef), faiss.SearchParametersHNSW(efSearch=search.depth(ef)))
            for ef in ann.EF_SEARCH
        ]
    else:
        tried = [(f"{p} lists", depth, faiss.SearchParametersIVF(nprobe=p)) for depth in IVF_DEPTHS for p in IVF_PROBES]

    def found(rows, depth, params):
        scores, ids = index.search(x[rows], depth, params=params)
        if kind == "hnsw":  # exact distances: the graph keeps the vectors
            return search.rescored(rows, ids, ann.metric_distances(index, scores))[0]
        return search.rescored(rows, ids)[0]  # scored again from the rows: the codes' distances are approximate

    for choice in tried:  # the narrowest that reaches the recall (else the widest)
        setting, depth, params = choice
        recall = neighbours.recall_at_k(found(sample, depth, params), truth)
        if recall >= neighbours.TARGET_RECALL:
            break
    timed = neighbours.spread_rows(n, TIMED_QUERIES, seed=3)
    started = time.monotonic()
    for rows in neighbours.blocks(len(timed), depth * x.shape[1]):
        found(timed[rows], depth, params)
    searched = (time.monotonic() - started) * n / len(timed)
    size = _saved_size(index)
    return {
        "index": kind,
        "tracks": n,
        "build_s": built,
        "index_bytes": size,
        "setting": setting,
        "candidates": depth,
        "recall": recall,
        "search_all_s": searched,
    }


def _saved_size(index) -> int:
    """The bytes faiss writes for `index`, counted as they are written, not stored."""
    import faiss

    written = [0]

    def count(chunk: bytes) -> int:
        written[0] += len(chunk)
        return len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return written[0]


# --- discovery ------------------------------------------------------------------------------------------


def make_library(root: Path, files: int, per_folder: int = 1000) -> Path:
    library = root / "library"
    for start in range(0, files, per_folder):
        folder = library / f"album{start // per_folder:04d}"
        folder.mkdir(parents=True)
        for i in range(start, min(files, start + per_folder)):
            (folder / f"track{i:07d}.mp3").touch()
    return library


def discovery(library: Path, data_dir: Path) -> dict:
    """discover and shard of the library, counting file stats and opens of the library's files."""
    counts = {"stat": 0, "open": 0}
    real_stat, real_open = os.stat, builtins.open

    def stat(path, *args, **kwargs):
        counts["stat"] += str(path).startswith(str(library))
        return real_stat(path, *args, **kwargs)

    def opened(file, *args, **kwargs):
        counts["open"] += str(file).startswith(str(library))
        return real_open(file, *args, **kwargs)

    os.stat, builtins.open = stat, opened
    try:
        started = time.monotonic()
        run = stages.discover(str(library), str(data_dir), "discovery")
        discovered = time.monotonic() - started
        started = time.monotonic()
        shards = stages.shard(run, 100)
        sharded = time.monotonic() - started
    finally:
        os.stat, builtins.open = real_stat, real_open
    return {
        "files": run["files_found"],
        "discover_s": discovered,
        "shard_s": sharded,
        "stats": counts["stat"],
        "opens": counts["open"],
        "shards": len(shards),
        "xcom_discover_bytes": len(json.dumps(run)),
        "xcom_shards_bytes": len(json.dumps(shards)),
    }


# --- report -----------------------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    lines = [
        "# Library size: the index stages, the approximate index, discovery",
        "",
        f"`python benchmarks/scale.py {results['args']}`, {results['date']}, {results['machine']}, code "
        f"{results['version']}. One run a size; "
        "each stage in a fresh process, its peak RSS that process's (imports included).",
        "",
        "## Index stages, synthetic features",
        "",
        f"{results['features']} features a track, in shards of {SHARD_ROWS} rows; the run's defaults: "
        f"{DEFAULTS['n_components']} components per feature group, 10 neighbours, cosine, hubness reduction "
        f"`{DEFAULTS['hubness']}`; neighbours exact below "
        f"{neighbours.EXACT_BELOW:,} tracks, approximate (faiss HNSW) above, recall measured on "
        f"{neighbours.RECALL_SAMPLE} queries each build.",
        "",
        "| tracks | " + " | ".join(STAGES) + " | publish | end to end | peak RSS (max) | search | "
        "recall@10 | explained variance | run folder |",
        "|---|" + "---|" * len(STAGES) + "---|---|---|---|---|---|---|",
    ]
    for r in results["sizes"]:
        s = r["stages"]
        total = sum(v["seconds"] for v in s.values())
        peak = max(v["peak_rss_gib"] for v in s.values())
        search = r["search"]
        method = "exact" if search["method"] == "exact" else f"HNSW, breadth {search['ef_search']}"
        recall = search.get("recall_at_10", "1 (exact)")
        cells = [f"{s[n]['seconds']:.1f} s ({s[n]['peak_rss_gib']:.2f} GiB)" for n in STAGES]
        lines.append(
            f"| {r['tracks']:,} | {' | '.join(cells)} | {s['publish']['seconds']:.2f} s | {total:.1f} s | "
            f"{peak:.2f} GiB | {method} | {recall} | {_explained(r['explained_variance'])} | "
            f"{r['run_bytes'] / 2**30:.2f} GiB |"
        )
    lines += [
        "",
        "Inside build_index (the approximate index itself is built by duplicates, which needs it first, and "
        "saved for build_index): each track's distance distribution for mutual proximity (from "
        f"{neighbours.SPREAD_SAMPLE:,} sampled tracks), and the search of every track with the recall measurement.",
        "",
        "| tracks | index built or loaded | mutual proximity's spreads | search and recall |",
        "|---|---|---|---|",
    ]
    for r in results["sizes"]:
        search = r["search"]
        if search["method"] != "exact":
            lines.append(
                f"| {r['tracks']:,} | {search['build_seconds']:.1f} s | {search['spread_seconds']:.1f} s | "
                f"{search['search_seconds']:.1f} s |"
            )
    if len(results["sizes"]) > 1:
        lines += growth(results["sizes"])
    if results.get("crossover"):
        lines += [
            "",
            "## Exact against approximate search",
            "",
            "The same embedding (24 dimensions, clustered), k = 10, cosine, no hubness reduction; the approximate "
            "time includes building the index and measuring its recall against exact search.",
            "",
            "| tracks | exact | approximate | ratio | breadth | recall (sample) | recall (all tracks) |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in results["crossover"]:
            lines.append(
                f"| {c['tracks']:,} | {c['exact_s']:.1f} s | {c['approximate_s']:.1f} s | "
                f"{c['exact_s'] / c['approximate_s']:.1f}x | {c['ef_search']} | {c['recall_measured']:.3f} | "
                f"{c['recall_all']:.3f} |"
            )
    if results.get("indexes"):
        lines += [
            "",
            "## HNSW against IVF-PQ",
            "",
            "The same embedding, each index in a fresh process, searched as build_index searches: candidates "
            "ranked by exact distances with mutual proximity, the narrowest setting whose recall@10 on the pipeline's "
            f"{neighbours.RECALL_SAMPLE:,} queries reaches {neighbours.TARGET_RECALL}. HNSW: M {ann.M}, construction "
            f"breadth {ann.EF_CONSTRUCTION}, ranked by the distances it computes (it keeps the vectors). IVF-PQ: "
            f"{IVF_LISTS:,} lists trained on {IVF_TRAIN:,} tracks, {PQ_BYTES} bytes a track, the lists visited and "
            f"the candidates re-scored (of {IVF_DEPTHS}) the fewest that reach the recall; the rows are held beside it "
            "for re-scoring. Search of every track timed on "
            f"{TIMED_QUERIES:,} of them.",
            "",
            "| tracks | index | build | index file | peak RSS | setting | candidates | recall@10 | search all |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results["indexes"]:
            lines.append(
                f"| {r['tracks']:,} | {r['index']} | {r['build_s']:.1f} s | {r['index_bytes'] / 2**30:.2f} GiB | "
                f"{r['peak_rss_gib']:.2f} GiB | {r['setting']} | {r['candidates']} | {r['recall']:.3f} | "
                f"{r['search_all_s']:.1f} s |"
            )
    if results.get("pca"):
        p = results["pca"]
        lines += [
            "",
            f"## PCA on {p['tracks']:,} tracks",
            "",
            f"Covariance matrix (float32 features, as `reduce` fits it): {p['covariance_s']:.2f} s, explained "
            f"variance {p['explained_covariance']:.5f}. Full SVD (float64): {p['full_svd_s']:.2f} s, "
            f"{p['explained_full']:.5f}. Largest principal angle between the two 24-dimensional subspaces: "
            f"{p['largest_angle_deg']:.4f} degrees.",
        ]
    if results.get("libraries"):
        lines += [
            "",
            f"## Approximate index libraries ({results['libraries_n']:,} vectors, 24 dimensions, 2 threads)",
            "",
            "| library | build | breadth | search all | recall@10 |",
            "|---|---|---|---|---|",
        ]
        for row in results["libraries"]:
            lines.append(
                f"| {row['library']} | {row['build_s']:.1f} s | {row['ef']} | {row['search_all_s']:.1f} s | "
                f"{row['recall']:.3f} |"
            )
    if results.get("discovery"):
        d = results["discovery"]
        lines += [
            "",
            f"## Discovery of {d['files']:,} files",
            "",
            f"discover (scan, plan, work lists written) {d['discover_s']:.1f} s, shard {d['shard_s']:.1f} s, peak RSS "
            f"{d['peak_rss_gib']:.2f} GiB; {d['stats']:,} stats of the library's paths (files and folders), "
            f"{d['opens']} files opened; {d['shards']} shards; XCom: discover's result {d['xcom_discover_bytes']:,} "
            f"bytes, the shard descriptors {d['xcom_shards_bytes']:,} bytes.",
        ]
    return "\n".join(lines) + "\n"


def growth(sizes: list[dict]) -> list[str]:
    """How each stage's time and peak RSS grow from the smallest size measured to the largest, as a table and
    as a plot beside this file."""
    first, last = sizes[0], sizes[-1]
    factor = last["tracks"] / first["tracks"]
    lines = [
        "",
        f"## Growth from {first['tracks']:,} to {last['tracks']:,} tracks ({factor:.0f}x)",
        "",
        "| stage | " + " | ".join(f"{r['tracks']:,}" for r in sizes) + " | time x | peak RSS x |",
        "|---|" + "---|" * len(sizes) + "---|---|",
    ]
    for name in [*STAGES, "publish"]:
        cells = [f"{r['stages'][name]['seconds']:.1f} s, {r['stages'][name]['peak_rss_gib']:.2f} GiB" for r in sizes]
        a, b = first["stages"][name], last["stages"][name]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {b['seconds'] / max(a['seconds'], 1e-3):.1f} | "
            f"{b['peak_rss_gib'] / a['peak_rss_gib']:.2f} |"
        )
    lines.append(
        "| run folder | " + " | ".join(f"{r['run_bytes'] / 2**30:.2f} GiB" for r in sizes) + " | "
        f"{last['run_bytes'] / first['run_bytes']:.1f} | |"
    )
    plot_growth(sizes, HERE / "scale_growth.png")
    return lines + ["", "![time and peak RSS of each stage by tracks](scale_growth.png)"]


def plot_growth(sizes: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks = [r["tracks"] for r in sizes]
    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name in STAGES:
        times.plot(tracks, [r["stages"][name]["seconds"] for r in sizes], marker="o", label=name)
        memory.plot(tracks, [r["stages"][name]["peak_rss_gib"] for r in sizes], marker="o", label=name)
    for axes, label in ((times, "seconds"), (memory, "peak RSS (GiB)")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("tracks")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
    memory.axhline(8, color="grey", linestyle="--", linewidth=1)
    times.legend(fontsize=8)
    figure.suptitle("Index stages by library size (synthetic features, one process a stage)")
    figure.tight_layout()
    figure.savefig(target, dpi=110)


def code_version() -> str:
    """The commit measured, marked when the work tree differs from it: sizes measured apart join one table
    only when of the same version."""
    import subprocess

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "include"], cwd=HERE, capture_output=True, text=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--crossover", type=int, nargs="*", default=[2_000, 5_000, 10_000, 20_000, 50_000])
    parser.add_argument("--files", type=int, default=200_000, help="files of the discovery benchmark (0: none)")
    parser.add_argument("--libraries", type=int, default=200_000, help="vectors of the library comparison (0: none)")
    parser.add_argument("--pca", type=int, default=100_000, help="tracks of the PCA comparison (0: none)")
    parser.add_argument(
        "--indexes",
        type=Path,
        nargs="*",
        default=[],
        help="embeddings (a run's embeddings.parquet) to compare HNSW with IVF-PQ on",
    )
    parser.add_argument("--markdown", type=Path, default=HERE / "SCALE.md")
    parser.add_argument(
        "--results",
        type=Path,
        default=HERE / "scale.json",
        help="the sizes measured, kept; sizes measured earlier by the same code version join the table",
    )
    args = parser.parse_args()
    results = {
        "args": " ".join(sys.argv[1:]) or "(defaults)",
        "date": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.python_version()}",
        "version": code_version(),
        "features": len(features.feature_columns()),
        "sizes": [],
    }
    if args.results.exists():
        kept = json.loads(args.results.read_text())
        if kept.get("version") == results["version"]:
            results["sizes"] = [r for r in kept["sizes"] if r["tracks"] not in args.sizes]
    with tempfile.TemporaryDirectory(prefix="musicrec-scale-") as tmp:
        tmp = Path(tmp)
        for n in args.sizes:
            print(f"{n:,} tracks", flush=True)
            results["sizes"].append(index_stages(tmp / f"n{n}", n, DEFAULTS["n_components"], 10, DEFAULTS["hubness"]))
            results["sizes"].sort(key=lambda r: r["tracks"])
            shutil.rmtree(tmp / f"n{n}")
            args.results.write_text(json.dumps(results, indent=1))
        results["crossover"] = [in_child(crossover_point, n, 10)[0] for n in args.crossover]
        for c in results["crossover"]:
            print(f"crossover {c}", flush=True)
        for path in args.indexes:
            for kind in ("ivfpq", "hnsw"):
                found, _, rss = in_child(compare_indexes, str(path), kind)
                results.setdefault("indexes", []).append(found | {"peak_rss_gib": rss})
                print(f"index {results['indexes'][-1]}", flush=True)
        if args.pca:
            results["pca"], _, _ = in_child(pca_comparison, args.pca, tmp / "pca")
            print(f"pca {results['pca']}", flush=True)
        if args.libraries:
            results["libraries"], results["libraries_n"] = in_child(libraries, args.libraries, 10)[0], args.libraries
            print(f"libraries {results['libraries']}", flush=True)
        if args.files:
            library = make_library(tmp / "files", args.files)
            found, _, rss = in_child(discovery, library, tmp / "files" / "data")
            results["discovery"] = found | {"peak_rss_gib": rss}
            print(f"discovery {results['discovery']}", flush=True)
    args.markdown.write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
