"""Programme history over the demo site's days 0 → 4, with real crawls on loopback."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from archive.catalog.db import Catalog
from archive.catalog.models import CrawlRun, Event, Program, ProgramVersion
from crawlers.demo import programmes as data
from crawlers.demo.site import DemoSite
from tests.programs_support import SHAPES, crawl_day, expected_events, pid, pipeline_catalog, summarise

SOURCES = ("demo-mofcom", "demo-tenders")


def _keys(catalog: Catalog) -> dict[int, str]:
    with catalog.session() as s:
        return dict(s.execute(select(Program.id, Program.key)).all())  # type: ignore[arg-type]


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return pipeline_catalog(tmp_path / "data")


@pytest.mark.parametrize("missing_runs_to_remove", [3, 2])
def test_days_0_to_4_produce_exactly_the_planned_events(tmp_path: Path, catalog: Catalog,
                                                        missing_runs_to_remove: int) -> None:
    with DemoSite(bench_pages=50) as site:
        for day in range(data.MAX_DAY + 1):
            results = crawl_day(site, day, tmp_path / "data", source_ids=SOURCES,
                                missing_runs_to_remove=missing_runs_to_remove)
            keys = _keys(catalog)
            for source_id, (crawl, events) in results.items():
                shape = SHAPES[source_id]
                assert crawl.report["complete"], crawl.report
                got = summarise(events, keys)
                assert got == expected_events(shape, day, missing_runs_to_remove), (source_id, day)
                for event in events:
                    assert event.backfill == (day == 0), "the first crawl is the baseline: recorded, not alerted"
                    assert event.after_record_id, event.kind
                    if event.kind != "new":
                        assert event.before_record_id, event.kind
                    if event.kind == "changed":
                        wanted = {"deadline", "location"} & set(event.changes)
                        assert wanted == set(event.changes), event.changes
                        old, new = event.changes["location"]
                        assert new == data.EDITED_LOCATION and old != new
    with catalog.session() as s:
        plan = data.plan("mofcom")
        progs = {pid(p.key): p for p in s.scalars(select(Program).where(Program.source_id == "demo-mofcom"))}
        assert progs[plan.removed].status == "removed"
        assert progs[plan.soft404].status == "removed"
        if missing_runs_to_remove == 3:  # only a recheck can have removed them by day 3
            assert progs[plan.removed].removal_reason == "http-404"
            assert progs[plan.soft404].removal_reason == "soft-404"
        assert progs[plan.delisted].status == "active"
        assert sorted(progs) == sorted({p["id"] for d in range(5) for p in data.expected_programmes("mofcom", d)})
        edited = progs[plan.edited]
        versions = list(s.scalars(select(ProgramVersion).where(ProgramVersion.program_id == edited.id)
                                  .order_by(ProgramVersion.id)))
        assert len(versions) == 2 and versions[1].fields["location"] == data.EDITED_LOCATION
        assert all(v.listing_record_id and v.detail_record_id for v in versions)
        runs = list(s.scalars(select(CrawlRun)))
        assert len(runs) == 10 and {r.status for r in runs} == {"complete"}


def test_reapplying_a_run_adds_nothing(tmp_path: Path, catalog: Catalog) -> None:
    from archive.programs import apply_crawl
    from tests.programs_support import BASE_TIME

    with DemoSite(bench_pages=50) as site:
        crawl_day(site, 0, tmp_path / "data", source_ids=("demo-mofcom",))
        crawl, first = crawl_day(site, 2, tmp_path / "data", source_ids=("demo-mofcom",))["demo-mofcom"]
    with catalog.session() as s:
        before = Counter(e.kind for e in s.scalars(select(Event)))
        missing = {p.key: p.missing_runs for p in s.scalars(select(Program))}
    again = apply_crawl(catalog, source_id="demo-mofcom", run_id=crawl.report["run_id"], kind="full",
                        report=crawl.report, items=crawl.items, now=BASE_TIME)
    with catalog.session() as s:
        assert Counter(e.kind for e in s.scalars(select(Event))) == before
        assert {p.key: p.missing_runs for p in s.scalars(select(Program))} == missing
    assert [e.id for e in again] == [e.id for e in first]
    assert Counter(e.kind for e in first) == Counter({"new": 3, "changed": 1, "missing": 3})


@pytest.mark.parametrize("fault", ["503", "challenge"])
def test_a_faulty_day_declares_nothing_removed_and_the_next_day_reconciles(
        tmp_path: Path, catalog: Catalog, fault: str) -> None:
    plan = data.plan("mofcom")
    tplan = data.plan("tenders")
    with DemoSite(bench_pages=50) as site:
        for day in (0, 1):
            crawl_day(site, day, tmp_path / "data", source_ids=SOURCES)
        site.set_fault("/mofcom/list/index_1.html", fault)
        site.set_fault("/tenders/list.html", fault)
        results = crawl_day(site, 2, tmp_path / "data", source_ids=SOURCES)
        keys = _keys(catalog)
        mofcom_crawl, mofcom_events = results["demo-mofcom"]
        assert not mofcom_crawl.report["complete"]
        # The first listing page still answered: its new programme is recorded, nothing is declared gone.
        assert summarise(mofcom_events, keys) == Counter({("new", plan.new_day2): 1, ("source_health", ""): 1})
        health = next(e for e in mofcom_events if e.kind == "source_health")
        assert ("blocked" in health.summary) if fault == "challenge" else ("failed" in health.summary)
        _, tenders_events = results["demo-tenders"]
        assert summarise(tenders_events, keys) == Counter({("source_health", ""): 1})
        site.set_fault("/mofcom/list/index_1.html", None)
        site.set_fault("/tenders/list.html", None)
        results = crawl_day(site, 3, tmp_path / "data", source_ids=SOURCES)
        keys = _keys(catalog)
        # Day 3 against the last complete view (day 1): the delisted programme is back already, so no event.
        for source_id, p in (("demo-mofcom", plan), ("demo-tenders", tplan)):
            want = Counter({("new", p.backdated): 1, ("missing", p.removed): 1, ("missing", p.soft404): 1})
            if source_id == "demo-tenders":
                want[("new", p.new_day2)] += 1
            assert summarise(results[source_id][1], keys) == want, source_id
        results = crawl_day(site, 4, tmp_path / "data", source_ids=SOURCES)
        keys = _keys(catalog)
        for source_id, p in (("demo-mofcom", plan), ("demo-tenders", tplan)):
            assert summarise(results[source_id][1], keys) == Counter({("removed", p.removed): 1,
                                                                      ("removed", p.soft404): 1}), source_id
    with catalog.session() as s:
        statuses = Counter(r.status for r in s.scalars(select(CrawlRun)))
        assert statuses["complete"] == 8 and statuses["incomplete"] + statuses["failed"] == 2, statuses
