"""The page in a real browser (Debian's chromium, driven by Playwright), served by a real Airflow API server:
log in, open the page, search, pick a track, see its neighbours and the map. A screenshot is kept."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support.project import PROJECT_DIR

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


def log_in(page, base: str) -> None:
    """Through Airflow's own login form, as the reader."""
    page.goto(f"{base}/auth/login/")
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("reader-pw")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def the_page(browser, base: str, width: int = 1280, height: int = 900):
    """The page, logged in as the reader, once it shows the index."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(30_000)
    log_in(page, base)
    page.goto(f"{base}/musicrec/")
    page.get_by_text("9 tracks", exact=False).wait_for()
    return page


def submitted(page, fields: dict[str, str], button: str, answer: str):
    """A form of the page filled (fields by id), its button pressed: the rows of the table it answers with."""
    for field, value in fields.items():
        page.locator(f"#{field}").fill(value)
    page.get_by_role("button", name=button).click()
    rows = page.locator(f"#{answer} table tr")
    rows.first.wait_for()
    return rows


def test_log_in_search_and_see_a_tracks_neighbours(browser, api_server):
    page = the_page(browser, api_server)
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


def test_the_page_in_the_airflow_uis_own_frame(browser, api_server):
    """As a person sees it: Browse -> Music recommendations, the page in the UI's sandboxed frame, 1400x1000."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    said = []
    page.on("console", lambda message: said.append(message.text))
    popups = []
    page.on("popup", lambda popup: popups.append(popup.url))
    log_in(page, api_server)

    page.goto(f"{api_server}/plugin/musicrec")
    frame = page.frame_locator("iframe")
    frame.get_by_text("9 tracks", exact=False).wait_for()
    frame.get_by_placeholder("track key, title, artist or file name").fill("High Two")
    frame.get_by_role("button", name="Search").click()
    table = frame.locator("#neighbours table")
    table.wait_for()

    # The map beside the table and on screen, with axes, a colour per folder and a legend.
    table_box, map_box = table.bounding_box(), frame.locator("svg#map").bounding_box()
    assert map_box["x"] >= table_box["x"] + table_box["width"] - 1, (table_box, map_box)
    assert map_box["y"] + map_box["height"] <= 1000
    assert frame.locator("svg#map text", has_text="component 1").count() == 1
    assert frame.locator("svg#map text", has_text="component 2").count() == 1
    assert sorted(frame.locator("#legend span").all_inner_texts()) == ["high (5)", "low (4)"]
    fills = {c.get_attribute("fill") for c in frame.locator("svg#map circle").all()}
    assert len(fills) == 2
    assert frame.locator("svg#map circle.selected").count() == 1

    # The plots open in the page itself: the frame may not open a window.
    figure = frame.locator("#plots figure").first
    figure.locator("img").wait_for()
    assert figure.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    small = figure.locator("img").bounding_box()["width"]
    figure.click()
    assert figure.locator("img").bounding_box()["width"] > 2 * small
    assert popups == [] and not any("Blocked opening" in text for text in said), said

    # An error clears the map's selection rather than leaving the last one shown.
    frame.locator("#k").fill("0")
    frame.get_by_text("High Two", exact=False).first.click()
    frame.locator("#neighbours .error").wait_for()
    assert frame.locator("svg#map circle.selected").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "musicrec-in-the-ui.png"))


def test_the_api_page_works_offline(browser, api_server):
    page = browser.new_page()
    page.set_default_timeout(30_000)
    outside = []
    page.route(
        lambda url: not url.startswith(api_server),
        lambda route: (outside.append(route.request.url), route.abort()),
    )
    log_in(page, api_server)
    page.goto(f"{api_server}/musicrec/docs")
    page.locator(".swagger-ui .info .title", has_text="musicrec").wait_for()
    assert page.locator(".opblock-summary-path", has_text="/api/neighbours").count() == 1
    assert outside == []


def test_a_path_and_a_radio_from_the_page(browser, api_server):
    page = the_page(browser, api_server, 1400, 1000)
    rows = submitted(page, {"path-from": "low/0.wav", "path-to": "high/3.wav", "steps": "4"}, "Path", "path")
    assert "largest step" in page.locator("#path p").inner_text()
    assert "Low Zero" in rows.nth(1).inner_text() and "High Three" in rows.nth(rows.count() - 1).inner_text()
    assert page.locator("svg#map circle.neighbour").count() == rows.count() - 1  # the path's tracks on the map
    radio = submitted(page, {"seeds": "Low Zero; High One"}, "Radio", "radio")
    assert radio.count() == 1 + 6  # every other recording: the nine tracks hold eight (one is a copy), two seeds
    assert "from low/0.wav, high/1.wav" in page.locator("#radio p").inner_text()
    page.locator("#path-to").fill("nothing like it")
    page.get_by_role("button", name="Path").click()
    page.locator("#path p.error", has_text="no track matches 'nothing like it'").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "musicrec-path-and-radio.png"), full_page=True)


