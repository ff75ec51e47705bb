"""Each stage returns the record its type declares (musicrec.pipeline.results), first run and reused alike."""

import json

import pytest

from musicrec.pipeline import results
from support.runs import run_stages

DECLARED = {
    "run": results.Run,
    "shard": results.Shard,
    "extract": results.ShardResult,
    "clean_metadata": results.Metadata,
    "join": results.Tracks,
    "scale": results.Scaled,
    "reduce": results.Embedded,
    "build_index": results.Index,
    "evaluate": results.Evaluated,
    "publish": results.Published,
}


def _undeclared(record: dict, kind) -> tuple[set, set]:
    """(required keys missing, keys the type does not declare)."""
    return kind.__required_keys__ - set(record), set(record) - kind.__required_keys__ - kind.__optional_keys__


@pytest.mark.parametrize("attempt", ["first", "second"])
def test_each_stage_returns_the_record_its_type_declares_as_json(tmp_path, library, attempt):
    run_stages(library, tmp_path / "data", "first")
    done = run_stages(library, tmp_path / "data", "second") if attempt == "second" else None
    done = done or run_stages(library, tmp_path / "other", "first")
    assert done["shard"] or attempt == "second"  # the second run extracts nothing: no shard
    for stage, kind in DECLARED.items():
        records = done[stage] if isinstance(done[stage], list) else [done[stage]]
        for record in records:
            assert _undeclared(record, kind) == (set(), set()), stage
            assert json.loads(json.dumps(record)) == record  # plain JSON for XCom
