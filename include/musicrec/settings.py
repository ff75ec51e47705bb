"""The run parameters, each declared once, and the project's places.

`PARAMETERS` is the one declaration of every run parameter: its type, bounds, default (and the
`MUSICREC_*` variable that overrides it), the trigger form's title, description and section, the
`musicrec run` flag, and whether it shapes the index. The DAG's `Param`s (`musicrec.airflow.params`),
the CLI's flags, the "nothing changed" check (`INDEX_PARAMS`) and the parameter table of
docs/parameters.md are all made from it. Adding a parameter: declare it here, then use it where it acts
(its task in `musicrec.airflow.tasks`, its stage; a stage that it shapes puts it in its reuse key).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _project_dir() -> Path:
    """The folder holding dags/, plugins/ and data/, wherever a command runs from: the checkout, in a source
    install; else Airflow's home, where an image puts dags/ and plugins/ (the package is in site-packages)."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "dags").is_dir():
        return checkout
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()


PROJECT_DIR = _project_dir()
DAG_ID = "music_recommendation"

# The trigger form's sections, in the order the form shows them.
LIBRARY, INDEX, EXECUTION = "Library", "Index", "Execution"
SECTIONS = (LIBRARY, INDEX, EXECUTION)

_FROM_TEXT = {"string": str, "integer": int, "number": float}


@dataclass(frozen=True)
class Parameter:
    """One run parameter. `default` may be a function of the project folder (a path inside it)."""

    name: str
    type: str  # JSON Schema's: string, integer, number, boolean, array (of strings)
    default: Any | Callable[[Path], Any]
    title: str
    description: str  # Markdown: `code` in backticks
    section: str
    env: str | None = None  # the MUSICREC_* variable that overrides the default
    optional: bool = False  # empty (null) is a valid value
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    flag: str | None = None  # `musicrec run`'s option; None: the run takes the default
    required_by_cli: bool = False
    shapes_index: bool = False  # part of what the index depends on: a change makes a run necessary

    def default_value(self, project_dir: Path) -> Any:
        value = os.environ.get(self.env, "") if self.env else ""
        if value:
            return _FROM_TEXT[self.type](value)
        return self.default(project_dir) if callable(self.default) else self.default

    def plain_description(self) -> str:
        return self.description.replace("`", "")


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "library_path",
        "string",
        lambda project: str(project / "library"),
        "Music library",
        "Folder of audio files, one subfolder per album or collection (or s3://bucket/prefix).",
        LIBRARY,
        env="MUSICREC_LIBRARY",
        flag="--library",
        required_by_cli=True,
    ),
    Parameter(
        "metadata_path",
        "string",
        None,
        "Metadata file",
        "Optional CSV, TSV or Parquet naming each track by `folder` and `file`; leave empty to use the "
        "files' embedded tags only.",
        LIBRARY,
        env="MUSICREC_METADATA",
        optional=True,
        flag="--metadata",
    ),
    Parameter(
        "playlists_dir",
        "string",
        None,
        "Playlists folder",
        "Optional: a folder to put the mixes in too, as M3U8 files whose paths lead to the library's files "
        "(e.g. a folder inside the music folder that Navidrome or Jellyfin scans); the mixes are always kept "
        "beside the index.",
        LIBRARY,
        env="MUSICREC_PLAYLISTS_DIR",
        optional=True,
        flag="--playlists-dir",
        shapes_index=True,
    ),
    Parameter(
        "folder_template",
        "string",
        None,
        "Folder of the run's date",
        "Optional: a folder to ingest, rendered with the run's logical date, e.g. `incoming/{{ ds }}`. "
        "A backfill ingests each date's folder; a date without one is skipped.",
        LIBRARY,
        env="MUSICREC_FOLDER_TEMPLATE",
        optional=True,
    ),
    Parameter(
        "folders",
        "array",
        [],
        "Folders",
        "Library folders to (re)process, relative to the library (the form: one a line; the command line: "
        "comma-separated); empty takes them all.",
        LIBRARY,
        optional=True,
        flag="--folders",
    ),
    Parameter(
        "full_refresh",
        "boolean",
        False,
        "Full refresh",
        "Extract every file again instead of reusing unchanged ones.",
        LIBRARY,
        optional=True,
        flag="--full-refresh",
    ),
    Parameter(
        "data_dir",
        "string",
        lambda project: str(project / "data"),
        "Data folder",
        "Where runs, tables and the current index live: a folder every worker sees, or object storage "
        "(s3://bucket/prefix).",
        INDEX,
        env="MUSICREC_DATA_DIR",
        flag="--data-dir",
    ),
    Parameter(
        "n_components",
        "integer",
        48,
        "PCA components per feature group",
        "Dimensions kept of each feature group (librosa's features; the network's embedding) before "
        "neighbours are searched.",
        INDEX,
        env="MUSICREC_N_COMPONENTS",
        minimum=1,
        maximum=512,
        flag="--n-components",
        shapes_index=True,
    ),
    Parameter(
        "n_neighbors",
        "integer",
        10,
        "Neighbours per track",
        "How many similar tracks the index keeps for each track.",
        INDEX,
        env="MUSICREC_N_NEIGHBORS",
        minimum=1,
        maximum=200,
        flag="--n-neighbors",
        shapes_index=True,
    ),
    Parameter(
        "metric",
        "string",
        "cosine",
        "Distance",
        "How the distance between two tracks' embeddings is measured.",
        INDEX,
        choices=("cosine", "euclidean"),
        flag="--metric",
        shapes_index=True,
    ),
    Parameter(
        "hubness",
        "string",
        "mutual_proximity",
        "Hubness reduction",
        "`mutual_proximity` re-ranks neighbours so that a few tracks are not everyone's neighbour; each "
        "run's `evaluation.md` shows both.",
        INDEX,
        env="MUSICREC_HUBNESS",
        choices=("none", "mutual_proximity"),
        flag="--hubness",
        shapes_index=True,
    ),
    Parameter(
        "mixes",
        "integer",
        0,
        "Mixes",
        "How many mixes (playlists made of clusters of the library) to make; 0 chooses from the library's size "
        "(about 25 tracks a mix, up to 100).",
        INDEX,
        env="MUSICREC_MIXES",
        minimum=0,
        maximum=1000,
        flag="--mixes",
        shapes_index=True,
    ),
    Parameter(
        "metadata_weight",
        "number",
        0.0,
        "Metadata weight",
        "Weight of metadata features (genre, artist, decade, duration) beside the audio; 0 keeps the index audio-only.",
        INDEX,
        env="MUSICREC_METADATA_WEIGHT",
        minimum=0,
        maximum=10,
        flag="--metadata-weight",
        shapes_index=True,
    ),
    # A shard's fixed cost under the scheduler is about 5 s (benchmarks/SHARDS.md); 100 files of a few minutes
    # take a core about a minute, so the fixed cost stays under a tenth.
    Parameter(
        "files_per_shard",
        "integer",
        100,
        "Files per shard",
        "More shards spread over more workers; each costs a few seconds to start.",
        EXECUTION,
        env="MUSICREC_FILES_PER_SHARD",
        minimum=1,
        maximum=100000,
        flag="--files-per-shard",
    ),
    Parameter(
        "workers",
        "integer",
        0,
        "Processes per shard",
        "0 uses every core of the worker that no other shard of this deployment holds.",
        EXECUTION,
        env="MUSICREC_WORKERS",
        minimum=0,
        maximum=256,
        flag="--workers",
    ),
    Parameter(
        "max_analysis_minutes",
        "number",
        30.0,
        "Longest analysis (minutes)",
        "A longer track is analysed on its first minutes only, so memory stays bounded; 0: no cap.",
        EXECUTION,
        env="MUSICREC_MAX_ANALYSIS_MINUTES",
        minimum=0,
        flag="--max-analysis-minutes",
    ),
    Parameter(
        "lock_wait_minutes",
        "number",
        10.0,
        "Wait for the data folder (minutes)",
        "How long a run waits while another run holds the data folder, before it fails naming it.",
        EXECUTION,
        env="MUSICREC_LOCK_WAIT_MINUTES",
        minimum=0,
        flag="--lock-wait-minutes",
    ),
    Parameter(
        "storage_conn_id",
        "string",
        None,
        "Object storage connection",
        "Airflow connection (e.g. of type aws, with endpoint_url in its extra) for an s3:// library, metadata "
        "file or data folder; empty uses the environment's credentials.",
        EXECUTION,
        env="MUSICREC_STORAGE_CONN_ID",
        optional=True,
        flag="--conn-id",
    ),
)

