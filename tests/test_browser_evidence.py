"""Evidence from rendered crawls, with real Chromium against a loopback site (:mod:`tests.browser_site`):
screenshots of Chinese pages show real glyphs, a 412 challenge is reported as blocked with its capture, and
every request the browser makes carries the configured User-Agent."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from playwright.sync_api import sync_playwright
from warcio.archiveiterator import ArchiveIterator

from crawlers.settings import CHROMIUM_ARGS, LISTWATCH_CHROMIUM
from tests.browser_site import CELL, GLYPH_CELLS, TITLES, TOFU, BrowserSite
from tests.conftest import Crawl, crawl_sources

pytestmark = pytest.mark.browser
AGENT = "listwatch-evidence-test/1.0 (+mailto:ops@example.org)"


def source(site: BrowserSite, source_id: str, path: str, **render: Any) -> dict[str, Any]:
    return {
        "id": source_id, "name": source_id, "start_urls": [f"{site.url}{path}"],
        "render": {"mode": "browser", "wait_for": "#list", "timeout": 15, "screenshot": True, **render},
        "items": {"selector": "#list li.item", "key": "url",
                  "fields": {"title": "a::text", "url": {"css": "a::attr(href)", "type": "url"}}},
        "politeness": {"delay": 0, "concurrency": 2, "user_agent": AGENT},
        "limits": {"retries": 0, "timeout": 20},
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Crawl], BrowserSite]]:
    """Three rendered sources crawled side by side in one ``listwatch crawl`` (one browser)."""
    root = tmp_path_factory.mktemp("browser-evidence")
    site = BrowserSite().start()
    try:
        paths = []
        for spec in (source(site, "zh", "/zh/index.html"), source(site, "blocked", "/blocked/index.html"),
                     source(site, "ua", "/ua/index.html", wait_for="#loaded", wait_until="load")):
            path = root / f"{spec['id']}.yaml"
            path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
            paths.append(path)
        yield crawl_sources(paths, data_dir=root / "data"), site
    finally:
        site.stop()


def records(crawl: Crawl) -> dict[tuple[str, str], Any]:
    """(record type, target URI) → (record id, HTTP status, payload) of the crawl's WARC records."""
    found = {}
    for path in crawl.warcs:
        with path.open("rb") as fh:
            for rec in ArchiveIterator(fh):
                status = rec.http_headers.get_statuscode() if rec.http_headers else None
                found[(rec.rec_type, rec.rec_headers.get_header("WARC-Target-URI"))] = (
                    rec.rec_headers.get_header("WARC-Record-ID"), status, rec.content_stream().read())
    return found


# -- 1. CJK glyphs in screenshots -------------------------------------------------------------------

def _cells(png: bytes) -> list[Image.Image]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [image.crop((x, y, x + CELL, y + CELL)) for _, x, y in GLYPH_CELLS]


def _same(a: Image.Image, b: Image.Image) -> bool:
    return ImageChops.difference(a, b).getbbox() is None


def glyph_problems(png: bytes) -> list[str]:
    """Why the glyph grid of a screenshot of ``/zh/index.html`` does not show real Chinese glyphs ([] if it does).

    A missing glyph is drawn as the font's "missing" box, the same for every character: real glyphs have ink,
    differ from the box drawn for :data:`TOFU` (a code point no font covers) and differ from one another."""
    cells, chars = _cells(png), [ch for ch, _, _ in GLYPH_CELLS]
    tofu, control = cells[chars.index(TOFU)], len(chars) - 1   # the control repeats chars[0]
    problems = [] if _same(cells[control], cells[0]) else ["the same character rendered differently"]
    glyphs = {i: cell for i, cell in enumerate(cells) if chars[i] != TOFU and i != control}
    problems += [f"{chars[i]}: no ink" for i, cell in glyphs.items() if cell.getextrema()[0] > 128]
    problems += [f"{chars[i]}: the missing-glyph box" for i, cell in glyphs.items() if _same(cell, tofu)]
    problems += [f"{chars[a]} and {chars[b]} look alike" for a in glyphs for b in glyphs
                 if a < b and _same(glyphs[a], glyphs[b])]
    return problems


