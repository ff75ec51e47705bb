"""Metadata features for the model, beside the audio features.

- `meta_artist_popularity`: log(1 + plays) summed over the artist's tracks when the metadata has
  play counts, else log(1 + the artist's number of tracks);
- `meta_artist_frequency`: the artist's share of the library's tracks (frequency encoding);
- `meta_decade`: the release decade (missing years take the library's median decade);
- `meta_log_duration`: log of the track's duration in seconds;
- `meta_genre_<genre>`: one-hot genre, over the genres the library has.

The encoder (its vocabularies and fill values) is plain JSON, stored in model.json, so the same
encoding can be rebuilt. How much these weigh against the audio is the `metadata_weight` param:
each column is standardized and multiplied by it; 0 leaves the embedding audio-only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def fit(tracks: pd.DataFrame) -> dict:
    artists = tracks["artist"].dropna().astype(str)
    plays = tracks.get("play_count")
    if plays is not None and plays.notna().any():
        by_artist = np.log1p(pd.to_numeric(plays, errors="coerce").fillna(0).groupby(tracks["artist"]).sum())
        popularity_from = "play_count"
    else:
        by_artist = np.log1p(artists.value_counts())
        popularity_from = "track_count"
    decades = tracks["year"].dropna().astype(int) // 10 * 10
    return {
        "genres": sorted(tracks["genre"].dropna().astype(str).unique().tolist()),
        "artist_frequency": (artists.value_counts() / max(len(tracks), 1)).to_dict(),
        "artist_popularity": {str(k): float(v) for k, v in by_artist.items()},
        "popularity_from": popularity_from,
        "decade_fill": int(decades.median()) if len(decades) else 2000,
    }


def transform(tracks: pd.DataFrame, encoder: dict) -> pd.DataFrame:
    artist = tracks["artist"].astype(object)
    columns = {
        "meta_artist_popularity": artist.map(encoder["artist_popularity"]).astype(float).fillna(0.0),
        "meta_artist_frequency": artist.map(encoder["artist_frequency"]).astype(float).fillna(0.0),
        "meta_decade": (tracks["year"].astype("Float64") // 10 * 10).fillna(encoder["decade_fill"]).astype(float),
        "meta_log_duration": np.log(tracks["duration_s"].astype(float).clip(lower=0.01)),
    }
    genre = tracks["genre"].astype(object)
    for g in encoder["genres"]:
        columns[f"meta_genre_{g}"] = (genre == g).astype(float)
    return pd.DataFrame(columns, index=tracks.index)
