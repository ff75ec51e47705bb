"""`musicrec path` and the API's /api/path on a real index (the small library: low tones, high tones, one copy)."""

import json

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from musicrec import cli
from musicrec.airflow import api
from musicrec.index import neighbours
from musicrec.serve import path, query
from support.audio import tone
from support.runs import run_stages


def _groups(data_dir, keys):
    index = query.load(data_dir)
    return index.groups[index.row[keys].to_numpy()]


def test_a_path_starts_and_ends_where_asked_and_never_repeats_a_recording(small_index):
    found = path.path(small_index, ["low/0.wav", "high/3.wav"], steps=6)
    keys = [t["track_key"] for t in found["tracks"]]
    assert keys[0] == "low/0.wav" and keys[-1] == "high/3.wav"
    assert len(keys) == 7 or "no others lie on the way" in found["note"]  # a shorter path says so
    assert len(set(_groups(small_index, keys))) == len(keys)  # "high/copy of 0.wav" and "high/0.wav" are one
    assert found["tracks"][0]["ideal_distance"] == found["tracks"][-1]["ideal_distance"] == 0.0
    assert found["largest_step"] == max(t["step_distance"] for t in found["tracks"]) > 0


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """An index of tones rising in pitch, step by step: a library with a way from its lowest to its highest."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "library" / "sweep").mkdir(parents=True)
    for i in range(10):
        sf.write(root / "library" / "sweep" / f"{i}.wav", tone(200.0 * 1.25**i, seconds=0.6), 22050)
    run_stages(root / "library", root / "data", "sweep", n_neighbors=3)
    return root / "data"


def test_a_path_is_smoother_than_the_jump_it_replaces_and_than_a_random_order(sweep):
    index = query.load(sweep)
    metric = index.built_with["metric"]
    ends = index.row[["sweep/0.wav", "sweep/9.wav"]].to_numpy()
    direct = float(neighbours.distances(index.embedding[ends[:1]], index.embedding[ends[1:]], metric)[0, 0])
    found = path.path(sweep, ["sweep/0.wav", "sweep/9.wav"], steps=5)
    rng = np.random.default_rng(0)
    middle = [r for r in range(len(index.tracks)) if r not in ends]
    shuffled = [[ends[0], *rng.choice(middle, 4, replace=False), ends[1]] for _ in range(20)]
    random_largest = [
        np.diag(neighbours.distances(index.embedding[o[:-1]], index.embedding[o[1:]], metric)).max() for o in shuffled
    ]
    assert found["largest_step"] < direct
    assert found["largest_step"] < np.median(random_largest)


def test_a_path_passes_through_its_waypoints_in_order(small_index):
    found = path.path(small_index, ["low/0.wav", "high/1.wav", "low/3.wav"], steps=6)
    keys = [t["track_key"] for t in found["tracks"]]
    assert found["stops"] == ["low/0.wav", "high/1.wav", "low/3.wav"]
    assert keys[0] == "low/0.wav" and keys[-1] == "low/3.wav" and "high/1.wav" in keys[1:-1]
    assert [t["position"] for t in found["tracks"]] == list(range(1, len(keys) + 1))


def test_more_steps_than_the_library_has_tracks_gives_a_shorter_path_that_says_so(small_index):
    found = path.path(small_index, ["low/0.wav", "high/3.wav"], steps=40)
    keys = [t["track_key"] for t in found["tracks"]]
    assert len(keys) <= 9 and len(set(_groups(small_index, keys))) == len(keys)
    assert "not 39: no others lie on the way" in found["note"]


@pytest.mark.parametrize(
    "stops, steps, error, said",
    [
        (["low/0.wav", "nothing like it"], 4, query.QueryError, "no track matches 'nothing like it'"),
        (["low/0.wav", "high/1.wav", "low/3.wav"], 1, query.InvalidQuery, "steps must be at least 2"),
        (["high/0.wav", "high/copy of 0.wav"], 4, query.InvalidQuery, "the same audio twice"),
        (["low/0.wav"], 4, query.InvalidQuery, "a track to start from and one to end at"),
    ],
)
def test_a_path_that_cannot_be_made_says_why(small_index, stops, steps, error, said):
    with pytest.raises(error, match=said):
        path.path(small_index, stops, steps)


def test_the_ideal_points_are_evenly_spaced_on_the_great_circle():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    points = path._ideal_points(a, b, 2, "cosine")
    angles = [np.degrees(np.arctan2(p[1], p[0])) for p in points]
    np.testing.assert_allclose(angles, [30.0, 60.0])
    np.testing.assert_allclose([np.linalg.norm(p) for p in points], [4 / 3, 5 / 3])
    np.testing.assert_allclose(path._ideal_points(a, b, 1, "euclidean")[0], [0.5, 1.0])


def test_the_command_prints_each_step_and_writes_an_m3u(capsys, small_index, tmp_path):
    out = tmp_path / "path.m3u"
    argv = ["path", "Low Zero", "High Three", "--steps", "3", "--out", str(out), "--data-dir", str(small_index)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "distance from the track before, and from the step's evenly spaced point" in printed
    assert "largest step" in printed and out.read_text().splitlines()[2] == "low/0.wav"
    assert cli.main(["path", "low/0.wav", "high/3.wav", "--steps", "3", "--json", "--data-dir", str(small_index)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [t["track_key"] for t in answer["tracks"]][::3] == ["low/0.wav", "high/3.wav"]


def test_the_api_answers_the_same_path(small_index):
    app = api.create_app(str(small_index))
    app.dependency_overrides[api.read_access] = lambda: None
    client = TestClient(app)
    params = {"from": "low/0.wav", "to": "low/3.wav", "via": ["high/1.wav"], "steps": 6}
    body = client.get("/api/path", params=params).json()
    same = path.path(small_index, ["low/0.wav", "high/1.wav", "low/3.wav"], 6)
    assert [t["track_key"] for t in body["tracks"]] == [t["track_key"] for t in same["tracks"]]
    assert body["largest_step"] == pytest.approx(same["largest_step"]) and body["stops"] == same["stops"]
    refused = client.get("/api/path", params={"from": "low/0.wav", "to": "zzz"})
    assert refused.status_code == 404 and "no track matches 'zzz'" in refused.json()["detail"]
