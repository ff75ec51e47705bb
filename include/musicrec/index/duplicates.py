"""Duplicates: the files of one recording (its album and compilation copies, other encodings, rates, trims,
fades, gains) grouped, so that every list shows the recording once.

Found in two passes. Candidates, cheap: each track's CANDIDATES nearest tracks in the embedding whose
durations differ by no more than trims explain (DURATION_SLACK_S): a copy is among the nearest, however
the library spreads. Confirmed,
exact: the two acoustic fingerprints aligned (`musicrec.analysis.fingerprint`) agree on at least
1 - MAX_BIT_ERROR_RATE of their bits over at least MIN_OVERLAP of the shorter one, and, aligned, the two
files start and end within MAX_EDGE_S of each other (what trimming a few seconds at either end and encoders'
padding explain): an excerpt, such as a track's first half, is another file of its own. The embedding alone
would merge what sounds alike (two tracks of one soundtrack on one theme, a cover, a live take); the
fingerprint agrees only where the samples are the same recording's. A time-stretched or transposed
version is another recording by this rule. The cost grows with the tracks times CANDIDATES, never with
their square; a pair is judged once (by its two files' content hashes) and the verdict reused by later runs.

The canonical member of a group stands for it: lossless over lossy, then the higher bitrate (between lossy
files: a WAV and a FLAC of the same samples are equals), then the longer (the untrimmed), then the one on
an album over one on a compilation, then the first by track key.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from musicrec.analysis import fingerprint
from musicrec.index import neighbours

CANDIDATES = 5
PAIR_BLOCK = 1 << 16  # tracks whose candidate pairs are made at once
DURATION_SLACK_S = 12.0  # up to 5 s trimmed at either end, and encoders' padding
MAX_BIT_ERROR_RATE = 0.25  # copies measured 0.12 at most, other recordings 0.38 at least
MIN_OVERLAP = 0.8
COMPILATION_ARTISTS = 3
MAX_EDGE_S = 5.5
LOSSLESS = (".flac", ".wav", ".aif", ".aiff", ".wv", ".ape", ".alac")
EVIDENCE = ["bit_error_rate", "offset_s", "overlap_s"]
PAIR_COLUMNS = ["hash_a", "hash_b", "same", *EVIDENCE]
COLUMNS = ["track_key", "recording", "canonical", "canonical_key", "bit_error_rate", "offset_s", "overlap_s"]


def candidate_pairs(vectors: np.ndarray, durations: np.ndarray, metric: str, index=None) -> np.ndarray:
    """(pairs, 2) rows i < j of tracks near enough in the embedding and in duration to be compared; `index`:
    the embedding's approximate index, where built already (`neighbours.find`). Each pair is kept as one
    number (i * tracks + j) a block of tracks at a time: a few bytes a pair while the index is in memory."""
    n, k = len(vectors), min(CANDIDATES, len(vectors) - 1)
    if k < 1:
        return np.zeros((0, 2), dtype=np.int64)
    found = neighbours.find(np.asarray(vectors, dtype=np.float32), k, metric, index=index)
    codes = []
    for start in range(0, n, PAIR_BLOCK):
        others = found.rows[start : start + PAIR_BLOCK].astype(np.int64)
        rows = np.repeat(np.arange(start, start + len(others)), others.shape[1])
        others = others.ravel()
        close = (others >= 0) & (np.abs(durations[rows] - durations[np.maximum(others, 0)]) <= DURATION_SLACK_S)
        rows, others = rows[close], others[close]
        codes.append(np.minimum(rows, others) * n + np.maximum(rows, others))
    codes = np.unique(np.concatenate(codes))
    return np.column_stack([codes // n, codes % n])


def judge(a: bytes, b: bytes, duration_a: float, duration_b: float) -> dict:
    """Whether two files hold the same recording (`same`), and the evidence: the bit error rate, offset
    and overlap (seconds) of their fingerprints aligned."""
    fa, fb = (np.frombuffer(x, dtype="<u4") for x in (a, b))
    frame_s = fingerprint.HOP / fingerprint.RATE
    found = fingerprint.match(fa, fb, round(MAX_EDGE_S / frame_s))
    offset = found.offset * frame_s  # b starts this much before a
    ends_apart = abs(duration_b - (duration_a + offset))
    same = (
        found.bit_error_rate <= MAX_BIT_ERROR_RATE
        and found.overlap >= MIN_OVERLAP * max(min(fa.size, fb.size), 1)
        and ends_apart <= MAX_EDGE_S
    )
    return {
        "same": bool(same),
        "bit_error_rate": round(found.bit_error_rate, 4),
        "offset_s": round(offset, 3),
        "overlap_s": round(found.overlap * frame_s, 2),
    }


def is_same(evidence: pd.DataFrame) -> np.ndarray:
    return evidence["same"].astype(bool).to_numpy()


def recordings(n: int, same: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """A recording id per track: connected components of the pairs judged the same (`same`, (pairs, 2))
    and of identical files (`copies`, a code per track shared by identical audio)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    first_copy = pd.Series(np.arange(n)).groupby(copies).transform("first").to_numpy()
    edges = np.vstack([same.reshape(-1, 2), np.column_stack([np.arange(n), first_copy])])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def compilations(albums: pa.Table) -> set[str]:
    """The compilations among the library's albums (`albums`: album and artist of every track): albums whose
    tracks have COMPILATION_ARTISTS artists or more ("Various Artists" albums, soundtracks of many hands)."""
    albums = pa.table({name: albums.column(name).cast(pa.string()) for name in ("album", "artist")})
    counted = albums.group_by("album").aggregate([("artist", "count_distinct")])
    many = pc.greater_equal(counted.column("artist_count_distinct"), COMPILATION_ARTISTS)
    return {a for a in counted.column("album").filter(many).to_pylist() if a is not None}


def canonical_order(tracks: pd.DataFrame, on_compilations: set[str] | None = None) -> pd.Index:
    """The tracks (track_key, duration_s, size_bytes, album, artist) best first: lossless, higher bitrate
    (lossy), longer, on an album rather than a compilation, then by key. `on_compilations`: the library's
    compilations (`compilations`), where `tracks` are some of its tracks; else found among `tracks`."""
    if on_compilations is None:
        on_compilations = compilations(pa.Table.from_pandas(tracks[["album", "artist"]], preserve_index=False))
    lossless = tracks["track_key"].str.lower().str.endswith(LOSSLESS)
    bitrate = (tracks["size_bytes"] / tracks["duration_s"].clip(lower=1e-3)).where(~lossless, 0.0)
    compilation = tracks["album"].isin(on_compilations).astype(bool)
    ranked = tracks.assign(_lossless=lossless, _bitrate=bitrate, _compilation=compilation)
    return ranked.sort_values(
        ["_lossless", "_bitrate", "duration_s", "_compilation", "track_key"],
        ascending=[False, False, False, True, True],
        kind="stable",
    ).index
