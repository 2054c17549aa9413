"""Runs left ``running`` by a process that is gone: close them as interrupted and salvage their WARCs.

A run is *alive* while its crawl process holds the run's lease (:mod:`scheduler.lease`, an ``flock`` the kernel
drops when the process dies): a manual ``listwatch crawl`` and a daemon's crawl subprocess are told apart from
dead runs the same way, whatever their command lines. Nothing here touches a run, or its ``.open`` WARCs, while
its lease is held. Rows without a lease file (written by an older version, or a daemon child in the instant
before it takes its lease) fall back to the recorded pid: alive when that process exists and either started
before the run did or names the run id on its command line (pid reuse cannot fool either). Rows of other
hosts are left alone (their own daemon recovers them) unless a distributed-mode worker lists the run: then it
is alive exactly while that worker's heartbeat is fresh (:mod:`scheduler.worker_registry`).

>>> recover(catalog, settings)   # doctest: +SKIP   (at daemon start, and periodically)
['20260105T010203Z-a1b2c3']
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import CrawlRun
from archive.catalog.runs import finish
from crawlers.report import LOG_FILE, run_dir
from scheduler.lease import lease_held, lease_path
from scheduler.runner import log_tail, salvage_run, signal_group
from scheduler.settings import Settings
from scheduler.worker_registry import remote_verdicts

log = logging.getLogger(__name__)


def run_alive(run: CrawlRun, data_dir: Path, remote: Mapping[str, bool] | None = None) -> bool:
    """True when a process still owns ``run``. A run a beating worker lists in ``remote`` (run id → its worker
    beats) is alive; another host's run is otherwise alive unless the worker listing it is lost. (A worker's run on
    this host is judged by its worker first: its lease file lies in that worker's own data_dir, not ours.)"""
    verdict = (remote or {}).get(run.id)
    if verdict:
        return True
    if run.host != socket.gethostname():
        return verdict is None
    held = lease_held(lease_path(data_dir, run.source_id, run.id))
    if held is not None:
        return held
    if run.pid is None:
        return False
    try:
        proc = psutil.Process(run.pid)
        return proc.create_time() <= run.started_at.timestamp() or run.id in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def close_interrupted(catalog: Catalog, settings: Settings, run_id: str, reason: str) -> None:
    """Mark a dead run interrupted (reason, log tail) and salvage the WARCs it left open."""
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.status != "running":
            return
        source_id = run.source_id
    if lease_held(lease_path(settings.data_dir, source_id, run_id)):
        return   # its crawl process is alive after all (it took the lease since we looked)
    salvaged = salvage_run(settings.spool_dir, source_id, run_id)
    tail = log_tail(run_dir(settings.data_dir, source_id, run_id) / LOG_FILE)
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.status != "running":
            return
        run.status = "interrupted"
        finish(run, datetime.now(UTC))
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
    runs = running_runs(catalog, source_id)
    remote = remote_verdicts(catalog, settings.distributed.stalled_after) if runs else {}
    for run in runs:
        if run_alive(run, settings.data_dir, remote):
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
    runs = running_runs(catalog)
    remote = remote_verdicts(catalog, settings.distributed.stalled_after) if runs else {}
    for run in runs:
        if run.id in ours or run.host != socket.gethostname():
            continue
        if run_alive(run, settings.data_dir, remote):
            if now - run.started_at > limit and run.pid is not None and _daemon_child(run):   # a killed daemon's orphan
                signal_group(run.pid, signal.SIGKILL)
                with contextlib.suppress(psutil.Error):
                    psutil.Process(run.pid).wait(10)   # the kernel drops its lease as it goes
                close_interrupted(catalog, settings, run.id, "orphaned crawl killed past its time limit")
                closed.append(run.id)
            continue
        close_interrupted(catalog, settings, run.id, _dead_reason(run))
        closed.append(run.id)
    return closed


def _daemon_child(run: CrawlRun) -> bool:
    """True for a crawl subprocess a daemon started (its own process group, the run id on its command line).
    Only those are ever killed here: a manual ``listwatch crawl`` keeps its own limits."""
    if run.pid is None:
        return False
    try:
        proc = psutil.Process(run.pid)
        return os.getpgid(run.pid) == run.pid and run.id in " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return False


def _dead_reason(run: CrawlRun) -> str:
    return (f"the process running it (pid {run.pid} on {run.host}) is gone: the scheduler or the machine "
            "stopped before the crawl finished")


def sync_spool(catalog: Catalog, settings: Settings, retried: str) -> None:
    """Move the closed WARCs waiting in this machine's spool to the store; a failure is logged (``retried``: when
    it is tried again), never raised: the files stay in the spool."""
    try:
        from archive.spool import closed_warcs, sync
        from archive.storage import open_storage
    except ImportError:
        return
    if not closed_warcs(settings.spool_dir):
        return
    try:
        result = sync(catalog, open_storage(settings), settings.spool_dir, lock_wait=5)
        log.info("spool sync: %s", result.summary())
    except Exception:
        log.exception("spool sync failed; retried %s", retried)
