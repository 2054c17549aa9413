"""The web interface in real Chromium, against ``listwatch serve`` and ``listwatch replay`` (pywb reading the
catalog's CDX endpoint) over a catalog filled by real demo crawls on three days.

Each page renders without console errors and without serious accessibility violations (axe-core, vendored in
``tests/vendor/axe-core``); a Chinese search finds the right programmes; a changed programme shows its field
diff and its "before" link replays the earlier capture; an alert's evidence link opens without the token; a
state-changing request without authentication is refused; the pages work from the keyboard.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from archive.catalog.models import Event, Program
from scheduler.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from tests.web_support import Servers, WebArchive

pytest_plugins = ("tests.web_support",)
pytestmark = [pytest.mark.slow, pytest.mark.browser]
AXE = (Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
TOKEN = "web-test-token-0123"     # tests.web_support.TOKEN


class Watched:
    """A page whose console errors and uncaught exceptions (from our own origin) are collected."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page, self.errors = page, []
        page.on("console", lambda m: self.errors.append(f"console: {m.text} @ {m.location}")
                if m.type == "error" and str(m.location.get("url", "")).startswith(origin) else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


def signed_in(browser: Browser, servers: Servers) -> Watched:
    """A fresh browser context signed in through the sign-in form, typed from the keyboard."""
    watched = Watched(browser.new_context().new_page(), servers.web)
    page = watched.page
    page.goto(f"{servers.web}/login?next=/sources")
    page.locator("#token").focus()
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{servers.web}/sources")
    return watched


@contextmanager
def signed_in_at(browser: Browser, servers: Servers, path: str) -> Iterator[Page]:
    """A signed-in page opened at ``path``; once the test is done with it, no console error or uncaught
    exception was seen (from our own origin), and its context is closed."""
    watched = signed_in(browser, servers)
    try:
        watched.page.goto(servers.web + path)
        yield watched.page
        assert watched.errors == []
    finally:
        watched.page.context.close()


def changed(arch: WebArchive, source: str = "demo-tenders") -> Event:
    """A changed programme's event. demo-tenders by default: demo-mofcom's detail pages are GBK served with a
    UTF-8 header on purpose, so a browser (live or in replay) shows them as mojibake."""
    with arch.catalog.session() as s:
        event = s.scalars(select(Event).where(Event.kind == "changed", Event.source_id == source)).first()
    assert event is not None and event.before_record_id
    return event


def axe_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(content=AXE)
    result = page.evaluate("async () => await axe.run(document, {iframes: false, resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_every_page_renders_without_console_errors_or_serious_accessibility_problems(
        browser: Browser, servers: Servers, web_archive: WebArchive) -> None:
    event = changed(web_archive)
    listing = f"{web_archive.site_url}/mofcom/list/index.html"
    pages = ["/sources", "/programmes", "/programmes?q=" + quote("水稻"), f"/programmes/{event.program_id}",
             "/changes", "/changes?kind=changed", "/captures?url=" + quote(listing, safe=""),
             f"/capture/{event.before_record_id.strip('<>')}", "/charts", "/subscriptions", "/docs"]
    watched = signed_in(browser, servers)
    page = watched.page
    for path in pages:
        answer = page.goto(servers.web + path, wait_until="load")
        assert answer is not None and answer.status == 200, path
        assert page.locator("main h1, main .banner").first.is_visible(), path
        assert page.locator("h1").count() <= 1, path
        assert axe_violations(page) == [], path
    assert watched.errors == []
    page.context.close()


def test_a_chinese_keyword_search_finds_the_right_programmes(browser: Browser, servers: Servers,
                                                            web_archive: WebArchive) -> None:
    with web_archive.catalog.session() as s:
        titles = s.scalars(select(Program.title)).all()
    for word in ("水稻", "卫星遥感"):
        expected = sorted(t for t in titles if word in t)
        assert expected, word
        watched = signed_in(browser, servers)
        page = watched.page
        page.goto(f"{servers.web}/programmes")
        page.locator("#q").fill(word)
        page.locator("#q").press("Enter")
        page.wait_for_url("**/programmes?*")
        shown = sorted(page.locator("table.list tbody td:first-child a").all_inner_texts())
        assert shown == expected, word
        assert f"q={quote(word)}" in page.url, "the search is in the URL: bookmarkable"
        page.context.close()


def test_a_changed_programme_shows_its_field_diff_and_before_replays_the_earlier_capture(
        browser: Browser, servers: Servers, web_archive: WebArchive) -> None:
    event = changed(web_archive)
    old, new = event.changes["location"]
    watched = signed_in(browser, servers)
    page = watched.page
    page.goto(f"{servers.web}/programmes/{event.program_id}")
    row = page.locator("li.event.kind-changed table.diff tr", has=page.locator("th", has_text="location"))
    assert row.locator("td").nth(0).inner_text() == old and row.locator("td").nth(1).inner_text() == new
    assert row.locator("td del").count() > 0 and row.locator("td ins").count() > 0
    page.goto(f"{servers.web}/changes?source={event.source_id}&kind=changed&include_backfill=1")   # the same diff
    listed = page.locator("li.event.kind-changed table.diff tr", has=page.locator("th", has_text="location"))
    assert [old, new] in [[r.locator("td").nth(i).inner_text() for i in (0, 1)] for r in listed.all()]
    page.goto(f"{servers.web}/programmes/{event.program_id}")
    page.locator("li.event.kind-changed a[data-kind=before]").click()
    page.wait_for_url(f"**/capture/{event.before_record_id.strip('<>')}")
    banner = page.locator(".banner").inner_text()
    assert "demo-tenders" in banner or "遴选" in banner
    frame = page.frame_locator("iframe.replay")
    body = frame.locator("body")
    body.wait_for(timeout=30_000)
    text = body.inner_text()
    assert old in text and new not in text, "the before link replays the capture from before the change"
    page.locator("a[rel=next]").click()                      # the banner's next capture: the later one
    page.frame_locator("iframe.replay").locator("body").wait_for(timeout=30_000)
    assert new in page.frame_locator("iframe.replay").locator("body").inner_text()
    assert watched.errors == []
    page.context.close()


def test_an_alerts_evidence_link_opens_without_the_token(browser: Browser, servers: Servers,
                                                         web_archive: WebArchive) -> None:
    from scheduler.alerts.messages import load_alerts

    settings = Settings(data_dir=web_archive.data_dir, api={"token": TOKEN, "public_url": servers.web},
                        replay={"public_url": servers.replay})
    event = changed(web_archive)
    with web_archive.catalog.session() as s:
        alert = load_alerts(s, settings, [event.id])[event.id]
    assert alert.before is not None and alert.before.replay
    page = browser.new_context().new_page()                 # no token, no sign-in
    answer = page.request.get(alert.before.record)
    assert answer.status == 200 and answer.body().startswith(b"WARC/1.1")
    assert page.request.get(alert.before.record.split("?", 1)[0]).status == 401
    page.goto(alert.before.replay)                          # replay of the evidence (pywb, via the CDX endpoint)
    assert event.changes["location"][0] in page.locator("body").inner_text()
    page.context.close()


def test_a_state_changing_request_without_authentication_is_refused(browser: Browser, servers: Servers) -> None:
    page = browser.new_context().new_page()
    body = {"name": "from-browser", "target": "json://127.0.0.1:9/"}
    assert page.request.post(f"{servers.web}/api/subscriptions", data=body).status == 401
    assert page.request.post(f"{servers.web}/subscriptions", form=body, max_redirects=0).status == 303
    page.context.close()
    watched = signed_in(browser, servers)                   # signed in, but a forged request has no CSRF token
    forged = watched.page.evaluate("""async (body) => (await fetch('/api/subscriptions', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})).status""", body)
    assert forged == 403
    names = [s["name"] for s in watched.page.request.get(f"{servers.web}/api/subscriptions").json()]
    assert "from-browser" not in names
    watched.page.context.close()


def test_the_pages_work_from_the_keyboard(browser: Browser, servers: Servers) -> None:
    watched = signed_in(browser, servers)
    page = watched.page
    page.goto(f"{servers.web}/programmes")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for _ in range(10):                                     # onwards from main: the search box comes first
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("研修")
    page.keyboard.press("Enter")
    page.wait_for_url("**/programmes?*")
    first = page.locator("table.list tbody td:first-child a").first
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/programmes/*")
    assert "研修" in page.locator("h1").inner_text()
    outline = page.evaluate("""() => { const a = document.querySelector('main a'); a.focus();
        return getComputedStyle(a).outlineStyle; }""")
    assert outline != "none", "focused links are visibly marked"
    assert watched.errors == []
    page.context.close()
