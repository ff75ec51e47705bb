"""The plugin file loaded as Airflow loads it, and a client of its app."""

from __future__ import annotations

import importlib.util

from support.project import PROJECT_DIR


def load_plugin():
    """plugins/musicrec_plugin.py as Airflow imports it: its app made for the environment's data dir."""
    spec = importlib.util.spec_from_file_location("musicrec_plugin", PROJECT_DIR / "plugins" / "musicrec_plugin.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    return plugin


def plugin_client(monkeypatch):
    """A client of the app the plugin registers. Who may read is tested against a real API server
    (integration/test_plugin_auth.py); here every request may."""
    from fastapi.testclient import TestClient

    from musicrec.airflow import api

    app = load_plugin().MusicrecPlugin.fastapi_apps[0]["app"]
    monkeypatch.setitem(app.dependency_overrides, api.read_access, lambda: None)
    return TestClient(app)
