"""Helpers for the programme tests: crawl a demo day for real, and what the day plan expects.

Each crawl runs the whole pipeline in a subprocess (``listwatch crawl``): the spider re-checks the
source's missing programmes (``programs_to_recheck``), and ingest applies the crawl to the catalog in
the data directory (``apply_crawl``). The tests read that catalog.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from archive.catalog.db import Catalog, open_catalog
from archive.catalog.models import Event
from crawlers.demo import programmes as data
from crawlers.demo.site import DemoSite
from scheduler.health import CONDITIONS
from tests.conftest import DEMO_SOURCES, Crawl, crawl_sources

SHAPES = {"demo-mofcom": "mofcom", "demo-tenders": "tenders"}
BASE_TIME = datetime(2026, 3, 16, 1, 0, tzinfo=UTC)


def pipeline_catalog(data_dir: Path) -> Catalog:
    """The catalog ``listwatch crawl`` writes to with ``LISTWATCH_DATA_DIR=data_dir``."""
    return open_catalog(f"sqlite:///{(data_dir / 'catalog.sqlite').resolve()}")


def run_events(data_dir: Path, run_id: str) -> Counter[str]:
    """The events one ``listwatch crawl`` run recorded, by kind: its programmes' events and a source-health
    incident, not the per-condition events (failing, blocked…) nor recoveries."""
    catalog = pipeline_catalog(data_dir)
    try:
        with catalog.session() as session:
            events = session.scalars(select(Event).where(Event.run_id == run_id, Event.kind.not_in(CONDITIONS)))
            return Counter(e.kind for e in events if not e.summary.startswith("recovered"))
    finally:
        catalog.dispose()


def crawl_day(site: DemoSite, day: int, data_dir: Path, *, source_ids: tuple[str, ...],
              missing_runs_to_remove: int = 2) -> dict[str, tuple[Crawl, list[Event]]]:
    """Serve ``day``, crawl and ingest the sources; returns (crawl, the run's events) by source."""
    site.day = day
    paths = [DEMO_SOURCES / f"{SHAPES[s]}.yaml" for s in source_ids]
    env = {"LISTWATCH_SCHEDULER__MISSING_RUNS_TO_REMOVE": str(missing_runs_to_remove)}
    crawls = crawl_sources(paths, data_dir=data_dir, site=site, extra_env=env)
    catalog = pipeline_catalog(data_dir)
    out = {}
    try:
        for source_id, crawl in crawls.items():
            assert not crawl.report.get("steps_failed"), crawl.report["steps_failed"]
            with catalog.session() as session:
                # the programme diff's events: health incidents (scheduler.health) are tested on their own
                events = list(session.scalars(select(Event).where(
                    Event.run_id == crawl.report["run_id"], Event.kind.not_in(CONDITIONS),
                    ~Event.summary.startswith("recovered")).order_by(Event.id)))
            out[source_id] = (crawl, events)
    finally:
        catalog.dispose()
    return out


def pid(key: str | None) -> str:
    match = re.search(r"/(\d+)(?:\.html)?$", key or "")
    assert match, key
    return match.group(1)


def summarise(events: list[Event], keys: dict[int, str]) -> Counter[tuple[str, str]]:
    """(kind, programme id) of each event; source health as (source_health, "")."""
    return Counter((e.kind, pid(keys[e.program_id]) if e.program_id else "") for e in events)


def changed_fields(shape: str, day: int) -> dict[str, set[str]]:
    """Per programme id, the fields whose expected value differs from the previous day."""
    before = {p["id"]: p for p in data.expected_programmes(shape, day - 1)}
    out = {}
    for p in data.expected_programmes(shape, day):
        old = before.get(p["id"])
        if old is not None:
            diff = {k for k in p if k not in ("id", "url", "attachments") and p[k] != old[k]}
            if diff:
                out[str(p["id"])] = diff
    return out


def expected_events(shape: str, day: int, missing_runs_to_remove: int) -> Counter[tuple[str, str]]:
    """The events of an uninterrupted run of complete daily crawls, from the demo site's day plan."""
    plan = data.plan(shape)
    listed = {p["id"] for p in data.expected_programmes(shape, day)}
    before = {p["id"] for p in data.expected_programmes(shape, day - 1)} if day else set()
    events: Counter[tuple[str, str]] = Counter()
    ever: set[str] = set()
    for d in range(day):
        ever |= {str(p["id"]) for p in data.expected_programmes(shape, d)}
    for i in listed - ever:
        events[("new", str(i))] += 1
    for i in (listed & ever) - before:
        events[("reappeared", str(i))] += 1
    for i in changed_fields(shape, day) if day else {}:
        events[("changed", i)] += 1
    for i in before - listed:
        events[("missing" if missing_runs_to_remove > 1 else "removed", str(i))] += 1
    # Missing since the day before: a recheck finds the gone ones (404 / soft 404) and removes them.
    if day >= 2:
        two_ago = {p["id"] for p in data.expected_programmes(shape, day - 2)}
        for i in (two_ago - before) - listed:
            if i in (plan.removed, plan.soft404) or missing_runs_to_remove <= 2:
                events[("removed", str(i))] += 1
    return events
