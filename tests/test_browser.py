"""The page in a real browser (Debian's chromium, driven by Playwright), served by a real Airflow API server:
log in, open the page, search, pick a track, see its neighbours and the map. A screenshot is kept."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import PROJECT_DIR
from test_plugin_auth import api_server  # noqa: F401 - the fixture, shared

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("MUSICREC_TEST_ARTIFACTS", PROJECT_DIR / "test-artifacts"))


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no chromium at {CHROMIUM}: `make browser` installs Debian's package")
        pytest.skip(f"no chromium at {CHROMIUM} (`make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_log_in_search_and_see_a_tracks_neighbours(browser, api_server):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(f"{api_server}/auth/login/")
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("reader-pw")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)

    page.goto(f"{api_server}/musicrec/")
    page.get_by_text("9 tracks", exact=False).wait_for()
    page.get_by_placeholder("track key, title, artist or file name").fill("low")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("4 tracks match").wait_for()
    page.get_by_text("Low One — Ann [ambient] (low/1.wav)").click()
    table = page.locator("#neighbours table")
    table.wait_for()
    rows = table.locator("tr")
    assert rows.count() == 1 + 7  # a header, then every other track (k=10), the two copies of one audio once
    assert "why similar" in rows.nth(0).inner_text()
    first = rows.nth(1).inner_text()
    assert "Low" in first and ("timbre" in first or "rhythm" in first or "harmony" in first or "spectral" in first)
    assert page.locator("svg#map circle.selected").count() == 1
    assert page.locator("svg#map circle.neighbour").count() == 7

    page.goto(f"{api_server}/musicrec/api/neighbours?track=none")  # an error is a sentence, not an object
    assert "[object Object]" not in page.content()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{api_server}/musicrec/")
    page.get_by_placeholder("track key, title, artist or file name").fill("High Two")
    page.get_by_role("button", name="Search").click()
    page.locator("#neighbours table").wait_for()
    shot = page.screenshot(path=str(SCREENSHOTS / "musicrec-page.png"), full_page=True)
    assert len(shot) > 10_000
