"""
### music_recommendation

Content-based recommendations over a music library: for every track, the tracks that sound most like it.

0. **take_lock** takes the data folder for this run alone; **release_lock** (a teardown) gives it back,
   after a failure too;
1. **discover** lists the library's audio files (and the folder that `folder_template` names for the run's
   date) and reuses the features of files unchanged since the last index; **shard** splits the rest;
2. **extract_features** runs once per shard (dynamic task mapping), with a process pool over the worker's
   cores; files that no decoder reads are quarantined with the reason;
3. **clean_metadata** cleans the optional metadata file; **validate_metadata** checks it with
   Great Expectations;
4. **join** → **scale** (StandardScaler) → **reduce** (PCA) → **build_index** (nearest neighbours, with
   optional hubness reduction) → **evaluate** (precision by folder, genre, album, artist; coverage;
   hubness; plots);
5. **publish** makes the new index current (the `musicrec_index` Asset). A failed run leaves the last good
   index in place.

Tasks exchange Parquet files in the run's folder under `data_dir`; XCom carries only paths and small
summaries. Defaults come from `MUSICREC_LIBRARY`, `MUSICREC_METADATA` and `MUSICREC_DATA_DIR`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
from airflow.sdk import Asset, Param, dag

from musicrec import settings
from musicrec.airflow import tasks
from musicrec.airflow.validation import ValidateMetadata
from musicrec.store.locations import is_url

DEFAULTS = settings.defaults()

# Other DAGs can be scheduled on a new index (the default data dir's; a run with another data_dir updates it too).
_DATA = DEFAULTS["data_dir"]
INDEX = Asset(
    name="musicrec_index",
    uri=(_DATA.rstrip("/") if is_url(_DATA) else Path(_DATA).absolute().as_uri()) + "/current",
)

# The trigger form's sections, in the order the form shows them.
LIBRARY, INDEX_SECTION, EXECUTION = "Library", "Index", "Execution"

PARAMS = {
    "library_path": Param(
        DEFAULTS["library_path"],
        type="string",
        minLength=1,
        title="Music library",
        description="Folder of audio files, one subfolder per album or collection (or s3://bucket/prefix).",
        section=LIBRARY,
    ),
    "metadata_path": Param(
        DEFAULTS["metadata_path"],
        type=["null", "string"],
        title="Metadata file",
        description_md="Optional CSV, TSV or Parquet naming each track by `folder` and `file`; "
        "leave empty to use the files' embedded tags only.",
        section=LIBRARY,
    ),
    "folder_template": Param(
        DEFAULTS["folder_template"],
        type=["null", "string"],
        title="Folder of the run's date",
        description_md="Optional: a folder to ingest, rendered with the run's logical date, e.g. "
        "`incoming/{{ ds }}`. A backfill ingests each date's folder; a date without one is skipped.",
        section=LIBRARY,
    ),
    "folders": Param(
        DEFAULTS["folders"],
        type=["null", "array"],
        items={"type": "string"},
        title="Folders",
        description="Library folders to (re)process, relative to the library, one a line; empty takes them all.",
        section=LIBRARY,
    ),
    "full_refresh": Param(
        DEFAULTS["full_refresh"],
        type=["null", "boolean"],
        title="Full refresh",
        description="Extract every file again instead of reusing unchanged ones.",
        section=LIBRARY,
    ),
    "data_dir": Param(
        DEFAULTS["data_dir"],
        type="string",
        minLength=1,
        title="Data folder",
        description="Where runs, tables and the current index live: a folder every worker sees, "
        "or object storage (s3://bucket/prefix).",
        section=INDEX_SECTION,
    ),
    "n_components": Param(
        DEFAULTS["n_components"],
        type="integer",
        minimum=1,
        maximum=512,
        title="PCA components per feature group",
        description="Dimensions kept of each feature group (librosa's features; the network's embedding) "
        "before neighbours are searched.",
        section=INDEX_SECTION,
    ),
    "n_neighbors": Param(
        DEFAULTS["n_neighbors"],
        type="integer",
        minimum=1,
        maximum=200,
        title="Neighbours per track",
        description="How many similar tracks the index keeps for each track.",
        section=INDEX_SECTION,
    ),
    "metric": Param(
        DEFAULTS["metric"],
        type="string",
        enum=["cosine", "euclidean"],
        title="Distance",
        description="How the distance between two tracks' embeddings is measured.",
        section=INDEX_SECTION,
    ),
    "hubness": Param(
        DEFAULTS["hubness"],
        type="string",
        enum=["none", "mutual_proximity"],
        title="Hubness reduction",
        description_md="`mutual_proximity` re-ranks neighbours so that a few tracks are not everyone's "
        "neighbour; each run's `evaluation.md` shows both.",
        section=INDEX_SECTION,
    ),
    "metadata_weight": Param(
        DEFAULTS["metadata_weight"],
        type="number",
        minimum=0,
        maximum=10,
        title="Metadata weight",
        description="Weight of metadata features (genre, artist, decade, duration) beside the "
        "audio; 0 keeps the index audio-only.",
        section=INDEX_SECTION,
    ),
    # A shard's fixed cost under the scheduler is about 5 s (benchmarks/SHARDS.md); 100 files of a few minutes
    # take a core about a minute, so the fixed cost stays under a tenth.
    "files_per_shard": Param(
        DEFAULTS["files_per_shard"],
        type="integer",
        minimum=1,
        maximum=100000,
        title="Files per shard",
        description="More shards spread over more workers; each costs a few seconds to start.",
        section=EXECUTION,
    ),
    "workers": Param(
        DEFAULTS["workers"],
        type="integer",
        minimum=0,
        maximum=256,
        title="Processes per shard",
        description="0 uses every core of the worker that no other shard of this deployment holds.",
        section=EXECUTION,
    ),
    "max_analysis_minutes": Param(
        DEFAULTS["max_analysis_minutes"],
        type="number",
        minimum=0,
        title="Longest analysis (minutes)",
        description="A longer track is analysed on its first minutes only, so memory stays bounded; 0: no cap.",
        section=EXECUTION,
    ),
    "lock_wait_minutes": Param(
        DEFAULTS["lock_wait_minutes"],
        type="number",
        minimum=0,
        title="Wait for the data folder (minutes)",
        description="How long a run waits while another run holds the data folder, before it fails naming it.",
        section=EXECUTION,
    ),
    "storage_conn_id": Param(
        DEFAULTS["storage_conn_id"],
        type=["null", "string"],
        title="Object storage connection",
        description="Airflow connection (e.g. of type aws, with endpoint_url in its extra) for an s3:// "
        "library, metadata file or data folder; empty uses the environment's credentials.",
        section=EXECUTION,
    ),
}


@dag(
    dag_id=settings.DAG_ID,
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["music", "recommendations", "audio"],
    doc_md=__doc__,
    params=PARAMS,
    # Every task writes atomically into its run's folder, so a retry is safe; bad input fails at once.
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30)},
)
def music_recommendation():
    lock = tasks.take_lock()
    run = tasks.discover()
    lock >> run
    shards = tasks.extract_features.expand(shard=tasks.shard(run))
    cleaned = tasks.clean_metadata(run)
    # A table that fails validation fails the task without retries; a lost worker is retried.
    meta = ValidateMetadata(task_id="validate_metadata", cleaned=cleaned).output
    tracks = tasks.join(run, shards, meta)
    scaled = tasks.scale(tracks)
    embedded = tasks.reduce(scaled)
    index = tasks.build_index(embedded, tracks)
    evaluated = tasks.evaluate(embedded, tracks, index)
    published = tasks.publish.override(outlets=[INDEX])(run, evaluated)
    published >> tasks.release_lock().as_teardown(setups=lock)


music_recommendation()
