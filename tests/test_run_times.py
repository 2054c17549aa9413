"""A run's recorded times: its duration is never negative, and every backend gives back the moments written.

A full CI run once drew a negative bar on /charts: a crawl that ended within the second its run row was opened
had its ``finished_at`` replaced by the crawl report's time, which the spider writes to the second, so the run
"finished" up to a second before it started.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import CrawlRun, Source
from crawlers.report import CrawlReport
from crawlers.sources import load_source
from scheduler.pipeline import ingest, start_run
from scheduler.settings import Settings
from tests import postgres
from tests.conftest import ROOT

postgres_url = postgres.postgres_url      # the session fixture (a throwaway cluster)

DEMO = ROOT / "crawlers" / "demo" / "sources" / "tenders.yaml"


def test_a_crawl_ending_in_the_second_its_run_began_has_no_negative_duration(
        catalog: Catalog, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTWATCH_DEMO_URL", "http://127.0.0.1:9")   # never fetched: no crawl runs here
    source = load_source(DEMO)
    run_id = "20260301T000000Z-abcdef"
    start_run(catalog, source, run_id, "full")
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        run.started_at = run.started_at.replace(microsecond=900_000)  # late in its second, as most starts are
        began = run.started_at
    # what the spider writes for a crawl that ended within that same second: its clock to the second
    stamp = began.replace(microsecond=0).isoformat(timespec="seconds")
    report = CrawlReport(source.id, run_id, started=stamp, finished=stamp, stop_reason="finished")
    report.pages_ok["listing"] = 1
    ingest(settings, catalog, source, report)
    with catalog.read_session() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None and run.finished_at is not None
        assert run.status == "complete"
        assert run.finished_at >= run.started_at, (run.started_at, run.finished_at)
        assert run.pages == 1


def test_moments_come_back_as_the_same_aware_utc_instants(catalog_url: str) -> None:
    catalog = open_catalog(catalog_url)
    try:
        _round_trip(catalog)
    finally:
        catalog.dispose()


def _round_trip(catalog: Catalog) -> None:
    beijing = timezone(timedelta(hours=8))
    written = datetime(2026, 3, 2, 9, 0, 0, 250_000, tzinfo=beijing)
    with catalog.session() as session:
        session.add(Source(id="s", name="s", created_at=written))
        session.flush()
        session.add(CrawlRun(id="r", source_id="s", started_at=written, finished_at=datetime(2026, 3, 2, 1, 0, 1)))
    with catalog.read_session() as session:
        source, run = session.get(Source, "s"), session.get(CrawlRun, "r")
        assert source is not None and run is not None and run.finished_at is not None
        assert source.created_at == written and source.created_at.tzinfo == UTC
        assert run.finished_at - run.started_at == timedelta(seconds=0.75)   # a naive moment is UTC
        # a query's bound moment is converted the same way as a stored one
        later = session.scalar(CrawlRun.__table__.select().with_only_columns(CrawlRun.id)
                               .where(CrawlRun.started_at < datetime(2026, 3, 2, 1, 0, 0, 500_000, tzinfo=UTC)))
        assert later == "r"
