"""Shared fixtures: an isolated Airflow home, generated audio and a demo library."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

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


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialized SQLite metadata database, as `dag.test()` needs."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return _AIRFLOW_HOME


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = 22050, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return y if channels == 1 else np.column_stack([y] * channels)


def ffmpeg_generate(
    path: Path, seconds: float = 1.0, sr: int = 44100, channels: int = 2, extra: list[str] = ()
) -> Path:
    """A sine test file made by ffmpeg's own generator, in whatever format the extension says."""
    from musicrec.audio import ffmpeg_executable

    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
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
