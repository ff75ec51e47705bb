"""What each stage returns: small, JSON-able records (paths of the Parquet it wrote, counts, seconds), all
that the DAG passes on in XCom and what the run folder's `stages/` keeps for the run summary.

Every record names its run's folder (`run_dir`); `seconds` is added by the `@stage` decorator, `reused`
and `reuse_key` by a stage whose result can come from the current index.
"""

# No `from __future__ import annotations`: TypedDict reads NotRequired from evaluated annotations.
from typing import NotRequired, TypedDict


class Run(TypedDict):
    """discover: the run's plan against the current index."""

    run_dir: str
    run_id: str
    attempt: str  # this attempt's id: a re-run of the run id reads only its own shards
    data_dir: str
    library: str
    folders: list[str]
    full_refresh: bool
    inputs: dict  # what the index depends on beside its files (changes.index_inputs)
    worklist: str
    to_extract: str
    reused_features: str
    still_quarantined: str
    files_found: int
    files_to_extract: int
    files_reused: int
    files_still_quarantined: int
    files_skipped: int
    skipped: list[dict]
    warnings: list[str]
    seconds: NotRequired[float]


class Shard(TypedDict):
    """shard: one mapped task's work list."""

    run_dir: str
    attempt: str
    index: int
    files: int
    worklist: str
    label: str


class ShardResult(TypedDict):
    """extract: one shard's features and quarantine."""

    run_dir: str
    attempt: str
    shard: int
    features: str
    quarantine: str
    files: int
    extracted: int
    quarantined: int
    audio_hours: float
    truncated: int
    seconds: NotRequired[float]


class Metadata(TypedDict):
    """clean_metadata: the cleaned metadata table."""

    run_dir: str
    path: str
    rows_in: int
    rows_out: int
    rows_not_in_library: int
    seconds: NotRequired[float]


class Tracks(TypedDict):
    """join: every indexed track, its features and metadata."""

    run_dir: str
    path: str
    features: str
    quarantine: str
    tracks: int
    with_metadata: int
    quarantined: int
    audio_hours: float
    extract: dict  # the shards' extraction summed up
    seconds: NotRequired[float]


class Scaled(TypedDict):
    """scale: the standardization of the features (`features`, `tracks`), in the model file."""

    run_dir: str
    features: str
    tracks: str
    model: str
    columns: int
    metadata_weight: float
    reuse_key: str
    reused: NotRequired[bool]
    seconds: NotRequired[float]


class Embedded(TypedDict):
    """reduce: the embedding (a PCA per feature group), added to the model file."""

    run_dir: str
    path: str
    model: str
    components: int
    explained_variance: dict[str, float]
    reuse_key: str
    reused: NotRequired[bool]
    seconds: NotRequired[float]


class Duplicates(TypedDict):
    """duplicates: each track's recording, copies grouped."""

    run_dir: str
    path: str
    groups: int  # recordings held by two files or more
    tracks_in_groups: int
    pairs_compared: int
    pairs_reused: int
    reuse_key: str
    reused: NotRequired[bool]
    seconds: NotRequired[float]


class Index(TypedDict):
    """build_index: each track's neighbours."""

    run_dir: str
    path: str
    tracks: int
    neighbours: int
    metric: str
    hubness: str
    search: dict
    reuse_key: str
    reused: NotRequired[bool]
    seconds: NotRequired[float]


class Mixes(TypedDict):
    """mixes: the library clustered into named, ordered playlists."""

    run_dir: str
    path: str
    mixes: int
    tracks: int
    names: list[str]
    reuse_key: str
    reused: NotRequired[bool]
    seconds: NotRequired[float]


class Evaluated(TypedDict):
    """evaluate: the evaluation report and its headline figures (`musicrec.index.evaluation.headline`)."""

    run_dir: str
    path: str
    precision_folder_at_5: float
    precision_folder_at_5_macro: float
    coverage_at_5: float
    k_occurrence_skewness: float
    hubness: str
    reuse_key: str
    reused: NotRequired[bool]
    seconds: NotRequired[float]


class Published(TypedDict):
    """publish: the index now current."""

    run_dir: str
    tracks_indexed: int
    files_extracted: int
    quarantined: int


class Lock(TypedDict):
    """take_lock: who holds the data dir, since when."""

    data_dir: str
    holder: str
    since: str
