"""Reading and cleaning a track metadata file.

Steps, in order (each a function below, each recorded in the cleaning report):
1. `read_table`: CSV, TSV or Parquet; utf-8 (with or without BOM), else cp1252/latin-1;
   the delimiter is sniffed. `cut_long_values`: no value longer than MAX_VALUE_CHARS.
2. `normalize_columns`: names matched case-insensitively, with synonyms
   (`Artist Name` -> artist, `length` -> duration); unknown columns are kept. Two columns that
   mean the same (`Artist Name` and `artist`) collide: the left-most is used, and the report says so.
3. `add_track_key`: `folder` + `file`, or one relative `path` column, gives `track_key`
   (POSIX path relative to the library root), exactly as written: a file name may hold two spaces.
   Rows with no usable key are dropped and counted.
4. `clean_text`: values (not the paths) in unicode NFC, trimmed and collapsed whitespace; empty
   strings become missing.
5. `parse_numbers`: durations from seconds, m:ss or h:mm:ss; years from dates or numbers;
   impossible values (duration <= 0 or > 6 h, year outside 1900..next year) become missing,
   counted with examples in the report.
6. `drop_duplicates`: exact duplicate rows, then rows naming the same file, keeping the most complete.
   (Identical audio under two names is found from content hashes at extraction, not here.)
7. `fill_from_tags`: fields the file leaves missing are taken from the audio files' embedded tags
   (mutagen), and tracks with no row get one; `<field>_source` says `metadata` or `tags`.
8. `merge_artist_spellings`: near-identical artist names (case, accents, spacing, one or two
   typed letters) map to the most frequent spelling; merely similar names stay apart.
9. `canonical_genres`: genre labels map onto a small vocabulary with synonyms; `genre_label`
   keeps the cleaned original, and labels outside the vocabulary become `unknown` and are listed.
Missing titles are filled later, at the join, from the file name (source `filename`), and missing
durations from the decoded audio (source `audio`); a track with audio is never dropped.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
import warnings
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from musicrec.errors import InputError
from musicrec.store import storage

MAX_DURATION_S = 6 * 3600
# Comparisons of artist names in all: seconds of work, however alike the names (see artist_spelling_map).
MAX_NAME_COMPARISONS = 20_000_000
# Longer than any title, name or path (4,096 bytes at most on Linux); see cut_long_values.
MAX_VALUE_CHARS = 4096
MIN_YEAR = 1900

COLUMN_SYNONYMS = {
    "title": ["title", "track_title", "track_name", "track", "song", "song_title", "name"],
    "artist": ["artist", "artist_name", "artists", "performer", "band"],
    "album": ["album", "album_title", "album_name", "release"],
    "genre": ["genre", "genres", "style", "genre_top"],
    "year": ["year", "release_year", "date", "release_date", "year_released"],
    "duration_s": ["duration_s", "duration", "length", "track_length", "time", "duration_seconds", "seconds"],
    "folder": ["folder", "directory", "dir", "album_folder"],
    "file": ["file", "filename", "file_name"],
    "path": ["path", "filepath", "file_path", "relative_path", "track_key"],
    "play_count": ["play_count", "plays", "playcount", "listens", "listen_count"],
}

GENRES = {
    "ambient": ["ambient", "chillout", "chill out", "downtempo"],
    "blues": ["blues"],
    "classical": ["classical", "classic", "orchestral", "baroque", "symphonic"],
    "country": ["country", "country music"],
    "electronic": ["electronic", "electronica", "electro", "edm", "techno", "house", "trance", "idm", "synthwave"],
    "folk": ["folk", "acoustic", "singer songwriter"],
    "hip-hop": ["hip hop", "hiphop", "hip-hop", "rap"],
    "jazz": ["jazz", "swing", "bebop"],
    "metal": ["metal", "heavy metal"],
    "pop": ["pop", "pop music"],
    "punk": ["punk", "punk rock"],
    "r&b": ["r&b", "rnb", "r and b", "rhythm and blues", "soul"],
    "reggae": ["reggae", "ska", "dub"],
    "rock": ["rock", "rock n roll", "rock and roll", "alternative", "indie rock", "indie"],
    "soundtrack": ["soundtrack", "ost", "score", "game music", "video game", "film score"],
    "chiptune": ["chiptune", "chip tune", "8 bit", "8-bit", "chip music"],
    "world": ["world", "world music", "latin", "african"],
}
UNKNOWN_GENRE = "unknown"
SOURCED_FIELDS = ["title", "artist", "album", "genre", "year", "duration_s"]

# Paths, matched exactly against the library's files: never normalised like the other values.
KEY_COLUMNS = ("track_key", "folder", "file", "path")
CLEAN_COLUMNS = [
    "track_key",
    "folder",
    "file",
    "title",
    "artist",
    "album",
    "genre",
    "genre_label",
    "year",
    "duration_s",
]


class MetadataError(InputError):
    """The metadata file cannot be read; the message names the file."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9&]+", " ", text.casefold()).strip()


