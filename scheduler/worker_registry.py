"""Who works: the ``queue_workers`` table of distributed mode (one row per ``listwatch worker`` process).

Each worker writes its host, pid and start, beats every ``distributed.heartbeat`` seconds and lists the crawls it
runs (job, source, kind, run id) *before* each crawl's run row exists, so a ``running`` run of any machine can be
judged: alive while the worker listing it beats, dead once that worker has been silent ``stalled_after`` seconds.
This is what lets the scheduler close another machine's runs (:func:`close_lost_runs`) instead of treating them
as alive forever, and what ``listwatch status`` and the web show (:func:`workers_state`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import delete, inspect, select

from archive.catalog import Catalog
from archive.catalog.models import CrawlRun, QueueWorker
from scheduler.settings import Settings

log = logging.getLogger(__name__)
FORGET_AFTER = timedelta(days=1)   # a lost worker's row is shown (as lost) this long, then deleted


class Registration:
    """This worker's row: register, beat, say which crawls run now, leave. Thread-safe (crawls run in threads)."""

    def __init__(self, catalog: Catalog, concurrency: int) -> None:
        self.catalog = catalog
        self.id = f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}"
        self.concurrency = concurrency
        self._current: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def register(self) -> None:
        now = datetime.now(UTC)
        with self.catalog.session() as session:
            session.merge(QueueWorker(id=self.id, host=socket.gethostname(), pid=os.getpid(),
                                      concurrency=self.concurrency, started_at=now, last_heartbeat=now,
                                      stopping=False, current=[]))

    def _write(self, **fields: Any) -> None:
        with self._lock:
            current = sorted(self._current.values(), key=lambda c: c["since"])
        with self.catalog.session() as session:
            row = session.get(QueueWorker, self.id)
            if row is None:   # deleted as lost while we were cut off: come back
                session.add(QueueWorker(id=self.id, host=socket.gethostname(), pid=os.getpid(),
                                        concurrency=self.concurrency, started_at=datetime.now(UTC), stopping=False,
                                        last_heartbeat=datetime.now(UTC), current=current))
                return
            row.last_heartbeat = datetime.now(UTC)
            row.current = current
            for name, value in fields.items():
                setattr(row, name, value)

    def beat(self) -> None:
        self._write()

    def stopping(self) -> None:
        self._write(stopping=True)

    def start(self, job_id: int, source_id: str, kind: str, run_id: str) -> None:
        """Record a crawl as this worker's before its run row is written (so the row is never unowned)."""
        with self._lock:
            self._current[job_id] = {"job": job_id, "source": source_id, "kind": kind, "run": run_id,
                                     "since": datetime.now(UTC).isoformat(timespec="seconds")}
        self._write()

    def finish(self, job_id: int) -> None:
        with self._lock:
            self._current.pop(job_id, None)
        self._write()

    def leave(self) -> None:
        with self.catalog.session() as session:
            session.execute(delete(QueueWorker).where(QueueWorker.id == self.id))


def _has_table(catalog: Catalog) -> bool:
    return inspect(catalog.engine).has_table(QueueWorker.__tablename__)


def remote_verdicts(catalog: Catalog, stalled_after: float) -> dict[str, bool]:
    """run id → alive, for every run a worker lists: alive while that worker beats within ``stalled_after``."""
    if not _has_table(catalog):
        return {}
    cutoff = datetime.now(UTC) - timedelta(seconds=stalled_after)
    verdicts: dict[str, bool] = {}
    with catalog.read_session() as session:
        for worker in session.scalars(select(QueueWorker)):
            alive = worker.last_heartbeat >= cutoff
            for entry in worker.current or []:
                verdicts[entry["run"]] = verdicts.get(entry["run"], False) or alive
    return verdicts


