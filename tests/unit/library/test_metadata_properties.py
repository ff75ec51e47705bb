"""Properties of the metadata reader and cleaner over generated input (hypothesis): whatever the bytes, a
table or a MetadataError naming the file; keys kept exactly; artist merging as a full comparison would do it."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import DamerauLevenshtein

from musicrec.library import metadata

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _every_pair_spelling_map(names: pd.Series) -> dict[str, str]:
    """The rule of `metadata.artist_spelling_map`, by comparing every pair (quadratic; small inputs only)."""
    counts = Counter(n for n in names.dropna() if n)
    by_key: dict[str, list[str]] = {}
    for name, _ in counts.most_common():
        by_key.setdefault(metadata._artist_key(name), []).append(name)
    key_counts = {k: sum(counts[n] for n in group) for k, group in by_key.items()}
    keys = sorted(key_counts, key=lambda k: (-key_counts[k], k))
    target_of = {}
    for i, key in enumerate(keys):
        target_of[key] = key
        for better in keys[:i]:
            if target_of[better] != better or len(key) < 4 or metadata._digits(key) != metadata._digits(better):
                continue
            limit = 2 if min(len(key), len(better)) >= 12 else 1
            if key_counts[better] > key_counts[key] and DamerauLevenshtein.distance(key, better) <= limit:
                target_of[key] = better
                break
    return {name: by_key[target_of[key]][0] for key, group in by_key.items() for name in group}


def _slipped(name: str, draw) -> str:
    """`name` with one or two typing slips: a letter changed, dropped, added, or two swapped."""
    for _ in range(draw(st.integers(1, 2))):
        at = draw(st.integers(0, max(len(name) - 1, 0)))
        kind = draw(st.sampled_from(["change", "drop", "add", "swap"]))
        letter = draw(st.sampled_from("abeno1 "))
        if kind == "change":
            name = name[:at] + letter + name[at + 1 :]
        elif kind == "drop":
            name = name[:at] + name[at + 1 :]
        elif kind == "add":
            name = name[:at] + letter + name[at:]
        elif len(name) > at + 1:
            name = name[:at] + name[at + 1] + name[at] + name[at + 2 :]
    return name


@st.composite
def artist_columns(draw) -> list[str]:
    """Names from a small alphabet (so many are near each other), their slipped spellings, repeated."""
    bases = draw(st.lists(st.text("abenoBE1 é", min_size=2, max_size=18), min_size=1, max_size=12))
    names = []
    for base in bases:
        names += [base] * draw(st.integers(1, 5))
        names += [_slipped(base, draw) for _ in range(draw(st.integers(0, 3)))]
    return draw(st.permutations(names))


@FUZZ
@given(artist_columns())
def test_artist_merging_finds_what_comparing_every_pair_finds(names):
    column = pd.Series(names, dtype=object)
    assert metadata.artist_spelling_map(column) == (_every_pair_spelling_map(column), 0)


def test_names_that_differ_in_their_numbers_stay_apart():
    column = pd.Series(["Sum 41"] * 3 + ["Sum 14", "Artist 7", "Artist 7", "Artist 8", "Blink-182", "Blink 182"])
    merged = {k: v for k, v in metadata.artist_spelling_map(column)[0].items() if k != v}
    assert merged == {"Blink 182": "Blink-182"} or merged == {"Blink-182": "Blink 182"}


cells = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@FUZZ
@given(
    rows=st.lists(st.tuples(cells, cells, cells), min_size=1, max_size=20),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]),
)
def test_any_table_written_by_a_csv_writer_reads_back_with_its_keys_exact(tmp_path_factory, rows, encoding):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["folder", "file", "title"])
    writer.writerows(rows)
    path = tmp_path_factory.mktemp("csv") / "metadata.csv"
    path.write_bytes(text.getvalue().encode(encoding))
    try:
        table = metadata.read_table(path)
    except metadata.MetadataError as exc:
        assert str(path) in str(exc)  # a sniffed delimiter can misread a table of odd cells; it is named
        return
    cleaned, report = metadata.clean(table)
    assert report["rows_in"] == len(rows)
    for key in cleaned["track_key"]:
        assert any(key in (f"{d.strip('/')}/{f.strip('/')}", f.strip("/")) for d, f, _ in rows), key


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(["metadata.csv", "metadata.tsv", "metadata.parquet"]))
def test_any_bytes_give_a_table_or_an_error_naming_the_file(tmp_path_factory, raw, name):
    path = tmp_path_factory.mktemp("bytes") / name
    path.write_bytes(raw)
    try:
        table = metadata.read_table(path)
    except metadata.MetadataError as exc:
        assert str(path) in str(exc)
        return
    try:
        cleaned, report = metadata.clean(table)
    except metadata.MetadataError as exc:
        assert "folder" in str(exc) and "path" in str(exc)  # no key columns: the message says what is needed
        return
    assert report["rows_out"] == len(cleaned)


def test_a_value_of_megabytes_is_cut_and_the_report_says_so(tmp_path):
    path = tmp_path / "metadata.csv"
    path.write_text("folder,file,title,artist\nrock,a.mp3," + "x" * 5_000_000 + ",Someone\nrock,b.mp3,B,Other\n")
    cleaned, report = metadata.clean(metadata.read_table(path))
    assert cleaned["title"].str.len().max() == metadata.MAX_VALUE_CHARS
    assert report["values_cut_to_4096_characters"] == {"title": {"count": 1, "rows": [1]}}
    assert "values cut to 4096 characters" in metadata.report_markdown(report)


def test_bytes_the_fuzzer_found_give_an_error_naming_the_file(tmp_path):
    """A NUL, a lone carriage return and a comma: pandas warned of a short header, then finding the line failed."""
    path = tmp_path / "metadata.csv"
    path.write_bytes(b"\x00\r,")
    try:
        metadata.read_table(path)
    except metadata.MetadataError as exc:
        assert str(path) in str(exc)
