"""The "Music recommendations" page and the JSON API behind it: a FastAPI app made by `create_app(data_dir)`
for the current index under `data_dir`. The Airflow plugin (plugins/musicrec_plugin.py) serves one under
/musicrec on the API server, for the data dir of MUSICREC_DATA_DIR; tests make their own for any data dir.

Airflow does not authenticate the FastAPI apps of plugins: every route here, the OpenAPI page
included, requires read access to the music_recommendation DAG through Airflow's own security
dependencies, which accept the UI's JWT cookie as well as a bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated, Literal

from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from musicrec import settings
from musicrec.serve.schemas import (
    DuplicateGroups,
    IndexInfo,
    MapPoint,
    Mix,
    Mixes,
    Neighbours,
    Playlist,
    Radio,
    SimilarToFile,
    TagSearch,
    TrackPage,
    TrackPath,
)

PAGE = Path(__file__).with_name("page.html")
MAX_UPLOAD_BYTES = int(float(os.environ.get("MUSICREC_MAX_UPLOAD_MB", "100")) * 2**20)
MAX_K = 500

read_access = requires_access_dag("GET", param_dag_id=settings.DAG_ID)

routes = APIRouter()


def create_app(data_dir: str) -> FastAPI:
    """The page and the API over the index under `data_dir` (a path, or a URL with its connection)."""
    app = FastAPI(
        title="musicrec",
        description="Tracks that sound like this one, from the current index.",
        dependencies=[Depends(read_access)],
        # FastAPI's own docs routes skip the app's dependencies: they are served here, behind them.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.data_dir = data_dir
    app.include_router(routes)
    app.add_middleware(_BoundedBodies)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    return app


@routes.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> dict:
    return request.app.openapi()


@routes.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    """Swagger UI from the files of the swagger-ui-bundle package, not a CDN: the page works offline."""
    return get_swagger_ui_html(
        openapi_url="openapi.json",
        title="musicrec API",
        swagger_js_url="docs/swagger-ui-bundle.js",
        swagger_css_url="docs/swagger-ui.css",
        swagger_favicon_url="docs/favicon-32x32.png",
    )


SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@routes.get("/docs/{name}", include_in_schema=False)
def docs_file(name: str) -> Response:
    from swagger_ui_bundle import swagger_ui_path

    if name not in SWAGGER_FILES:
        raise HTTPException(status_code=404, detail=f"no such file: {name}")
    return Response((Path(swagger_ui_path) / name).read_bytes(), media_type=SWAGGER_FILES[name])


@routes.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


# What a multipart body may hold beside the file itself (boundaries, part headers, the file's name).
MULTIPART_SLACK = 64 * 1024


# An upload that stalls, or trickles in slower than any real client sends (a slowloris holds a connection
# and a worker's memory so, one byte at a time), is given up: 408.
UPLOAD_IDLE_S = float(os.environ.get("MUSICREC_UPLOAD_IDLE_S", "30"))
UPLOAD_MIN_BYTES_PER_S = 16 * 1024
UPLOAD_GRACE_S = 60.0


class _BoundedBodies:
    """Refuses a request body larger than the upload limit as it arrives, with 413: FastAPI would otherwise
    spool the whole body to a temporary file before the handler could look at it (a 2 GB upload grew a 2 GB
    file first). A declared length over the limit is refused before any of the body is read. A body that
    stalls for UPLOAD_IDLE_S, or after UPLOAD_GRACE_S arrives slower than UPLOAD_MIN_BYTES_PER_S, gets 408."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        limit = MAX_UPLOAD_BYTES + MULTIPART_SLACK
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await JSONResponse(status_code=413, content={"detail": _too_large()})(scope, receive, send)
        received, started = 0, time.monotonic()

        async def bounded():
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), UPLOAD_IDLE_S)
            except TimeoutError:
                raise HTTPException(
                    status_code=408, detail=_too_slow(f"nothing arrived for {UPLOAD_IDLE_S:g} s")
                ) from None
            received += len(message.get("body", b""))
            if received > limit:  # FastAPI passes an HTTPException raised while it reads the body on as it is
                raise HTTPException(status_code=413, detail=_too_large())
            elapsed = time.monotonic() - started
            if elapsed > UPLOAD_GRACE_S and received < UPLOAD_MIN_BYTES_PER_S * elapsed:
                raise HTTPException(status_code=408, detail=_too_slow(f"{received / elapsed:.0f} bytes a second"))
            return message

        return await self.app(scope, bounded, send)


def _too_slow(how: str) -> str:
    return f"the upload was given up: {how}; send the file again, on a faster connection"


def _too_large() -> str:
    return f"the file is larger than {MAX_UPLOAD_BYTES / 2**20:g} MB, the upload limit"


def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A parameter out of range, as one readable sentence rather than FastAPI's list of objects."""
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors())
    return JSONResponse(status_code=422, content={"detail": detail})


