"""The project driven as a user drives it, through the README's own commands, on a copy of the checkout.

`make install`, `make airflow` (the `airflow` console script, in the background), the REST API, the README's
`make backfill` lines pasted as written, `musicrec run` while Airflow runs, a second checkout on the same host,
and Ctrl-C on `make airflow`, all with the environment of a fresh shell (nothing of this test's own Airflow
settings). The tests of this module run in order against one running `make airflow`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
import soundfile as sf

from support.audio import tone
from support.project import PROJECT_DIR

README = PROJECT_DIR / "README.md"
DAG = "music_recommendation"


def fresh_shell_env(**extra: str) -> dict[str, str]:
    """The environment of a new shell on this machine: none of the settings the test run itself made."""
    own = ("AIRFLOW", "MUSICREC_", "MAKE", "MFLAGS", "NUMBA_CACHE_DIR", "PYTEST", "TQDM_DISABLE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return env | extra


def copy_checkout(target: Path) -> Path:
    """The checkout's files as git sees them (tracked, and new ones not ignored), without its .venv or data."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = PROJECT_DIR / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def sh(command: str, cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """A command line as a user types it, in bash, in the checkout."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env or fresh_shell_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def installed_checkout(target: Path) -> Path:
    copy_checkout(target)
    done = sh("make install", target)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return target


def processes_in(folder: Path) -> list[int]:
    """The processes running in `folder` (their working folder is in it): every process a command started
    there, and its descendants. (The environment does not mark them: Airflow's processes rename themselves,
    which overwrites it.)"""
    found = []
    for cwd in glob.glob("/proc/[0-9]*/cwd"):
        try:
            where = os.readlink(cwd).removesuffix(" (deleted)")
        except OSError:
            continue
        if where == str(folder) or where.startswith(f"{folder}/"):
            found.append(int(cwd.split("/")[2]))
    return [pid for pid in found if pid != os.getpid()]


def gone(pids_of, timeout_s: float = 10) -> dict[int, bytes]:
    """What is left, after a moment, of the processes `pids_of()` finds: {pid: command line}."""
    deadline = time.monotonic() + timeout_s
    while pids_of() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {}
    for pid in pids_of():
        with contextlib.suppress(OSError):
            left[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:160]
    return left


def readme_commands(prefix: str) -> list[str]:
    """The command lines of the README and docs/ that start with `prefix`, as written there, each once."""
    pages = [README, *sorted((PROJECT_DIR / "docs").glob("*.md"))]
    lines = [line.strip() for page in pages for line in page.read_text().splitlines()]
    return list(dict.fromkeys(line.split("  #")[0].strip() for line in lines if line.startswith(prefix)))


