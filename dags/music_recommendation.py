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
from airflow.sdk import Asset, dag

from musicrec import settings
from musicrec.airflow import tasks
from musicrec.airflow.params import dag_params
from musicrec.airflow.validation import ValidateMetadata
from musicrec.store.locations import is_url

# Other DAGs can be scheduled on a new index (the default data dir's; a run with another data_dir updates it too).
_DATA = settings.default_data_dir()
INDEX = Asset(
    name="musicrec_index",
    uri=(_DATA.rstrip("/") if is_url(_DATA) else Path(_DATA).absolute().as_uri()) + "/current",
)

# Declared in musicrec.settings.PARAMETERS, with their defaults, bounds and form sections.
PARAMS = dag_params()


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
    recordings = tasks.duplicates(embedded, tracks)
    index = tasks.build_index(embedded, tracks, recordings)
    mixed = tasks.mixes(embedded, tracks, index, recordings)
    evaluated = tasks.evaluate(embedded, tracks, index)
    published = tasks.publish.override(outlets=[INDEX])(run, evaluated, mixed)
    published >> tasks.release_lock().as_teardown(setups=lock)


music_recommendation()
