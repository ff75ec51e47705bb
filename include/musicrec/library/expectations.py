"""The Great Expectations suite that states what the cleaned metadata table guarantees."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from musicrec.library import metadata
from musicrec.store import storage

log = logging.getLogger("musicrec")

SUITE_NAME = "musicrec_metadata_clean"
MAX_EXAMPLES = 5


def suite():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    string_types = ["str", "string", "object", "StringDtype", "string[python]", "string[pyarrow]"]
    return gx.ExpectationSuite(
        name=SUITE_NAME,
        expectations=[gxe.ExpectColumnToExist(column=c) for c in metadata.CLEAN_COLUMNS]
        + [
            gxe.ExpectColumnValuesToNotBeNull(column="track_key"),
            gxe.ExpectColumnValuesToBeUnique(column="track_key"),
            gxe.ExpectColumnValuesToNotBeNull(column="file"),
            gxe.ExpectColumnValuesToBeInTypeList(column="track_key", type_list=string_types),
            gxe.ExpectColumnValuesToBeInTypeList(column="duration_s", type_list=["float64", "Float64"]),
            gxe.ExpectColumnValuesToBeInTypeList(column="year", type_list=["Int64Dtype"]),
            gxe.ExpectColumnValuesToBeBetween(
                column="duration_s", min_value=0, max_value=metadata.MAX_DURATION_S, strict_min=True
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="year", min_value=metadata.MIN_YEAR, max_value=dt.date.today().year + 1
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="genre"),
            gxe.ExpectColumnValuesToBeInSet(column="genre", value_set=[*metadata.GENRES, metadata.UNKNOWN_GENRE]),
        ],
    )


def batch_definition(context, parquet_path: str | Path):
    """A batch over one Parquet file, built when the validation runs (not when the DAG is parsed)."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # Progress bars are noise in task logs and in `musicrec run`'s output.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    path = Path(parquet_path)
    source = context.data_sources.add_or_update_pandas_filesystem(name="musicrec", base_directory=path.parent)
    asset = source.add_parquet_asset(name=path.stem)
    return asset.add_batch_definition_path(name=path.name, path=path.name)


def failures(result: dict) -> list[str]:
    """One readable line per failed expectation: what it expected, on which column, with example rows."""
    lines = []
    for exp in result.get("expectations", []):
        if exp.get("success", True):
            continue
        kwargs = {k: v for k, v in (exp.get("kwargs") or {}).items() if k not in ("batch_id", "column")}
        column = (exp.get("kwargs") or {}).get("column")
        res = exp.get("result") or {}
        examples = res.get("partial_unexpected_list") or []
        rows = res.get("partial_unexpected_index_list") or []
        detail = f"{res.get('unexpected_count', '?')} unexpected" if "unexpected_count" in res else ""
        if examples:
            detail += f", e.g. {examples[:MAX_EXAMPLES]}"
        if rows:
            detail += f" at rows {rows[:MAX_EXAMPLES]}"
        where = f" on column '{column}'" if column else ""
        args = f" {kwargs}" if kwargs else ""
        lines.append(f"{exp.get('expectation_type')}{where}{args}: {detail or res}")
    return lines


def build_data_docs(context, folder: str | Path) -> Path | None:
    """GX's HTML data docs of the validations run in `context`, under `folder`; None if they cannot be built."""
    folder = Path(folder)
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    try:
        context.add_data_docs_site(site_name="musicrec", site_config=site)
        context.build_data_docs(site_names=["musicrec"])
    except Exception as exc:  # the docs are a convenience; the JSON result is what the run keeps
        log.warning("Great Expectations data docs not built: %s", exc)
        return None
    index = folder / "index.html"
    return index if index.exists() else None


def fingerprint(parquet_path: str | Path) -> str:
    """What a validation result depends on: the table's values and types, the suite's code, and the year
    (the suite's newest valid year). Equal fingerprints give equal results."""
    import hashlib
    import inspect

    import pandas as pd

    table = storage.read_parquet(parquet_path)
    digest = hashlib.sha256()
    digest.update(repr([(c, str(t)) for c, t in table.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(table.astype("string"), index=False).to_numpy().tobytes())
    for module in (suite, metadata):
        digest.update(inspect.getsource(inspect.getmodule(module)).encode())
    digest.update(str(dt.date.today().year).encode())
    return digest.hexdigest()
