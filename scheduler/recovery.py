"""Runs left ``running`` by a process that is gone: close them as interrupted and salvage their WARCs.

A run row carries the host and pid of the process running it (the crawl subprocess once started, the daemon
before that). On this host a run is *alive* when that pid exists and its command line names the run id (pid
reuse cannot fool it). Rows of other hosts are left alone: their own daemon recovers them.

>>> recover(catalog, settings)   # doctest: +SKIP   (at daemon start, and periodically)
['20260105T010203Z-a1b2c3']
"""

from __future__ import annotations

import logging
import signal
import socket
from datetime import UTC, datetime, timedelta

import psutil
from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import CrawlRun
from scheduler.runner import log_tail, salvage_run, signal_group
from scheduler.settings import Settings

log = logging.getLogger(__name__)


def run_alive(run: CrawlRun) -> bool:
    """True when the process recorded for ``run`` still runs it on this host."""
    if run.pid is None or run.host != socket.gethostname():
        return run.host != socket.gethostname()   # another host's run: assume alive
    try:
        return run.id in " ".join(psutil.Process(run.pid).cmdline())
    except psutil.Error:
        return False


def close_interrupted(catalog: Catalog, settings: Settings, run_id: str, reason: str) -> None:
    """Mark a dead run interrupted (reason, log tail) and salvage the WARCs it left open."""
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.status != "running":
            return
        source_id = run.source_id
    salvaged = salvage_run(settings.spool_dir, source_id, run_id)
    tail = log_tail(settings.data_dir / "runs" / source_id / run_id / "crawl.log")
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.status != "running":
            return
        run.status = "interrupted"
        run.finished_at = datetime.now(UTC)
        run.reason = reason + (f"; {len(salvaged)} open WARC file(s) salvaged" if salvaged else "")
        run.log_tail = tail
    log.warning("run closed as interrupted: %s", reason, extra={"run_id": run_id, "source": source_id})


def running_runs(catalog: Catalog, source_id: str | None = None) -> list[CrawlRun]:
    with catalog.read_session() as session:
        query = select(CrawlRun).where(CrawlRun.status == "running")
        if source_id is not None:
            query = query.where(CrawlRun.source_id == source_id)
        return list(session.scalars(query))


def source_busy(catalog: Catalog, settings: Settings, source_id: str) -> str | None:
    """The id of a live run of ``source_id`` (dead ones are closed on the way), or None."""
    for run in running_runs(catalog, source_id):
        if run_alive(run):
            return run.id
        close_interrupted(catalog, settings, run.id, _dead_reason(run))
    return None


def recover(catalog: Catalog, settings: Settings, *, ours: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Close dead runs of this host; stop orphaned crawls past their time limit. Returns the closed run ids.

    ``ours``: run ids this daemon is running right now (never touched here).
    """
    closed = []
    limit = timedelta(seconds=settings.scheduler.crawl_timeout + settings.scheduler.kill_grace)
    now = datetime.now(UTC)
    for run in running_runs(catalog):
        if run.id in ours or run.host != socket.gethostname():
            continue
        if run_alive(run):
            started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
            if run.pid is not None and now - started > limit:   # an orphan of a killed daemon that hangs
                signal_group(run.pid, signal.SIGKILL)
                close_interrupted(catalog, settings, run.id, "orphaned crawl killed past its time limit")
                closed.append(run.id)
            continue
        close_interrupted(catalog, settings, run.id, _dead_reason(run))
        closed.append(run.id)
    return closed


def _dead_reason(run: CrawlRun) -> str:
    return (f"the process running it (pid {run.pid} on {run.host}) is gone: the scheduler or the machine "
            "stopped before the crawl finished")
