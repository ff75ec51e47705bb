"""A "Music recommendations" page in the Airflow UI, and the JSON API behind it.

The page is served by a FastAPI app under /musicrec on the Airflow API server and
shown in the UI's Browse menu. It reads the current index under MUSICREC_DATA_DIR.

Airflow does not authenticate the FastAPI apps of plugins: every route here, the OpenAPI page
included, requires read access to the music_recommendation DAG through Airflow's own security
dependencies, which accept the UI's JWT cookie as well as a bearer token.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

DATA_DIR = os.environ.get("MUSICREC_DATA_DIR", str(Path(__file__).resolve().parents[1] / "data"))
PAGE = Path(__file__).with_name("musicrec_page.html")

DAG_ID = "music_recommendation"
read_access = requires_access_dag("GET", param_dag_id=DAG_ID)

app = FastAPI(
    title="musicrec",
    description="Tracks that sound like this one, from the current index.",
    dependencies=[Depends(read_access)],
    # FastAPI's own docs routes skip the app's dependencies: they are served below, behind them.
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> dict:
    return app.openapi()


@app.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="openapi.json", title="musicrec API")


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


@app.get("/api/recommend")
def recommend(
    q: str = Query(..., min_length=1, description="track key, or text in title, artist or file name"),
    k: int = Query(10, ge=1, le=100),
) -> dict:
    from musicrec import query

    with _as_http_errors():
        return query.recommend(DATA_DIR, q, k)


@app.get("/api/summary")
def summary() -> dict:
    from musicrec import query

    with _as_http_errors():
        return query.summary(DATA_DIR)


@contextlib.contextmanager
def _as_http_errors():
    """The library's errors as HTTP answers with their message: no traceback, no 500."""
    from musicrec import query

    try:
        yield
    except query.InvalidQuery as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except query.QueryError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except (query.DamagedIndex, FileNotFoundError) as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None


class MusicrecPlugin(AirflowPlugin):
    name = "musicrec"
    fastapi_apps = [{"app": app, "url_prefix": "/musicrec", "name": "musicrec"}]
    external_views = [
        {
            "name": "Music recommendations",
            "href": "musicrec/",
            "destination": "nav",
            "category": "browse",
            "url_route": "musicrec",
        }
    ]
