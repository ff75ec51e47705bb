"""
### music_recommendation

Content-based recommendations over a music library: for every track, the tracks that sound most like it.

1. **discover** lists the library's audio files, reuses the features of files unchanged since the last
   index, and splits the rest into shards;
2. **extract_features** runs once per shard (dynamic task mapping), with a process pool over the worker's
   cores; files that no decoder reads are quarantined with the reason;
3. **clean_metadata** cleans the optional metadata file; **validate_metadata** checks it with
   Great Expectations;
4. **join** → **scale** (StandardScaler) → **reduce** (PCA) → **build_index** (nearest neighbours);
5. **publish** makes the new index current. A failed run leaves the last good index in place.

Tasks exchange Parquet files under `data_dir`; XCom carries only paths and small summaries.
Defaults come from `MUSICREC_LIBRARY`, `MUSICREC_METADATA` and `MUSICREC_DATA_DIR`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from great_expectations_provider.common.errors import GXValidationFailed
from great_expectations_provider.operators.validate_batch import GXValidateBatchOperator

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


PARAMS = {
    "library_path": Param(os.environ.get("MUSICREC_LIBRARY", str(PROJECT_DIR / "library")), type="string", minLength=1,
                          title="Music library", description="Folder of audio files, one subfolder per album or collection."),
    "metadata_path": Param(os.environ.get("MUSICREC_METADATA", ""), type="string", title="Metadata file",
                           description="Optional CSV, TSV or Parquet naming each track by `folder` and `file`."),
    "data_dir": Param(os.environ.get("MUSICREC_DATA_DIR", str(PROJECT_DIR / "data")), type="string", minLength=1,
                      title="Data folder", description="Where runs, tables and the current index live."),
    "folders": Param([], type="array", items={"type": "string"}, title="Folders",
                     description="Top-level library folders to (re)process; empty takes them all."),
    "full_refresh": Param(False, type="boolean", title="Full refresh",
                          description="Extract every file again instead of reusing unchanged ones."),
    "n_components": Param(_env_int("MUSICREC_N_COMPONENTS", 24), type="integer", minimum=1, maximum=512,
                          title="PCA components"),
    "n_neighbors": Param(_env_int("MUSICREC_N_NEIGHBORS", 10), type="integer", minimum=1, maximum=200,
                         title="Neighbours per track"),
    "metric": Param("cosine", type="string", enum=["cosine", "euclidean"], title="Distance"),
    "metadata_weight": Param(float(os.environ.get("MUSICREC_METADATA_WEIGHT", 0.0)), type="number", minimum=0,
                             maximum=10, title="Metadata weight",
                             description="Weight of metadata features (genre, artist, decade, duration) beside the "
                                         "audio; 0 keeps the index audio-only."),
    "files_per_shard": Param(_env_int("MUSICREC_FILES_PER_SHARD", 50), type="integer", minimum=1, maximum=100000,
                             title="Files per shard"),
    "workers": Param(_env_int("MUSICREC_WORKERS", 0), type="integer", minimum=0, maximum=256,
                     title="Processes per shard", description="0 uses every core of the worker."),
}


class ValidateCleanMetadata(GXValidateBatchOperator):
    """The provider's batch validation, which also saves the result and names failures with example rows."""

    def execute(self, context):
        from musicrec import expectations, storage

        run_dir = Path(_run_dir())
        try:
            super().execute(context)
        except GXValidationFailed as failed:
            result = context["ti"].xcom_pull(task_ids=self.task_id) or {}
            storage.write_json(result, run_dir / storage.VALIDATION)
            docs = expectations.build_data_docs(self.gx_context, run_dir / storage.DATA_DOCS)
            lines = "\n  ".join(expectations.failures(result)) or str(failed)
            raise GXValidationFailed(message=f"cleaned metadata failed validation (full result: "
                                             f"{run_dir / storage.VALIDATION}, data docs: {docs}):\n  {lines}") from None
        storage.write_json(context["ti"].xcom_pull(task_ids=self.task_id), run_dir / storage.VALIDATION)
        expectations.build_data_docs(self.gx_context, run_dir / storage.DATA_DOCS)


def _clean_metadata_batch(gx_context):
    from musicrec import expectations

    ctx = get_current_context()
    ctx["task"].gx_context = gx_context  # kept for the data docs, built once the validation has run
    return expectations.batch_definition(gx_context, ctx["ti"].xcom_pull(task_ids="clean_metadata")["path"])


def _metadata_suite(gx_context):
    from musicrec import expectations

    return expectations.suite()


def _as_list(mapped_results) -> list:
    """The results of a mapped task (indexing stops at its length; iterating probes one past it)."""
    if not mapped_results:
        return []
    return [mapped_results[i] for i in range(len(mapped_results))]


def _run_dir() -> str:
    from musicrec import storage

    ctx = get_current_context()
    return str(storage.run_dir(ctx["params"]["data_dir"], ctx["run_id"]))


@dag(
    dag_id="music_recommendation",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["music", "recommendations", "audio"],
    doc_md=__doc__,
    params=PARAMS,
    default_args={"retries": 0},
)
def music_recommendation():
    @task
    def discover() -> list[dict]:
        """The shards to extract; the full summary goes to the run folder."""
        from musicrec import pipeline

        ctx = get_current_context()
        p = ctx["params"]
        return pipeline.discover(p["library_path"], p["data_dir"], ctx["run_id"], p["folders"],
                                 p["full_refresh"], p["files_per_shard"])["shards"]

    @task(map_index_template="{{ shard_label }}")
    def extract_features(shard: dict) -> dict:
        from musicrec import pipeline

        ctx = get_current_context()
        ctx["shard_label"] = shard["label"]
        return pipeline.extract_shard(ctx["params"]["library_path"], shard, ctx["params"]["workers"] or None)

    @task
    def clean_metadata() -> dict:
        from musicrec import pipeline

        return pipeline.clean_metadata(get_current_context()["params"]["metadata_path"] or None, _run_dir())

    validate_metadata = ValidateCleanMetadata(
        task_id="validate_metadata",
        configure_batch_definition=_clean_metadata_batch,
        configure_expectations=_metadata_suite,
        result_format="SUMMARY",
    )

    @task(trigger_rule="none_failed")
    def join(shard_results) -> dict:
        from musicrec import pipeline

        return pipeline.join(_run_dir(), _as_list(shard_results))

    @task
    def scale() -> dict:
        from musicrec import pipeline

        return pipeline.scale(_run_dir(), get_current_context()["params"]["metadata_weight"])

    @task
    def reduce() -> dict:
        from musicrec import pipeline

        return pipeline.reduce(_run_dir(), get_current_context()["params"]["n_components"])

    @task
    def build_index() -> dict:
        from musicrec import pipeline

        p = get_current_context()["params"]
        return pipeline.build_index(_run_dir(), p["n_neighbors"], p["metric"])

    @task
    def publish(stages: dict) -> dict:
        from musicrec import pipeline

        ctx = get_current_context()
        stages["extract"] = _as_list(stages["extract"])
        return pipeline.publish(ctx["params"]["data_dir"], _run_dir(), ctx["run_id"], stages)

    shards = discover()
    extracted = extract_features.expand(shard=shards)
    cleaned = clean_metadata()
    shards >> cleaned >> validate_metadata
    joined = join(extracted)
    validate_metadata >> joined
    scaled, reduced, indexed = scale(), reduce(), build_index()
    joined >> scaled >> reduced >> indexed
    publish({"extract": extracted, "clean_metadata": cleaned, "join": joined, "scale": scaled, "reduce": reduced,
             "build_index": indexed})


music_recommendation()
