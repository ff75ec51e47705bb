"""The DAG as the scheduler and the trigger form see it: its wiring, parameters and parse cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.plugin import load_plugin
from support.project import PROJECT_DIR

DAG_FILE = PROJECT_DIR / "dags" / "music_recommendation.py"
HEAVY = ["librosa", "sklearn", "great_expectations", "pandas", "numpy", "scipy", "soundfile", "pyarrow", "numba"]


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.get_dag("music_recommendation")


def _upstream(dag, task_id: str) -> set[str]:
    return {t.task_id for t in dag.get_task(task_id).upstream_list}


def test_each_task_gets_what_it_reads_from_the_task_that_wrote_it(dag):
    from musicrec.airflow.validation import ValidateMetadata

    assert dag.get_task("extract_features").is_mapped
    assert isinstance(dag.get_task("validate_metadata"), ValidateMetadata)
    assert _upstream(dag, "discover") == {"take_lock"}
    assert _upstream(dag, "shard") == {"discover"}
    assert _upstream(dag, "extract_features") == {"shard"}
    assert _upstream(dag, "clean_metadata") == {"discover"}
    assert _upstream(dag, "validate_metadata") == {"clean_metadata"}
    assert _upstream(dag, "join") == {"discover", "extract_features", "validate_metadata"}
    assert _upstream(dag, "scale") == {"join"}
    assert _upstream(dag, "reduce") == {"scale"}
    assert _upstream(dag, "duplicates") == {"reduce", "join"}
    assert _upstream(dag, "build_index") == {"reduce", "join", "duplicates"}
    assert _upstream(dag, "evaluate") == {"reduce", "join", "build_index"}
    assert _upstream(dag, "mixes") == {"reduce", "join", "build_index", "duplicates"}
    assert _upstream(dag, "publish") == {"discover", "evaluate", "mixes"}
    release = dag.get_task("release_lock")
    assert dag.get_task("take_lock").is_setup
    assert release.is_teardown and _upstream(dag, "release_lock") == {"take_lock", "publish"}


def test_a_run_with_no_shard_still_joins_and_publishes(dag):
    # An empty expansion skips the mapped task; join must not be skipped with it, and nothing after join
    # depends on the mapped task directly.
    assert dag.get_task("join").trigger_rule == "none_failed_min_one_success"
    downstream_of_join = dag.get_task("join").get_flat_relative_ids(upstream=False)
    assert {"scale", "reduce", "duplicates", "build_index", "mixes", "publish"} <= downstream_of_join
    for task_id in ("scale", "reduce", "duplicates", "build_index", "mixes", "publish"):
        assert "extract_features" not in _upstream(dag, task_id)


def test_publishing_updates_the_index_asset(dag):
    outlets = dag.get_task("publish").outlets
    assert [a.name for a in outlets] == ["musicrec_index"] and outlets[0].uri.endswith("/current")


def test_schedule_runs_and_retries(dag):
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.get_task("extract_features").retries == 2
    assert dag.get_task("publish").retries == 2
    assert dag.get_task("validate_metadata").retries == 2  # a lost worker; a failed validation fails at once


def _form_blocks(param: dict) -> bool:
    """The trigger form's rule: a field whose type is set and not nullable is required when empty."""
    kind = param["schema"].get("type")
    required = bool(kind) and (not isinstance(kind, list) or "null" not in kind)
    return required and param["value"] is None


def test_trigger_form_can_be_submitted_with_no_environment_set(airflow_db):
    code = (
        "import json, sys; from airflow.dag_processing.dagbag import DagBag; "
        "dag = DagBag(dag_folder=sys.argv[1]).get_dag('music_recommendation'); dag.params.validate(); "
        "print(json.dumps({k: dag.params.get_param(k).serialize() for k in dag.params}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICREC_")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAG_FILE)], capture_output=True, text=True, check=True, env=env
    )
    params = json.loads(out.stdout.strip().splitlines()[-1])
    assert [name for name, param in params.items() if _form_blocks(param)] == []
    assert params["metadata_path"]["value"] is None
    assert "null" in params["metadata_path"]["schema"]["type"]
    assert "optional" in params["metadata_path"]["schema"]["description_md"].lower()


def _required_in_form(param: dict) -> bool:
    """The trigger form's own rule: a field is required unless its type admits null."""
    kind = param["schema"].get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def test_trigger_form_sections_descriptions_and_what_it_requires():
    import runpy

    params = {name: p.serialize() for name, p in runpy.run_path(str(DAG_FILE))["PARAMS"].items()}
    # Empty or false is what these mean: the form must not mark them required.
    for name in ("metadata_path", "folder_template", "folders", "full_refresh", "storage_conn_id"):
        assert not _required_in_form(params[name]), name
    for name, param in params.items():
        text = param["description"] or param["schema"].get("description_md")
        assert text, f"{name} has no description"
        assert "`" not in (param["description"] or ""), f"{name}: backticks in a plain description show as such"
        assert param["schema"].get("section") in ("Library", "Index", "Execution"), name


def test_parsing_the_dag_file_loads_no_heavy_library():
    code = f"import runpy, sys; runpy.run_path(sys.argv[1]); print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code, str(DAG_FILE)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_dag_the_cli_and_the_page_use_one_default_data_dir(dag):
    """Before, three: the project's data/ (DAG), ./data wherever the command ran (CLI), plugins/../data (page)."""

    from musicrec import cli, settings

    plugin = load_plugin()
    expected = os.environ.get("MUSICREC_DATA_DIR") or str(PROJECT_DIR / "data")
    assert dag.params["data_dir"] == cli.DEFAULT_DATA_DIR == plugin.DATA_DIR == expected
    assert dag.dag_id == settings.DAG_ID
