"""Issue 8, failures 2 and 3: no false removals from listing pages without their list, no alert flood when
the first crawl is killed before its diff. Real crawls (``listwatch crawl`` subprocesses) of a hostile site
on loopback, into a real SQLite catalog."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from archive.catalog.db import open_catalog
from archive.catalog.models import CrawlRun, Event
from archive.catalog.models import Source as SourceRow
from archive.programs.diff import VANISH_MIN_KNOWN, Completeness, Known, diff_crawl, vanish_guard
from archive.programs.store import apply_crawl
from crawlers.expect import listing_problem
from crawlers.sources import Pagination
from tests.conftest import ROOT, crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml
from tests.programs_support import pipeline_catalog, run_events

BUSY = "<html><body><h1>系统繁忙，请稍后再试</h1><p>System busy, please try again later.</p></body></html>"
PAGED = "pagination: {kind: template, template: 'list_{n}.html', first: 2}\n"


def _items(site: HostileSite, start: int, count: int) -> list[tuple[str, str]]:
    return [(f"{site.url}/p/{n}.html", f"Programme {n}") for n in range(start, start + count)]


def test_busy_maintenance_and_too_deep_listing_pages_are_failed_pages_not_removals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with HostileSite() as site:
        path = tmp_path / "hostile.yaml"
        path.write_text(source_yaml(site.url, extra=PAGED), encoding="utf-8")
        site.page("/list.html", listing_html(_items(site, 1, 10)))
        site.page("/list_2.html", listing_html(_items(site, 11, 10)))
        first = crawl_sources([path], data_dir=data)["hostile"]
        assert first.report["complete"] and len(first.items) == 20, first.report

        # Page 2 answers 200 「系统繁忙」: before, it passed as the empty page ending the listing (and 10 of 20
        # items is not "far fewer" than usual), so 10 programmes went missing, then removed.
        site.page("/list_2.html", BUSY)
        busy = crawl_sources([path], data_dir=data)["hostile"]
        assert not busy.report["complete"]
        assert [p["kind"] for p in busy.report["problems"]] == ["no-items"]
        assert busy.report["problems"][0]["url"].endswith("/list_2.html")
        assert run_events(data, busy.report["run_id"]) == {"source_health": 1}

        # Page 1 holds its list nested deeper than the HTML parser goes: it parses to nothing.
        site.page("/list_2.html", listing_html(_items(site, 11, 10)))
        site.page("/list.html", "<div>" * 5000 + listing_html(_items(site, 1, 10)) + "</div>" * 5000)
        deep = crawl_sources([path], data_dir=data)["hostile"]
        assert not deep.report["complete"]
        assert [p["kind"] for p in deep.report["problems"]] == ["no-items"]
        assert run_events(data, deep.report["run_id"]) == {"source_health": 1}


def test_a_documented_empty_last_page_ends_the_listing_and_the_crawl_is_complete(tmp_path: Path) -> None:
    with HostileSite() as site:
        path = tmp_path / "hostile.yaml"
        rules = "pagination: {kind: template, template: 'list_{n}.html', first: 2, end: 'ul.list'}\n"
        path.write_text(source_yaml(site.url, extra=rules), encoding="utf-8")
        site.page("/list.html", listing_html(_items(site, 1, 10)))
        site.page("/list_2.html", listing_html([]))
        crawl = crawl_sources([path], data_dir=tmp_path / "data")["hostile"]
        assert crawl.report["complete"], crawl.report
        site.page("/list_2.html", BUSY)  # no empty list container: not the documented end
        crawl = crawl_sources([path], data_dir=tmp_path / "data")["hostile"]
        assert not crawl.report["complete"]


def test_listing_problem_is_a_pure_decision() -> None:
    sequential = Pagination(kind="template", template="l_{n}.html", end="ul.list")
    assert listing_problem(sequential, number=1, matched=3, keyless=1) is None
    assert listing_problem(sequential, number=1, matched=0)
    assert listing_problem(sequential, number=2, matched=0, end_matched=True) is None
    assert listing_problem(sequential, number=2, matched=0, end_matched=False)
    assert "none has a key" in str(listing_problem(sequential, number=1, matched=4, keyless=4))
    counted = Pagination(kind="param", total={"css": ".total"})
    assert listing_problem(counted, number=3, matched=0, end_matched=True), "within a known count"


def _known(n: int) -> dict[str, Known]:
    return {f"k{i}": Known(f"k{i}", fields={"title": f"k{i}"}, title=f"k{i}") for i in range(n)}


def _item(key: str) -> dict[str, object]:
    return {"key": key, "fields": {"title": key}, "listing_page": 1, "listing_record": "<urn:uuid:l>"}


def test_the_guard_refuses_removals_when_most_known_programmes_vanish_at_once() -> None:
    known = _known(20)
    # The listing is its usual size, but 15 of 20 keys are new (say, another list behind the same URL).
    items = [_item(f"k{i}") for i in range(5)] + [_item(f"x{i}") for i in range(15)]
    changes = diff_crawl(known, items, Completeness(True))
    assert not [c for c in changes if c.kind in ("missing", "removed")]
    health = [c for c in changes if c.kind == "source_health"]
    assert len(health) == 1 and "15 of the 20 known programmes vanished" in health[0].summary
    # A normal withdrawal (a few programmes) still goes through, and small sources are not held.
    few = diff_crawl(known, [_item(f"k{i}") for i in range(17)], Completeness(True))
    assert Counter(c.kind for c in few) == {"missing": 3}
    assert vanish_guard(Completeness(True), known=VANISH_MIN_KNOWN - 1, vanished=VANISH_MIN_KNOWN - 1).complete


def test_the_guard_applies_in_the_catalog_too(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    report = {"pages_ok": {"listing": 1}, "pages_failed": {"listing": 0}, "pagination_finished": True,
              "stop_reason": "finished", "problems": [], "challenges": []}
    now = datetime(2026, 3, 1, tzinfo=UTC)
    apply_crawl(catalog, source_id="s", run_id="r1", kind="full", report=report,
                items=[_item(f"k{i}") for i in range(20)], now=now)
    events = apply_crawl(catalog, source_id="s", run_id="r2", kind="full", report=report,
                         items=[_item(f"k{i}") for i in range(4)] + [_item(f"x{i}") for i in range(16)],
                         now=now.replace(day=2))
    assert Counter(e.kind for e in events) == {"new": 16, "source_health": 1}
    with catalog.session() as session:
        run = session.get(CrawlRun, "r2")
        assert run is not None and run.status == "incomplete" and "vanished" in run.reason
    catalog.dispose()


def test_a_crawl_stopped_early_does_not_take_the_baseline(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    report = {"pages_ok": {"listing": 1}, "pages_failed": {"listing": 0}, "pagination_finished": False,
              "stop_reason": "shutdown", "problems": [], "challenges": []}
    now = datetime(2026, 3, 1, tzinfo=UTC)
    first = apply_crawl(catalog, source_id="s", run_id="r1", kind="full", report=report, baseline=True,
                        items=[_item(f"k{i}") for i in range(5)], now=now)
    second = apply_crawl(catalog, source_id="s", run_id="r2", kind="full", baseline=True,
                         report={**report, "stop_reason": "finished", "pagination_finished": True},
                         items=[_item(f"k{i}") for i in range(20)], now=now.replace(day=2))
    assert all(e.backfill for e in first + second), "a SIGTERM'd crawl's successor is still the baseline"
    with catalog.session() as session:
        source = session.get(SourceRow, "s")
        assert source is not None and source.baseline_run == "r2"
    catalog.dispose()


KILL_IN_THE_WINDOW = """
import os, signal
import scheduler.pipeline as pipeline
def killed(*args, **kwargs):  # the run row says 'complete'; the programme diff never happens
    os.kill(os.getpid(), signal.SIGKILL)
