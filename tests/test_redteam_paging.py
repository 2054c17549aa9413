"""Pagination that lies about where the listing ends: a page missing for a while in the middle of template
paging (``index_{n}.html``, which ends at the first missing page) and a next link looping back. Real crawls
(``listwatch crawl``) of a hostile site on loopback, into a real SQLite catalog."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import select

from archive.catalog.models import Event
from crawlers.listing_end import HOLE, LOOP
from scheduler.health import CONDITIONS
from tests.conftest import crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml
from tests.programs_support import pipeline_catalog

TEMPLATE = "pagination: {kind: template, template: 'list_{n}.html', first: 2}\n"
NEXT = "pagination: {kind: next_link, next: {css: 'a.next::attr(href)'}}\n"
PER_PAGE = 4   # few enough vanishing at once that only the listing's end decides (not the vanish guard)


def _items(page: int) -> list[tuple[str, str]]:
    return [(f"/p/{n}.html", f"Programme {n}") for n in range((page - 1) * PER_PAGE + 1, page * PER_PAGE + 1)]


def _serve_template(site: HostileSite, pages: range) -> None:
    site.pages.clear()
    for n in pages:
        site.page("/list.html" if n == 1 else f"/list_{n}.html", listing_html(_items(n)))


def _serve_next(site: HostileSite, pages: int, back_to: int | None = None) -> None:
    site.pages.clear()
    for n in range(1, pages + 1):
        target = n + 1 if n < pages else back_to
        link = f'<a class="next" href="{"/list.html" if target == 1 else f"/n{target}.html"}">next</a>' \
            if target else ""
        site.page("/list.html" if n == 1 else f"/n{n}.html", listing_html(_items(n), link))


def _events(data_dir: Path, run_id: str) -> Counter[str]:
    catalog = pipeline_catalog(data_dir)
    try:
        with catalog.session() as session:
            events = session.scalars(select(Event).where(Event.run_id == run_id, Event.kind.not_in(CONDITIONS)))
            return Counter(e.kind for e in events if not e.summary.startswith("recovered"))  # not incidents
    finally:
        catalog.dispose()


def test_a_missing_page_in_the_middle_is_a_hole_not_the_end_of_the_listing(tmp_path: Path) -> None:
    data, path = tmp_path / "data", tmp_path / "hostile.yaml"
    with HostileSite() as site:
        path.write_text(source_yaml(site.url, extra=TEMPLATE), encoding="utf-8")
        _serve_template(site, range(1, 6))
        first = crawl_sources([path], data_dir=data)["hostile"]
        assert first.report["complete"] and len(first.items) == 20, first.report   # ends at the missing page 6

        del site.pages["/list_4.html"]   # page 4 of 5 answers 404 for a while
        hole = crawl_sources([path], data_dir=data)["hostile"]
        # before: the listing "ended" at page 4, the crawl was complete and 8 programmes went missing
        assert not hole.report["complete"]
        assert [(p["kind"], p["url"]) for p in hole.report["problems"]] == [(HOLE, f"{site.url}/list_4.html")]
        assert len(hole.items) == 16   # page 5 was still read
        assert _events(data, hole.report["run_id"]) == {"source_health": 1}

        _serve_template(site, range(1, 4))   # the listing really shrinks to 3 pages: that is news
        shrunk = crawl_sources([path], data_dir=data)["hostile"]
        assert shrunk.report["complete"], shrunk.report
        assert _events(data, shrunk.report["run_id"]) == {"missing": 8}


def test_a_next_link_looping_back_ends_the_listing(tmp_path: Path) -> None:
    data, path = tmp_path / "data", tmp_path / "hostile.yaml"
    with HostileSite() as site:
        path.write_text(source_yaml(site.url, extra=NEXT), encoding="utf-8")
        _serve_next(site, 3, back_to=1)   # the last page's "next" is the first page
        looped = crawl_sources([path], data_dir=data)["hostile"]
        # before: 200 pages (pagination.max_pages) of the same 3, 800 items, incomplete on every crawl
        assert looped.report["complete"], looped.report
        assert len(looped.items) == 12 and sum(site.hits.values()) == 3
        assert [w["kind"] for w in looped.report["warnings"]] == [LOOP]

        _serve_next(site, 3, back_to=2)   # back to a page in the middle: later pages may exist unseen
        middle = crawl_sources([path], data_dir=data)["hostile"]
        assert not middle.report["complete"]
        assert [p["kind"] for p in middle.report["problems"]] == [LOOP]
