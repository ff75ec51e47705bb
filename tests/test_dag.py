"""The DAG: integrity, and real runs with dag.test() on a generated library."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import PROJECT_DIR
from musicrec import cli, extract, features, model, storage

DAG_FILE = PROJECT_DIR / "dags" / "music_recommendation.py"
HEAVY = ["librosa", "sklearn", "great_expectations", "pandas", "numpy", "scipy", "soundfile", "pyarrow", "numba"]
K = 5


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.get_dag("music_recommendation")


def test_dag_shape(dag):
    from great_expectations_provider.operators.validate_batch import GXValidateBatchOperator

    assert dag.get_task("extract_features").is_mapped
    assert isinstance(dag.get_task("validate_metadata"), GXValidateBatchOperator)
    assert dag.catchup is False and dag.max_active_runs == 1
    assert set(dag.params) >= {"library_path", "metadata_path", "data_dir", "folders", "full_refresh",
                               "n_components", "n_neighbors", "files_per_shard"}
    assert {t.task_id for t in dag.get_task("join").upstream_list} == {"extract_features", "validate_metadata"}
    assert [t.task_id for t in dag.get_task("publish").upstream_list if t.task_id == "build_index"]


def test_parsing_the_dag_file_loads_no_heavy_library():
    code = ("import runpy, sys; runpy.run_path(sys.argv[1]); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(DAG_FILE)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _conf(library, data_dir, **extra):
    return {"library_path": str(library), "metadata_path": str(library / "metadata.csv"), "data_dir": str(data_dir),
            "files_per_shard": 7, "n_neighbors": K, "workers": 1, **extra}


@pytest.fixture(scope="module")
def first_dag_run(dag, airflow_db, demo_library, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    dag_run = dag.test(run_conf=_conf(demo_library, data_dir))
    assert dag_run.state == "success"
    return data_dir, dag_run


@pytest.fixture(scope="module")
def first_run(first_dag_run):
    return first_dag_run[0]


def test_each_shard_is_named_for_the_ui(first_dag_run):
    labels = sorted(ti.rendered_map_index for ti in first_dag_run[1].get_task_instances()
                    if ti.task_id == "extract_features")
    assert labels == ["shard 1/3: 7 files, chip_arps … deep_drones", "shard 2/3: 7 files, deep_drones … noise_beats",
                      "shard 3/3: 7 files, noise_beats … soft_keys"]


def test_outputs_have_the_documented_columns(first_run):
    current = storage.require_current(first_run)
    feats = pd.read_parquet(current / storage.FEATURES)
    assert list(feats.columns) == ["track_key", "folder", "file", "duration_s", *features.feature_columns(),
                                   *extract.BOOKKEEPING_COLUMNS]
    assert list(pd.read_parquet(current / storage.QUARANTINE).columns) == extract.QUARANTINE_COLUMNS
    assert list(pd.read_parquet(current / storage.RECOMMENDATIONS).columns) == model.RECOMMENDATION_COLUMNS
    for name in (storage.METADATA_CLEAN, storage.TRACKS, storage.EMBEDDINGS):
        assert "track_key" in pd.read_parquet(current / name).columns
    model_json = json.loads((current / storage.MODEL).read_text())
    assert set(model_json) >= {"scaler", "pca", "feature_columns", "feature_version"}


def test_the_mapped_task_computes_what_the_features_command_computes(first_run, demo_library):
    from musicrec import discover

    dag_features = pd.read_parquet(storage.require_current(first_run) / storage.FEATURES)
    worklist = discover.scan(demo_library, ["chip_arps"])
    standalone, _ = extract.extract(demo_library, worklist, workers=1)
    mine = dag_features[dag_features["folder"] == "chip_arps"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, standalone, rtol=1e-4, atol=1e-4)


def test_the_run_summary_counts_everything(first_run, demo_library):
    summary = storage.read_json(storage.require_current(first_run) / storage.SUMMARY)
    assert summary["tracks_indexed"] == 20 and summary["files_found"] == 21
    assert summary["stages"]["extract"]["shards"] == 3
    assert [q["track_key"] for q in summary["quarantined"]] == ["deep_drones/broken download.mp3"]
    assert summary["metadata_rows_not_in_library"] == 1
    assert summary["tracks_with_metadata"] == 20
    assert (storage.require_current(first_run) / storage.VALIDATION).exists()
    assert "musicrec_metadata_clean" in (storage.require_current(first_run) / storage.DATA_DOCS / "index.html").read_text()


def test_every_track_has_k_neighbours_mostly_of_its_own_style(first_run):
    recs = pd.read_parquet(storage.require_current(first_run) / storage.RECOMMENDATIONS)
    assert (recs.groupby("track_key").size() == K).all() and recs["track_key"].nunique() == 20
    assert not (recs["track_key"] == recs["neighbor_key"]).any()
    same_style = recs["track_key"].str.split("/").str[0] == recs["neighbor_key"].str.split("/").str[0]
    # 4 styles of 5 tracks: a random neighbour shares the style 4 times in 19 (0.21).
    assert same_style.mean() >= 0.8


def test_recommend_and_export_commands(first_run, capsys, tmp_path):
    assert cli.main(["recommend", "Drones no. 2", "--k", "3", "--json", "--data-dir", str(first_run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["track"]["track_key"] == "deep_drones/Deep Drones 02.flac"
    assert result["track"]["artist"] == "Lowland Hum" and result["track"]["genre"] == "ambient"
    assert len(result["neighbors"]) == 3 and result["neighbors"][0]["distance"] <= result["neighbors"][2]["distance"]
    assert cli.main(["recommend", "no such track", "--data-dir", str(first_run)]) == 1
    out = tmp_path / "export.csv"
    assert cli.main(["export", "--out", str(out), "--data-dir", str(first_run)]) == 0
    exported = pd.read_csv(out)
    assert len(exported) == 20 and {"folder", "file", "pc_01"} <= set(exported.columns)


def test_second_run_reuses_unchanged_features(first_run, demo_library, airflow_db, capsys):
    code = cli.main(["run", "--library", str(demo_library), "--metadata", str(demo_library / "metadata.csv"),
                     "--data-dir", str(first_run), "--n-neighbors", str(K), "--workers", "1"])
    assert code == 0
    summary = storage.read_json(storage.require_current(first_run) / storage.SUMMARY)
    assert summary["files_reused"] == 20 and summary["files_extracted"] == 0
    assert summary["tracks_indexed"] == 20
    assert "indexed 20 tracks" in capsys.readouterr().out


def test_failed_validation_fails_the_run_and_keeps_the_last_index(first_run, demo_library, dag, monkeypatch):
    from musicrec import metadata

    before = storage.require_current(first_run)
    # Cleaning that leaves raw genre labels in place breaks the suite's vocabulary guarantee.
    monkeypatch.setattr(metadata, "canonical_genre", lambda label: label if isinstance(label, str) else "unknown")
    dag_run = dag.test(run_conf=_conf(demo_library, first_run))
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["validate_metadata"] == "failed" and states["join"] == "upstream_failed"
    assert storage.require_current(first_run) == before
    failed_dir = storage.run_dir(first_run, dag_run.run_id)
    result = json.loads((failed_dir / storage.VALIDATION).read_text())
    assert result["success"] is False
    failed = [e for e in result["expectations"] if not e["success"]]
    assert [(e["expectation_type"], e["kwargs"]["column"]) for e in failed] == [
        ("expect_column_values_to_be_in_set", "genre")]
    assert (failed_dir / storage.DATA_DOCS / "index.html").exists()


def test_ui_page_and_api_serve_the_current_index(first_run, monkeypatch):
    import importlib.util

    from fastapi.testclient import TestClient

    spec = importlib.util.spec_from_file_location("musicrec_plugin", PROJECT_DIR / "plugins" / "musicrec_plugin.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    monkeypatch.setattr(plugin, "DATA_DIR", str(first_run))
    client = TestClient(plugin.app)
    assert "Tracks that sound like" in client.get("/").text
    body = client.get("/api/recommend", params={"q": "Arps no. 3", "k": 4}).json()
    assert body["track"]["track_key"] == "chip_arps/Chip Arps 03.wav" and len(body["neighbors"]) == 4
    assert client.get("/api/recommend", params={"q": "zzz"}).status_code == 404
    assert client.get("/api/summary").json()["tracks_indexed"] == 20
    assert plugin.MusicrecPlugin.external_views[0]["href"] == "musicrec/"