def _data_dir(request: Request) -> str:
    return request.app.state.data_dir


def _index(request: Request):
    from musicrec.serve import query

    return query.load(_data_dir(request))


def filters(
    genre: str | None = Query(None, description="only tracks of this genre"),
    bpm: str | None = Query(None, description="only tracks in this tempo range, e.g. 90-110"),
    key: str | None = Query(None, description="only tracks in this key, e.g. 'A minor'"),
    tag: Annotated[list[str] | None, Query(description="only tracks with these tags, e.g. mellow")] = None,
    loudness: str | None = Query(None, description="only tracks this loud, in LUFS, e.g. -20..-12"),
) -> dict:
    """The filters of every route that lists tracks, parsed (a value that does not parse: 400, with why)."""
    from musicrec.index import descriptors

    with _as_http_errors():
        return {
            "genre": genre,
            "bpm": _parsed(descriptors.parse_bpm, bpm),
            "in_key": _parsed(descriptors.parse_key, key),
            "tags": tuple(_parsed(descriptors.parse_tag, t) for t in tag or ()),
            "loudness": _parsed(descriptors.parse_loudness, loudness),
        }


def _parsed(parse, text: str | None):
    """A filter's value parsed, or None; a value that does not parse is the caller's error (400, with why)."""
    from musicrec.serve import query

    try:
        return parse(text) if text is not None else None
    except ValueError as exc:
        raise query.InvalidQuery(str(exc)) from None


@routes.get("/api/info", response_model=IndexInfo)
def info(request: Request):
    with _as_http_errors():
        return _index(request).info()


@routes.get("/api/tracks", response_model=TrackPage)
def search(
    request: Request,
    q: str = Query(..., min_length=1, description="track key, or text in title, artist or file name"),
    page: int = Query(1, ge=1),
    size: int = Query(20, ge=1, le=200),
):
    with _as_http_errors():
        return _index(request).search(q, page, size)


@routes.get("/api/neighbours", response_model=Neighbours)
def neighbours(
    request: Request,
    only: Annotated[dict, Depends(filters)],
    track: str = Query(..., min_length=1, description="a track key"),
    k: int = Query(10, ge=1, le=MAX_K),
    exclude_same: Annotated[
        list[Literal["artist", "album"]] | None, Query(description="leave out the same artist's or album's tracks")
    ] = None,
):
    with _as_http_errors():
        index = _index(request)
        exclude_same = tuple(exclude_same or ())
        found = index.neighbours(track, k, exclude_same, **only)
        for n in found:
            n["why"] = index.why(track, n["track_key"])
        computed = index.computes(k, exclude_same, **only)
        return {"track": index.track(track), "k": k, "computed": computed, "neighbours": found}


@routes.get("/api/plots/{name}", response_class=Response)
def plot(request: Request, name: Literal["explained_variance.png", "map.png", "k_occurrence.png"]):
    """The evaluation's plots of the current index."""
    with _as_http_errors():
        path = _index(request).run / name
        if not path.exists():
            raise FileNotFoundError(f"{name}: this index has no such plot (built before evaluations had plots?)")
        return Response(path.read_bytes(), media_type="image/png")


@routes.get("/api/map", response_model=list[MapPoint])
def library_map(request: Request):
    with _as_http_errors():
        return _index(request).map_points()


@routes.get("/api/playlist", response_model=Playlist)
def playlist(
    request: Request,
    only: Annotated[dict, Depends(filters)],
    seed: str = Query(..., min_length=1),
    length: int = Query(20, ge=1, le=500),
    window: int = Query(0, ge=0, le=100, description="no artist or album repeats within this many tracks"),
):
    from musicrec.serve import playlist as playlists

    with _as_http_errors():
        return playlists.playlist(_data_dir(request), seed, length, window, **only)


@routes.get("/api/path", response_model=TrackPath)
def track_path(
    request: Request,
    only: Annotated[dict, Depends(filters)],
    start: str = Query(..., min_length=1, alias="from", description="a track key, or text in a title or artist"),
    end: str = Query(..., min_length=1, alias="to"),
    via: Annotated[list[str], Query(description="tracks to pass through, in order")] = (),
    steps: int = Query(10, ge=1, le=500, description="steps from the first track to the last"),
):
    """From one track to another (through `via`) by the tracks nearest to evenly spaced points between them."""
    from musicrec.serve import path

    with _as_http_errors():
        return path.path(_data_dir(request), [start, *via, end], steps, **only)


@routes.get("/api/search", response_model=TagSearch)
def search_by_tags(
    request: Request,
    only: Annotated[dict, Depends(filters)],
    q: str = Query(..., min_length=1, description="words naming the network's tags, e.g. 'mellow female vocals'"),
    k: int = Query(20, ge=1, le=MAX_K),
):
    """Tracks the network tags likeliest with every tag the words name (a tag search: `musicrec search -h`
    lists the 50 tags); words that name no tag are said in `unknown`."""
    from musicrec.serve import tag_search

    with _as_http_errors():
        return tag_search.tag_search(_data_dir(request), q, k, **only)


