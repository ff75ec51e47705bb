"""A "Music recommendations" page in the Airflow UI, and the JSON API behind it (`musicrec.airflow.api`).

Served under /musicrec on the Airflow API server and shown in the UI's Browse menu, over the current index
under MUSICREC_DATA_DIR (on object storage, through the Airflow connection MUSICREC_STORAGE_CONN_ID).
"""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin

from musicrec import settings
from musicrec.airflow.api import create_app
from musicrec.store.locations import with_conn_id

DATA_DIR = with_conn_id(settings.default_data_dir(), os.environ.get("MUSICREC_STORAGE_CONN_ID"))


class MusicrecPlugin(AirflowPlugin):
    name = "musicrec"
    fastapi_apps = [{"app": create_app(DATA_DIR), "url_prefix": "/musicrec", "name": "musicrec"}]
    external_views = [
        {
            "name": "Music recommendations",
            "href": "musicrec/",
            "destination": "nav",
            "category": "browse",
            "url_route": "musicrec",
        }
    ]
