"""The Great Expectations suite on the cleaned metadata table."""

from __future__ import annotations

import pandas as pd
import pytest

from musicrec.library import expectations, metadata
from musicrec.store import storage


def _clean_table() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "folder": ["a", "a", "b"],
            "file": ["1.wav", "2.wav", "3.wav"],
            "title": ["One", None, "Three"],
            "genre": ["Rock", "hip hop", None],
            "year": ["1999", "", "2020"],
            "duration": ["3:00", "61", ""],
        }
    )
    return metadata.clean(raw)[0]


def _validate(df: pd.DataFrame, tmp_path) -> dict:
    import great_expectations as gx

    path = storage.write_parquet(df, tmp_path / "metadata_clean.parquet")
    context = gx.get_context(mode="ephemeral")
    batch = expectations.batch_definition(context, path)
    suite = context.suites.add(expectations.suite())
    validation = gx.ValidationDefinition(name="t", data=batch, suite=suite)
    return validation.run(result_format="SUMMARY").describe_dict()


def test_a_cleaned_table_passes(tmp_path):
    result = _validate(_clean_table(), tmp_path)
    assert result["success"], expectations.failures(result)


def test_an_empty_cleaned_table_passes(tmp_path):
    empty = metadata.clean(pd.DataFrame(columns=["folder", "file"]))[0]
    assert _validate(empty, tmp_path)["success"]


@pytest.mark.parametrize(
    "break_it, expectation, column",
    [
        (lambda df: pd.concat([df, df.iloc[:1]], ignore_index=True), "expect_column_values_to_be_unique", "track_key"),
        (lambda df: df.assign(duration_s=[-1.0, 10.0, None]), "expect_column_values_to_be_between", "duration_s"),
        (lambda df: df.assign(duration_s=[7 * 3600.0, 10.0, None]), "expect_column_values_to_be_between", "duration_s"),
        (
            lambda df: df.assign(year=pd.array([1200, None, 2000], dtype="Int64")),
            "expect_column_values_to_be_between",
            "year",
        ),
        (
            lambda df: df.assign(genre=pd.array(["rock", "polka", "jazz"], dtype="string")),
            "expect_column_values_to_be_in_set",
            "genre",
        ),
        (
            lambda df: df.assign(genre=pd.array(["rock", None, "jazz"], dtype="string")),
            "expect_column_values_to_not_be_null",
            "genre",
        ),
        (lambda df: df.assign(year=["1999", "2000", "x"]), "expect_column_values_to_be_in_type_list", "year"),
        (lambda df: df.drop(columns="album"), "expect_column_to_exist", "album"),
    ],
)
def test_each_broken_guarantee_fails_and_is_named(tmp_path, break_it, expectation, column):
    result = _validate(break_it(_clean_table()), tmp_path)
    assert not result["success"]
    lines = expectations.failures(result)
    assert any(line.startswith(expectation) and f"'{column}'" in line for line in lines), lines
