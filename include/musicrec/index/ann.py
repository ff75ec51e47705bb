"""The approximate nearest-neighbour index: HNSW graphs through faiss.

Above a library size (`neighbours.EXACT_BELOW`) comparing every track with every other costs more than
building a graph of the tracks (Malkov and Yashunin's hierarchical navigable small worlds) and walking
it. The walk's breadth (`efSearch`) trades speed for recall; `musicrec.index.neighbours` chooses it on each
build, by measuring recall against exact search on a sample of queries.

faiss was measured against hnswlib and usearch on the same vectors (benchmarks/SCALE.md): as fast as
hnswlib, with wheels on the package index, and an index saved to a file and read back whole.
"""

from __future__ import annotations

import numpy as np

M = 16  # graph links per track
EF_CONSTRUCTION = 64  # breadth of the search that links each new track
EF_SEARCH = (16, 32, 64, 128, 256, 512)  # breadths tried, narrowest first, until recall is reached


def vectors(embedding: np.ndarray, metric: str) -> np.ndarray:
    """The rows as the index holds them: float32, unit length for cosine (inner product then ranks alike)."""
    x = np.ascontiguousarray(embedding, dtype=np.float32)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))
    return x


def build(x: np.ndarray, metric: str, threads: int | None = None):
    """An HNSW index of the rows of `x` (from `vectors`), their row numbers as ids."""
    return build_from_blocks([x], metric, threads, prepared=True)


def build_from_blocks(blocks, metric: str, threads: int | None = None, prepared: bool = False):
    """An HNSW index of rows given a block at a time (float arrays; `prepared`: already from `vectors`), their
    row numbers as ids: only the index holds all the rows."""
    import faiss

    if threads:
        faiss.omp_set_num_threads(threads)
    space = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    index = None
    for block in blocks:
        x = block if prepared else vectors(block, metric)
        if index is None:
            index = faiss.IndexHNSWFlat(x.shape[1], M, space)
            index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(x)
    return index


def stored(index) -> np.ndarray:
    """The rows the index holds (from `vectors`), as an array over its own memory: no copy."""
    import faiss

    flat = faiss.downcast_index(index.storage)
    return faiss.rev_swig_ptr(flat.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)


def search(index, queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries, depth) row numbers of the candidates found (-1 where fewer were found), and their
    distances (`metric_distances` of what the index computed: exact, the index keeping the vectors
    themselves); the search's breadth is `depth`."""
    import faiss

    params = faiss.SearchParametersHNSW(efSearch=depth)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    scores, found = index.search(queries, min(depth, index.ntotal), params=params)
    return found, metric_distances(index, scores)


def metric_distances(index, scores: np.ndarray) -> np.ndarray:
    """The index's scores as `neighbours.distances` gives them: 1 - the inner product of unit vectors
    (cosine), the root of faiss's squared euclidean distances."""
    import faiss

    if index.metric_type == faiss.METRIC_INNER_PRODUCT:
        return np.clip(1.0 - scores, 0.0, 2.0, out=scores)
    return np.sqrt(np.maximum(scores, 0.0, out=scores), out=scores)


def save(index, path) -> None:
    """The index into a local file, written from its own memory (no copy as bytes)."""
    import faiss

    faiss.write_index(index, str(path))


def load(path):
    import faiss

    return faiss.read_index(str(path))


def fits(index, vectors: int, metric: str) -> bool:
    """Whether `index` is an index of `vectors` rows for `metric` (one built for another search is not)."""
    import faiss

    space = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    return index.ntotal == vectors and index.metric_type == space
