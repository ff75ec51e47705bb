"""How good an index is, measured on the library itself.

- precision@k: the share of a track's k nearest neighbours that share its label, where the label is the
  top-level folder (an album, a soundtrack, a collection), or the genre, album or artist where the
  metadata gives them. With the artist filter, neighbours by the track's own artist are left out first,
  as music-similarity evaluations do (otherwise the same artist's other tracks make any index look good).
  Micro (over tracks) and macro (over labels), beside what chance would give.
- coverage: the share of tracks that appear in someone's top k; hubness: the skewness of the
  k-occurrence distribution (how often each track is someone's neighbour), and the tracks most often so.

Every figure is computed for each hubness setting (see `musicrec.index.neighbours`), whichever the index uses,
so the report shows what the other would change. Where the index is approximate, the lists come from its
graph as the recommendations do (candidates ranked by their exact distances), so the figures are those of
what is served.
Labels are held as codes, one small integer a track; the tags are compared with the genres on a sample.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from musicrec.index import descriptors, neighbours
from musicrec.library import metadata

K = (5, 10)
# Above this many tracks, precision is measured on the lists of a random sample of this many tracks
# (against the whole library), and coverage and hubness within a random subset of this size.
SAMPLE = 5000
TAG_SAMPLE = 100_000  # tracks whose tags are compared with their genres, above this many
MAP_POINTS = 20_000  # tracks drawn on the library's map, above this many
HUBS_SHOWN = 5
MAX_DEPTH = 200  # neighbours looked at per track, enough to fill k once the same artist's are left out


# The tracks' columns the evaluation reads, beside the tags.
READ = ["track_key", "genre", "album", "artist", "content_hash"]


class Label(NamedTuple):
    """A label of every track as codes (-1 where a track has none), and the value of each code (an Arrow
    array: a library's worth of distinct values, content hashes say, is no Python string each)."""

    codes: np.ndarray
    values: pa.Array

    def named(self, rows: np.ndarray) -> pd.Series:
        """The label's values at the tracks `rows`, None where a track has none."""
        codes = self.codes[rows]
        if not len(self.values):
            return pd.Series([None] * len(codes), dtype=object)
        names = self.values.take(pa.array(np.maximum(codes, 0))).to_numpy(zero_copy_only=False)
        return pd.Series(np.where(codes >= 0, names, None), dtype=object)


def encoded(values: pa.ChunkedArray | pa.Array) -> Label:
    """`values` (strings, null for none) as a Label."""
    coded = pc.dictionary_encode(values)
    coded = coded.combine_chunks() if isinstance(coded, pa.ChunkedArray) else coded
    if not isinstance(coded, pa.DictionaryArray):  # a chunked array of no chunks
        return Label(np.zeros(0, dtype=np.int32), pa.array([], pa.string()))
    codes = coded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    return Label(codes, coded.dictionary)


def labels(tracks: pa.Table) -> dict[str, Label]:
    """Each label the library has (of the columns `tracks` holds): the top-level folder of each track's key,
    and the genre, album and artist where at least two tracks have one and there are two values or more."""
    keys = tracks.column("track_key").cast(pa.string())
    found = {"folder": encoded(pc.list_element(pc.split_pattern(keys, "/", max_splits=1), 0))}
    for name in ("genre", "album", "artist"):
        if name not in tracks.column_names:
            continue
        values = tracks.column(name).cast(pa.string())
        if name == "genre":
            values = pc.if_else(pc.equal(values, metadata.UNKNOWN_GENRE), None, values)
        label = encoded(values)
        if (label.codes >= 0).sum() >= 2 and len(label.values) >= 2:
            found[name] = label
    return found


def chance(label: Label) -> float:
    """Precision of a random neighbour: the probability that another track shares a track's label."""
    counts = np.bincount(label.codes[label.codes >= 0]).astype(float)
    n = counts.sum()
    return float((counts * (counts - 1)).sum() / (n * (n - 1))) if n > 1 else 0.0


def per_track_precision(
    lists: np.ndarray,
    label: np.ndarray,
    k: int,
    exclude: np.ndarray | None = None,
    queries: np.ndarray | None = None,
) -> pd.Series:
    """precision@k of each track that has a label (indexed by track row), counting labelled neighbours only.

    `lists`: (tracks, depth) neighbour indices, nearest first, -1 past the end; or, with `queries`, the lists
    of those tracks only. `label`: each track's code (-1 for none). `exclude`: the codes of a label whose
    sharers are left out of a track's neighbours (the artist filter).
    """
    queries = np.arange(len(lists)) if queries is None else queries
    scores = {}
    for j in np.flatnonzero(label[queries] >= 0):
        i, row = queries[j], lists[j][lists[j] >= 0]
        row = row[label[row] >= 0]
        if exclude is not None and exclude[i] >= 0:
            row = row[exclude[row] != exclude[i]]
        row = row[:k]
        if len(row):
            scores[int(i)] = float(np.mean(label[row] == label[i]))
    return pd.Series(scores, dtype=float)


def precision(
    lists: np.ndarray,
    label: np.ndarray,
    k: int,
    exclude: np.ndarray | None = None,
    queries: np.ndarray | None = None,
) -> dict[str, float | int]:
    """precision@k, micro (over tracks) and macro (over labels), of the tracks that have a label."""
    scores = per_track_precision(lists, label, k, exclude, queries)
    if scores.empty:
        return {"micro": None, "macro": None, "tracks": 0}
    classes = label[scores.index.to_numpy()]
    return {
        "micro": round(float(scores.mean()), 4),
        "macro": round(float(scores.groupby(classes).mean().mean()), 4),
        "tracks": len(scores),
    }


def hubness(lists: np.ndarray, k: int, keys: list[str]) -> dict:
    """Coverage, k-occurrence skewness and the most over-recommended tracks of the top-k lists."""
    from scipy.stats import skew

    top = lists[:, :k]
    occurrence = np.bincount(top[top >= 0], minlength=len(keys))
    hubs = np.argsort(-occurrence, kind="stable")[:HUBS_SHOWN]
    return {
        "coverage": round(float(np.mean(occurrence > 0)), 4),
        "k_occurrence_skewness": round(float(skew(occurrence)), 3) if occurrence.std() > 0 else 0.0,
        "hubs": [{"track_key": keys[i], "k_occurrence": int(occurrence[i])} for i in hubs],
        "k_occurrence": occurrence.tolist(),
    }


def neighbour_lists(
    embedding: np.ndarray,
    groups: np.ndarray,
    metric: str,
    hubness_reduction: str,
    depth: int,
    queries: np.ndarray | None = None,
    index=None,
    breadth: int = 0,
) -> np.ndarray:
    """(tracks, depth) neighbour indices, nearest first, -1 where a track has fewer; of the tracks `queries`
    only where given. Exact; or, with the embedding's approximate `index` (the embedding then being the
    vectors it holds), its candidates at search breadth `breadth` ranked by their exact distances, as the
    index's lists are made."""
    search = neighbours.searcher(embedding, depth, metric, groups, hubness_reduction)
    queries = np.arange(len(embedding)) if queries is None else queries
    if search.k < 1:
        return np.full((len(queries), depth), -1, dtype=np.int64)
    if index is not None:
        return neighbours.padded(search.candidates(index, embedding, queries, breadth)[0], depth, -1)
    return neighbours.padded(search.exact(queries)[0], depth, -1)


def evaluate(
    tracks: pa.Table,
    embedding: np.ndarray,
    metric: str,
    index_hubness: str,
    index=None,
    breadth: int = 0,
    found: dict[str, Label] | None = None,
) -> dict:
    """Every figure for each hubness setting; `tracks` (READ) in the embedding's row order, `found` their
    `labels` where split already. With the embedding's approximate `index` (see `neighbour_lists`), the
    sampled tracks' lists are searched in it."""
    found = labels(tracks) if found is None else found
    artist = found["artist"].codes if "artist" in found else None
    most_by_one_artist = int(np.bincount(artist[artist >= 0]).max()) if artist is not None else 0
    n = len(tracks)
    depth = max(1, min(n - 1, max(K) + most_by_one_artist, MAX_DEPTH))
    keys = tracks.column("track_key").cast(pa.string())
    groups = encoded(tracks.column("content_hash").cast(pa.string())).codes
    sample = neighbours.spread_rows(n, SAMPLE, seed=3) if n > SAMPLE else None
    methods = {}
    for method in neighbours.HUBNESS:
        lists = neighbour_lists(embedding, groups, metric, method, depth, sample, index, breadth)
        figures = {}
        for name, label in found.items():
            for k in K:
                figures[f"{name}@{k}"] = precision(lists, label.codes, k, queries=sample)
            if artist is not None and name != "artist":
                figures[f"{name}@{K[0]} (artist filter)"] = precision(lists, label.codes, K[0], artist, sample)
        subset = np.arange(n) if sample is None else sample
        if sample is not None:
            lists = neighbour_lists(embedding[sample], groups[sample], metric, method, K[0])
        methods[method] = {"precision": figures, **hubness(lists, K[0], keys.take(subset).to_pylist())}
    return {
        "tracks": n,
        "sampled": None if sample is None else len(sample),
        "search": "exact" if index is None else "approximate",
        "metric": metric,
        "index_hubness": index_hubness,
        "labels": {
            name: {
                "values": len(label.values),
                "tracks": int((label.codes >= 0).sum()),
                "chance": round(chance(label), 4),
            }
            for name, label in found.items()
        },
        "methods": methods,
    }


def tag_agreement(tracks: pd.DataFrame) -> dict:
    """How well the network's tags agree with the metadata's genres: for each genre (of two tracks or more)
    whose name is one of the tags ("rock", "jazz", "hip hop"), the ROC AUC of that tag's probability at
    telling the genre's tracks from the other tracks with a genre (1: every one of them above every other
    track, 0.5: no better than chance). {'genres': [...], 'mean_auc'}; no genres where none names a tag.
    `tracks`: track_key, genre and the tags' columns (all tracks, or a sample)."""
    from sklearn.metrics import roc_auc_score

    genre = labels(pa.Table.from_pandas(tracks[["track_key", "genre"]], preserve_index=False)).get("genre")
    probabilities = descriptors.tag_probabilities(tracks)
    if genre is None or probabilities.empty:
        return {"genres": [], "mean_auc": None}
    known = genre.codes >= 0
    counts = np.bincount(genre.codes[known], minlength=len(genre.values))
    rows = []
    for code in np.argsort(-counts, kind="stable"):
        name, count = genre.values[int(code)].as_py(), int(counts[code])
        tags, unknown = descriptors.parse_tags(str(name))
        if len(tags) != 1 or unknown or count < 2 or count == known.sum():
            continue
        truth = genre.codes[known] == code
        auc = roc_auc_score(truth, probabilities[tags[0]].to_numpy()[known])
        rows.append({"genre": str(name), "tag": tags[0], "tracks": count, "auc": round(float(auc), 3)})
    mean = round(float(np.mean([r["auc"] for r in rows])), 3) if rows else None
    return {"genres": rows, "mean_auc": mean}


def headline(report: dict) -> dict:
    """The figures of the index as built, for the run summary and the UI."""
    used = report["methods"][report["index_hubness"]]
    return {
        "precision_folder_at_5": used["precision"]["folder@5"]["micro"],
        "precision_folder_at_5_macro": used["precision"]["folder@5"]["macro"],
        "coverage_at_5": used["coverage"],
        "k_occurrence_skewness": used["k_occurrence_skewness"],
        "hubness": report["index_hubness"],
    }


def markdown(report: dict, explained: dict[str, list[float]], plots: dict[str, str]) -> str:
    reduced = "; ".join(
        f"{name} {len(ratios)} components ({100 * sum(ratios):.1f}% of its variance)"
        for name, ratios in explained.items()
    )
    lines = [
        "# Evaluation of the index",
        "",
        f"{report['tracks']} tracks, {report['metric']} distance; the index uses hubness reduction "
        f"`{report['index_hubness']}`. Each feature group has its own PCA: {reduced}.",
        "",
        *(
            [
                f"Measured on samples: precision over the neighbour lists of {report['sampled']} random tracks "
                f"({_searched(report)}), coverage and hubness within a random subset of {report['sampled']} "
                "tracks.",
                "",
            ]
            if report.get("sampled")
            else []
        ),
        "Labels: "
        + ", ".join(
            f"{name} ({v['values']} values over {v['tracks']} tracks, chance {v['chance']:.3f})"
            for name, v in report["labels"].items()
        ),
        "",
        "| figure | " + " | ".join(f"`{m}`" for m in report["methods"]) + " |",
        "|---|" + "---|" * len(report["methods"]),
    ]
    figures = next(iter(report["methods"].values()))["precision"]
    for name in figures:
        cells = []
        for method in report["methods"].values():
            p = method["precision"][name]
            cells.append("n/a" if p["micro"] is None else f"{p['micro']:.3f} (macro {p['macro']:.3f})")
        lines.append(f"| precision {name} | " + " | ".join(cells) + " |")
    for figure in ("coverage", "k_occurrence_skewness"):
        lines.append(
            f"| {figure.replace('_', ' ')} @{K[0]} | "
            + " | ".join(str(m[figure]) for m in report["methods"].values())
            + " |"
        )
    lines += ["", "Most often someone's neighbour (top 5 lists):", ""]
    for method, m in report["methods"].items():
        hubs = ", ".join(f"{h['track_key']} ({h['k_occurrence']})" for h in m["hubs"])
        lines.append(f"- `{method}`: {hubs}")
    lines += ["", *_tag_lines(report.get("tags"))]
    lines += [""] + [f"![{title}]({name})" for title, name in plots.items()]
    return "\n".join(lines) + "\n"


def _searched(report: dict) -> str:
    if report.get("search") == "approximate":
        return (
            "searched among all tracks in the approximate index, candidates ranked by their exact distances, "
            "as the index's own"
        )
    return "searched among all tracks, exactly"


def _tag_lines(tags: dict | None) -> list[str]:
    if not tags or not tags["genres"]:
        return ["Tags against genres: no metadata genre of two tracks or more is one of the network's tags."]
    return [
        "Tags against genres (ROC AUC of the tag's probability at finding the genre's tracks; "
        f"mean {tags['mean_auc']:.3f}):",
        "",
        "| genre | tag | tracks | AUC |",
        "|---|---|---|---|",
        *(f"| {r['genre']} | {r['tag']} | {r['tracks']} | {r['auc']:.3f} |" for r in tags["genres"]),
    ]