@routes.get("/api/duplicates", response_model=DuplicateGroups)
def duplicate_groups(request: Request):
    """The recordings the library holds more than once: each group's files, the one kept first, with the
    evidence that joined each to it (its fingerprint's agreement, offset and overlap)."""
    from musicrec.serve import duplicates

    with _as_http_errors():
        return duplicates.listing(_data_dir(request))


@routes.get("/api/tags", response_model=list[str])
def tag_names():
    """The 50 tags the network gives each track, which the tag filter and the tag search take."""
    from musicrec.index import descriptors

    return list(descriptors.TAGS)


@routes.get("/api/mixes", response_model=Mixes)
def mixes_listed(request: Request):
    """The index's mixes: the library clustered into playlists, named from their tags, biggest first."""
    from musicrec.serve import mixes

    with _as_http_errors():
        return mixes.listing(_data_dir(request))


@routes.get("/api/mixes/{mix}", response_model=Mix)
def mix_tracks(request: Request, mix: str):
    """A mix's tracks in order (by its number, or a word of its name)."""
    from musicrec.serve import mixes

    with _as_http_errors():
        return mixes.mix(_data_dir(request), mix)


@routes.get("/api/radio", response_model=Radio)
def radio(
    request: Request,
    only: Annotated[dict, Depends(filters)],
    seed: Annotated[list[str], Query(min_length=1, description="track keys, or text in a title or artist")],
    length: int = Query(20, ge=1, le=500),
    window: int = Query(0, ge=0, le=100, description="no artist or album repeats within this many tracks"),
):
    """Tracks near several seeds, taking turns among them; seeds, their copies and near-copies left out."""
    from musicrec.serve import radio as radios

    with _as_http_errors():
        return radios.radio(_data_dir(request), seed, length, window, **only)


@routes.get("/api/audio", response_class=Response, responses={206: {"description": "a range of the file"}})
def audio(request: Request, track: str = Query(..., min_length=1, description="a track key of the index")):
    """A track's audio file, to listen to; ranges are answered (206), so that a player can seek."""
    from musicrec.serve import listen

    with _as_http_errors():
        where, media_type = listen.source(_index(request), track)
        if isinstance(where, Path):
            return FileResponse(where, media_type=media_type)
        size = where.stat().st_size
        try:
            start, end = listen.byte_range(request.headers.get("range"), size)
        except listen.NotSatisfiable as exc:
            raise HTTPException(416, detail=str(exc), headers={"content-range": f"bytes */{size}"}) from None
        headers = {"content-range": f"bytes {start}-{end}/{size}", "accept-ranges": "bytes"}
        return Response(listen.read(where, start, end), status_code=206, media_type=media_type, headers=headers)


@routes.post("/api/similar", response_model=SimilarToFile)
def similar(request: Request, file: UploadFile, k: int = Query(10, ge=1, le=MAX_K)):
    """Tracks that sound like an uploaded audio file (at most MUSICREC_MAX_UPLOAD_MB, 100 by default)."""
    from musicrec.serve import similar as similarity

    name = _shown_name(file.filename)
    with _as_http_errors(), tempfile.TemporaryDirectory(prefix="musicrec-upload-") as tmp:
        path = Path(tmp) / f"upload{_suffix(name)}"
        _save_bounded(file, path)
        result = similarity.similar_to_file(_data_dir(request), path, k, name=name)
    return result


def _shown_name(filename: str | None) -> str:
    """The uploaded file's name as messages show it: the client's to choose, so never used as a path (`..`,
    a NUL byte or 300 bytes would be refused by the file system, or worse); control characters dropped."""
    name = "".join(c for c in (filename or "") if c.isprintable())[:200]
    return name or "the upload"


def _suffix(name: str) -> str:
    """The extension, which tells the decoders what to expect, where it is a plausible one."""
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _save_bounded(upload: UploadFile, path: Path) -> None:
    written = 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            written += len(chunk)
            if written > MAX_UPLOAD_BYTES:
                raise HTTPException(status_code=413, detail=_too_large())
            out.write(chunk)


@contextlib.contextmanager
def _as_http_errors():
    """The library's errors as HTTP answers with their message: no traceback, no 500. A disk or object storage
    that refuses or does not answer is the server's trouble, not the request's: 503."""
    from musicrec.errors import InputError, explained
    from musicrec.serve import query

    try:
        yield
    except query.QueryError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except (query.DamagedIndex, FileNotFoundError) as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    except Exception as exc:
        failure = explained(exc)
        if failure is not None:
            raise HTTPException(status_code=503, detail=str(failure)) from None
        if isinstance(exc, InputError):
            raise HTTPException(status_code=400, detail=str(exc)) from None
        raise