pipeline._programmes = killed
from scheduler.cli import app
app(prog_name="listwatch")
"""


def test_a_kill_between_complete_and_the_first_diff_leaves_the_next_crawl_the_baseline(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with HostileSite() as site:
        path = tmp_path / "hostile.yaml"
        path.write_text(source_yaml(site.url), encoding="utf-8")
        site.page("/list.html", listing_html(_items(site, 1, 30)))
        env = {**os.environ, "LISTWATCH_DATA_DIR": str(data), "LISTWATCH_SETTINGS": str(data / "none.yaml")}
        killed = subprocess.run([sys.executable, "-c", KILL_IN_THE_WINDOW, "crawl", str(path)], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        assert killed.returncode == -9, killed.stderr[-2000:]
        catalog = pipeline_catalog(data)
        with catalog.session() as session:
            assert [r.status for r in session.scalars(select(CrawlRun))] == ["complete"]
        catalog.dispose()

        crawl = crawl_sources([path], data_dir=data)["hostile"]
        catalog = pipeline_catalog(data)
        with catalog.session() as session:
            events = list(session.scalars(select(Event).where(Event.run_id == crawl.report["run_id"])))
            assert len(events) == 30 and all(e.kind == "new" for e in events)
            assert all(e.backfill for e in events), "the next crawl is the baseline: recorded, not alerted"
            source = session.get(SourceRow, "hostile")
            assert source is not None and source.baseline_run == crawl.report["run_id"]
        catalog.dispose()

        site.page("/list.html", listing_html(_items(site, 1, 31)))
        third = crawl_sources([path], data_dir=data)["hostile"]
        catalog = pipeline_catalog(data)
        with catalog.session() as session:
            after = list(session.scalars(select(Event).where(Event.run_id == third.report["run_id"])))
            assert [(e.kind, e.backfill) for e in after] == [("new", False)], "after the baseline, news alerts"
        catalog.dispose()