def close_lost_runs(catalog: Catalog, settings: Settings) -> list[str]:
    """Close as interrupted the running crawls of workers silent for ``stalled_after`` seconds; forget workers
    lost for a day. Returns what was done, in words."""
    from scheduler.recovery import close_interrupted, run_alive

    cutoff = datetime.now(UTC) - timedelta(seconds=settings.distributed.stalled_after)
    done = []
    with catalog.read_session() as session:
        lost = [w for w in session.scalars(select(QueueWorker)) if w.last_heartbeat < cutoff]
    for worker in lost:
        for entry in worker.current or []:
            with catalog.read_session() as session:
                run = session.get(CrawlRun, entry["run"])
            if run is None or run.status != "running":
                continue
            if run.host == socket.gethostname() and run_alive(run, settings.data_dir):
                continue   # its crawl process outlived the worker on this machine: it finishes and ingests itself
            seen = worker.last_heartbeat.strftime("%Y-%m-%d %H:%M:%S UTC")
            close_interrupted(catalog, settings, run.id,
                              f"worker {worker.host} pid {worker.pid} was lost (last heartbeat {seen}): its .open "
                              "WARCs are salvaged when that worker starts again; the job is retried elsewhere")
            done.append(f"run {run.id} of {run.source_id} closed (worker {worker.id} lost)")
        if worker.last_heartbeat < datetime.now(UTC) - FORGET_AFTER:
            with catalog.session() as session:
                session.execute(delete(QueueWorker).where(QueueWorker.id == worker.id))
    return done


def job_runs(catalog: Catalog, stalled_after: float) -> tuple[dict[int, str | None], set[int]]:
    """The jobs workers list: (job id → its run's status, for lost workers; None when the run row was never
    written), and the job ids of workers still beating (their jobs are not stalled, whatever the queue thinks)."""
    if not _has_table(catalog):
        return {}, set()
    cutoff = datetime.now(UTC) - timedelta(seconds=stalled_after)
    lost: dict[int, str | None] = {}
    alive: set[int] = set()
    with catalog.read_session() as session:
        for worker in session.scalars(select(QueueWorker)):
            for entry in worker.current or []:
                if worker.last_heartbeat >= cutoff:
                    alive.add(int(entry["job"]))
                    continue
                run = session.get(CrawlRun, entry["run"])
                lost[int(entry["job"])] = run.status if run else None
    return lost, alive


def workers_state(catalog: Catalog, stalled_after: float) -> list[dict[str, Any]]:
    """Every known worker: host, pid, start, last heartbeat, state (working, idle, stopping, lost), its crawls."""
    if not _has_table(catalog):
        return []
    cutoff = datetime.now(UTC) - timedelta(seconds=stalled_after)
    with catalog.read_session() as session:
        rows = list(session.scalars(select(QueueWorker).order_by(QueueWorker.host, QueueWorker.started_at)))
    out = []
    for row in rows:
        beat = row.last_heartbeat
        state = "lost" if beat < cutoff else "stopping" if row.stopping else "working" if row.current else "idle"
        out.append({"id": row.id, "host": row.host, "pid": row.pid, "concurrency": row.concurrency,
                    "started_at": row.started_at.isoformat(timespec="seconds"),
                    "last_heartbeat": beat.isoformat(timespec="seconds"),
                    "seconds_since_heartbeat": round((datetime.now(UTC) - beat).total_seconds()),
                    "state": state, "current": list(row.current or [])})
    return out


def local_health(catalog: Catalog, stalled_after: float) -> str | None:
    """Why this machine's ``listwatch worker`` processes are not healthy, or None: each running worker process
    of this host has a row that beat within ``stalled_after`` (the scheduler's own test for a lost worker). A
    row whose pid is not a running worker is a past process (a pid reused after a container restart included)."""
    host = socket.gethostname()
    if not _has_table(catalog):
        return "no listwatch worker has ever started on this catalog (it has no queue_workers table yet)"
    with catalog.read_session() as session:
        rows = list(session.scalars(select(QueueWorker).where(QueueWorker.host == host)))
    newest: dict[int, QueueWorker] = {}
    for row in rows:
        if _is_worker(row.pid) and (row.pid not in newest or row.started_at > newest[row.pid].started_at):
            newest[row.pid] = row
    if not newest:
        return f"no running listwatch worker of this machine ({host}) is registered in the catalog"
    now = datetime.now(UTC)
    late = [f"worker pid {row.pid} last beat {(now - row.last_heartbeat).total_seconds():.0f} s ago"
            for row in newest.values() if row.last_heartbeat < now - timedelta(seconds=stalled_after)]
    return f"{'; '.join(late)} (distributed.stalled_after {stalled_after:g} s)" if late else None


def _is_worker(pid: int) -> bool:
    try:
        return pid != os.getpid() and "worker" in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
