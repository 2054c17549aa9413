"""Re-keying an existing catalog to host-independent keys merges duplicates and keeps their history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from archive.catalog.db import open_catalog
from archive.catalog.models import Event, Program, ProgramVersion
from archive.programs.rekey import rekey
from archive.programs.store import apply_crawl
from crawlers.report import CrawlReport
from crawlers.sources import Source

SOURCE = Source.model_validate({"id": "s", "name": "s", "start_urls": ["https://new.example.gov/list/"],
                                "items": {"selector": "li", "fields": {"url": "a::attr(href)", "title": "a"}}})
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def crawl(catalog: object, run: int, base: str, titles: dict[int, str], relative: bool = False) -> list[Event]:
    report = CrawlReport("s", f"r{run}")
    report.pages_ok["listing"] = 1
    key = "" if relative else base
    items = [{"source": "s", "key": f"{key}/d/{n}.html", "fields": {"url": f"{base}/d/{n}.html", "title": t},
              "position": i} for i, (n, t) in enumerate(titles.items())]
    return apply_crawl(catalog, source_id="s", run_id=f"r{run}", kind="full",  # type: ignore[arg-type]
                       report=report, items=items, now=T0 + timedelta(days=run), missing_runs_to_remove=1)


def test_rekey_merges_the_programmes_a_host_and_port_change_duplicated(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    # The old, absolute keys: the site moved from http://old.example.gov:8080 to https://new.example.gov.
    crawl(catalog, 1, "http://old.example.gov:8080", {1: "One", 2: "Two"})
    crawl(catalog, 2, "http://old.example.gov:8080", {1: "One", 2: "Two (edited)"})
    crawl(catalog, 3, "https://new.example.gov", {1: "One", 2: "Two (edited)", 3: "Three"})
    crawl(catalog, 4, "https://new.example.gov", {1: "One", 2: "Two (edited)", 3: "Three"})
    with catalog.session() as s:
        assert s.scalar(select(func.count(Program.id))) == 5
        versions, events = s.scalar(select(func.count(ProgramVersion.id))), s.scalar(select(func.count(Event.id)))

    dry = rekey(catalog, SOURCE, ["old.example.gov"], dry_run=True)
    assert (dry.programmes, dry.merged) == (5, 2)
    with catalog.session() as s:
        assert s.scalar(select(func.count(Program.id))) == 5, "a dry run changes nothing"

    result = rekey(catalog, SOURCE, ["old.example.gov"])
    assert (result.programmes, result.merged) == (5, 2)
    with catalog.session() as s:
        programmes = {p.key: p for p in s.scalars(select(Program))}
        assert set(programmes) == {"/d/1.html", "/d/2.html", "/d/3.html"}
        two = programmes["/d/2.html"]
        assert two.status == "active" and two.title == "Two (edited)"
        assert two.first_seen == T0 + timedelta(days=1)  # the oldest sighting is kept
        assert s.scalar(select(func.count(ProgramVersion.id))) == versions  # no version lost
        assert s.scalar(select(func.count(Event.id))) == events              # no event lost
        kinds = [e.kind for e in s.scalars(select(Event).where(Event.program_id == two.id).order_by(Event.at))]
        assert kinds[0] == "new" and "changed" in kinds

    # From now on the canonical keys are what the crawl yields: no new programme, no removal.
    assert crawl(catalog, 5, "https://new.example.gov", {1: "One", 2: "Two (edited)", 3: "Three"}, True) == []
    assert rekey(catalog, SOURCE).rekeyed == 0  # idempotent


def test_the_demo_served_on_a_new_port_creates_no_new_programmes(tmp_path: Path) -> None:
    """``listwatch demo --day N`` serves each day on a new port: the keys must not change with it."""
    from crawlers.demo.site import DemoSite
    from tests.programs_support import crawl_day

    data_dir = tmp_path / "data"
    with DemoSite() as first:
        crawl_day(first, 0, data_dir, source_ids=("demo-tenders",))
    with DemoSite() as second:
        assert second.url != first.url
        (crawl, events), = crawl_day(second, 0, data_dir, source_ids=("demo-tenders",)).values()
    assert crawl.items and crawl.report["complete"]
    kinds = {e.kind for e in events}
    assert "new" not in kinds and "removed" not in kinds and "missing" not in kinds, kinds
    # (the URL fields themselves did change: each programme's "changed" event says url old → new)
