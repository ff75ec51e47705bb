"""How good an index is, measured on the library itself.

- precision@k: the share of a track's k nearest neighbours that share its label, where the label is the
  top-level folder (an album, a soundtrack, a collection), or the genre, album or artist where the
  metadata gives them. With the artist filter, neighbours by the track's own artist are left out first,
  as music-similarity evaluations do (otherwise the same artist's other tracks make any index look good).
  Micro (over tracks) and macro (over labels), beside what chance would give.
- coverage: the share of tracks that appear in someone's top k; hubness: the skewness of the
  k-occurrence distribution (how often each track is someone's neighbour), and the tracks most often so.

Every figure is computed for each hubness setting (see `musicrec.index.neighbours`), whichever the index uses,
so the report shows what the other would change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from musicrec.index import descriptors, neighbours
from musicrec.library import metadata

K = (5, 10)
# Above this many tracks, precision is measured on the lists of a random sample of this many tracks
# (against the whole library), and coverage and hubness within a random subset of this size.
SAMPLE = 5000
HUBS_SHOWN = 5
MAX_DEPTH = 200  # neighbours looked at per track, enough to fill k once the same artist's are left out


# The tracks' columns the evaluation reads, beside the tags.
READ = ["track_key", "genre", "album", "artist", "content_hash"]


def labels(tracks: pd.DataFrame) -> dict[str, pd.Series]:
    """Each label the library has, as a Series over the tracks (missing where a track has none)."""
    found = {"folder": tracks["track_key"].str.split("/").str[0]}
    genre = tracks["genre"].where(tracks["genre"] != metadata.UNKNOWN_GENRE)
    for name, values in (("genre", genre), ("album", tracks["album"]), ("artist", tracks["artist"])):
        values = values.astype(object).where(values.notna(), None)
        if values.notna().sum() >= 2 and values.nunique() >= 2:
            found[name] = values
    return found


def chance(values: pd.Series) -> float:
    """Precision of a random neighbour: the probability that another track shares a track's label."""
    counts = values.dropna().value_counts()
    n = counts.sum()
    return float((counts * (counts - 1)).sum() / (n * (n - 1))) if n > 1 else 0.0


def per_track_precision(
    lists: np.ndarray,
    values: pd.Series,
    k: int,
    exclude: pd.Series | None = None,
    queries: np.ndarray | None = None,
) -> pd.Series:
    """precision@k of each track that has a label (indexed by track row), counting labelled neighbours only.

    `lists`: (tracks, depth) neighbour indices, nearest first, -1 past the end; or, with `queries`, the lists
    of those tracks only. `exclude`: a label whose sharers are left out of a track's neighbours (the artist
    filter).
    """
    label = values.to_numpy(dtype=object)
    barred = exclude.to_numpy(dtype=object) if exclude is not None else None
    queries = np.arange(len(lists)) if queries is None else queries
    scores = {}
    for j in np.flatnonzero(pd.notna(label[queries])):
        i, row = queries[j], lists[j][lists[j] >= 0]
        row = row[pd.notna(label[row])]
        if barred is not None and barred[i] is not None:
            row = row[barred[row] != barred[i]]
        row = row[:k]
        if len(row):
            scores[int(i)] = float(np.mean(label[row] == label[i]))
    return pd.Series(scores, dtype=float)


def precision(
    lists: np.ndarray,
    values: pd.Series,
    k: int,
    exclude: pd.Series | None = None,
    queries: np.ndarray | None = None,
) -> dict[str, float | int]:
    """precision@k, micro (over tracks) and macro (over labels), of the tracks that have a label."""
    scores = per_track_precision(lists, values, k, exclude, queries)
    if scores.empty:
        return {"micro": None, "macro": None, "tracks": 0}
    classes = values.to_numpy(dtype=object)[scores.index.to_numpy()]
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
    groups: list,
    metric: str,
    hubness_reduction: str,
    depth: int,
    queries: np.ndarray | None = None,
) -> np.ndarray:
    """(tracks, depth) exact neighbour indices, nearest first, -1 where a track has fewer; of the tracks
    `queries` only where given."""
    search = neighbours.searcher(embedding, depth, metric, groups, hubness_reduction)
    queries = np.arange(len(embedding)) if queries is None else queries
    if search.k < 1:
        return np.full((len(queries), depth), -1, dtype=np.int64)
    return neighbours.padded(search.exact(queries)[0], depth, -1)


def evaluate(tracks: pd.DataFrame, embedding: np.ndarray, metric: str, index_hubness: str) -> dict:
    """Every figure for each hubness setting; `tracks` in the embedding's row order."""
    found = labels(tracks)
    artist = found.get("artist")
    most_by_one_artist = int(artist.value_counts().max()) if artist is not None else 0
    depth = max(1, min(len(tracks) - 1, max(K) + most_by_one_artist, MAX_DEPTH))
    keys = tracks["track_key"].tolist()
    groups = tracks["content_hash"].tolist()
    sample = neighbours.spread_rows(len(tracks), SAMPLE, seed=3) if len(tracks) > SAMPLE else None
    methods = {}
    for method in neighbours.HUBNESS:
        lists = neighbour_lists(embedding, groups, metric, method, depth, sample)
        figures = {}
        for name, values in found.items():
            for k in K:
                figures[f"{name}@{k}"] = precision(lists, values, k, queries=sample)
            if artist is not None and name != "artist":
                figures[f"{name}@{K[0]} (artist filter)"] = precision(lists, values, K[0], artist, sample)
        if sample is not None:
            subset = [groups[i] for i in sample]
            lists = neighbour_lists(embedding[sample], subset, metric, method, K[0])
            methods[method] = {"precision": figures, **hubness(lists, K[0], [keys[i] for i in sample])}
        else:
            methods[method] = {"precision": figures, **hubness(lists, K[0], keys)}
    return {
        "tracks": len(tracks),
        "sampled": None if sample is None else len(sample),
        "metric": metric,
        "index_hubness": index_hubness,
        "labels": {
            name: {"values": int(v.nunique()), "tracks": int(v.notna().sum()), "chance": round(chance(v), 4)}
            for name, v in found.items()
        },
        "methods": methods,
        "tags": tag_agreement(tracks),
    }


def tag_agreement(tracks: pd.DataFrame) -> dict:
    """How well the network's tags agree with the metadata's genres: for each genre (of two tracks or more)
    whose name is one of the tags ("rock", "jazz", "hip hop"), the ROC AUC of that tag's probability at
    telling the genre's tracks from the other tracks with a genre (1: every one of them above every other
    track, 0.5: no better than chance). {'genres': [...], 'mean_auc'}; no genres where none names a tag."""
    from sklearn.metrics import roc_auc_score

    genre = labels(tracks).get("genre")
    probabilities = descriptors.tag_probabilities(tracks)
    if genre is None or probabilities.empty:
        return {"genres": [], "mean_auc": None}
    known = genre.notna().to_numpy()
    rows = []
    for name, count in genre.value_counts().items():
        tags, unknown = descriptors.parse_tags(str(name))
        if len(tags) != 1 or unknown or count < 2 or count == known.sum():
            continue
        truth = (genre[known] == name).to_numpy()
        auc = roc_auc_score(truth, probabilities[tags[0]].to_numpy()[known])
        rows.append({"genre": str(name), "tag": tags[0], "tracks": int(count), "auc": round(float(auc), 3)})
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
                f"(searched among all tracks), coverage and hubness within a random subset of {report['sampled']} "
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
