"""Reading the current index: finding tracks, their neighbours, the library's map.

`load(data_dir)` gives the published index as an `Index`, read once per published version and shared
(the API serves every request from it); a newly published index is read on the next call.
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from musicrec.analysis import features
from musicrec.errors import InputError
from musicrec.index import descriptors, neighbours
from musicrec.store import storage

SHOWN = ["track_key", "title", "artist", "genre", "folder", "file", "duration_s"]
OPTIONAL = ["album", "content_hash"]
DESCRIBED_FROM = [*descriptors.CHROMA, descriptors.TEMPO]
# Shown as stored, rounded; None where the index was built without them.
DESCRIPTORS = {"tempo_confidence": 2, features.LOUDNESS: 1, "energy": 3}
EXCLUDABLE = ("artist", "album")
PAGE_SIZE = 20


class QueryError(LookupError):
    """No track matches the query."""


class InvalidQuery(InputError):
    """The query cannot be answered as asked (empty, or k below 1)."""


class DamagedIndex(Exception):
    """A published table cannot be read or does not hold what the index promises; the message names it."""


def _read(path: Path, columns: list[str], optional: tuple | list = ()) -> pd.DataFrame:
    try:
        table = storage.read_parquet(path)
    except Exception as exc:  # garbage, truncated or missing: name the file either way
        raise DamagedIndex(f"{path}: not a readable Parquet table ({type(exc).__name__}: {exc})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DamagedIndex(f"{path}: columns missing: {', '.join(missing)}")
    return table[columns + [c for c in optional if c in table.columns]]


def _described(tracks: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """The tracks with what they are like (`musicrec.index.descriptors`: key, tempo, loudness, energy, tags)
    in place of the features it comes from; None where the index was built without them."""
    stored = [*DESCRIBED_FROM, *features.DESCRIPTOR_COLUMNS]
    shown = tracks.drop(columns=[c for c in stored if c in tracks])
    if set(DESCRIBED_FROM) <= set(tracks.columns):
        shown = pd.concat([shown, descriptors.describe(tracks)[["key", "bpm"]]], axis=1)
    else:
        shown = shown.assign(key=None, bpm=None)
    for column, places in DESCRIPTORS.items():
        shown[column] = tracks[column].round(places) if column in tracks else None
    shown["tags"] = descriptors.top_tags(tags) if tags.shape[1] else [[] for _ in range(len(tracks))]
    return shown


def records(df: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if pd.api.types.is_scalar(v) and pd.isna(v) else v) for k, v in row.items()}
        for row in df.to_dict("records")
    ]


class Index:
    """One published index: its tracks and stored neighbours at once, the rest when first needed."""

    def __init__(self, run: Path):
        self.run = run
        stored = _read(run / storage.TRACKS, SHOWN, [*OPTIONAL, *DESCRIBED_FROM, *features.DESCRIPTOR_COLUMNS])
        stored = stored.reset_index(drop=True)
        for column in OPTIONAL:
            if column not in stored:
                stored[column] = None
        self.tags = descriptors.tag_probabilities(stored)  # (tracks, tags), in the order of `tracks`
        self.tracks = _described(stored, self.tags)
        recs = _read(run / storage.RECOMMENDATIONS, neighbours.RECOMMENDATION_COLUMNS)
        distances = pd.to_numeric(recs["distance"], errors="coerce")
        bad = int((~np.isfinite(distances.to_numpy(dtype="float64", na_value=np.nan))).sum())
        if bad:
            raise DamagedIndex(f"{run / storage.RECOMMENDATIONS}: {bad} distances are missing or not numbers")
        self.recs = recs.assign(distance=distances)
        self.row = pd.Series(np.arange(len(self.tracks)), index=self.tracks["track_key"])
        self.stored_k = int(self.recs.groupby("track_key").size().max()) if len(self.recs) else 0

    @cached_property
    def summary(self) -> dict:
        return _summary(self.run)

    @cached_property
    def model(self) -> dict:
        return storage.read_json(self.run / storage.MODEL)

    @cached_property
    def embedding(self) -> np.ndarray:
        """The embedding's rows in the order of `tracks`."""
        emb = storage.read_parquet(self.run / storage.EMBEDDINGS).set_index("track_key")
        return emb.loc[self.tracks["track_key"]].to_numpy(dtype=np.float64)

    @cached_property
    def built_with(self) -> dict:
        """The metric and hubness setting the stored neighbours were computed with."""
        record = self.build_record
        return {"metric": record["metric"], "hubness": record.get("hubness", "none")}

    @cached_property
    def build_record(self) -> dict:
        return storage.read_json(storage.stage_record(self.run, "build_index"))

    @cached_property
    def groups(self) -> np.ndarray:
        """A code per track, shared by the files of one recording (`musicrec.index.duplicates`; in an index
        built before it, by copies of the same audio, their content hash)."""
        path = self.run / storage.DUPLICATES
        if path.exists():
            recording = storage.read_parquet(path, columns=["track_key", "recording"]).set_index("track_key")
            return pd.factorize(recording["recording"].reindex(self.tracks["track_key"]).to_numpy())[0]
        return pd.factorize(self.tracks["content_hash"].fillna(self.tracks["track_key"]))[0]

    @cached_property
    def copies(self) -> int:
        """Tracks beyond the first of their audio: how much deeper than k a ranking must look."""
        return len(self.groups) - len(np.unique(self.groups))

    def nearest(self, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the k smallest finite distances in `d` (one per track), one file of a recording at most:
        the one kept of it (`canonical`), at the distance of whichever of its files came nearest."""
        order = neighbours.distinct(neighbours.top(d[None, :], k + self.copies)[0], self.groups, k)
        order = order[np.isfinite(d[order])]
        return self.canonical[order], d[order].astype(float)

    @cached_property
    def canonical(self) -> np.ndarray:
        """For each row, the row of the file kept of its recording (itself where it is alone, or in an index
        built before duplicates were found)."""
        path = self.run / storage.DUPLICATES
        if not path.exists():
            return np.arange(len(self.tracks))
        kept = storage.read_parquet(path, columns=["track_key", "canonical_key"]).set_index("track_key")
        return self.row[kept["canonical_key"].reindex(self.tracks["track_key"]).to_numpy()].to_numpy()

    def computes(self, k: int, exclude_same: tuple[str, ...] = (), **only) -> bool:
        """Whether neighbours asked so are computed from the embedding rather than read from the table."""
        return k > self.stored_k or bool(exclude_same) or any(v not in (None, ()) for v in only.values())

    def similarity(self, distances: np.ndarray) -> np.ndarray:
        """The index's distances as similarities in [0, 1] (`neighbours.similarity`), rounded to 4 places."""
        return neighbours.similarity(distances, self.built_with["metric"], self.built_with["hubness"]).round(4)

    @cached_property
    def spread(self) -> np.ndarray | None:
        if self.built_with["hubness"] != "mutual_proximity":
            return None
        return neighbours.spread(self.embedding, self.built_with["metric"])

    @cached_property
    def approximate(self):
        """The approximate index saved with the run (`musicrec.index.ann`), None where the search was exact."""
        path = self.run / storage.ANN_INDEX
        if not path.exists():
            return None
        from musicrec.index import ann

        try:
            with storage.local_copy(path) as local:  # read by faiss from the file: not held twice, as bytes too
                return ann.load(local)
        except (RuntimeError, OSError) as exc:  # faiss refuses a file that is not an index it wrote
            raise DamagedIndex(f"{path}: not a readable approximate index ({exc})".splitlines()[0]) from None

    def scores(self, point: np.ndarray, k: int) -> np.ndarray:
        """(tracks,) distances, or mutual proximity scores, from an embedded point outside the index, as the
        index ranks its own tracks; where the index is approximate, of the candidates it finds only (inf
        elsewhere)."""
        metric, hubness = self.built_with["metric"], self.built_with["hubness"]
        n = len(self.tracks)
        rows = np.arange(n)
        if self.approximate is not None:
            from musicrec.index import ann

            breadth = self.build_record.get("search", {}).get("ef_search", 0)
            depth = min(n, max(breadth, 2 * k + 1) + self.copies)
            rows = ann.search(self.approximate, ann.vectors(point, metric), depth)[0][0]
            rows = rows[rows >= 0]
        d = np.full(n, np.inf, dtype=np.float64)
        d[rows] = neighbours.distances(point, self.embedding[rows], metric)[0]
        if hubness == "mutual_proximity":
            sample = neighbours.distances(point, self.embedding[neighbours.spread_rows(n)], metric)
            own = np.array([[sample.mean()], [max(float(sample.std()), 1e-12)]])
            d[rows] = neighbours.mutual_proximity(d[None, rows], own, self.spread[:, rows])[0]
        return d

    @cached_property
    def explainer(self):
        from musicrec.serve import explain

        return explain.Explainer(self.run)

    def why(self, key: str, other: str) -> list[dict]:
        """The feature groups that bring `other` closest to `key`."""
        self.track(key), self.track(other)
        return self.explainer.why(key, other)

    def find(self, text: str) -> pd.DataFrame:
        """The track whose key is `text`, else those whose title, artist or key contains it (any case)."""
        if not text.strip():
            raise InvalidQuery("the query is empty: give a track key, or text in a title, artist or file name")
        exact = self.tracks[self.tracks["track_key"] == text]
        if not exact.empty:
            return exact
        needle = text.casefold()
        hay = self.tracks[["track_key", "title", "artist"]].fillna("").astype(str)
        mask = hay.apply(lambda col: col.str.casefold().str.contains(needle, regex=False)).any(axis=1)
        return self.tracks[mask]

    def matching(self, text: str) -> pd.DataFrame:
        """The tracks `find` gives for `text`; QueryError when there is none."""
        matches = self.find(text)
        if matches.empty:
            raise QueryError(f"no track matches {text!r} (tried track key, title, artist and file name)")
        return matches

    def first_match(self, text: str) -> int:
        """The row of the first track matching `text` (what a seed or a stop given as text names)."""
        return int(self.row[self.matching(text)["track_key"].iloc[0]])

    def search(self, text: str, page: int = 1, size: int = PAGE_SIZE) -> dict:
        matches = self.find(text)
        start = (page - 1) * size
        return {
            "total": len(matches),
            "page": page,
            "size": size,
            "items": records(matches.iloc[start : start + size]),
        }

    def track(self, key: str) -> dict:
        if key not in self.row.index:
            raise QueryError(f"no track {key!r} in the index")
        return records(self.tracks.iloc[[self.row[key]]])[0]

    def neighbours(self, key: str, k: int, exclude_same: tuple[str, ...] = (), **only) -> list[dict]:
        """k nearest tracks, as the index ranks them; beyond the stored k, or filtered (`only`, as `passing`
        takes them), computed from the embedding with the index's own metric and hubness setting."""
        if k < 1:
            raise InvalidQuery(f"k must be at least 1, not {k}")
        unknown = set(exclude_same) - set(EXCLUDABLE)
        if unknown:
            raise InvalidQuery(f"exclude_same takes {' or '.join(EXCLUDABLE)}, not {', '.join(sorted(unknown))}")
        self.track(key)
        if not self.computes(k, exclude_same, **only):
            mine = self.recs[self.recs["track_key"] == key].sort_values("rank").head(k)
            rows, distances = self.row[mine["neighbor_key"]].to_numpy(), mine["distance"].to_numpy()
        else:
            rows, distances = self._ranked(self.row[key], k, exclude_same, only)
        found = self.tracks.iloc[rows].assign(
            rank=np.arange(1, len(rows) + 1), distance=distances, similarity=self.similarity(distances)
        )
        return records(found)

    def _ranked(self, i: int, k: int, exclude_same: tuple[str, ...], only: dict):
        rows = np.array([i])
        metric, hubness = self.built_with["metric"], self.built_with["hubness"]
        d = neighbours.scored(self.embedding, rows, metric, hubness, self.spread)
        d = neighbours.excluded(d, rows, self.groups)[0]
        for field in exclude_same:
            value = self.tracks.at[i, field]
            if pd.notna(value):
                d[self.tracks[field].eq(value).fillna(False).to_numpy(dtype=bool)] = np.inf
        d[~self.passing(**only)] = np.inf
        return self.nearest(d, k)

    def passing(
        self,
        genre: str | None = None,
        bpm: tuple[float, float] | None = None,
        in_key: str | None = None,
        tags: tuple[str, ...] = (),
        loudness: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """Which tracks pass the filters asked for, all of them: a genre, a tempo range (beats a minute), a key
        ("A minor"), tags (each as `descriptors.tagged` says), a loudness range (LUFS); all where none is."""
        missing = [t for t in tags if t not in self.tags.columns]
        if missing:
            raise InvalidQuery(f"this index was built without tags ({', '.join(missing)}): run the pipeline again")
        passed = np.ones(len(self.tracks), dtype=bool)
        for asked, matches in (
            (genre, lambda: self.tracks["genre"].eq(genre)),
            (bpm, lambda: self.tracks["bpm"].between(*bpm)),
            (in_key, lambda: self.tracks["key"].eq(in_key)),
            (loudness, lambda: self.tracks[features.LOUDNESS].between(*loudness)),
        ):
            if asked is not None:
                passed &= pd.Series(matches()).fillna(False).to_numpy(dtype=bool)
        for tag in tags:
            passed &= self.tagged[tag].to_numpy()
        return passed

    @cached_property
    def tagged(self) -> pd.DataFrame:
        return descriptors.tagged(self.tags)

    def map_points(self) -> list[dict]:
        """Every track on the embedding's first two components."""
        xy = (
            self.embedding[:, :2]
            if self.embedding.shape[1] >= 2
            else np.c_[self.embedding[:, :1], np.zeros(len(self.tracks))]
        )
        points = self.tracks[["track_key", "title", "folder", "genre", "tags"]].assign(x=xy[:, 0], y=xy[:, 1])
        return records(points)

    def info(self) -> dict:
        s = self.summary
        return {
            "run_id": s["run_id"],
            "built_at": s.get("built_at"),
            "tracks": s["tracks_indexed"],
            "audio_hours": s["audio_hours"],
            "feature_version": s["feature_version"],
            "neighbours_stored": self.stored_k,
            **self.built_with,
            "evaluation": {k: v for k, v in s.get("evaluation", {}).items() if k not in ("report", "plots")},
        }


_loaded: dict[str, Index] = {}
_loading = threading.Lock()


def load(data_dir: str | Path) -> Index:
    """The current index of `data_dir`, read again only when another one has been published."""
    run = storage.require_current(data_dir)
    with _loading:
        cached = _loaded.get(str(data_dir))
        if cached is None or cached.run != run:
            cached = _loaded[str(data_dir)] = Index(run)
        return cached


def recommend(data_dir: str | Path, text: str, k: int = 10, exclude_same: tuple[str, ...] = (), **only) -> dict:
    """{'track': ..., 'matches': n, 'other_matches': [...], 'neighbours': [...]} for the first track matching."""
    if not text.strip():
        raise InvalidQuery("the query is empty: give a track key, or text in a title, artist or file name")
    if k < 1:
        raise InvalidQuery(f"k must be at least 1, not {k}")
    index = load(data_dir)
    matches = index.matching(text)
    key = matches["track_key"].iloc[0]
    return {
        "track": index.track(key),
        "matches": len(matches),
        "other_matches": matches["track_key"].iloc[1:6].tolist(),
        "neighbours": index.neighbours(key, k, exclude_same, **only),
    }


def _summary(run: Path) -> dict:
    path = run / storage.SUMMARY
    try:
        return storage.read_json(path)
    except (OSError, ValueError) as exc:
        raise DamagedIndex(f"{path}: not a readable summary ({exc})") from None


def summary(data_dir: str | Path) -> dict:
    """The current index's run summary."""
    return _summary(storage.require_current(data_dir))
