"""The scheduler daemon end to end: real subprocesses, the real demo site, real SQLite, a real webhook.

- ``test_daemon_alerts_each_new_programme_once_and_kills_a_hang``: days advance under a running daemon; every
  new programme is alerted exactly once, found by the first complete check after its posting (a programme
  posted on a later page is caught by the full sweep); a stalling source is killed at its time limit.
- ``test_kill9_crawl_and_daemon_then_restart``: kill -9 of a crawl mid-write and of the daemon, a restart after a
  gap: no overlapping runs, one catch-up, every WARC valid (salvaged), no lost or duplicated alert.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from alerts_support import Endpoint
from archive_tools import warcio_check
from daemon_support import (
    DaemonProcess,
    OverlapWatch,
    env_for,
    open_warc,
    runs,
    scheduled_source,
    status_json,
    wait_for,
)
from sqlalchemy import func, select

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import CrawlRun, Event, Outbox
from crawlers.demo import programmes as plan_data
from crawlers.demo.site import DemoSite
from scheduler.alerts import subscribe

QUICK, FULL, DAY_EVERY = 5, 15, 18
NEW_ON = {1: 2, 2: 1, 3: 1}   # new programmes each demo listing posts on day N (plan: new_day1, new_day2, backdated)
WAIT = 240   # ceiling for what a loaded machine slows down (checks, deliveries); reached only when something is wrong

STALL = """id: demo-stall
name: a listing that never answers
start_urls: ["${LISTWATCH_DEMO_URL}/faults/stall.html"]
items: {selector: "li", key: url, fields: {url: {css: "a::attr(href)", type: url}}}
politeness: {delay: 0, concurrency: 1, obey_robots: false}
limits: {timeout: 300, retries: 0}
schedule: {full: 6s, jitter: 0}
"""


def _setup(tmp_path: Path, site: DemoSite, endpoint: Endpoint, **scheduler: object) -> tuple[dict[str, str], Catalog]:
    data_dir = tmp_path / "data"
    env = env_for(data_dir, tmp_path / "sources", site.url, deliver_interval=0.5, maintenance_interval=5,
                  **scheduler)
    catalog = open_catalog(f"sqlite:///{data_dir.resolve() / 'catalog.sqlite'}")
    subscribe(catalog, "hook", f"http://{endpoint.url}/alerts", channel="webhook")
    return env, catalog


def _all_warcs(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*.warc.gz") if p.is_file())


def _new_events(catalog: Catalog) -> list[Event]:
    with catalog.read_session() as session:
        # the first crawl of a source is its baseline: recorded as backfill, never alerted
        return list(session.scalars(select(Event).where(Event.kind == "new", Event.backfill.is_(False))))


def _assert_alerts_exactly_once(catalog: Catalog, endpoint: Endpoint) -> Counter[int]:
    received = Counter(r.json["event"]["id"] for r in endpoint.received if r.json.get("type") == "event")
    events = _new_events(catalog)
    assert events, "no programme was ever seen"
    assert all(received[e.id] == 1 for e in events), {e.id: received[e.id] for e in events if received[e.id] != 1}
    per_programme = Counter(e.program_id for e in events)
    assert max(per_programme.values()) == 1, "a programme got two 'new' events"
    return received


def _backlog(catalog: Catalog) -> int:
    with catalog.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.state.in_(("pending", "sending")))) or 0)


def test_daemon_alerts_each_new_programme_once_and_kills_a_hang(tmp_path: Path) -> None:
    endpoint = Endpoint().start()
    with DemoSite(bench_pages=20) as site:
        site.stall_seconds = 300
        env, catalog = _setup(tmp_path, site, endpoint, max_crawls=3, crawl_timeout=20, kill_grace=3,
                              failures_alert=2)
        sources = tmp_path / "sources"
        for name in ("mofcom.yaml", "tenders.yaml"):
            scheduled_source(sources, name, f"{{quick: {QUICK}s, full: {FULL}s, jitter: 0}}")
        (sources / "stall.yaml").write_text(STALL, encoding="utf-8")
        daemon = DaemonProcess(env, tmp_path / "daemon.log")
        switched: dict[int, datetime] = {}   # day → when it was posted (to compare with run rows)
        switched_at: dict[int, float] = {}   # day → time.monotonic() then
        try:
            with OverlapWatch(catalog) as watch:
                # Days advance on what the daemon did, not on the clock alone (a loaded machine slows the checks,
                # not the plot): day 1 once both listings have their baseline, each next day once the day's
                # programmes are alerted, and every day lasts DAY_EVERY s at least, so that several checks see
                # each programme again (none may alert it twice).
                wait_for(lambda: all(any(r.status == "complete" for r in runs(catalog, f"demo-{shape}"))
                                     for shape in ("mofcom", "tenders")), WAIT, "both listings' baseline crawls")
                for day in (1, 2, 3):
                    if day > 1:
                        wait_for(lambda d=day: _alerted_new(catalog, endpoint) >= _posted_before(d), WAIT,
                                 f"day {day - 1}'s programmes alerted")
                        wait_for(lambda d=day: time.monotonic() - switched_at[d - 1] >= DAY_EVERY, DAY_EVERY + 1,
                                 f"day {day - 1} to last {DAY_EVERY} s")
                    site.day = day
                    switched[day], switched_at[day] = datetime.now(UTC), time.monotonic()
                wait_for(lambda: _alerted_new(catalog, endpoint) >= _posted_before(4), WAIT,
                         "day 3's backdated programmes alerted (by a full sweep)")
                wait_for(lambda: time.monotonic() - switched_at[3] >= FULL + 2 * QUICK, FULL + 2 * QUICK + 1,
                         "more checks of day 3")
                wait_for(lambda: len([r for r in runs(catalog, "demo-stall") if r.status == "failed"]) >= 2, WAIT,
                         "the stalling source killed at its time limit twice (failures_alert)")
                wait_for(lambda: _backlog(catalog) == 0, WAIT, "the alert outbox to drain")
            assert daemon.terminate() == 0
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
            endpoint.stop()
    assert watch.overlaps == []
    _assert_alerts_exactly_once(catalog, endpoint)

    # Each programme posted on day N is found by the check under way at the switch or by the first complete check
    # started after it (none missed it); the backdated one lands on a later page, which quick checks do not read:
    # the first full sweep finds it.
    events = _new_events(catalog)
    for shape in ("mofcom", "tenders"):
        p = plan_data.plan(shape)
        done = [r for r in runs(catalog, f"demo-{shape}") if r.finished_at is not None]
        for day, pid, kinds in [(1, p.new_day1[0], ("quick", "full")), (1, p.new_day1[1], ("quick", "full")),
                                (2, p.new_day2, ("quick", "full")), (3, p.backdated, ("full",))]:
            found = [e for e in events if e.source_id == f"demo-{shape}" and _key_has(catalog, e, pid)]
            assert len(found) == 1, (shape, pid, found)
            run = next(r for r in done if r.id == found[0].run_id)
            first = next(r for r in done if r.status == "complete" and r.kind in kinds and r.started_at > switched[day])
            assert run.kind in kinds and switched[day] < run.finished_at and run.started_at <= first.started_at, \
                (shape, pid, day, switched[day], run.id, [(r.id, r.kind, r.status, r.started_at) for r in done])

    stall = [r for r in runs(catalog, "demo-stall") if r.status != "running"]
    assert stall and all(r.status == "failed" for r in stall)
    assert "time limit" in stall[0].reason and stall[0].log_tail
    assert all(r.status != "running" for r in runs(catalog))
    warcio_check(_all_warcs(tmp_path / "data"))
    status = status_json(env)
    assert status["sources"]["demo-stall"]["last_run"]["status"] == "failed"
    assert "failing" in status["sources"]["demo-stall"]["health"]
    assert status["sources"]["demo-mofcom"]["health"] == ["ok"]
    assert status["alert_backlog"] == 0


def _posted_before(day: int) -> int:
    """New programmes both listings posted before ``day``."""
    return 2 * sum(n for d, n in NEW_ON.items() if d < day)


def _alerted_new(catalog: Catalog, endpoint: Endpoint) -> int:
    received = {r.json["event"]["id"] for r in list(endpoint.received) if r.json.get("type") == "event"}
    return sum(1 for e in _new_events(catalog) if e.id in received)


def _key_has(catalog: Catalog, event: Event, pid: str) -> bool:
    from archive.catalog.models import Program

    with catalog.read_session() as session:
        program = session.get(Program, event.program_id)
        return program is not None and f"/{pid}." in program.key


def _running(catalog: Catalog, source_id: str, daemon: DaemonProcess) -> list[CrawlRun]:
    """Running rows whose pid is already the crawl subprocess's (the daemon's own pid until it started)."""
    return [r for r in runs(catalog, source_id) if r.status == "running" and r.pid and r.pid != daemon.proc.pid]


def test_kill9_crawl_and_daemon_then_restart(tmp_path: Path) -> None:
    endpoint = Endpoint().start()
    with DemoSite(bench_pages=20) as site:
        env, catalog = _setup(tmp_path, site, endpoint, max_crawls=2, stop_grace=5, kill_grace=15)
        data_dir, spool = tmp_path / "data", tmp_path / "data" / "spool"
        scheduled_source(tmp_path / "sources", "mofcom.yaml", "{quick: 4s, full: 12s, jitter: 0}",
                         politeness='{delay: 0.15, concurrency: 1, user_agent: "listwatch-test"}')
        daemon = DaemonProcess(env, tmp_path / "daemon-1.log")
        try:
            with OverlapWatch(catalog) as watch:
                # 1. kill -9 one crawl subprocess while its WARC is open
                [victim] = wait_for(lambda: _running(catalog, "demo-mofcom", daemon), WAIT, "a crawl")
                wait_for(lambda: open_warc(spool, victim.id, 5000), WAIT, "the crawl writing records")
                os.kill(victim.pid, signal.SIGKILL)
                killed = wait_for(lambda: [r for r in runs(catalog) if r.id == victim.id and r.status != "running"],
                                  WAIT, "the daemon to record the killed crawl")[0]
                assert killed.status == "failed" and "SIGKILL" in killed.reason and "salvaged" in killed.reason
                assert not list(spool.rglob(f"*{victim.id}*.open"))

                # 2. kill -9 the daemon and its crawl mid-run (a machine going away), then a gap of several intervals
                site.day = 1
                [orphan] = wait_for(lambda: [r for r in _running(catalog, "demo-mofcom", daemon) if r.id != victim.id],
                                    WAIT, "the next crawl")
                wait_for(lambda: open_warc(spool, orphan.id, 5000), WAIT, "the next crawl writing records")
                daemon.kill()
                with contextlib.suppress(ProcessLookupError):   # a crawl host exits with its scheduler by itself
                    os.kill(orphan.pid, signal.SIGKILL)
                gap_start = time.monotonic()
                wait_for(lambda: time.monotonic() - gap_start > 14, 20, "a gap of several quick intervals", 0.5)
                before = {r.id for r in runs(catalog)}

                # 3. restart: the dead run is closed and salvaged; the missed runs are caught up once. (The daemon's
                # own start-up took 27-30 s at load 14, so these ceilings are WAIT: 30 s failed there.)
                daemon = DaemonProcess(env, tmp_path / "daemon-2.log")
                wait_for(lambda: [r for r in runs(catalog) if r.id == orphan.id and r.status == "interrupted"],
                         WAIT, "the orphaned run closed as interrupted")
                wait_for(lambda: len({r.id for r in runs(catalog)} - before) >= 2, WAIT, "the catch-up runs")
                fresh = [r for r in runs(catalog) if r.id not in before]
                early = [r for r in fresh if r.kind == "quick"
                         and (r.started_at.timestamp() - fresh[0].started_at.timestamp()) < 3]
                assert len(early) == 1, [(r.kind, r.started_at) for r in fresh]
                site.day = 2
                wait_for(lambda: any(r.status == "complete" and r.id not in before for r in runs(catalog)), WAIT,
                         "a complete run after the restart")
                wait_for(lambda: _backlog(catalog) == 0 and _new_events(catalog), WAIT, "alerts delivered")
            assert daemon.terminate() == 0
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
            endpoint.stop()
    assert watch.overlaps == []
    orphan_run = next(r for r in runs(catalog) if r.id == orphan.id)
    assert orphan_run.status == "interrupted" and "gone" in orphan_run.reason
    assert not list(spool.rglob("*.warc.gz.open")), "a WARC was left open after a graceful stop"
    warcs = _all_warcs(data_dir)
    assert any(victim.id in p.name for p in warcs) and any(orphan.id in p.name for p in warcs)
    warcio_check(warcs)
    _assert_alerts_exactly_once(catalog, endpoint)
    status = status_json(env)
    mofcom = status["sources"]["demo-mofcom"]
    assert mofcom["runs"].get("failed", 0) >= 1 and mofcom["runs"].get("interrupted", 0) >= 1
    assert mofcom["running"] == [] and mofcom["next_run"]["quick"] and mofcom["programmes"] > 0
    assert status["spool"]["open"] == 0
