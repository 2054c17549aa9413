"""A removal cites the response that proves it: the detail page's 404 (or soft-404) capture, not the listing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from archive.catalog.models import Capture, Program
from crawlers.demo import programmes as data
from crawlers.demo.site import DemoSite
from tests.programs_support import crawl_day, pid, pipeline_catalog


def test_removed_programmes_cite_their_gone_detail_page_as_evidence(tmp_path: Path) -> None:
    plan = data.plan("mofcom")
    with DemoSite(bench_pages=50) as site:
        for day in (0, 2, 3):  # day 2: gone from the listing (missing); day 3: the recheck finds them gone
            results = crawl_day(site, day, tmp_path / "data", source_ids=("demo-mofcom",), missing_runs_to_remove=3)
    crawl, events = results["demo-mofcom"]
    catalog = pipeline_catalog(tmp_path / "data")
    try:
        with catalog.session() as session:
            programmes = {p.id: p for p in session.scalars(select(Program))}
            keys = {i: p.key for i, p in programmes.items()}
            removed = {pid(keys[e.program_id]): e for e in events if e.kind == "removed"}
            assert set(removed) == {plan.removed, plan.soft404}, [(e.kind, e.summary) for e in events]
            listing_records = {i["listing_record"] for i in crawl.items if not i.get("recheck")}
            for programme, status in ((plan.removed, 404), (plan.soft404, 200)):
                event = removed[programme]
                assert event.after_record_id not in listing_records, "the removal cites the listing capture"
                capture = session.scalars(select(Capture).where(Capture.record_id == event.after_record_id)).one()
                assert (capture.record_type, capture.status) == ("response", status), (programme, capture.url)
                assert capture.url == programmes[event.program_id].detail_url, "not the programme's detail page"
                assert capture.run_id == crawl.report["run_id"], "the evidence is not this crawl's capture"
    finally:
        catalog.dispose()