def render_without_cjk_fonts(tmp: Path) -> bytes:
    """The same page in the same Chromium (on a site of its own), seeing every installed font except those
    covering Chinese."""
    listed = {lang: set(subprocess.run(["fc-list", *lang, "-f", "%{file}\n"], capture_output=True, text=True,
                                       check=True).stdout.split()) for lang in ((), (":lang=zh",))}
    fonts = tmp / "fonts"
    fonts.mkdir()
    for i, path in enumerate(sorted(listed[()] - listed[(":lang=zh",)])):
        (fonts / f"{i}-{Path(path).name}").symlink_to(path)
    conf = tmp / "fonts.conf"
    conf.write_text(f'<?xml version="1.0"?><fontconfig><dir>{fonts}</dir><cachedir>{tmp / "cache"}</cachedir>'
                    "</fontconfig>", encoding="utf-8")
    site = BrowserSite().start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=LISTWATCH_CHROMIUM, args=CHROMIUM_ARGS,
                                                 env={**os.environ, "FONTCONFIG_FILE": str(conf)})
            try:
                page = browser.new_page()
                page.goto(f"{site.url}/zh/index.html")
                return page.screenshot(full_page=True, type="png")
            finally:
                browser.close()
    finally:
        site.stop()


def test_screenshot_of_a_chinese_page_has_real_glyphs_not_tofu(rendered: tuple[dict[str, Crawl], BrowserSite],
                                                                tmp_path: Path) -> None:
    crawls, site = rendered
    crawl = crawls["zh"]
    assert [i["fields"]["title"] for i in crawl.items] == list(TITLES)
    _, _, png = records(crawl)[("resource", f"urn:screenshot:{site.url}/zh/index.html")]
    assert glyph_problems(png) == [], "Chinese drawn as boxes: no CJK font (run infra/setup.sh)"
    # The check is not vacuous: without a CJK font the same page fails it, and its glyph cells differ.
    without = render_without_cjk_fonts(tmp_path)
    assert any("missing-glyph box" in p for p in glyph_problems(without)), glyph_problems(without)
    chars = [ch for ch, _, _ in GLYPH_CELLS]
    assert not any(_same(a, b) for ch, a, b in zip(chars, _cells(png), _cells(without), strict=True) if ch != TOFU)


# -- 2. a 412 challenge in browser mode is "blocked", not a selector timeout -------------------------

def test_a_412_challenge_is_reported_blocked_with_its_capture(rendered: tuple[dict[str, Crawl], BrowserSite]
                                                              ) -> None:
    crawls, site = rendered
    report = crawls["blocked"].report
    url = f"{site.url}/blocked/index.html"
    assert [p["kind"] for p in report["problems"]] == [], report["problems"]   # not a timeout
    [challenge] = report["challenges"]
    assert challenge["url"] == url and "412" in challenge["message"], challenge
    assert not report["complete"]
    found = records(crawls["blocked"])
    record_id, status, body = found[("response", url)]
    assert challenge["record"] == record_id and status == "412" and "验证码".encode() in body
    assert ("resource", f"urn:screenshot:{url}") in found and ("resource", f"urn:dom:{url}") in found


# -- 3. every browser request carries the configured User-Agent -------------------------------------

def test_every_request_of_a_rendered_crawl_carries_the_configured_user_agent(
        rendered: tuple[dict[str, Crawl], BrowserSite]) -> None:
    crawls, site = rendered
    assert crawls["ua"].report["complete"], crawls["ua"].report
    paths = {s.path for s in site.seen}
    for wanted in ("/ua/sw.js", "/ua/sw-install.json", "/ua/through-sw.json", "/ua/worker.js",
                   "/ua/from-worker.json", "/ua/fetch.json", "/ua/xhr.json", "/ua/font.woff2", "/ua/in-frame.png"):
        assert wanted in paths, f"the page never requested {wanted}: the probe is broken"
    wrong = sorted({(s.path, s.user_agent) for s in site.seen if s.user_agent != AGENT})
    assert not wrong, f"requests with another User-Agent: {wrong}"