GENRE_LOOKUP = {_slug(s): g for g, synonyms in GENRES.items() for s in [g, *synonyms]}


def _decodes_as(raw: bytes, encoding: str) -> bool:
    """Whether all of `raw` decodes as `encoding`, checked a mebibyte at a time: a big file is not held twice."""
    decoder = codecs.getincrementaldecoder(encoding)()
    view = memoryview(raw)
    try:
        for at in range(0, len(raw), 1 << 20):
            decoder.decode(view[at : at + (1 << 20)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _encoding(raw: bytes, path: Path) -> str:
    # A byte-order mark names UTF-16 or UTF-32 (spreadsheets export "Unicode text" so); otherwise try in turn.
    boms = [
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ]
    for bom, encoding in boms:
        if raw.startswith(bom):
            if not _decodes_as(raw, encoding):
                raise MetadataError(f"{path}: starts as {encoding} but does not decode as it")
            return encoding
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        if _decodes_as(raw, encoding):
            return encoding
    raise MetadataError(f"{path}: cannot decode text as utf-8, utf-16 (with BOM), cp1252 or latin-1")


def read_table(path: str | Path) -> pd.DataFrame:
    path = storage.path(path)
    if not path.is_file():
        raise MetadataError(f"metadata file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return storage.read_parquet(path)
        except Exception as exc:
            raise MetadataError(f"{path}: not a readable Parquet file ({exc})") from exc
    raw = path.read_bytes()
    encoding = _encoding(raw, path)
    head = raw[:65536].decode(encoding, errors="ignore")
    if not head.strip():
        raise MetadataError(f"{path}: the file is empty")
    try:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else csv.Sniffer().sniff(head[:8192], ",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        # The C parser's errors name the row ("Expected 3 fields in line 3, saw 4"). index_col=False: rows
        # that all have one field more than the header must not silently turn the first column into an index.
        # It reads the bytes as they are: a decoded copy of a big file would hold it four times over.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                io.BytesIO(raw),
                encoding=encoding,
                sep=delimiter,
                dtype=str,
                keep_default_na=False,
                on_bad_lines="error",
                engine="c",
                index_col=False,
            )
    except pd.errors.ParserWarning:
        line = _first_row_longer_than_header(raw.decode(encoding), delimiter)
        raise MetadataError(f"{path}: malformed CSV (line {line} has more fields than the header)") from None
    except pd.errors.EmptyDataError:
        raise MetadataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise MetadataError(f"{path}: malformed CSV ({exc})") from exc


def cut_long_values(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Text over MAX_VALUE_CHARS cut to that length: no title, name or path is longer, and the index and the
    page must not carry a field of megabytes. Counted per column, with the first rows (1 is the first data row)."""
    out = df.copy()
    cut = {}
    for col in out.columns:
        if not (pd.api.types.is_string_dtype(out[col]) or out[col].dtype == object):
            continue
        long = out[col].astype(object).str.len().gt(MAX_VALUE_CHARS)
        if long.any():
            cut[str(col)] = {"count": int(long.sum()), "rows": [int(i) + 1 for i in out.index[long][:5]]}
            out.loc[long, col] = out.loc[long, col].str.slice(0, MAX_VALUE_CHARS)
    return out, cut


def _first_row_longer_than_header(text: str, delimiter: str) -> int | str:
    """The line of the first row longer than the header, for the message; "?" where Python's reader cannot tell."""
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        width = len(next(rows))
        return next((rows.line_num for row in rows if len(row) > width), "?")
    except (csv.Error, StopIteration):
        return "?"


def _column_key(name) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def normalize_columns(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str], dict[str, dict]]:
    """Columns under their canonical names; returns the table, the renames, and the collisions.

    Columns that mean the same after case folding and synonyms (`Artist Name` and `artist`) collide:
    the left-most is used, the others are kept as `<name>_unused_<n>`, and the collision is reported.
    """
    lookup = {_column_key(s): canon for canon, synonyms in COLUMN_SYNONYMS.items() for s in synonyms}
    targets = [lookup.get(_column_key(col), _column_key(col)) for col in df.columns]
    names, collisions = [], {}
    for col, target in zip(df.columns, targets, strict=True):
        if target in names:
            collision = collisions.setdefault(target, {"used": str(df.columns[targets.index(target)]), "ignored": []})
            collision["ignored"].append(str(col))
            target = f"{target}_unused_{len(collision['ignored'])}"
        names.append(target)
    out = df.copy()
    out.columns = names
    changed = {str(k): v for k, v in zip(df.columns, names, strict=True) if str(k) != v}
    return out, changed, collisions


def clean_text(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Values in NFC with whitespace trimmed and collapsed; the key columns (exact paths) are left alone."""
    changed = 0
    out = df.copy()
    for col in out.columns:
        if col in KEY_COLUMNS or not (pd.api.types.is_string_dtype(out[col]) or out[col].dtype == object):
            continue
        before = out[col]
        after = before.map(_clean_cell)
        changed += int((before.fillna("\0").astype(str) != after.fillna("\0").astype(str)).sum())
        out[col] = after
    return out, changed


def _clean_cell(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if not isinstance(value, str):
        return value
    text = " ".join(unicodedata.normalize("NFC", value).split())
    return text or None


def add_track_key(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    out = df.copy()
    if "folder" in out.columns and "file" in out.columns:
        folder = out["folder"].fillna("").astype(str).str.strip("/")
        file = out["file"].fillna("").astype(str).str.strip("/")
        key = pd.Series([f"{d}/{f}" if d else f for d, f in zip(folder, file, strict=False)], index=out.index)
        key = key.where(file != "", None)
    elif "path" in out.columns:
        key = out["path"].map(
            lambda p: (
                PurePosixPath(str(p).replace("\\", "/").strip("/")).as_posix()
                if isinstance(p, str) and p.strip()
                else None
            )
        )
    else:
        raise MetadataError(f"metadata needs `folder` and `file` columns, or a `path` column; found {list(df.columns)}")
    out["track_key"] = key.map(lambda k: k if isinstance(k, str) and k.strip() else None)
    out = _with_folder_and_file(out.loc[out["track_key"].notna()])
    return out.reset_index(drop=True), len(df) - len(out)


def _with_folder_and_file(df: pd.DataFrame) -> pd.DataFrame:
    """`folder` and `file` as the parts of `track_key` (a POSIX path: the folder is all before the last `/`)."""
    if df.empty:
        return df.assign(folder=pd.Series(dtype=object), file=pd.Series(dtype=object))
    parts = df["track_key"].astype(object).str.rpartition("/")
    return df.assign(folder=parts[0], file=parts[2])


def parse_duration(value) -> float | None:
    """Seconds from 245, '245.3', '4:05', '1:02:03'; None when missing or impossible."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (int, float, np.number)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().removesuffix("s").strip()
        try:
            if ":" in text:
                seconds = 0.0
                for part in text.split(":"):
                    seconds = seconds * 60 + float(part)
            else:
                seconds = float(text)
        except ValueError:
            return None
    return seconds if 0 < seconds <= MAX_DURATION_S else None


def parse_year(value) -> int | None:
    """A year from 1999, '1999', '1999-05-01', '05/01/1999'; None when missing or implausible."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    match = re.search(r"(?<!\d)(\d{4})(?!\d)", str(value).split(".")[0])
    if not match:
        return None
    year = int(match.group(1))
    return year if MIN_YEAR <= year <= dt.date.today().year + 1 else None


def parse_count(value) -> int | None:
    """A non-negative count from 12, '12', '1,204'; None when missing or not a count."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        count = float(str(value).replace(",", "").replace("_", "").strip())
    except ValueError:
        return None
    return int(count) if count >= 0 and count == int(count) else None


def parse_numbers(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Durations in seconds and years as integers; what cannot be read, or is impossible, becomes missing."""
    out = df.copy()
    invalid = {}
    for column, parse in (("duration_s", parse_duration), ("year", parse_year), ("play_count", parse_count)):
        if column not in out.columns:
            continue
        parsed = out[column].map(parse)
        bad = out[column].notna() & parsed.isna()
        invalid[column] = {"count": int(bad.sum()), "examples": out.loc[bad, column].astype(str).unique()[:5].tolist()}
        out[column] = (
            pd.to_numeric(parsed, errors="coerce").astype("float64")
            if column == "duration_s"
            else pd.array(parsed.tolist(), dtype="Int64")
        )
    return out, invalid


def drop_duplicates(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    exact = df.astype(str).duplicated()
    out = df[~exact]
    completeness = out.notna().sum(axis=1)
    order = out.assign(_complete=completeness).sort_values("_complete", ascending=False, kind="stable")
    same_file = order.duplicated("track_key")
    out = order[~same_file].drop(columns="_complete").sort_index().reset_index(drop=True)
    return out, {"exact": int(exact.sum()), "same_file": int(same_file.sum())}


def _artist_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "", stripped)


def _typing_slips_allowed(length: int, other_length: int) -> int:
    """Damerau-Levenshtein distance up to which two folded names are one artist: 2 for names of 12+ letters."""
    return 2 if min(length, other_length) >= 12 else 1


def _digits(key: str) -> str:
    """The numbers in a folded name: a slip never changes them ("Sum 41" is not "Sum 14", nor "Artist 7" "Artist 8")."""
    return "".join(ch for ch in key if ch.isdigit())


def _pieces(length: int) -> list[tuple[int, int]]:
    """(start, end) of the near-equal pieces a name of `length` letters is indexed by: 5 from 12 letters, else 3.

    Why these counts: a swap of two letters is two plain edits, so 1 (2) slips are at most 2 (4) letters
    substituted, inserted or deleted; each touches one piece, so one piece of 3 (5) is left whole.
    """
    count = 5 if length >= 12 else 3
    bounds = [round(i * length / count) for i in range(count + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


class _NameIndex:
    """Folded names by their pieces: the names within typing slips of a name, found without comparing all."""

    def __init__(self):
        self._by_piece: dict[tuple[str, int, int, str], list[str]] = {}

    def add(self, key: str) -> None:
        digits = _digits(key)
        for i, (start, end) in enumerate(_pieces(len(key))):
            self._by_piece.setdefault((digits, len(key), i, key[start:end]), []).append(key)

    def candidates(self, key: str) -> set[str]:
        """Every indexed name within the allowed slips of `key` (and some that are not: check the distance).

        A whole piece of a near name is in `key` at its own place, moved by at most the letters inserted or
        deleted before it.
        """
        found: set[str] = set()
        digits = _digits(key)
        for length in range(len(key) - 2, len(key) + 3):
            slips = _typing_slips_allowed(len(key), length)
            if abs(length - len(key)) > slips:
                continue
            for i, (start, end) in enumerate(_pieces(length)):
                for at in range(max(start - slips, 0), min(start + slips, len(key) - (end - start)) + 1):
                    found.update(self._by_piece.get((digits, length, i, key[at : at + end - start]), ()))
        return found


def artist_spelling_map(names: pd.Series) -> tuple[dict[str, str], int]:
    """Spelling -> the cluster's most frequent spelling, for near-identical names only; and how many names
    were left as written because the comparisons' budget ran out.

    Same after case, accents and spacing are folded: always one artist. Otherwise a
    rarer spelling joins a more frequent one when their folded forms are one typing
    slip apart (Damerau-Levenshtein distance 1, or 2 for names of 12+ letters) and hold
    the same numbers: the most frequent such name that has not itself joined another.
    Names are compared with at most MAX_NAME_COMPARISONS others in all (a list of names
    built from a few syllables has every name near thousands); past that they stay as written.
    """
    from rapidfuzz import process
    from rapidfuzz.distance import DamerauLevenshtein

    counts = Counter(n for n in names.dropna() if n)
    by_key: dict[str, list[str]] = {}
    for name, _ in counts.most_common():
        by_key.setdefault(_artist_key(name), []).append(name)
    key_counts = {k: sum(counts[n] for n in group) for k, group in by_key.items()}
    keys = sorted(key_counts, key=lambda k: (-key_counts[k], k))
    rank = {key: i for i, key in enumerate(keys)}
    # Names that have not joined another, the only ones a name can join; indexed once a rarer name comes, since
    # a name joins only a more frequent one.
    heads, unindexed = _NameIndex(), []
    target_of, compared, not_compared = {}, 0, 0
    for key in keys:
        if unindexed and key_counts[unindexed[-1]] > key_counts[key]:  # the first name of a lower count
            for head in unindexed:
                heads.add(head)
            unindexed = []
        candidates = set()
        if len(key) >= 4 and compared >= MAX_NAME_COMPARISONS:
            not_compared += 1
        elif len(key) >= 4:
            candidates = heads.candidates(key)
            compared += len(candidates)
        near = (
            process.extract(key, candidates, scorer=DamerauLevenshtein.distance, score_cutoff=2, limit=None)
            if candidates
            else []
        )
        joins = [better for better, distance, _ in near if distance <= _typing_slips_allowed(len(key), len(better))]
        target_of[key] = min(joins, key=rank.get, default=key)
        if target_of[key] == key:
            unindexed.append(key)
    return {name: by_key[target_of[key]][0] for key, group in by_key.items() for name in group}, not_compared


def merge_artist_spellings(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str], int]:
    """The table with near-identical spellings merged, the merges, and the names left uncompared."""
    if "artist" not in df.columns:
        return df, {}, 0
    mapping, not_compared = artist_spelling_map(df["artist"])
    out = df.copy()
    out["artist"] = out["artist"].map(lambda a: mapping.get(a, a) if isinstance(a, str) else a)
    return out, {k: v for k, v in mapping.items() if k != v}, not_compared


def canonical_genre(label) -> str:
    if not isinstance(label, str) or not label.strip():
        return UNKNOWN_GENRE
    return GENRE_LOOKUP.get(_slug(label), UNKNOWN_GENRE)


def canonical_genres(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    out = df.copy()
    labels = out["genre"] if "genre" in out.columns else pd.Series([None] * len(out), index=out.index)
    out["genre_label"] = labels
    out["genre"] = labels.map(canonical_genre)
    unknown = sorted(
        {
            str(label)
            for label, g in zip(labels, out["genre"], strict=True)
            if isinstance(label, str) and g == UNKNOWN_GENRE
        }
    )
    return out, unknown


def fill_from_tags(df: pd.DataFrame, tags: pd.DataFrame | None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fields missing in the file taken from embedded tags; `<field>_source` says where each value came from.

    Tracks that have tags but no row in the file get a row of their own.
    """
    out = df.set_index("track_key")
    filled = {}
    if tags is not None and not tags.empty:
        tags, _ = parse_numbers(clean_text(tags)[0])
        described = tags[[f for f in SOURCED_FIELDS if f in tags.columns]].notna().any(axis=1)
        tags = tags[described].drop_duplicates("track_key").set_index("track_key")
        new_keys = tags.index.difference(out.index)
        out = pd.concat([out, pd.DataFrame(index=new_keys)])
    for field in SOURCED_FIELDS:
        source = pd.Series(np.where(out[field].notna(), "metadata", None), index=out.index, dtype=object)
        if tags is not None and not tags.empty and field in tags.columns:
            tag_values = tags[field].reindex(out.index)
            use = out[field].isna() & tag_values.notna()
            out[field] = out[field].astype(object).where(~use, tag_values)
            source[use] = "tags"
            filled[field] = int(use.sum())
        out[f"{field}_source"] = source
    return _with_folder_and_file(out.rename_axis("track_key").reset_index()), filled


def clean(df: pd.DataFrame, tags: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """The cleaned table (CLEAN_COLUMNS first, other columns kept) and a report of every change.

    `tags` (track_key and tag fields, see `musicrec.library.tags`) fills what the file leaves missing.
    """
    report: dict = {"rows_in": len(df)}
    df, report[f"values_cut_to_{MAX_VALUE_CHARS}_characters"] = cut_long_values(df)
    df, report["renamed_columns"], report["column_collisions"] = normalize_columns(df)
    # Keys first, from the cells as written: a file name is matched exactly, spaces and all.
    df, report["rows_without_file_dropped"] = add_track_key(df)
    df, report["cells_whitespace_or_unicode_fixed"] = clean_text(df)
    df, report["invalid_values_set_missing"] = parse_numbers(df)
    df, report["duplicates_removed"] = drop_duplicates(df)
    for col in CLEAN_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df, report["filled_from_tags"] = fill_from_tags(df, tags)
    df, report["artist_spellings_merged"], report["artist_names_not_compared_budget_spent"] = merge_artist_spellings(df)
    df, report["genre_labels_outside_vocabulary"] = canonical_genres(df)
    df["year"] = df["year"].astype("Int64")
    df["duration_s"] = df["duration_s"].astype("float64")
    for col in ("title", "artist", "album", "genre", "genre_label", "folder", "file", "track_key"):
        df[col] = df[col].astype("string")
    for field in SOURCED_FIELDS:
        df[f"{field}_source"] = df[f"{field}_source"].astype("string")
    extra = [c for c in df.columns if c not in CLEAN_COLUMNS and c != "path"]
    df = df[CLEAN_COLUMNS + extra]
    report["missing_values"] = {c: int(df[c].isna().sum()) for c in CLEAN_COLUMNS if df[c].isna().any()}
    report["rows_out"] = len(df)
    return df, report


def restrict_to_library(df: pd.DataFrame, library_keys: set[str]) -> tuple[pd.DataFrame, list[str]]:
    """Rows whose audio file is in the library, and the keys of those that are not.

    A key matches its file exactly, or as the same text in another Unicode form (a name typed in NFC for a
    file that the file system keeps in NFD); then it takes the file's own key.
    """
    by_form = {unicodedata.normalize("NFC", key): key for key in library_keys}
    keys = df["track_key"].map(lambda k: k if k in library_keys else by_form.get(unicodedata.normalize("NFC", k), k))
    out = _with_folder_and_file(df.assign(track_key=keys)) if len(df) else df
    in_library = out["track_key"].isin(library_keys)
    return out[in_library].reset_index(drop=True), out.loc[~in_library, "track_key"].tolist()


def titles_from_files(files: pd.Series) -> pd.Series:
    """Each file name's stem (as `PurePosixPath.stem`), underscores and runs of white space as one space;
    the file name itself where nothing is left. Vectorized: a library's worth at once."""
    stems = files.str.replace(r"(?s)^(.+)\.[^.]+$", r"\1", regex=True)
    titles = stems.str.replace(r"[_\s]+", " ", regex=True).str.strip()
    return titles.where(titles != "", files)


def report_markdown(report: dict) -> str:
    """The cleaning report as a page a person reads."""
    lines = [
        "# Metadata cleaning report",
        "",
        f"- metadata file: {report.get('metadata_file') or '(none: embedded tags only)'}",
        f"- rows in: {report['rows_in']}, rows out: {report['rows_out']}",
    ]
    for key, value in report.items():
        if key in ("rows_in", "rows_out", "metadata_file") or value in ({}, [], 0, None):
            continue
        title = key.replace("_", " ")
        if key == "column_collisions":
            lines.append(f"- {title}:")
            lines += [
                f"  - {name}: used `{c['used']}`, ignored {', '.join(f'`{i}`' for i in c['ignored'])}"
                for name, c in value.items()
            ]
        elif isinstance(value, dict):
            lines.append(f"- {title}:")
            lines += [f"  - {k}: {v}" for k, v in list(value.items())[:20]]
        else:
            lines.append(f"- {title}: {value}")
    return "\n".join(lines) + "\n"
