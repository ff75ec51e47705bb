"""The plugin's API answers with HTTP errors carrying a message, never a traceback (auth: test_plugin_auth)."""

from __future__ import annotations

import importlib.util

import pytest
from fastapi.testclient import TestClient

from conftest import PROJECT_DIR
from test_pipeline import _published


@pytest.fixture
def plugin(monkeypatch):
    spec = importlib.util.spec_from_file_location("musicrec_plugin", PROJECT_DIR / "plugins" / "musicrec_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(module.app.dependency_overrides, module.read_access, lambda: None)
    return module


def test_a_damaged_index_is_a_503_that_names_the_file(plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(plugin, "DATA_DIR", str(_published(tmp_path / "data", b"garbage")))
    response = TestClient(plugin.app).get("/api/recommend", params={"q": "a/1.ogg"})
    assert response.status_code == 503
    assert "recommendations.parquet: not a readable Parquet table" in response.json()["detail"]
    summary = TestClient(plugin.app).get("/api/summary")
    assert summary.status_code == 503 and "summary.json" in summary.json()["detail"]


def test_an_empty_query_is_a_400_and_no_index_a_503(plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(plugin, "DATA_DIR", str(tmp_path / "nothing"))
    client = TestClient(plugin.app)
    assert client.get("/api/recommend", params={"q": "x"}).status_code == 503
    assert "run `musicrec run` first" in client.get("/api/summary").json()["detail"]
    monkeypatch.setattr(plugin, "DATA_DIR", str(_published(tmp_path / "data", b"garbage")))
    empty = client.get("/api/recommend", params={"q": "   "})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
