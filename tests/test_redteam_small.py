"""Small sources: the vanish guard needs 10 known programmes, so for a 3-programme source the listing page
alone decides. A page that no longer fits the source's selectors (maintenance, an unrelated page) is not
evidence of removal; a listing that says it is empty ("No programmes are currently open"), documented by
``pagination.end``, is: before, it was a failed page on every crawl and the programmes stayed active forever.
Real crawls (``listwatch crawl``) of a hostile site on loopback, into a real SQLite catalog."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import select

from archive.catalog.models import Event
from archive.programs.diff import Completeness, Known, diff_crawl
from crawlers.report import EMPTY_LISTING
from scheduler.health import CONDITIONS
from tests.conftest import crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml
from tests.programs_support import pipeline_catalog

EMPTY = "<html><body><h1>Open programmes</h1><p>No programmes are currently open.</p></body></html>"
MAINTENANCE = "<html><body><h1>Site maintenance</h1><p>Back soon.</p></body></html>"
END = "pagination: {end: {regex: 'No programmes are currently open'}}\n"


def _events(data_dir: Path, run_id: str) -> list[Event]:
    catalog = pipeline_catalog(data_dir)
    try:
        with catalog.session() as session:
            events = session.scalars(select(Event).where(Event.run_id == run_id, Event.kind.not_in(CONDITIONS)))
            return [e for e in events if not e.summary.startswith("recovered")]  # not incidents
    finally:
        catalog.dispose()


def test_a_small_source_whose_listing_says_it_is_empty_loses_its_programmes_a_broken_page_does_not(
        tmp_path: Path) -> None:
    data, path = tmp_path / "data", tmp_path / "hostile.yaml"
    with HostileSite() as site:
        path.write_text(source_yaml(site.url, extra=END), encoding="utf-8")
        site.page("/list.html", listing_html([(f"/p/{n}.html", f"Programme {n}") for n in (1, 2, 3)]))
        assert crawl_sources([path], data_dir=data)["hostile"].report["complete"]

        site.page("/list.html", MAINTENANCE)   # fits neither the items nor the documented empty listing
        broken = crawl_sources([path], data_dir=data)["hostile"]
        assert not broken.report["complete"]
        assert Counter(e.kind for e in _events(data, broken.report["run_id"])) == {"source_health": 1}

        site.page("/list.html", EMPTY)
        empty = crawl_sources([path], data_dir=data)["hostile"]
        assert empty.report["complete"], empty.report
        assert [w["kind"] for w in empty.report["warnings"]] == [EMPTY_LISTING]
        events = _events(data, empty.report["run_id"])
        assert Counter(e.kind for e in events) == {"missing": 3}
        # the evidence is the empty page itself (before: no listing record, so no evidence link)
        assert {e.after_record_id for e in events} == {empty.report["warnings"][0]["record"]} != {None}

        again = crawl_sources([path], data_dir=data)["hostile"]
        assert Counter(e.kind for e in _events(data, again.report["run_id"])) == {"removed": 3}


def test_a_documented_empty_listing_is_news_even_for_a_large_source() -> None:
    known = {f"/p/{n}": Known(f"/p/{n}") for n in range(12)}
    report = {"warnings": [{"kind": EMPTY_LISTING, "url": "http://x/list", "record": "urn:uuid:empty"}]}
    changes = diff_crawl(known, [], Completeness(True), empty=report["warnings"][0])
    assert Counter(c.kind for c in changes) == {"missing": 12}
    assert {c.after_record for c in changes} == {"urn:uuid:empty"}
    # without the documented empty listing, 12 of 12 vanishing at once is refused (the vanish guard)
    assert Counter(c.kind for c in diff_crawl(known, [], Completeness(True))) == {"source_health": 1}
