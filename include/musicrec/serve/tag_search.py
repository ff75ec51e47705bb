"""Finding tracks by words: the tags the words name, and the tracks the network tags likeliest with all of them.

A tag search, not a text-to-audio one: the words are matched to the music-tagging network's 50 tags
(`musicrec.index.descriptors.parse_tags`), and each track is scored by the geometric mean of its
probabilities for the tags named, so that a track ranks high only when every tag fits it. Copies of the
same audio are listed once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from musicrec.index import descriptors
from musicrec.serve import query


def tag_search(data_dir: str | Path, text: str, k: int = 20, **only) -> dict:
    """{'tags': the tags named, 'unknown': words that name none, 'tracks': [... with 'score' and
    'tag_probabilities'], 'note'}; `only` the tracks that pass `Index.passing`."""
    if k < 1:
        raise query.InvalidQuery(f"k must be at least 1, not {k}")
    tags, unknown = descriptors.parse_tags(text)
    if not tags:
        said = f"none of the words {text!r} names a tag" if text.strip() else "the query is empty"
        raise query.InvalidQuery(f"{said}: use the network's tags, e.g. mellow, 'female vocalists', ambient, 80s")
    index = query.load(data_dir)
    index.passing(tags=tuple(tags))  # an index built without tags says so
    probabilities = index.tags[tags].to_numpy()
    score = np.exp(np.log(np.clip(probabilities, 1e-9, 1.0)).mean(axis=1))
    score[~index.passing(**only)] = -np.inf
    ranked = np.argsort(-score, kind="stable")
    ranked = ranked[np.isfinite(score[ranked])]
    rows = ranked[~pd.Series(index.groups[ranked]).duplicated().to_numpy()][:k]  # a recording once
    found = index.tracks.iloc[index.canonical[rows]].assign(score=score[rows].round(4))  # the file kept stands for it
    listed = query.records(found)
    for track, row in zip(listed, rows, strict=True):
        track["tag_probabilities"] = {t: round(float(p), 4) for t, p in zip(tags, probabilities[row], strict=True)}
    guesses = [f"{word} (closest: {descriptors.closest_tags(word, 1)[0]})" for word in unknown]
    note = f"not tags, left out: {', '.join(guesses)}" if unknown else None
    return {"tags": tags, "unknown": unknown, "tracks": listed, "note": note}
