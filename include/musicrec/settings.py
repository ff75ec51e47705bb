"""The run parameters' defaults, read from the environment (`MUSICREC_*`) where it sets them.

The DAG's params and `musicrec run` both take their defaults from here, so that the two agree on what
a run without options means.
"""

from __future__ import annotations

import os
from pathlib import Path


def _project_dir() -> Path:
    """The folder holding dags/, plugins/ and data/, wherever a command runs from: the checkout, in a source
    install; else Airflow's home, where an image puts dags/ and plugins/ (the package is in site-packages)."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "dags").is_dir():
        return checkout
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()


PROJECT_DIR = _project_dir()
DAG_ID = "music_recommendation"

# The parameters that shape the index built from a given set of features.
INDEX_PARAMS = ("n_components", "n_neighbors", "metric", "metadata_weight", "hubness")


def _env(name: str, default, kind=str):
    value = os.environ.get(name, "")
    return kind(value) if value else default


def default_data_dir(project_dir: str | Path = PROJECT_DIR) -> str:
    """The data dir of the DAG, the CLI and the page alike: MUSICREC_DATA_DIR, else the project's `data/`."""
    return _env("MUSICREC_DATA_DIR", str(Path(project_dir) / "data"))


def defaults(project_dir: str | Path = PROJECT_DIR) -> dict:
    project_dir = Path(project_dir)
    return {
        "library_path": _env("MUSICREC_LIBRARY", str(project_dir / "library")),
        "metadata_path": _env("MUSICREC_METADATA", None),
        "data_dir": default_data_dir(project_dir),
        "storage_conn_id": _env("MUSICREC_STORAGE_CONN_ID", None),
        "folder_template": _env("MUSICREC_FOLDER_TEMPLATE", None),
        "folders": [],
        "full_refresh": False,
        "n_components": _env("MUSICREC_N_COMPONENTS", 48, int),
        "n_neighbors": _env("MUSICREC_N_NEIGHBORS", 10, int),
        "metric": "cosine",
        "hubness": _env("MUSICREC_HUBNESS", "mutual_proximity"),
        "metadata_weight": _env("MUSICREC_METADATA_WEIGHT", 0.0, float),
        "files_per_shard": _env("MUSICREC_FILES_PER_SHARD", 100, int),
        "max_analysis_minutes": _env("MUSICREC_MAX_ANALYSIS_MINUTES", 30.0, float),
        "lock_wait_minutes": _env("MUSICREC_LOCK_WAIT_MINUTES", 10.0, float),
        "workers": _env("MUSICREC_WORKERS", 0, int),
    }