BY_NAME = {p.name: p for p in PARAMETERS}
# The parameters that shape the index built from a given set of features.
INDEX_PARAMS = tuple(p.name for p in PARAMETERS if p.shapes_index)


def default_data_dir(project_dir: str | Path = PROJECT_DIR) -> str:
    """The data dir of the DAG, the CLI and the page alike: MUSICREC_DATA_DIR, else the project's `data/`."""
    return BY_NAME["data_dir"].default_value(Path(project_dir))


def defaults(project_dir: str | Path = PROJECT_DIR) -> dict:
    """Every run parameter's value when a run sets none."""
    return {p.name: p.default_value(Path(project_dir)) for p in PARAMETERS}


def markdown_table() -> str:
    """The parameter table of docs/parameters.md."""
    rows = ["| parameter | `musicrec run` | default | environment | what it does |", "|---|---|---|---|---|"]
    for p in PARAMETERS:
        default = _shown(p.default)
        bounds = f" ({_bounds(p)})" if _bounds(p) else ""
        flag = f"`{p.flag}`" if p.flag else ""
        env = f"`{p.env}`" if p.env else ""
        rows.append(f"| `{p.name}` | {flag} | {default} | {env} | {p.title}: {p.description}{bounds} |")
    return "\n".join(rows) + "\n"


def _shown(default) -> str:
    if callable(default):
        return f"project's `{Path(default(Path())).name}/`"
    return "empty" if default in (None, []) else f"`{str(default).lower() if isinstance(default, bool) else default}`"


def _bounds(p: Parameter) -> str:
    if p.choices:
        return "one of " + ", ".join(f"`{c}`" for c in p.choices)
    if p.minimum is not None and p.maximum is not None:
        return f"{p.minimum:g} to {p.maximum:g}"
    return f"at least {p.minimum:g}" if p.minimum is not None else ""


if __name__ == "__main__":  # docs/parameters.md's table: python -m musicrec.settings
    print(markdown_table(), end="")
