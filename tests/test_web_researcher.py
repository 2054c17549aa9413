"""The web interface as a researcher meets it, in real Chromium, over the demo crawls of ``tests.web_support``:
no link on a programme's page leads nowhere, the pages fit a phone's width, and the changes page says at a
glance what its list holds.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from archive.catalog.models import Program
from tests.test_web_browser import changed, signed_in, signed_in_at

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from tests.web_support import Servers, WebArchive

pytest_plugins = ("tests.web_support",)
pytestmark = [pytest.mark.slow, pytest.mark.browser]
PHONE = {"width": 390, "height": 844}


def test_every_link_on_a_programme_page_opens_and_the_live_page_is_the_watched_site(
        browser: Browser, servers: Servers, web_archive: WebArchive) -> None:
    event = changed(web_archive)
    with web_archive.catalog.session() as s:
        programme = s.get(Program, event.program_id)
        assert programme is not None and programme.detail_url
        key, live = programme.key, programme.detail_url
    assert key.startswith("/"), "keys are site-relative: a link to the key would land on listwatch itself"
    with signed_in_at(browser, servers, f"/programmes/{event.program_id}") as page:
        hrefs = page.eval_on_selector_all("main a[href]", "els => els.map(e => e.getAttribute('href'))")
        assert live in hrefs and key not in hrefs
        ours = {u for h in hrefs if urlsplit(u := urljoin(page.url, h)).netloc == urlsplit(servers.web).netloc}
        assert len(ours) > 5
        broken = {u: status for u in sorted(ours) if (status := page.request.get(u).status) >= 400}
        assert broken == {}
        page.goto(page.url)
        page.locator("a", has_text="all captures of its page").click()
        assert page.locator("ol.captures li").count() >= 2, "its detail page's captures, from several crawls"
        assert live in page.locator("main").inner_text()


def test_the_main_pages_fit_a_phone_and_a_programme_title_is_not_squeezed(
        browser: Browser, servers: Servers, web_archive: WebArchive) -> None:
    event = changed(web_archive)
    watched = signed_in(browser, servers)
    page = watched.page
    page.set_viewport_size(PHONE)
    for path in ("/sources", "/programmes", f"/programmes/{event.program_id}", "/changes", "/charts", "/docs",
                 "/captures", "/subscriptions"):
        page.goto(servers.web + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways on a phone: {width} px wide"
    page.goto(f"{servers.web}/programmes")
    title = page.locator("table.list tbody td:first-child a").first.bounding_box()
    assert title is not None and title["width"] > PHONE["width"] / 2, "a title gets the row's width"
    assert watched.errors == []
    page.context.close()


def test_the_changes_page_counts_what_it_lists_and_each_count_filters(
        browser: Browser, servers: Servers, web_archive: WebArchive) -> None:
    with signed_in_at(browser, servers, "/changes") as page:
        listed = Counter(page.locator("ol.feed > li > p:first-child .badge").all_inner_texts())
        shown = {a.split(" ", 1)[1]: int(a.split(" ", 1)[0])
                 for a in page.locator("p.summary a.badge").all_inner_texts()}
        assert shown == dict(listed) and len(shown) >= 2
        assert page.locator("ol.feed a", has_text="archived page before").count() > 0
        page.locator("p.summary a.badge", has_text="missing").click()
        page.wait_for_url("**/changes?kind=missing")
        kinds = set(page.locator("ol.feed > li > p:first-child .badge").all_inner_texts())
        assert kinds == {"missing"}
        with web_archive.catalog.session() as s:
            assert s.scalars(select(Program.id).where(Program.status == "missing")).first() is not None


def test_an_alert_links_the_programme_page_which_opens_without_the_token_with_its_diff_and_evidence(
        browser: Browser, servers: Servers, web_archive: WebArchive) -> None:
    from scheduler.alerts.messages import load_alerts, render_text
    from scheduler.settings import Settings

    settings = Settings(data_dir=web_archive.data_dir, api={"token": web_archive.token, "public_url": servers.web},
                        replay={"public_url": servers.replay})
    event = changed(web_archive)
    old, new = event.changes["location"]
    with web_archive.catalog.session() as s:
        alert = load_alerts(s, settings, [event.id])[event.id]
        live = s.get(Program, event.program_id).detail_url  # type: ignore[union-attr]
    text = render_text(alert)
    assert alert.page is not None and f"History and field diffs: {alert.page}" in text
    assert f"Programme: {live}" in text, "the watched site's page, not the site-relative key"
    page = browser.new_context().new_page()                 # a recipient: no token, no sign-in
    assert "/login" in page.request.get(alert.page.split("?", 1)[0]).url, "unsigned, the page asks to sign in"
    assert page.goto(alert.page).status == 200               # type: ignore[union-attr]
    assert "/login" not in page.url
    row = page.locator("li.event.kind-changed table.diff tr", has=page.locator("th", has_text="location"))
    assert row.locator("td").nth(0).inner_text() == old and row.locator("td").nth(1).inner_text() == new
    page.locator("li.event.kind-changed a[data-kind=before]").click()
    page.wait_for_url(f"**/capture/{event.before_record_id.strip('<>')}?sig=*")
    assert "start listwatch replay" in page.locator("main").inner_text(), "an empty frame is explained"
    assert re.search(r"next capture \(\d{4}-\d\d-\d\d \d\d:\d\d\)", page.locator(".banner").inner_text())
    body = page.frame_locator("iframe.replay").locator("body")
    body.wait_for(timeout=30_000)
    assert old in body.inner_text()
    page.context.close()


def test_charts_compare_sources_on_one_scale_and_say_which_kinds_of_change(
        browser: Browser, servers: Servers, web_archive: WebArchive) -> None:
    from archive.catalog.models import Event

    with signed_in_at(browser, servers, "/charts") as page:
        postings = page.locator("figure", has=page.locator("svg[aria-label^='Programmes posted per week']"))
        assert postings.count() == 2
        ticks = [f.locator("svg text.tick").all_inner_texts() for f in postings.all()]
        assert ticks[0] == ticks[1], "both sources' charts span the same weeks on the same scale"
        slots = {f.locator("details tbody tr").count() for f in postings.all()}
        assert len(slots) == 1
        with web_archive.catalog.session() as s:
            kinds = Counter(s.scalars(select(Event.kind).where(Event.backfill.is_(False),
                                                              Event.program_id.is_not(None))).all())
        legend = page.locator("ul.legend li").all_inner_texts()
        assert sorted(legend) == sorted(f"{n} {k}" for k, n in kinds.items()) and len(legend) >= 2
        bar = page.locator("svg[aria-label^='Crawl duration per run'] rect").first.bounding_box()
        plot = page.locator("svg[aria-label^='Crawl duration per run']").first.bounding_box()
        assert bar is not None and plot is not None and bar["width"] < plot["width"] / 5, "a bar, not a block"


def test_attachments_are_links_to_the_site_and_to_their_archived_copies(
        browser: Browser, servers: Servers, web_archive: WebArchive) -> None:
    with web_archive.catalog.session() as s:
        found = [(p.id, p.fields["attachments"]) for p in s.scalars(select(Program).where(
            Program.source_id == "demo-mofcom")) if p.fields.get("attachments")]
    assert found
    programme_id, attachments = found[0]
    urls = [a["url"] if isinstance(a, dict) else a for a in attachments]
    with signed_in_at(browser, servers, f"/programmes/{programme_id}") as page:
        cell = page.locator("table.fields tr", has=page.locator("th", has_text="attachments")).locator("td")
        assert "[" not in cell.inner_text(), "a list, not its JSON"
        assert [a.get_attribute("href") for a in cell.locator("a[rel~=nofollow]").all()] == urls
        cell.locator("a", has_text="archived copies").first.click()
        page.wait_for_url("**/captures?url=*")
        assert page.locator("ol.captures li").count() >= 1 and urls[0] in page.locator("main").inner_text()


def test_a_revisit_capture_says_the_page_was_unchanged(browser: Browser, servers: Servers,
                                                       web_archive: WebArchive) -> None:
    from archive.catalog.models import Capture

    with web_archive.catalog.session() as s:
        revisit = s.scalars(select(Capture.record_id).where(Capture.record_type == "revisit")).first()
    assert revisit is not None, "days 0-2 re-crawl unchanged pages"
    watched = signed_in(browser, servers)
    page = watched.page
    page.goto(f"{servers.web}/capture/{revisit.strip('<>')}")
    banner = page.locator(".banner").inner_text()
    assert "the page was unchanged" in banner and "HTTP –" not in banner
    page.context.close()
