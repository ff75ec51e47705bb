"""Real runs of the DAG with dag.test() on a generated library: what they write, publish and report."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from musicrec import cli
from musicrec.analysis import extract, features
from musicrec.index import mixes, neighbours
from musicrec.store import lock, storage
from support.plugin import load_plugin, plugin_client
from support.project import PROJECT_DIR

DAG_FILE = PROJECT_DIR / "dags" / "music_recommendation.py"
K = 5
BROKEN = "deep_drones/broken download.mp3"


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.get_dag("music_recommendation")


def _conf(library, data_dir, **extra):
    # Every param the tests vary is given each time: dag.test() keeps a run's conf in the DAG's params,
    # and the DAG object is shared by the module's tests.
    return {
        "library_path": str(library),
        "metadata_path": str(library / "metadata.csv"),
        "data_dir": str(data_dir),
        "files_per_shard": 7,
        "n_neighbors": K,
        "workers": 1,
        "folders": [],
        "folder_template": None,
        "full_refresh": False,
        **extra,
    }


@pytest.fixture(scope="module")
def first_dag_run(dag, airflow_db, demo_library, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    dag_run = dag.test(run_conf=_conf(demo_library, data_dir))
    assert dag_run.state == "success"
    return data_dir, dag_run


@pytest.fixture(scope="module")
def first_run(first_dag_run):
    return first_dag_run[0]


@pytest.fixture(scope="module")
def clean_library(demo_library, tmp_path_factory):
    """The demo library without its broken file, modification times kept: nothing in it needs extracting again."""
    root = tmp_path_factory.mktemp("clean-library") / "library"
    shutil.copytree(demo_library, root, ignore=lambda folder, names: [n for n in names if n == BROKEN.split("/")[1]])
    return root


def _copy_of(data_dir, tmp_path):
    """A copy of a data dir (its `current` link is relative), so a test can publish over it on its own."""
    return shutil.copytree(data_dir, tmp_path / "data", symlinks=True)


def test_each_shard_is_named_for_the_ui(first_dag_run):
    labels = sorted(
        ti.rendered_map_index for ti in first_dag_run[1].get_task_instances() if ti.task_id == "extract_features"
    )
    assert labels == [
        "shard 1/3: 7 files, chip_arps … deep_drones",
        "shard 2/3: 7 files, deep_drones … noise_beats",
        "shard 3/3: 7 files, noise_beats … soft_keys",
    ]


def test_outputs_have_the_documented_columns(first_run):
    current = storage.require_current(first_run)
    feats = pd.read_parquet(current / storage.FEATURES)
    assert list(feats.columns) == [
        "track_key",
        "folder",
        "file",
        "duration_s",
        *features.stored_columns(),
        features.FINGERPRINT,
        *extract.BOOKKEEPING_COLUMNS,
    ]
    assert list(pd.read_parquet(current / storage.QUARANTINE).columns) == extract.QUARANTINE_COLUMNS
    assert list(pd.read_parquet(current / storage.MIXES).columns) == mixes.COLUMNS
    assert sorted(p.suffix for p in (current / storage.MIX_PLAYLISTS).iterdir()) == [".m3u8"] * mixes.how_many(
        len(feats)
    )
    assert list(pd.read_parquet(current / storage.RECOMMENDATIONS).columns) == neighbours.RECOMMENDATION_COLUMNS
    for name in (storage.METADATA_CLEAN, storage.TRACKS, storage.EMBEDDINGS):
        assert "track_key" in pd.read_parquet(current / name).columns
    model_json = json.loads((current / storage.MODEL).read_text())
    assert set(model_json) >= {"scaler", "embedding", "feature_columns", "feature_version"}


def test_the_run_evaluates_its_index_against_the_librarys_known_styles(first_run):
    current = storage.require_current(first_run)
    report = json.loads((current / storage.EVALUATION).read_text())
    # The demo library's folders are four clearly different styles of 5 tracks: 4 of the 5 neighbours share
    # the folder at best, and chance is 4/19.
    folder = report["methods"][report["index_hubness"]]["precision"]["folder@5"]
    assert report["labels"]["folder"]["chance"] < 0.25 and folder["micro"] >= 0.75 and folder["tracks"] == 20
    assert (
        set(report["methods"]) == {"none", "mutual_proximity"} and "genre@5" in report["methods"]["none"]["precision"]
    )
    for name in (storage.EVALUATION_MD, storage.PLOT_MAP, storage.PLOT_VARIANCE, storage.PLOT_K_OCCURRENCE):
        assert (current / name).stat().st_size > 500
    summary = json.loads((current / storage.SUMMARY).read_text())
    assert summary["evaluation"]["precision_folder_at_5"] == folder["micro"]


def test_the_mapped_task_computes_what_the_features_command_computes(first_run, demo_library):
    from musicrec.library import discover

    dag_features = pd.read_parquet(storage.require_current(first_run) / storage.FEATURES)
    worklist = discover.scan(demo_library, ["chip_arps"]).files
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
    assert (
        "musicrec_metadata_clean" in (storage.require_current(first_run) / storage.DATA_DOCS / "index.html").read_text()
    )


def test_every_track_has_k_neighbours_mostly_of_its_own_style(first_run):
    recs = pd.read_parquet(storage.require_current(first_run) / storage.RECOMMENDATIONS)
    assert (recs.groupby("track_key").size() == K).all() and recs["track_key"].nunique() == 20
    assert not (recs["track_key"] == recs["neighbor_key"]).any()
    same_style = recs["track_key"].str.split("/").str[0] == recs["neighbor_key"].str.split("/").str[0]
    # 4 styles of 5 tracks: a random neighbour shares the style 4 times in 19 (0.21); the demo's synthetic
    # tracks are further from the music the tagging network learnt from than the real library's.
    assert same_style.mean() >= 0.75


def test_recommend_and_export_commands(first_run, capsys, tmp_path):
    assert cli.main(["recommend", "Drones no. 2", "--k", "3", "--json", "--data-dir", str(first_run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["track"]["track_key"] == "deep_drones/Deep Drones 02.flac"
    assert result["track"]["artist"] == "Lowland Hum" and result["track"]["genre"] == "ambient"
    assert len(result["neighbours"]) == 3 and result["neighbours"][0]["distance"] <= result["neighbours"][2]["distance"]
    assert cli.main(["recommend", "no such track", "--data-dir", str(first_run)]) == 1
    out = tmp_path / "export.csv"
    assert cli.main(["export", "--out", str(out), "--data-dir", str(first_run)]) == 0
    exported = pd.read_csv(out)
    assert len(exported) == 20 and {"folder", "file", "pc_01"} <= set(exported.columns)


def test_a_rerun_with_nothing_to_extract_publishes_a_new_index(first_run, clean_library, tmp_path, capfd):
    data_dir = _copy_of(first_run, tmp_path)
    before = storage.require_current(data_dir)
    args = ["run", "--library", str(clean_library), "--metadata", str(clean_library / "metadata.csv")]
    code = cli.main([*args, "--data-dir", str(data_dir), "--n-neighbors", str(K), "--workers", "1"])
    assert code == 0
    current = storage.require_current(data_dir)
    assert current != before
    summary = storage.read_json(current / storage.SUMMARY)
    assert summary["files_extracted"] == 0 and summary["files_reused"] == 20 and summary["tracks_indexed"] == 20
    assert summary["stages"]["extract"]["shards"] == 0 and summary["quarantined"] == []
    out, err = capfd.readouterr()
    assert "indexed 20 tracks" in out and "(0 extracted, 20 unchanged and reused)" in out
    assert "publish: index of 20 tracks" in err and "[DAG TEST]" not in err  # progress, not Airflow's chatter
    assert len(pd.read_parquet(current / storage.RECOMMENDATIONS)) == 20 * K
    # The same cleaned table passed the same suite last time: that result is reused, not validated again.
    assert (current / storage.VALIDATION).read_text() == (before / storage.VALIDATION).read_text()
    assert (current / storage.DATA_DOCS / "index.html").exists()
    # The same command again: nothing would change, so no run starts and the index stays.
    runs = sorted((data_dir / "runs").iterdir())
    assert cli.main([*args, "--data-dir", str(data_dir), "--n-neighbors", str(K), "--workers", "1"]) == 0
    out, err = capfd.readouterr()
    assert "nothing changed since the current index" in out and "20 files unchanged" in out
    assert storage.require_current(data_dir) == current and sorted((data_dir / "runs").iterdir()) == runs
    assert "publish:" not in err


def test_a_metadata_edit_alone_reaches_the_published_index(dag, first_run, clean_library, tmp_path):
    data_dir = _copy_of(first_run, tmp_path)
    edited = pd.read_csv(clean_library / "metadata.csv", dtype=str)
    row = edited["File"] == "Deep Drones 02.flac"  # the dirty file names it twice
    edited.loc[row, "Artist Name"] = "The Renamed Quartet"
    edited.to_csv(tmp_path / "edited.csv", index=False)
    conf = _conf(clean_library, data_dir, metadata_path=str(tmp_path / "edited.csv"))
    dag_run = dag.test(run_conf=conf)
    assert dag_run.state == "success"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["extract_features"] == "skipped" and states["publish"] == "success"
    current = storage.require_current(data_dir)
    assert current == storage.run_dir(data_dir, dag_run.run_id)
    tracks = pd.read_parquet(current / storage.TRACKS).set_index("track_key")
    assert tracks.loc["deep_drones/Deep Drones 02.flac", "artist"] == "The Renamed Quartet"
    last = storage.read_json(storage.require_current(first_run) / storage.VALIDATION)
    assert storage.read_json(current / storage.VALIDATION)["musicrec_fingerprint"] != last["musicrec_fingerprint"]
    assert storage.read_json(current / storage.SUMMARY)["files_extracted"] == 0


def test_bad_metadata_fails_at_once_without_retries(dag, first_run, clean_library, tmp_path):
    data_dir = _copy_of(first_run, tmp_path)
    before = storage.require_current(data_dir)
    bad = tmp_path / "bad.csv"
    bad.write_text('folder,file,artist\nchip_arps,"unterminated,x\n')
    dag_run = dag.test(run_conf=_conf(clean_library, data_dir, metadata_path=str(bad)))
    assert dag_run.state == "failed"
    clean = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "clean_metadata")
    assert clean.state == "failed" and clean.try_number == 1
    assert storage.require_current(data_dir) == before


def test_failed_validation_fails_the_run_and_keeps_the_last_index(dag, first_run, clean_library, tmp_path, monkeypatch):
    from musicrec.library import metadata

    data_dir = _copy_of(first_run, tmp_path)
    before = storage.require_current(data_dir)
    # Cleaning that leaves raw genre labels in place breaks the suite's vocabulary guarantee.
    monkeypatch.setattr(metadata, "canonical_genre", lambda label: label if isinstance(label, str) else "unknown")
    dag_run = dag.test(run_conf=_conf(clean_library, data_dir))
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["validate_metadata"] == "failed" and states["join"] == "upstream_failed"
    validate = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "validate_metadata")
    assert validate.try_number == 1  # failed at once: its retries are for a lost worker
    assert storage.require_current(data_dir) == before
    assert lock.holder(data_dir) is None  # the teardown gave the lock back
    failed_dir = storage.run_dir(data_dir, dag_run.run_id)
    result = json.loads((failed_dir / storage.VALIDATION).read_text())
    assert result["success"] is False
    failed = [e for e in result["expectations"] if not e["success"]]
    assert [(e["expectation_type"], e["kwargs"]["column"]) for e in failed] == [
        ("expect_column_values_to_be_in_set", "genre")
    ]
    assert (failed_dir / storage.DATA_DOCS / "index.html").exists()


def test_ui_page_and_api_serve_the_current_index(first_run, monkeypatch):

    monkeypatch.setenv("MUSICREC_DATA_DIR", str(first_run))  # as a deployment sets it
    client = plugin_client(monkeypatch)
    assert "Tracks that sound like" in client.get("/").text
    found = client.get("/api/tracks", params={"q": "Arps no. 3"}).json()["items"]
    assert [t["track_key"] for t in found] == ["chip_arps/Chip Arps 03.wav"]
    body = client.get("/api/neighbours", params={"track": found[0]["track_key"], "k": 4}).json()
    assert len(body["neighbours"]) == 4 and not body["computed"]
    assert client.get("/api/neighbours", params={"track": "zzz"}).status_code == 404
    assert client.get("/api/info").json()["tracks"] == 20
    assert load_plugin().MusicrecPlugin.external_views[0]["href"] == "musicrec/"


def _processes_with(marker: str) -> list[int]:
    """PIDs of processes whose environment holds `marker` (a run's child, its pool workers, ffmpeg)."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_and_its_workers_and_publishes_nothing(first_run, demo_library, tmp_path, signum):
    data_dir = _copy_of(first_run, tmp_path)
    before = storage.require_current(data_dir)
    marker = f"MUSICREC_TEST_RUN={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    cmd = [sys.executable, "-m", "musicrec.cli", "run", "--library", str(demo_library), "--data-dir", str(data_dir)]
    cmd += ["--full-refresh", "--workers", "2", "--files-per-shard", "4"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # wait until extraction is under way
        if "shard:" in line:
            break
    time.sleep(1.0)
    assert proc.poll() is None
    proc.send_signal(signum)
    sent = time.monotonic()
    rest = proc.communicate(timeout=30)[1]
    assert time.monotonic() - sent < 10
    assert proc.returncode == 128 + signum
    assert f"nothing published: the last good index is unchanged (run {before.name})" in rest
    assert storage.require_current(data_dir) == before
    assert _processes_with(marker) == []
    # The next run needs no cleanup: the stopped run's lock is broken at once, its files are not reused.
    again = subprocess.run(cmd[:-5], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert storage.require_current(data_dir) != before and lock.holder(data_dir) is None


def test_killing_musicrec_run_outright_ends_its_run_too(first_run, demo_library, tmp_path):
    """SIGKILL to the `musicrec run` process alone (no time to stop its child): the orphaned run must not go
    on and publish."""
    data_dir = _copy_of(first_run, tmp_path)
    before = storage.require_current(data_dir)
    marker = f"MUSICREC_TEST_RUN={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    cmd = [sys.executable, "-m", "musicrec.cli", "run", "--library", str(demo_library), "--data-dir", str(data_dir)]
    proc = subprocess.Popen([*cmd, "--full-refresh", "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # wait until extraction is under way
        if "shard:" in line:
            break
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_with(marker) == []
    time.sleep(5)  # what an orphan would have published by now
    assert storage.require_current(data_dir) == before
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]


@pytest.mark.parametrize(
    "refused, said",
    [
        (["--n-components", "0"], "error: parameter n_components: 0 is less than the minimum of 1"),
        (
            ["--playlists-dir", "{file}"],
            "error: playlists_dir: a file, not a folder: {file}; name a folder for the mixes",
        ),
    ],
)
def test_a_refused_parameter_is_the_first_thing_said(airflow_db, demo_library, tmp_path, refused, said):
    a_file = tmp_path / "mixes.m3u8"
    a_file.write_text("#EXTM3U\n")
    cmd = [sys.executable, "-m", "musicrec.cli", "run", "--library", str(demo_library), "--data-dir", str(tmp_path)]
    refused = [arg.format(file=a_file) for arg in refused]
    proc = subprocess.run([*cmd, *refused], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == said.format(file=a_file)
    assert "Traceback" not in proc.stderr and not (tmp_path / "current").exists()


def test_an_unchanged_broken_file_stays_in_quarantine_without_a_shard(dag, first_run, demo_library, tmp_path):
    data_dir = _copy_of(first_run, tmp_path)
    dag_run = dag.test(run_conf=_conf(demo_library, data_dir))
    assert dag_run.state == "success"
    assert {ti.task_id: ti.state for ti in dag_run.get_task_instances()}["extract_features"] == "skipped"
    summary = storage.read_json(storage.require_current(data_dir) / storage.SUMMARY)
    assert summary["files_extracted"] == 0 and summary["files_reused"] == 20
    assert [q["track_key"] for q in summary["quarantined"]] == [BROKEN]
    assert summary["quarantined"][0]["error"].startswith("not readable as audio")
    retried = dag.test(run_conf=_conf(demo_library, data_dir, full_refresh=True, folders=["deep_drones"]))
    summary = storage.read_json(storage.require_current(data_dir) / storage.SUMMARY)
    assert retried.state == "success" and summary["files_extracted"] == 5  # deep_drones: 5 tracks, 1 broken
    assert [q["track_key"] for q in summary["quarantined"]] == [BROKEN]


@pytest.fixture(scope="module")
def growing_library(clean_library, tmp_path_factory):
    """The clean library, grown by a dated folder for each of two days."""
    root = tmp_path_factory.mktemp("growing") / "library"
    shutil.copytree(clean_library, root)
    for day, style in (("2026-11-28", "chip_arps"), ("2026-11-29", "soft_keys")):
        folder = root / "incoming" / day
        folder.mkdir(parents=True)
        for source in sorted((root / style).iterdir())[:2]:
            shutil.copy2(source, folder / f"new {source.name}")
    return root


def _on(dag, day: str, conf: dict):
    import pendulum

    return dag.test(logical_date=pendulum.parse(f"{day}T02:00:00+00:00"), run_conf=conf)


def test_dated_runs_ingest_their_own_folder_once_and_skip_dates_without_one(dag, first_run, growing_library, tmp_path):
    data_dir = _copy_of(first_run, tmp_path)
    conf = _conf(growing_library, data_dir, folder_template="incoming/{{ ds }}")
    first = _on(dag, "2026-11-28", conf)
    summary = storage.read_json(storage.require_current(data_dir) / storage.SUMMARY)
    assert first.state == "success" and summary["files_extracted"] == 2 and summary["tracks_indexed"] == 20 + 2
    second = _on(dag, "2026-11-29", conf)
    summary = storage.read_json(storage.require_current(data_dir) / storage.SUMMARY)
    assert second.state == "success" and summary["files_extracted"] == 2 and summary["tracks_indexed"] == 20 + 4
    again = _on(dag, "2026-11-29", conf | {"n_neighbors": K})
    summary = storage.read_json(storage.require_current(data_dir) / storage.SUMMARY)
    assert again.state == "success" and summary["files_extracted"] == 0 and summary["tracks_indexed"] == 24
    before = storage.require_current(data_dir)
    empty_day = _on(dag, "2026-11-27", conf)
    states = {ti.task_id: ti.state for ti in empty_day.get_task_instances()}
    assert states["discover"] == "skipped" and states["publish"] == "skipped" and states["join"] == "skipped"
    assert storage.require_current(data_dir) == before


def test_a_run_is_published_and_gives_the_lock_back(first_dag_run):
    data_dir, dag_run = first_dag_run
    assert lock.holder(data_dir) is None
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["release_lock"] == "success" and states["publish"] == "success"


def test_a_run_finding_the_data_dir_busy_fails_naming_the_holder(dag, first_run, clean_library, tmp_path):
    data_dir = _copy_of(first_run, tmp_path)
    before = storage.require_current(data_dir)
    lock.acquire(data_dir, "nightly-run-elsewhere")
    dag_run = dag.test(run_conf=_conf(clean_library, data_dir, lock_wait_minutes=0))
    assert dag_run.state == "failed"
    take = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "take_lock")
    assert take.state == "failed" and take.try_number == 1
    assert lock.holder(data_dir)["holder"] == "nightly-run-elsewhere"  # not taken, not released by the loser
    assert storage.require_current(data_dir) == before


FILL_AND_RUN_TWICE = """
set -eu
mount -t tmpfs -o size="$SIZE" tmpfs "$DISK"
cp -a "$DATA/." "$DISK/"
# Ballast up to the brim, then give back what the run may start with.
head -c "$SIZE" /dev/zero > "$DISK/ballast" 2>/dev/null || true
truncate -s "-$FREE" "$DISK/ballast"
run() {
    "$MUSICREC" run --library "$LIBRARY" --data-dir "$DISK" --full-refresh --workers 2 > "$OUT/$1.out" 2> "$OUT/$1.err"
}
SECONDS=0
run full && echo 0 > "$OUT/full.rc" || echo $? > "$OUT/full.rc"
echo "$SECONDS" > "$OUT/full.seconds"
readlink "$DISK/current" > "$OUT/full.current"
ls "$DISK/runs" > "$OUT/full.runs"
rm "$DISK/ballast"
run freed && echo 0 > "$OUT/freed.rc" || echo $? > "$OUT/freed.rc"
readlink "$DISK/current" > "$OUT/freed.current"
ls "$DISK/runs" > "$OUT/freed.runs"
"""


def test_a_full_disk_fails_the_run_in_one_sentence_and_the_next_run_frees_it(first_run, demo_library, tmp_path):
    """The data dir on a small file system of its own (tmpfs, in a mount namespace of the test's own), filled
    to the brim: the run fails at once, without retries, saying what happened; the last index stays. With room
    again, the next run removes the failed run's folder and publishes."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("no mount namespaces here (unshare -rm)")
    data = _copy_of(first_run, tmp_path)
    size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    out = tmp_path / "out"
    out.mkdir()
    env = os.environ | {
        "SIZE": str(3 * size + (4 << 20)),
        "FREE": str(1 << 20),
        "DISK": str(tmp_path / "disk"),
        "DATA": str(data),
        "LIBRARY": str(demo_library),
        "MUSICREC": str(Path(sys.executable).with_name("musicrec")),
        "OUT": str(out),
    }
    (tmp_path / "disk").mkdir()
    done = subprocess.run(["unshare", "-rm", "bash", "-c", FILL_AND_RUN_TWICE], env=env, timeout=900)
    assert done.returncode == 0
    said = (out / "full.err").read_text()
    assert (out / "full.rc").read_text().strip() == "1", said[-3000:]
    assert "error: no space left on the device" in said and "free some space, then run again" in said
    assert said.count("error: no space left") == 1 and "Traceback" not in said
    assert f"the last good index is unchanged (run {Path(os.readlink(data / 'current')).name})" in said
    assert float((out / "full.seconds").read_text()) < 120  # once, not after three tries of each task
    before = os.readlink(data / "current")
    assert (out / "full.current").read_text().strip() == before
    failed_run = set((out / "full.runs").read_text().split()) - {Path(before).name}
    assert len(failed_run) == 1
    assert (out / "freed.rc").read_text().strip() == "0", (out / "freed.err").read_text()[-3000:]
    assert "removed the folders of 1 runs that failed" in (out / "freed.err").read_text()
    runs_after = set((out / "freed.runs").read_text().split())
    assert not failed_run & runs_after and (out / "freed.current").read_text().strip() != before
