"""Distributed mode end to end: one scheduler and three ``listwatch worker`` processes, all real.

A real throwaway PostgreSQL cluster (catalog + Procrastinate queue), a real S3 server (rclone serve s3) as the
shared store, the demo site on loopback, 30 sources checked every few seconds, a webhook endpoint subscribed
to every alert. Over several cycles:

- every queued check runs exactly once (one finished run per succeeded job; nothing left failed or waiting),
  and no source is ever crawled twice at once (run rows' intervals never overlap);
- a worker killed with SIGKILL mid-crawl, with its crawl's process group (a machine going away): its crawl is
  closed as interrupted from its silent heartbeat, its job completes on another worker, every new programme is
  alerted exactly once, and when that worker starts again its ``.open`` WARC is salvaged into the store;
- a second scheduler refuses; the scheduler killed with SIGKILL and restarted after a missed tick catches each
  source up exactly once;
- ``listwatch status --json`` shows the workers (host, pid, heartbeat) and the queue.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from alerts_support import Endpoint
from archive_tools import warcio_check
from daemon_support import ROOT, DaemonProcess, demo_source, distributed_env, open_warc, runs, status_json, wait_for
from sqlalchemy import create_engine, select, text

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import CrawlRun, Event, QueueWorker, WarcFile
from crawlers.demo.site import DemoSite
from scheduler.alerts import subscribe
from tests import postgres
from tests.postgres import postgres_url  # noqa: F401  (fixture)
from tests.servers import S3Server, rclone_s3  # noqa: F401  (fixture)

SOURCES = 30         # 29 copies of the demo feed (one request a check: cheap) and one slow paged listing
QUICK = 30           # seconds between checks of a source (feeds: quick checks, their full sweep is hourly)
WORKERS = 3
NEW_ON_DAY1 = 2      # programmes every demo listing adds on day 1, on its first page
SLOW = f"demo-d{SOURCES - 1:02d}"   # paged, 0.2 s between requests: its crawls are the ones killed mid-write


def _sources(target: Path) -> None:
    target.mkdir(parents=True)
    for i in range(SOURCES - 1):
        schedule = f"\nschedule: {{quick: {QUICK}s, full: 1h, jitter: 0}}\n"
        (target / f"d{i:02d}.yaml").write_text(demo_source("feed.yaml", f"demo-d{i:02d}") + schedule, encoding="utf-8")
    slow = demo_source("mofcom.yaml", SLOW, politeness="{delay: 0.2, concurrency: 1}")
    (target / f"{SLOW.removeprefix('demo-')}.yaml").write_text(
        slow + f"\nschedule: {{full: {QUICK}s, jitter: 0}}\n", encoding="utf-8")


def _job_rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def _victim(catalog: Catalog, tmp_path: Path, after: datetime) -> tuple[QueueWorker, CrawlRun] | None:
    """The worker running a crawl of the slow source started after ``after`` that has written records into
    its open WARC (past its warcinfo)."""
    with catalog.read_session() as session:
        workers = list(session.scalars(select(QueueWorker)))
    for worker in workers:
        for entry in worker.current or []:
            if entry["source"] != SLOW or datetime.fromisoformat(entry["since"]) < after:
                continue
            run = next((r for r in runs(catalog, entry["source"]) if r.id == entry["run"]), None)
            if run is None or run.status != "running" or not run.pid or run.pid == worker.pid:
                continue   # no row yet, or its pid is still the worker's (the crawl process not started)
            for name in (f"w{i}" for i in range(WORKERS)):
                if open_warc(tmp_path / name / "spool", run.id, 5000):
                    return worker, run
    return None


def _complete_after(catalog: Catalog, source_id: str, after: datetime) -> bool:
    return any(r.status == "complete" and r.started_at > after for r in runs(catalog, source_id))


def _grid_point_after(moment: float, first: float) -> float:
    """The next tick (epoch seconds) of a jitter-free interval trigger whose tick ``first`` is known."""
    k = max(0, int((moment - first) // QUICK) + 1)
    return first + k * QUICK


def _line(proc: DaemonProcess, needle: str) -> str | None:
    return next((line for line in proc.text().splitlines() if needle in line), None)


def _log_time(line: str) -> float:
    """The epoch time of a log line (``2026-11-30 22:10:25,440 INFO …``, UTC on this machine's format)."""
    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return stamp.replace(tzinfo=datetime.now().astimezone().tzinfo).timestamp()


def _next_quick_ticks(url: str) -> list[float]:
    """Each source's next regular check (its quick check; the slow source's full sweep)."""
    return [row[0] for row in _job_rows(url, "SELECT next_run_time FROM listwatch_jobs WHERE id LIKE 'quick:%' "
                                        "OR id = :slow", slow=f"full:{SLOW}")]


def test_scheduler_and_three_workers(tmp_path: Path, postgres_url: str, rclone_s3: S3Server) -> None:  # noqa: F811
    postgres.reset_database(postgres_url)
    bucket = rclone_s3.make_bucket()
    endpoint = Endpoint().start()
    _sources(tmp_path / "sources")
    with DemoSite(bench_pages=20) as site:
        def env(name: str) -> dict[str, str]:
            return distributed_env(tmp_path / name, tmp_path / "sources", site.url, postgres_url, max_crawls=2,
                                   crawl_timeout=300, deliver_interval=0.5, maintenance_interval=5) | {
                "LISTWATCH_DISTRIBUTED__STALLED_AFTER": "20", **rclone_s3.settings_env(bucket)}

        catalog = open_catalog(postgres_url)
        subscribe(catalog, "hook", f"http://{endpoint.url}/alerts", channel="webhook")
        procs: list[DaemonProcess] = []
        try:
            scheduler = DaemonProcess(env("scheduler"), tmp_path / "scheduler-1.log", "run")
            procs.append(scheduler)
            workers = [DaemonProcess(env(f"w{i}"), tmp_path / f"w{i}-1.log", "worker")
                       for i in range(WORKERS)]
            procs += workers

            # cycle 1: every source's first crawl (its full sweep), spread over the three workers
            wait_for(lambda: all(any(r.status == "complete" for r in runs(catalog, f"demo-d{i:02d}"))
                                 for i in range(SOURCES)), 300, "every source's first crawl")
            second = subprocess.run([sys.executable, "-m", "scheduler", "run"], cwd=ROOT, capture_output=True,
                                    text=True, timeout=60, env=env("scheduler-2"), check=False)
            assert second.returncode == 1, second.stderr
            assert f"pid {scheduler.proc.pid}" in " ".join(second.stderr.split())

            # day 1: two new programmes on every listing, found by the quick checks
            site.day = 1
            switched = datetime.now(UTC)
            worker_row, run = wait_for(lambda: _victim(catalog, tmp_path, switched), 180,
                                       "a crawl of the slow source writing its WARC")
            index = next(i for i, w in enumerate(workers) if w.proc.pid == worker_row.pid)
            lost = _machine_loss(workers[index], catalog, worker_row.id)
            assert run.id in lost.values()
            for run_id in lost.values():
                wait_for(lambda r=run_id: _status(catalog, r) != "running", 60, "the lost worker's crawls closed")
            assert _status(catalog, run.id) == "interrupted"
            for job_id, run_id in lost.items():
                wait_for(lambda j=job_id, r=run_id: _job_done(postgres_url, j, catalog, r), 180,
                         "the lost worker's jobs to complete")
            lost_spool = tmp_path / f"w{index}" / "spool"
            assert list(lost_spool.rglob(f"*{run.id}*.warc.gz.open")), "the killed crawl left no open WARC"

            # the machine comes back: its open WARC is salvaged and stored
            workers[index] = DaemonProcess(env(f"w{index}"), tmp_path / f"w{index}-2.log", "worker")
            procs.append(workers[index])
            wait_for(lambda: not _spooled(lost_spool), 120, "the returning worker's spool emptied")

            # the scheduler killed, a tick missed, restarted: exactly one catch-up per source
            ticks = _next_quick_ticks(postgres_url)
            assert len(ticks) == SOURCES
            scheduler.kill()
            killed_at = time.time()
            # Restart just past the last source's missed tick: the catch-up window runs from the restarted
            # scheduler's start to its first regular tick, and its own start-up (10-15 s at load 15) eats into it.
            # Restarting half an interval later left a few seconds under load: 8 of 30 catch-ups were queued in time.
            restart = max(_grid_point_after(killed_at, t) for t in ticks) + 1
            wait_for(lambda: time.time() >= restart, QUICK * 2, "a missed tick", every=0.5)
            scheduler = DaemonProcess(env("scheduler"), tmp_path / "scheduler-3.log", "run")
            procs.append(scheduler)
            started = _log_time(wait_for(lambda: _line(scheduler, "scheduler running"), 120,
                                         "the scheduler to restart"))
            window_end = min(_grid_point_after(started + 0.5, t) for t in ticks)   # its first regular tick
            wait_for(lambda: time.time() >= window_end, QUICK * 2, "the catch-up window to pass", every=0.5)
            catch_up = Counter(
                match[1] for line in scheduler.text().splitlines()
                if (match := re.search(r"(?:quick|full) check (?:queued \(job \d+\)|already waits in the queue"
                                       r"[^\[]*) \[source=(demo-d\d\d)", line))
                and _log_time(line) < window_end - 0.5)
            assert catch_up == Counter({f"demo-d{i:02d}": 1 for i in range(SOURCES)}), catch_up

            status = status_json(env("scheduler"))
            alive = [w for w in status["workers"] if w["state"] != "lost"]
            assert sorted(w["pid"] for w in alive) == sorted(w.proc.pid for w in workers)
            assert all(w["host"] == socket.gethostname() for w in alive)
            assert status["queue"] is not None and "oldest_waiting" in status["queue"]

            # every source alerted its day-1 programmes: then stop scheduling and let the workers drain the queue
            wait_for(lambda: all(_complete_after(catalog, f"demo-d{i:02d}", switched) for i in range(SOURCES)),
                     300, "every source checked after day 1")
            wait_for(lambda: _alerted(catalog, endpoint) >= SOURCES * NEW_ON_DAY1, 120, "the day-1 alerts")
            assert scheduler.terminate(120) == 0
            wait_for(lambda: not _job_rows(postgres_url, "SELECT 1 FROM procrastinate_jobs WHERE status IN "
                                           "('todo', 'doing')"), 300, "the queue to drain")
            for worker in workers:
                assert worker.terminate(120) == 0
        finally:
            for proc in procs:
                if proc.proc.poll() is None:
                    proc.kill()
            endpoint.stop()

    _assert_each_job_ran_once(catalog, postgres_url, lost)
    _assert_no_overlap(catalog)
    closed = {m for log in tmp_path.glob("*.log")
              for m in re.findall(r"run closed as interrupted.*\[run_id=(\S+)", log.read_text(encoding="utf-8"))}
    assert closed <= set(lost.values()), f"live crawls closed as dead: {closed - set(lost.values())}"
    _assert_alerts_exactly_once(catalog, endpoint)
    with catalog.read_session() as session:
        warcs = list(session.scalars(select(WarcFile)))
    assert warcs and {w.state for w in warcs} <= {"stored", "verified"}, Counter(w.state for w in warcs)
    assert any(w.run_id == run.id for w in warcs), "the killed crawl's salvaged WARC did not reach the store"
    assert not [p for i in range(WORKERS) for p in _spooled(tmp_path / f"w{i}" / "spool")], "a WARC left in a spool"
    warcio_check([rclone_s3.object_path(bucket, w.key) for w in warcs if w.run_id == run.id])
    assert "salvaged" in (tmp_path / f"w{index}-2.log").read_text(encoding="utf-8")


def _machine_loss(worker: DaemonProcess, catalog: Catalog, worker_id: str) -> dict[int, str]:
    """SIGKILL a worker and every process under it (its crawls run in their own sessions, so killing the worker
    alone would leave them running): a machine going away. Returns job id → run id of the crawls it was running."""
    proc = psutil.Process(worker.proc.pid)
    proc.suspend()   # frozen: it starts nothing more and its list of crawls stays as it is now
    with catalog.read_session() as session:
        row = session.get(QueueWorker, worker_id)
        assert row is not None
        current = {int(e["job"]): e["run"] for e in row.current}
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    worker.kill()
    return current


def _status(catalog: Catalog, run_id: str) -> str | None:
    with catalog.read_session() as session:
        run = session.get(CrawlRun, run_id)
        return run.status if run else None


def _job_done(url: str, job_id: int, catalog: Catalog, run_id: str) -> bool:
    """The lost job ran again and succeeded; or was failed because the same check already waited (which then
    ran: checked at the end with every other job); or was marked done because its crawl had ended before the
    loss (its run complete, not interrupted). ``attempts`` counts ended tries."""
    rows = _job_rows(url, "SELECT status::text, attempts FROM procrastinate_jobs WHERE id = :j", j=job_id)
    if not rows:
        return False
    outcome = tuple(rows[0])
    return outcome in {("succeeded", 2), ("failed", 1)} or (
        outcome == ("succeeded", 1) and _status(catalog, run_id) == "complete")


def _spooled(spool: Path) -> list[Path]:
    """WARCs still waiting in a spool, open or closed (quarantined originals of salvaged files excluded)."""
    return [p for p in spool.rglob("*") if p.is_file() and p.name.endswith((".warc.gz", ".warc.gz.open"))]


def _alerted(catalog: Catalog, endpoint: Endpoint) -> int:
    return len({r.json["event"]["id"] for r in list(endpoint.received) if r.json.get("type") == "event"})


def _assert_each_job_ran_once(catalog: Catalog, url: str, lost: dict[int, str]) -> None:
    """Every job succeeded — except a lost one whose check was already waiting again (failed, not retried) — and
    each succeeded job has exactly one finished run; the only interrupted runs are the lost worker's."""
    jobs = _job_rows(url, "SELECT id, args->>'source_id', status::text, attempts FROM procrastinate_jobs")
    outcomes = {(status, attempts) for job, _, status, attempts in jobs if job not in lost}
    assert outcomes == {("succeeded", 1)}, outcomes
    assert all(_job_done(url, job, catalog, run_id) for job, run_id in lost.items())
    per_source = Counter(source for _, source, status, _ in jobs if status == "succeeded")
    all_runs = runs(catalog)
    interrupted = {r.id for r in all_runs if r.status == "interrupted"}
    assert interrupted and interrupted <= set(lost.values()), (interrupted, lost)
    finished = Counter(r.source_id for r in all_runs if r.status != "interrupted")
    assert finished == per_source, (finished - per_source, per_source - finished)
    assert all(r.status == "complete" for r in all_runs if r.status != "interrupted"), \
        Counter(r.status for r in all_runs)


def _assert_no_overlap(catalog: Catalog) -> None:
    by_source: dict[str, list[CrawlRun]] = {}
    for run in runs(catalog):
        by_source.setdefault(run.source_id, []).append(run)
    for source_id, rows in by_source.items():
        rows.sort(key=lambda r: r.started_at)
        for before, after in itertools.pairwise(rows):
            assert before.finished_at is not None and before.finished_at <= after.started_at, \
                (source_id, before.id, before.finished_at, after.id, after.started_at)


def _assert_alerts_exactly_once(catalog: Catalog, endpoint: Endpoint) -> None:
    with catalog.read_session() as session:
        events = list(session.scalars(select(Event).where(Event.kind == "new", Event.backfill.is_(False))))
    per_source = Counter(e.source_id for e in events)
    assert per_source == Counter({f"demo-d{i:02d}": NEW_ON_DAY1 for i in range(SOURCES)}), per_source
    received = Counter(r.json["event"]["id"] for r in endpoint.received if r.json.get("type") == "event")
    assert all(received[e.id] == 1 for e in events), {e.id: received[e.id] for e in events if received[e.id] != 1}
