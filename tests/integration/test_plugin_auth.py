"""The plugin's page and API behind Airflow's own authentication, on a real API server on loopback."""

from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

ROUTES = [
    "/musicrec/",
    "/musicrec/api/info",
    "/musicrec/api/tracks?q=low",
    "/musicrec/api/neighbours?track=low/0.wav",
    "/musicrec/api/map",
    "/musicrec/api/playlist?seed=low/0.wav",
    "/musicrec/api/plots/map.png",
    "/musicrec/api/search?q=ambient",
    "/musicrec/api/tags",
    "/musicrec/api/mixes",
    "/musicrec/api/mixes/1",
    "/musicrec/docs",
    "/musicrec/openapi.json",
]


def _token(base, username, password):
    response = requests.post(f"{base}/auth/token", json={"username": username, "password": password}, timeout=10)
    assert response.status_code in (200, 201), response.text
    return response.json()["access_token"]


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_callers_get_401(api_server, route):
    response = requests.get(api_server + route, timeout=10)
    assert response.status_code == 401
    assert "Low Zero" not in response.text and "low/0.wav" not in response.text


@pytest.mark.parametrize("route", ROUTES)
def test_a_user_without_access_to_the_dag_gets_403(api_server, route):
    token = _token(api_server, "nobody", "nobody-pw")
    response = requests.get(api_server + route, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 403


def test_a_logged_in_reader_gets_the_data_with_a_token_or_the_ui_cookie(api_server):
    token = _token(api_server, "reader", "reader-pw")
    by_header = requests.get(
        f"{api_server}/musicrec/api/info", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert by_header.status_code == 200 and by_header.json()["tracks"] == 9
    by_cookie = requests.get(
        f"{api_server}/musicrec/api/tracks", params={"q": "Low Zero"}, cookies={"_token": token}, timeout=10
    )
    assert by_cookie.status_code == 200 and by_cookie.json()["items"][0]["track_key"] == "low/0.wav"
    page = requests.get(f"{api_server}/musicrec/", cookies={"_token": token}, timeout=10)
    assert page.status_code == 200 and "Tracks that sound like" in page.text
    spec = requests.get(f"{api_server}/musicrec/openapi.json", cookies={"_token": token}, timeout=10)
    assert {"/api/neighbours", "/api/similar", "/api/playlist"} <= set(spec.json()["paths"])
    assert "Neighbours" in spec.json()["components"]["schemas"]


@pytest.mark.parametrize(
    "method, route, kwargs, status, message",
    [
        ("get", "/musicrec/api/neighbours", {"params": {"track": "no/such.wav"}}, 404, "no track 'no/such.wav'"),
        ("get", "/musicrec/api/neighbours", {"params": {"track": "low/0.wav", "k": 0}}, 422, "k: Input should be"),
        (
            "get",
            "/musicrec/api/neighbours",
            {"params": {"track": "low/0.wav", "k": 501}},
            422,
            "less than or equal to 500",
        ),
        ("get", "/musicrec/api/tracks", {"params": {"q": ""}}, 422, "q: String should have at least 1 character"),
        ("get", "/musicrec/api/playlist", {"params": {"seed": "low/0.wav", "length": "many"}}, 422, "length:"),
        ("post", "/musicrec/api/similar", {"files": {"file": ("big.wav", b"0" * 20_000)}}, 413, "upload limit"),
        ("post", "/musicrec/api/similar", {"files": {"file": ("bad.ogg", b"not audio")}}, 400, "bad.ogg: not readable"),
    ],
)
def test_bad_input_through_the_real_server_is_a_status_and_a_sentence(
    api_server, method, route, kwargs, status, message
):
    token = _token(api_server, "reader", "reader-pw")
    response = requests.request(method, api_server + route, cookies={"_token": token}, timeout=30, **kwargs)
    assert response.status_code == status and message in response.json()["detail"]


def _upload_begun(api_server: str, token: str, *length_header: str):
    """A POST of a multipart upload to the real server, its headers sent and its body not yet."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(api_server)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    conn.putrequest("POST", "/musicrec/api/similar")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader(*length_header)
    conn.endheaders()
    return conn


def test_an_oversized_upload_is_refused_while_it_is_still_being_sent(api_server):
    """Chunked, with no declared length, to the real server: the answer comes after about the limit
    (0.01 MB here), not after the whole body; before, the whole body was spooled to disk first."""
    import select

    conn = _upload_begun(api_server, _token(api_server, "reader", "reader-pw"), "Transfer-Encoding", "chunked")
    head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
    conn.send(b"%x\r\n%s\r\n" % (len(head), head))
    chunk, sent = b"\0" * 65536, 0
    try:
        while sent < 64 * 2**20 and not select.select([conn.sock], [], [], 0)[0]:
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            time.sleep(0.005)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed
    response = conn.getresponse()
    assert response.status == 413 and b"upload limit" in response.read()
    assert sent < 4 * 2**20, f"{sent / 2**20:.0f} MB sent before the answer"


@pytest.fixture(scope="module")
def api_spec(api_server):
    """The plugin API's own OpenAPI document, as the real server gives it to a logged-in reader."""
    token = _token(api_server, "reader", "reader-pw")
    spec = requests.get(f"{api_server}/musicrec/openapi.json", cookies={"_token": token}, timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.update(base_url=f"{api_server}/musicrec")
    return schema


def test_any_request_the_api_describes_gets_an_answer_not_a_500(api_spec, api_server):
    """Generated from the API's own description (schemathesis): whatever the parameters and uploads, the real
    server answers, never with a 500, and every refusal is a sentence that says what was wrong."""
    token = _token(api_server, "reader", "reader-pw")
    answered = {}

    def answers(case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:500]}"
        if response.status_code >= 400:
            detail = response.json()["detail"]
            text = detail if isinstance(detail, str) else " ".join(str(d.get("msg", "")) for d in detail)
            assert len(text.split()) >= 2, response.text[:500]

    operations = [result.ok() for result in api_spec.get_all_operations()]
    described = {"/api/neighbours", "/api/similar", "/api/tracks", "/api/playlist", "/api/search", "/api/mixes/{mix}"}
    assert {op.path for op in operations} >= described
    for operation in operations:
        bounded = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        bounded(given(operation.as_strategy())(answers))()
    assert sum(answered.values()) >= 5 * len(operations) and any(code < 300 for code in answered)


def test_slow_uploads_are_given_up_and_the_server_goes_on_answering(api_server):
    """Many connections that send a little of an upload and then nothing (a slowloris) are answered 408 once
    they stall, and while they are held the server answers everyone else."""
    token = _token(api_server, "reader", "reader-pw")
    stalled = []
    for _ in range(50):
        conn = _upload_begun(api_server, token, "Content-Length", "9000")
        conn.send(b'--x\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\n\r\nRIFF')
        stalled.append(conn)
    info = requests.get(f"{api_server}/musicrec/api/info", cookies={"_token": token}, timeout=10)
    assert info.status_code == 200
    started = time.monotonic()
    for conn in stalled:
        response = conn.getresponse()
        assert response.status == 408 and b"nothing arrived for 3 s" in response.read()
        conn.close()
    assert time.monotonic() - started < 20