def test_every_listed_track_plays_from_the_page(browser, api_server):
    """The play button of a neighbour: the page's player asks for the file and the server answers in ranges."""
    page = the_page(browser, api_server)
    page.get_by_placeholder("track key, title, artist or file name").fill("High Two")
    page.get_by_role("button", name="Search").click()
    page.locator("#neighbours table").wait_for()
    with page.expect_response(lambda r: "/musicrec/api/audio?track=" in r.url) as answered:
        page.locator("#neighbours button.play").first.click()
    response = answered.value
    assert response.status == 206 and response.headers["content-type"] == "audio/wav"
    assert len(response.body()) > 1000
    page.wait_for_function(
        "document.getElementById('player').currentTime > 0 || document.getElementById('player').readyState >= 2"
    )
    assert "—" in page.locator("#now-playing").inner_text()


def test_filters_a_playlist_and_a_file_to_compare_from_the_page(browser, api_server, small_index, tmp_path):
    import soundfile as sf

    from musicrec.store import storage
    from support.audio import tone

    page = the_page(browser, api_server, 1400, 1000)
    index = storage.read_json(storage.current_dir(small_index) / storage.SUMMARY)
    rows = submitted(page, {"genre": "rock", "playlist-seed": "low/0.wav"}, "Playlist", "playlist")
    assert "from low/0.wav" in page.locator("#playlist p").inner_text()
    titles = [rows.nth(i).inner_text() for i in range(2, rows.count())]  # after the seed, rock only
    assert titles and all("High" in t for t in titles)
    # The api-server here takes uploads of 10 KB at most: a library file is refused with the reason, a short clip
    # is compared.
    page.locator("#upload").set_input_files(str(Path(index["library"]) / "low" / "2.wav"))
    page.get_by_role("button", name="Compare").click()
    page.locator("#upload-result p.error", has_text="MB").wait_for()
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(1800.0, seconds=0.3, sr=8000), 8000)
    page.locator("#upload").set_input_files(str(clip))
    page.get_by_role("button", name="Compare").click()
    page.locator("#upload-result table").wait_for(timeout=120_000)
    assert "clip.wav" in page.locator("#upload-result p").inner_text()
    assert page.locator("#upload-result table tr").count() > 1
    page.locator("#key").fill("H minor")
    page.get_by_role("button", name="Playlist").click()
    page.locator("#playlist p.error", has_text="'H minor' is not a key").wait_for()


def test_tags_mixes_and_the_map_by_tag_from_the_page(browser, api_server, small_index):
    import re

    from musicrec.serve import query

    index = query.load(small_index)
    counts = index.tagged.sum()
    tag = str(counts[(counts > 0) & (counts < len(index.tracks))].idxmax())
    tagged = set(index.tracks["track_key"][index.tagged[tag]])
    page = the_page(browser, api_server, 1400, 1100)
    rows = submitted(page, {"tag-words": f"{tag} floofy"}, "Find", "tag-results")
    said = page.locator("#tag-results p").inner_text()
    assert f"tagged {tag}" in said and "floofy (closest: " in said
    assert rows.count() == 1 + len(index.tracks) - 1  # every recording, ranked (fewer than 20; one is a copy)
    listed = re.compile(r"^(\d+)\. (.+) \((\d+) tracks")
    first = page.locator("#mix-list button").first
    number, name, size = listed.match(first.inner_text()).groups()
    first.click()
    page.locator("#mix table").wait_for()
    assert f"mix {number}: {name}" in page.locator("#mix p").inner_text()
    assert page.locator("#mix table tr").count() == 1 + int(size)
    assert page.locator("svg#map circle.neighbour").count() == int(size)  # the mix's tracks on the map
    page.select_option("#colour-by", "tag")
    legend = page.locator("#legend").inner_text()
    assert any(t in legend for t in index.tracks["tags"].map(lambda t: t[0] if t else "(no tag)"))
    rows = submitted(page, {"tag": tag, "playlist-seed": "low/0.wav"}, "Playlist", "playlist")
    keys = [rows.nth(i).get_attribute("title") for i in range(2, rows.count())]  # after the seed
    assert keys and set(keys) <= tagged
    page.locator("#tag").fill("melow")
    page.get_by_role("button", name="Playlist").click()
    page.locator("#playlist p.error", has_text="'melow' is not one of the 50 tags").wait_for()
    # the byte copy in the library is one recording with its original; the copy is not the one kept
    page.locator("#duplicates table").wait_for()
    assert page.locator("#duplicates p").inner_text() == "1 recording held by 2 files"
    assert "copy of 0.wav" in page.locator("#duplicates").inner_text()
    assert "the same bytes" in page.locator("#duplicates").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "musicrec-tags-and-mixes.png"), full_page=True)
