"""Source health across runs: each condition raised once when it starts and once when it clears."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import CrawlRun, Event, Outbox
from archive.catalog.models import Source as SourceRow
from scheduler.alerts.subscriptions import subscribe
from scheduler.health import check_source
from scheduler.settings import Settings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    with catalog.session() as session:
        session.add(SourceRow(id="s", name="s", created_at=NOW - timedelta(days=30)))
    return catalog


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, scheduler={"failures_alert": 3, "silent_after": 2 * 86400})


def add_run(catalog: Catalog, *, status: str = "complete", items: int = 20, challenge: bool = False,
            hours_ago: float = 0.0, kind: str = "full", degraded: list[str] | None = None) -> None:
    started = NOW - timedelta(hours=hours_ago)
    report = {"pages_ok": {"listing": 0 if status == "failed" else 2}, "degraded": degraded or [],
              "challenges": [{"url": "http://gov.example/list", "message": "jiasule"}] if challenge else []}
    with catalog.session() as session:
        session.add(CrawlRun(id=f"r{next(_ids):04d}", source_id="s", kind=kind, status=status, started_at=started,
                             finished_at=started + timedelta(minutes=1), items=items, report=report,
                             reason="the server answered HTTP 503" if status == "failed" else ""))


def events(catalog: Catalog) -> list[tuple[str, str]]:
    with catalog.session() as session:
        return [(e.kind, e.summary.split(":")[0]) for e in session.scalars(select(Event).order_by(Event.id))]


def check(catalog: Catalog, tmp_path: Path, hours_later: float = 0.0) -> list[int]:
    return check_source(catalog, settings(tmp_path), "s", now=NOW + timedelta(hours=hours_later), alert=False)


def test_blocked_is_raised_once_and_cleared_once(catalog: Catalog, tmp_path: Path) -> None:
    add_run(catalog, hours_ago=3)
    add_run(catalog, status="incomplete", challenge=True, hours_ago=2)
    assert len(check(catalog, tmp_path)) == 1      # one blocked run: the incident starts as "incomplete"
    add_run(catalog, status="incomplete", challenge=True, hours_ago=1)
    assert len(check(catalog, tmp_path)) == 1      # blocked twice: the condition joins the open incident
    assert check(catalog, tmp_path) == []          # still blocked: not repeated
    add_run(catalog, hours_ago=0)
    assert len(check(catalog, tmp_path)) == 1      # one recovery clears both
    assert events(catalog) == [("incomplete", "incomplete"), ("blocked", "blocked"), ("source_health", "recovered")]
    with catalog.session() as session:
        recovered = session.scalars(select(Event).order_by(Event.id.desc())).first()
        assert recovered is not None and set(recovered.changes) == {"incomplete", "blocked"}


def test_only_the_start_and_the_end_of_an_incident_are_alerted(catalog: Catalog, tmp_path: Path) -> None:
    subscribe(catalog, "ops", "http://127.0.0.1:9/hook", channel="webhook", kinds=["source_health"])
    two = Settings(data_dir=tmp_path, scheduler={"failures_alert": 2, "silent_after": 2 * 86400})
    queued: list[list[int]] = []
    for status, hours in (("complete", 4), ("failed", 3), ("failed", 2), ("failed", 1), ("complete", 0)):
        add_run(catalog, status=status, items=0 if status == "failed" else 20, hours_ago=hours)
        written = check_source(catalog, two, "s", now=NOW)
        queued.append([e for e in written if e in alerted(catalog)])
    assert [len(q) for q in queued] == [0, 1, 0, 0, 1], queued   # "failing" joined at run 3: recorded, not sent
    assert [k for k, _ in events(catalog)] == ["incomplete", "failing", "source_health"]


def alerted(catalog: Catalog) -> set[int]:
    with catalog.session() as session:
        return set(session.scalars(select(Outbox.event_id)))


def test_failing_after_n_failed_runs(catalog: Catalog, tmp_path: Path) -> None:
    add_run(catalog, hours_ago=4)
    for hours in (3, 2, 1):
        add_run(catalog, status="failed", items=0, hours_ago=hours)
    check(catalog, tmp_path)
    assert events(catalog) == [("failing", "failing")]


def test_degraded_when_selectors_break(catalog: Catalog, tmp_path: Path) -> None:
    for hours in (6, 5, 4):
        add_run(catalog, items=20, hours_ago=hours)
    add_run(catalog, items=2, status="incomplete", hours_ago=2)
    add_run(catalog, items=0, status="incomplete", hours_ago=1)
    check(catalog, tmp_path)
    assert events(catalog) == [("degraded", "degraded")]


def test_silent_when_no_complete_crawl_for_too_long(catalog: Catalog, tmp_path: Path) -> None:
    add_run(catalog, hours_ago=72)
    add_run(catalog, status="failed", items=0, hours_ago=1)
    check(catalog, tmp_path)
    assert events(catalog) == [("silent", "silent")]
    add_run(catalog, hours_ago=-1)
    check(catalog, tmp_path, hours_later=2)
    assert events(catalog)[-1] == ("source_health", "recovered")


def test_degraded_runs_raise_degraded_with_the_reason_and_do_not_count_as_silent(catalog: Catalog,
                                                                                tmp_path: Path) -> None:
    add_run(catalog, hours_ago=80)
    why = ["73 of 74 detail pages failed (73 answered gone)"]
    add_run(catalog, status="degraded", degraded=why, hours_ago=2)
    assert check(catalog, tmp_path) == []          # one degraded run: not yet a trend
    add_run(catalog, status="degraded", degraded=why, hours_ago=1)
    assert len(check(catalog, tmp_path)) == 1      # degraded, and not silent: the listing was read
    with catalog.session() as session:
        [event] = session.scalars(select(Event)).all()
    assert event.kind == "degraded" and "73 of 74 detail pages failed" in event.summary
    add_run(catalog, hours_ago=0)
    assert len(check(catalog, tmp_path)) == 1
    assert events(catalog)[-1] == ("source_health", "recovered")
