"""The DAG's tasks. Each takes its inputs as arguments and returns what the next one needs: the paths of
what it wrote and a small summary (see `musicrec.pipeline.stages`). Airflow injects `params` and `run_id`.

Every write is atomic and lands in the run's own folder, so a task can be retried; input that cannot
work (a missing library, a malformed metadata file) fails at once instead, since a retry would fail
the same way.
"""

from __future__ import annotations

import functools
import logging
import os

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from musicrec.airflow.runner import IN_PROCESS


def said_plainly(body):
    """A task's failures in a sentence that says what to do (see `musicrec.errors.explained`), logged where
    `musicrec run` shows it beside "failed tasks". Bad input, a refusing disk or object storage, and a data dir
    that stayed busy for the whole `lock_wait_minutes` fail the task without its retries: they would fail the
    same way again (the wait was the retry). Object storage that did not answer is retried."""

    @functools.wraps(body)
    def run(*args, **kwargs):
        from musicrec.errors import InputError, explained
        from musicrec.store.lock import DataDirBusy

        try:
            return body(*args, **kwargs)
        except Exception as exc:
            refused = isinstance(exc, InputError | DataDirBusy)
            failure = explained(exc) or (exc if refused else None)
            if failure is None:
                raise
            logging.getLogger("musicrec").error("%s", failure)
            if isinstance(failure, InputError | DataDirBusy):
                raise AirflowFailException(str(failure)) from exc
            raise failure from exc

    return run


def as_list(mapped_results) -> list:
    """The results of a mapped task: empty when it was expanded over no shard (and so skipped)."""
    if not mapped_results:
        return []
    # Indexing stops at the sequence's length; iterating it probes one item past the end.
    return [mapped_results[i] for i in range(len(mapped_results))]


def _located(params: dict, name: str) -> str | None:
    """A location param: a local path, or a URL on object storage reached through `storage_conn_id`."""
    from musicrec.store.locations import with_conn_id

    return with_conn_id(params[name] or None, params.get("storage_conn_id"))


def library(params: dict) -> str:
    return _located(params, "library_path")


def data_dir(params: dict) -> str:
    return _located(params, "data_dir")


def metadata_path(params: dict) -> str | None:
    return _located(params, "metadata_path")


def folders_of_run(params: dict, logical_date) -> list[str]:
    """`folders`, plus the folder `folder_template` names for the run's logical date (backfills ingest so)."""
    from musicrec.library import discover
    from musicrec.store import storage

    folders = list(params.get("folders") or [])
    template = params.get("folder_template")
    if template:
        folder = discover.render_folder_template(template, logical_date)
        if not (storage.path(library(params)) / folder).is_dir():
            reason = f"nothing to ingest for {logical_date:%Y-%m-%d}: no folder {folder} in the library"
            logging.getLogger("musicrec").warning("%s; the run is skipped", reason)  # Airflow logs the skip folded away
            raise AirflowSkipException(reason)
        folders.append(folder)
    return folders


@task
@said_plainly
def take_lock(params: dict | None = None, run_id: str | None = None) -> dict:
    """The data dir for this run alone (waiting up to `lock_wait_minutes` for another run to finish)."""
    from musicrec.pipeline import publishing

    in_process = os.environ.get(IN_PROCESS) == "1"
    return publishing.take_lock(data_dir(params), run_id, params["lock_wait_minutes"], pid_holds_run=in_process)


@task
@said_plainly
def discover(params: dict | None = None, run_id: str | None = None, dag_run=None) -> dict:
    """The run: its folder, the files to extract and those reused from the last index."""
    from musicrec.pipeline import stages

    # A manual run may have no logical date: it is then the moment it was triggered.
    when = dag_run.logical_date or dag_run.run_after
    folders = folders_of_run(params, when)
    return stages.discover(
        library(params),
        data_dir(params),
        run_id,
        folders,
        bool(params["full_refresh"]),
        metadata_path(params),
        index_params=params,
    )


@task
@said_plainly
def shard(run: dict, params: dict | None = None) -> list[dict]:
    """One descriptor a shard (its work list's path); none when every file is reused."""
    from musicrec.pipeline import stages

    return stages.shard(run, params["files_per_shard"])


# What the UI shows for each mapped task ("shard 2/5: 50 files, soundtrack_a"), rendered as it starts.
@task(map_index_template="{{ task.op_kwargs['shard']['label'] }}")
@said_plainly
def extract_features(shard: dict, params: dict | None = None) -> dict:
    """Features of one shard's files, with a process pool over the worker's cores."""
    from musicrec.pipeline import stages

    return stages.extract_shard(shard, library(params), params["workers"] or None, params["max_analysis_minutes"])


@task
@said_plainly
def clean_metadata(run: dict, params: dict | None = None) -> dict:
    from musicrec.pipeline import stages

    return stages.clean_metadata(run, metadata_path(params))


# A run with nothing to extract skips the mapped task, and must still build and publish; a run whose
# date has no folder to ingest skips everything.
@task(trigger_rule="none_failed_min_one_success")
@said_plainly
def join(run: dict, shards, meta: dict) -> dict:
    from musicrec.pipeline import stages

    return stages.join(run, as_list(shards), meta)


@task
@said_plainly
def scale(tracks: dict, params: dict | None = None) -> dict:
    from musicrec.pipeline import stages

    return stages.scale(tracks, params["metadata_weight"])


@task
@said_plainly
def reduce(scaled: dict, params: dict | None = None) -> dict:
    from musicrec.pipeline import stages

    return stages.reduce(scaled, params["n_components"])


@task
@said_plainly
def duplicates(embedded: dict, tracks: dict, params: dict | None = None) -> dict:
    """Files of the same recording grouped: candidates from the embedding, confirmed by their fingerprints."""
    from musicrec.pipeline import stages

    return stages.duplicates(embedded, tracks, params["metric"])


@task
@said_plainly
def build_index(embedded: dict, tracks: dict, recordings: dict, params: dict | None = None) -> dict:
    from musicrec.pipeline import stages

    return stages.build_index(embedded, tracks, recordings, params["n_neighbors"], params["metric"], params["hubness"])


@task
@said_plainly
def mixes(embedded: dict, tracks: dict, index: dict, recordings: dict, params: dict | None = None) -> dict:
    """The library clustered into mixes, named from their tags, as M3U8 files beside the index."""
    from musicrec.pipeline import stages

    return stages.mixes(embedded, tracks, index, recordings, params["mixes"])


@task
@said_plainly
def evaluate(embedded: dict, tracks: dict, index: dict) -> dict:
    """Precision, coverage and hubness of the index (evaluation.json, evaluation.md and plots in the run)."""
    from musicrec.pipeline import stages

    return stages.evaluate(embedded, tracks, index)


@task
@said_plainly
def release_lock(params: dict | None = None, run_id: str | None = None) -> bool:
    """The data dir's lock, given back whatever happened to the run (a teardown of take_lock: it runs after
    a failure too, and its own result does not decide the run's)."""
    from musicrec.pipeline import publishing

    return publishing.release(data_dir(params), run_id)


@task
@said_plainly
def publish(run: dict, evaluated: dict, mixed: dict) -> dict:
    from musicrec.pipeline import publishing

    return publishing.publish(run, evaluated, mixed)
