"""Shared fixtures: an isolated Airflow home, generated audio and a demo library."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import hypothesis
import numpy as np
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]

# Airflow reads its settings when first imported: point it at a throwaway home before any test does.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="musicrec-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_DIR / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_DIR / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ.setdefault("TQDM_DISABLE", "1")

# Property tests explore new inputs on each local run; in CI they replay the same ones, so that CI is not red on
# an input no change of its own brought (what they find locally becomes a test of its own, as below them).
hypothesis.settings.register_profile("ci", derandomize=True)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialized SQLite metadata database, as `dag.test()` needs."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return _AIRFLOW_HOME


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = 22050, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return y if channels == 1 else np.column_stack([y] * channels)


def ffmpeg_executable() -> str:
    """The ffmpeg command: on PATH if there, otherwise the binary that the imageio-ffmpeg wheel ships."""
    import shutil

    import imageio_ffmpeg

    return shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_generate(
    path: Path, seconds: float = 1.0, sr: int = 44100, channels: int = 2, extra: list[str] = ()
) -> Path:
    """A sine test file made by ffmpeg's own generator, in whatever format the extension says."""
    layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}[channels]
    cmd = [
        ffmpeg_executable(),
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:sample_rate={sr}:duration={seconds}",
        "-af",
        f"aformat=channel_layouts={layout}",
        *extra,
        str(path),
    ]
    subprocess.run(cmd, check=True)
    return path


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory) -> Path:
    from musicrec import demo

    root = tmp_path_factory.mktemp("library")
    demo.make_library(root, tracks_per_style=5, seconds=(5.0, 9.0))
    return root


def run_stages(library: Path, data: Path, run_id: str, metadata: Path | None = None, **params) -> dict:
    """Every stage of a run, in order, as the DAG chains them, without Airflow; returns each stage's record."""
    from musicrec import settings
    from musicrec.pipeline import publishing, stages

    params = settings.defaults(".") | {"n_neighbors": 2, "n_components": 3} | params
    meta = str(metadata) if metadata else None
    run = stages.discover(str(library), str(data), run_id, [], False, meta, index_params=params)
    shards = stages.shard(run, 100)
    extracted = [stages.extract_shard(s, str(library), workers=1) for s in shards]
    cleaned = stages.clean_metadata(run, meta)
    tracks = stages.join(run, extracted, cleaned)
    scaled = stages.scale(tracks, params["metadata_weight"])
    embedded = stages.reduce(scaled, params["n_components"])
    index = stages.build_index(embedded, tracks, params["n_neighbors"], params["metric"], params["hubness"])
    evaluated = stages.evaluate(embedded, tracks, index)
    published = publishing.publish(run, evaluated)
    return {
        "run": run,
        "shard": shards,
        "extract": extracted,
        "clean_metadata": cleaned,
        "join": tracks,
        "scale": scaled,
        "reduce": embedded,
        "build_index": index,
        "evaluate": evaluated,
        "publish": published,
    }


SMALL_LIBRARY_METADATA = """folder,file,title,artist,album,genre
low,0.wav,Low Zero,Ann,First,ambient
low,1.wav,Low One,Ann,First,ambient
low,2.wav,Low Two,Bob,Second,ambient
low,3.wav,Low Three,Bob,Second,ambient
high,0.wav,High Zero,Cid,Third,rock
high,1.wav,High One,Cid,Third,rock
high,2.wav,High Two,Dee,Fourth,rock
high,3.wav,High Three,Dee,Fourth,rock
"""


def small_library(root: Path) -> Path:
    """Two folders of four tones each (low and high), with a copy of one file, and metadata naming them."""
    import soundfile as sf

    for folder, base in (("low", 110.0), ("high", 1760.0)):
        (root / folder).mkdir(parents=True)
        for i in range(4):
            sf.write(root / folder / f"{i}.wav", tone(base * (1 + 0.15 * i), seconds=0.6), 22050)
    (root / "high" / "copy of 0.wav").write_bytes((root / "high" / "0.wav").read_bytes())
    (root / "metadata.csv").write_text(SMALL_LIBRARY_METADATA)
    return root


@pytest.fixture(scope="session")
def small_index(tmp_path_factory) -> Path:
    """A data dir whose current index covers `small_library`, built by the pipeline's stages (k=3)."""
    root = tmp_path_factory.mktemp("small")
    library = small_library(root / "library")
    run_stages(library, root / "data", "small", library / "metadata.csv", n_neighbors=3)
    return root / "data"


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """SeaweedFS on loopback, reached through the Airflow connection `object_store.CONN_ID` (in the environment)."""
    from object_store import SeaweedFS

    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    os.environ.update(server.connection())
    try:
        yield server
    finally:
        server.stop()
