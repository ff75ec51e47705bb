"""Mixes: the library clustered into ready-made playlists, each named from its tags and ordered to flow.

The embedding is clustered with k-means (scikit-learn; on unit vectors where the index's metric is the
cosine, so that the clusters are made of directions as the neighbours are). A mix holds the tracks nearest
its cluster's centre, at most MIX_LENGTH, one recording of each (`content_hash`), ordered as a playlist
walks: from the track nearest the centre, each next track the nearest not yet taken. It is named from the
two tags most of its tracks are tagged with (`musicrec.index.descriptors.tagged`), or from its commonest
folder where they share none.

How many: about TRACKS_PER_MIX tracks a mix, at least 2 mixes and at most MAX_MIXES, unless asked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from musicrec.index import descriptors, neighbours

TRACKS_PER_MIX = 25
MAX_MIXES = 100
MIX_LENGTH = 50
FIT_SAMPLE = 50_000  # rows k-means is fitted on; every track is then assigned to its nearest centre
COLUMNS = ["mix", "name", "position", "track_key", "step_distance"]


def how_many(tracks: int, asked: int = 0) -> int:
    """The number of mixes for a library of `tracks`: `asked` when above 0, else from its size (never more
    than half the tracks, so that a mix holds two at least)."""
    wanted = asked if asked > 0 else int(np.clip(round(tracks / TRACKS_PER_MIX), 2, MAX_MIXES))
    return max(1, min(wanted, tracks // 2))


def naming_rows(tracks: int) -> np.ndarray:
    """The rows k-means is fitted on and mixes are named from: every track, or FIT_SAMPLE of them at random."""
    return neighbours.spread_rows(tracks, FIT_SAMPLE, seed=0)


def as_directions(vectors: np.ndarray, metric: str) -> np.ndarray:
    """The rows as k-means and the walk compare them: scaled to unit length for the cosine, IN PLACE (a
    library's embedding is not copied), as they are otherwise."""
    if metric == "cosine":
        for start in range(0, len(vectors), FIT_SAMPLE):
            block = vectors[start : start + FIT_SAMPLE]
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            block /= np.where(norms > 0, norms, 1.0).astype(vectors.dtype)
    return vectors


def cluster(x: np.ndarray, mixes: int) -> tuple[np.ndarray, np.ndarray]:
    """(each row's cluster, the clusters' centres), by k-means with a fixed seed, of the rows `x` (from
    `as_directions`): the same embedding gives the same mixes."""
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=mixes, n_init=4, random_state=0).fit(x[naming_rows(len(x))].astype(np.float64))
    # every track assigned a block at a time: predict copies its rows as float64
    labels = [model.predict(x[s : s + FIT_SAMPLE].astype(np.float64)) for s in range(0, len(x), FIT_SAMPLE)]
    return np.concatenate(labels), model.cluster_centers_


def _walk(x: np.ndarray, start: int, metric: str) -> tuple[list[int], list[float]]:
    """The rows of `x` in playlist order from `start`: each next the nearest not yet taken (by the index's
    metric); and each step's distance."""
    order, steps = [start], [0.0]
    left = np.ones(len(x), dtype=bool)
    left[start] = False
    while left.any():
        d = neighbours.distances(x[order[-1]][None, :], x, metric)[0].astype(np.float64)
        d[~left] = np.inf
        nxt = int(np.argmin(d))
        order.append(nxt)
        steps.append(float(d[nxt]))
        left[nxt] = False
    return order, steps


def _names(tags: pd.DataFrame, labels: np.ndarray, mixes: int, folders: pd.Series) -> list[str]:
    """Each mix's name: the two tags most of its tracks are tagged with, the likelier first where as many
    are ("Ambient & Chillout"; one where the second is on fewer than a fifth of them), else its commonest
    folder."""
    tagged = descriptors.tagged(tags)
    names = []
    for mix in range(mixes):
        members = labels == mix
        if not members.any():  # a small cluster none of the naming sample fell in
            names.append(f"Mix {mix + 1}")
            continue
        # the share of its tracks tagged with each tag, then the tag's mean probability among them
        ranked = pd.DataFrame({"share": tagged[members].mean(), "probability": tags[members].mean()})
        ranked = ranked.sort_values(["share", "probability"], ascending=False, kind="stable")
        named = [t.title() if not t[0].isdigit() else t for t in ranked.index[:2] if ranked.at[t, "share"] >= 0.2]
        names.append(" & ".join(named) if named else str(folders[members].mode().iloc[0]))
    return names


def make(
    keys: pd.Series,
    vectors: np.ndarray,
    groups: pd.Series,
    tags: pd.DataFrame,
    folders: pd.Series,
    metric: str,
    asked: int = 0,
) -> pd.DataFrame:
    """The mixes as a table (`COLUMNS`: mix number, name, position, track key, the step from the track
    before), biggest mix first. `vectors`: the embedding, made `as_directions` in place; `groups` shares a
    value between copies of the same audio; `tags` and `folders`: of the tracks `naming_rows`, which name
    the mixes."""
    x = as_directions(vectors, metric)
    mixes = how_many(len(keys), asked)
    labels, centres = cluster(x, mixes)
    named = naming_rows(len(keys))
    names = _names(tags.reset_index(drop=True), labels[named], mixes, folders.reset_index(drop=True))
    rows = []
    biggest_first = np.argsort(-np.bincount(labels, minlength=mixes), kind="stable")
    seen: dict[str, int] = {}
    for number, mix in enumerate(biggest_first, start=1):
        seen[names[mix]] = seen.get(names[mix], 0) + 1  # a name a bigger mix has already is numbered: "... 2"
        name = names[mix] if seen[names[mix]] == 1 else f"{names[mix]} {seen[names[mix]]}"
        members = np.flatnonzero(labels == mix)
        members = members[np.argsort(np.linalg.norm(x[members] - centres[mix], axis=1), kind="stable")]
        members = members[~pd.Series(groups.to_numpy()[members]).duplicated().to_numpy()][:MIX_LENGTH]
        order, steps = _walk(x[members], 0, metric)
        for position, (i, step) in enumerate(zip(members[order], steps, strict=True), start=1):
            rows.append((number, name, position, keys.iloc[i], round(step, 4)))
    return pd.DataFrame(rows, columns=COLUMNS)
