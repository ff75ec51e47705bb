"""Shared fixtures (an isolated Airflow home, a demo library, a small index, S3 on loopback), and the tiers:
a test under integration/ or distributed/ gets that marker from its folder."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import hypothesis
import pytest

from support.project import PROJECT_DIR
from support.runs import run_stages, small_library

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


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory) -> Path:
    from musicrec import demo

    root = tmp_path_factory.mktemp("library")
    demo.make_library(root, tracks_per_style=5, seconds=(5.0, 9.0))
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
    from support.object_store import SeaweedFS

    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    os.environ.update(server.connection())
    try:
        yield server
    finally:
        server.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        for tier in ("integration", "distributed"):
            if tier in item.path.relative_to(Path(__file__).parent).parts[:-1]:
                item.add_marker(getattr(pytest.mark, tier))