class Standalone:
    """`make airflow` in the background, as a user starts it, on a port of its own."""

    def __init__(self, checkout: Path):
        from support.airflow_stack import free_port

        self.checkout = checkout
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = checkout / "make-airflow.log"
        with open(self.log_path, "w") as log:
            self.make = subprocess.Popen(
                ["make", "airflow"],
                cwd=checkout,
                env=fresh_shell_env(AIRFLOW__API__PORT=str(self.port)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # as a terminal's foreground job: Ctrl-C goes to this process group
            )
        self.token = None

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def wait(self, condition, timeout_s: float, what: str, every_s: float = 1.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.make.poll() is not None:
                raise AssertionError(f"make airflow ended ({self.make.returncode}):\n{self.log()}")
            result = condition()
            if result:
                return result
            time.sleep(every_s)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{self.log()}")

    def started(self, timeout_s: float = 240) -> Standalone:
        def healthy():
            try:
                return requests.get(f"{self.base}/api/v2/monitor/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        self.wait(healthy, timeout_s, "the API server")
        passwords = self.checkout / ".airflow" / "simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text())["admin"]
        self.token = requests.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": password}, timeout=10
        ).json()["access_token"]
        self.wait(lambda: self.api("GET", f"/dags/{DAG}").status_code == 200, 120, "the DAG to be parsed")
        return self

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, f"{self.base}/api/v2{path}", headers=headers, timeout=30, **kwargs)

    def runs(self) -> list[dict]:
        return self.api("GET", f"/dags/{DAG}/dagRuns?limit=100").json()["dag_runs"]

    def tasks(self, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances?limit=100").json()["task_instances"]

    def finished(self, run_ids, timeout_s: float = 600) -> dict[str, dict]:
        """Wait until every run named is done; its runs by id."""

        def done():
            runs = {r["dag_run_id"]: r for r in self.runs() if r["dag_run_id"] in set(run_ids)}
            if len(runs) == len(set(run_ids)) and all(r["state"] in ("success", "failed") for r in runs.values()):
                return runs
            return None

        return self.wait(done, timeout_s, f"runs {sorted(run_ids)} to finish", every_s=2)

    def task_log(self, run_id: str, task_id: str, map_index: int = -1) -> str:
        folder = self.checkout / ".airflow" / "logs" / f"dag_id={DAG}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        return "\n".join(Path(p).read_text(errors="replace") for p in sorted(glob.glob(str(folder / "attempt=*"))))

    def ctrl_c(self, timeout_s: float = 90) -> int:
        """What a terminal does on Ctrl-C: SIGINT to the foreground process group; make's exit code."""
        os.killpg(self.make.pid, signal.SIGINT)
        return self.make.wait(timeout=timeout_s)

    def kill(self) -> None:
        for pid in [self.make.pid, *processes_in(self.checkout)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def dated_folders(library: Path, dates: list[str]) -> None:
    """New dated folders of generated audio, as a library that grows by date does."""
    for d, date in enumerate(dates):
        folder = library / "incoming" / date
        folder.mkdir(parents=True)
        for i in range(3):
            sf.write(folder / f"track{i}.wav", tone(300.0 + 150 * d + 40 * i, seconds=4.0), 22050)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of this checkout, installed with `make install`, with the demo library of `make demo`."""
    target = installed_checkout(tmp_path_factory.mktemp("checkout"))
    done = sh(".venv/bin/musicrec demo-library demo-library", target)
    assert done.returncode == 0, done.stderr[-3000:]
    dated_folders(target / "demo-library", ["2026-11-28", "2026-11-29"])
    return target


@pytest.fixture(scope="module")
def standalone(checkout):
    airflow = Standalone(checkout)
    try:
        yield airflow.started()
    finally:
        airflow.kill()


def _published(checkout: Path) -> pd.DataFrame:
    current = checkout / "data" / "current"
    return pd.read_parquet(current / "recommendations.parquet").sort_values(["track_key", "rank"], ignore_index=True)


def _summary(checkout: Path) -> dict:
    return json.loads((checkout / "data" / "current" / "summary.json").read_text())


def test_a_trigger_with_two_processes_a_shard_runs_under_make_airflow(standalone):
    assert standalone.api("PATCH", f"/dags/{DAG}", json={"is_paused": False}).status_code == 200
    conf = {"workers": 2, "full_refresh": True, "files_per_shard": 8}
    created = standalone.api("POST", f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
    assert created.status_code == 200, created.text
    run_id = created.json()["dag_run_id"]
    labels_while_running = set()

    def done():
        for ti in standalone.tasks(run_id):
            if ti["task_id"] == "extract_features" and ti["state"] == "running":
                labels_while_running.add(ti["rendered_map_index"])
        run = next(r for r in standalone.runs() if r["dag_run_id"] == run_id)
        return run if run["state"] in ("success", "failed") else None

    run = standalone.wait(done, 600, f"run {run_id}", every_s=0.3)
    tasks = standalone.tasks(run_id)
    assert run["state"] == "success", [(t["task_id"], t["state"]) for t in tasks]
    shards = [t for t in tasks if t["task_id"] == "extract_features"]
    assert len(shards) == 4 and all(t["state"] == "success" and t["try_number"] == 1 for t in shards)
    for ti in shards:
        log = standalone.task_log(run_id, "extract_features", ti["map_index"])
        assert "2 processes" in log and "BrokenProcessPool" not in log
        assert re.fullmatch(r"shard \d/4: \d+ files, .+", ti["rendered_map_index"])
    # The label is there while the shard runs, not only once it ended.
    assert any(label and label.startswith("shard ") for label in labels_while_running), labels_while_running


def test_the_readmes_backfill_runs_as_typed_and_again_changes_nothing(standalone, checkout):
    first, again = readme_commands("make backfill ")
    assert "REPROCESS=completed" in again and "REPROCESS" not in first
    done = sh(first, checkout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    def backfill_runs(after: str = ""):
        runs = [r for r in standalone.runs() if r["run_type"] == "backfill" and (r["end_date"] or "~") > after]
        return runs if len(runs) == 2 and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = standalone.wait(backfill_runs, 600, "the backfill's two dates", every_s=2)
    assert [r["state"] for r in runs] == ["success", "success"]
    published = _published(standalone.checkout)
    assert {"incoming/2026-11-28/track0.wav", "incoming/2026-11-29/track2.wav"} <= set(published["track_key"])
    ended = max(r["end_date"] for r in runs)

    done = sh(again, checkout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rerun = standalone.wait(lambda: backfill_runs(after=ended), 600, "the reprocessed dates", every_s=2)
    states = {r["dag_run_id"]: r["state"] for r in rerun}
    assert set(states.values()) == {"success"}, {
        run_id: [(t["task_id"], t["state"]) for t in standalone.tasks(run_id)] for run_id in states
    }
    assert _summary(checkout)["files_extracted"] == 0  # running a date again extracts nothing ...
    pd.testing.assert_frame_equal(_published(checkout), published)  # ... and changes nothing
    attempts = {p.name for p in (checkout / "data" / "runs").iterdir()}
    assert any(name.endswith(".attempt-2") for name in attempts), attempts


def test_a_backfill_date_without_its_folder_is_skipped_with_the_reason_first(standalone, checkout):
    done = sh("make backfill FROM=2026-11-30 TO=2026-11-30 FOLDER_TEMPLATE='incoming/{{ ds }}'", checkout)
    assert done.returncode == 0, done.stderr[-2000:]
    run = standalone.wait(
        lambda: next(
            (r for r in standalone.runs() if "2026-11-30" in r["dag_run_id"] and r["state"] in ("success", "failed")),
            None,
        ),
        300,
        "the run of 2026-11-30",
    )
    states = {t["task_id"]: t["state"] for t in standalone.tasks(run["dag_run_id"])}
    assert states["discover"] == "skipped" and states["publish"] == "skipped"
    log = standalone.task_log(run["dag_run_id"], "discover")
    reason = "nothing to ingest for 2026-11-30: no folder incoming/2026-11-30 in the library"
    # Said in the task's own output, before Airflow's folded "Post Execute" group.
    assert log.index(reason) < log.index("Post Execute")


def test_a_cleared_run_with_nothing_to_extract_runs_again(standalone, checkout):
    scheduled = next(r for r in standalone.runs() if r["run_type"] == "scheduled")
    before = scheduled["end_date"]
    cleared = standalone.api(
        "POST",
        f"/dags/{DAG}/clearTaskInstances",
        json={"dry_run": False, "dag_run_id": scheduled["dag_run_id"], "only_failed": False, "reset_dag_runs": True},
    )
    assert cleared.status_code == 200, cleared.text

    def again():
        run = next(r for r in standalone.runs() if r["dag_run_id"] == scheduled["dag_run_id"])
        return run if (run["end_date"] or "") > before and run["state"] in ("success", "failed") else None

    run = standalone.wait(again, 600, "the cleared run", every_s=2)
    assert run["state"] == "success", [(t["task_id"], t["state"]) for t in standalone.tasks(run["dag_run_id"])]
    summary = _summary(checkout)
    assert summary["files_extracted"] == 0 and summary["tracks_indexed"] == 30
    recs = _published(checkout)
    assert not recs.duplicated(["track_key", "rank"]).any() and recs["track_key"].nunique() == 30


def test_musicrec_run_beside_make_airflow_keeps_to_itself(standalone, checkout, tmp_path):
    runs_before = {r["dag_run_id"] for r in standalone.runs()}
    started = time.monotonic()
    done = sh(f".venv/bin/musicrec run --library demo-library --data-dir {tmp_path / 'data'}", checkout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "indexed 30 tracks" in done.stdout
    assert "No tasks to run" not in done.stderr and len(done.stderr) < 20000
    assert time.monotonic() - started < 300
    # Its run is not in the standalone's database: not shown in its UI, never scheduled by its scheduler.
    assert {r["dag_run_id"] for r in standalone.runs()} == runs_before
    versions = standalone.api("GET", f"/dags/{DAG}/dagVersions").json()
    assert versions["total_entries"] == 1


@pytest.fixture(scope="module")
def second_checkout(tmp_path_factory) -> Path:
    return installed_checkout(tmp_path_factory.mktemp("second-checkout"))


def test_two_checkouts_on_one_host_do_not_wait_for_each_others_cores(checkout, second_checkout):
    second = second_checkout
    holder = subprocess.Popen(
        [
            ".venv/bin/python",
            "-c",
            "import time; from musicrec.analysis import cores\n"
            "with cores.claim(1024, label='a long shard of the first checkout'):\n"
            "    print('held', flush=True); time.sleep(300)",
        ],
        cwd=checkout,
        env=fresh_shell_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        command = ".venv/bin/musicrec features --library demo-library/incoming --out features.parquet"
        shutil.copytree(checkout / "demo-library" / "incoming", second / "demo-library" / "incoming")
        done = sh(command, second, timeout=120)  # the other checkout's cores are not this one's
        assert done.returncode == 0, done.stderr[-3000:]
        assert "waiting for a free core" not in done.stderr and "6 files" in done.stdout
        waiting = subprocess.Popen(
            ["bash", "-c", command],
            cwd=checkout,
            env=fresh_shell_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(20):  # the first lines it says, up to the one that matters
            line = waiting.stderr.readline()
            if "waiting for a free core" in line or not line:
                break
        assert "features: waiting for a free core (held by a long shard of the first checkout" in line, line
        holder.kill()
        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err[-3000:]
        assert "a core came free" in err and "6 files" in out
    finally:
        holder.kill()


def test_a_second_checkouts_make_airflow_runs_beside_the_first(standalone, second_checkout):
    done = sh(".venv/bin/musicrec demo-library demo-library --tracks 3", second_checkout)
    assert done.returncode == 0, done.stderr[-2000:]
    beside = Standalone(second_checkout)
    try:
        beside.started()
        assert "is taken (another Airflow here?)" in beside.log(tail=10**7)  # its own log servers' ports
        assert beside.api("PATCH", f"/dags/{DAG}", json={"is_paused": False}).status_code == 200
        nightly = beside.wait(lambda: beside.runs(), 120, "the nightly run")[0]["dag_run_id"]
        assert beside.finished([nightly])[nightly]["state"] == "success"
        assert (second_checkout / "data" / "current" / "recommendations.parquet").exists()
        assert standalone.api("GET", f"/dags/{DAG}").status_code == 200  # the first one still answers
        assert beside.ctrl_c() != 0
        assert gone(lambda: processes_in(second_checkout)) == {}
        assert standalone.make.poll() is None and len(processes_in(standalone.checkout)) > 8
    finally:
        beside.kill()


def test_ctrl_c_on_make_airflow_stops_every_process_it_started(standalone):
    assert len(processes_in(standalone.checkout)) > 8  # make, the launcher, standalone, its components, workers
    code = standalone.ctrl_c()
    assert code != 0 and "stopped Airflow" in standalone.log()
    assert gone(lambda: processes_in(standalone.checkout)) == {}
