"""``listwatch run``: the one scheduler process (APScheduler 3.11).

Jobs live in the catalog database (``SQLAlchemyJobStore``, table ``listwatch_jobs``), one per source and depth
(ids ``quick:<source>`` and ``full:<source>``), with interval or cron triggers and jitter. ``coalesce`` and an
unlimited ``misfire_grace_time`` make the runs missed while the daemon was down happen **once** at start;
``max_instances=1`` keeps a job from overlapping itself. On top of that:

- a per-source lock: a quick and a full check of one source never overlap (a quick check finding the source
  busy is skipped; a full sweep waits), plus a look at ``crawl_runs`` for a live ``running`` row of the source
  (safety across restarts: an orphaned crawl of a killed daemon may still be running);
- a semaphore of ``max_crawls`` slots (crawls at once; the runner allows ``process_crawls`` of them a process of
  their own, e.g. a browser source);
- housekeeping jobs (in memory, not persisted): alert delivery every ``deliver_interval`` s; every
  ``maintenance_interval`` s recovery of dead runs, queueing of events a killed crawl never queued, a spool sync
  retry when WARCs wait, and the health checks; every ``retention.interval`` s the rows of old unchanged checks
  are pruned (:mod:`archive.retention`);
  a look at ``sources_dir`` every few seconds (and on SIGHUP) that adds, changes and removes jobs
  (:mod:`scheduler.jobs`).

Distributed mode (``distributed.enabled``, PostgreSQL catalog): a due check is *queued* instead of run
(:mod:`scheduler.queue`; ``listwatch worker`` processes run it), and every ``distributed.heartbeat`` seconds the
crawls of lost workers are closed and their jobs retried elsewhere. Alert delivery, health checks and the lost-alert
guard stay here (one process sends, so two machines never race for the same endpoint); spool sync moves to the
workers, since each spool is local to its machine.

SIGTERM/SIGINT: stop scheduling, give running crawls ``stop_grace`` s, then stop them (SIGTERM, SIGKILL); one last
alert delivery pass sends what they found.
Scheduler only (APScheduler 3.x cannot share a job store between processes): one per catalog, enforced by
:mod:`scheduler.singleton` (a second ``listwatch run`` refuses, or stands by with ``--standby``).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any, ClassVar

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from archive.catalog import open_catalog
from crawlers.run import new_run_id
from crawlers.sources import Source
from scheduler import health, logs
from scheduler.jobs import JOB_TABLE, SourceJobs
from scheduler.metrics import Metrics
from scheduler.recovery import recover, source_busy, sync_spool
from scheduler.runner import CrawlRunner
from scheduler.settings import Settings, require_distributed
from scheduler.singleton import SchedulerHeld, SchedulerLock, hold, scheduler_lock

log = logging.getLogger(__name__)
WATCH_SOURCES = 2.0


def scheduled_crawl(source_id: str, kind: str, signature: str = "") -> None:
    """What the persisted jobs call (importable by path, as pickled jobs need)."""
    daemon = Daemon.current
    if daemon is None:
        log.warning("no daemon to run %s:%s", kind, source_id)
        return
    daemon.crawl(source_id, kind)


class Daemon:
    current: ClassVar[Daemon | None] = None

    def __init__(self, settings: Settings, lock: SchedulerLock | None = None) -> None:
        self.settings = settings
        self.lock = lock            # the one-scheduler lock run_daemon took (None in tests that drive a Daemon)
        self.stop_requested = threading.Event()
        self.lost_lock = False
        self.catalog = open_catalog(settings.catalog)
        self.stopping = threading.Event()
        self.delivery_closed = threading.Event()    # set after the last delivery pass of a graceful stop
        self.stop_at: float | None = None
        self.slots = threading.BoundedSemaphore(settings.scheduler.max_crawls)
        self.metrics = Metrics()
        self.runner = CrawlRunner(settings, self.catalog, stopping=self.stopping, stop_deadline=lambda: self.stop_at)
        self.active: dict[str, str] = {}            # run id → source id
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.distributed = settings.distributed.enabled
        self.queue: Any = None                      # the Procrastinate app jobs are queued with (distributed mode)
        workers = settings.scheduler.max_crawls * 2 + 2
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.catalog.engine, tablename=JOB_TABLE),
                       "internal": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(workers),
                       # delivery passes, maintenance, watching sources, retention (a long pass must not
                       # hold the others back)
                       "internal": ThreadPoolExecutor(3 + settings.scheduler.deliver_passes)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}, timezone=UTC)
        self.jobs = SourceJobs(self.scheduler, settings, scheduled_crawl)

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        Daemon.current = self
        if self.distributed:
            self._open_queue()
        try:
            closed = recover(self.catalog, self.settings)
        except Exception:   # the maintenance pass retries; the daemon must start whatever the spool holds
            log.exception("recovery of dead runs failed at start")
            closed = []
        if closed:
            log.warning("closed %d run(s) left running by a dead process: %s", len(closed), ", ".join(closed))
            self.sync_spool()
        self.scheduler.start(paused=True)
        self.jobs.reload()
        s = self.settings.scheduler
        # Overlapping delivery passes: a pass busy with a slow endpoint does not hold the others' alerts back
        # (a subscription being sent to is left to the pass that has it; see alerts.outbox).
        self._internal(self.deliver_alerts, s.deliver_interval, "deliver", instances=s.deliver_passes)
        self._internal(self.maintenance, s.maintenance_interval, "maintenance")
        self._internal(self.jobs.watch, WATCH_SOURCES, "watch-sources")
        if self.settings.retention.unchanged_days:
            self._internal(self.prune_unchanged, self.settings.retention.interval, "retention")
        if self.distributed:
            d = self.settings.distributed   # a lost worker is noticed within stalled_after + a third of it
            self._internal(self.watch_workers, max(d.heartbeat, d.stalled_after / 3), "watch-workers")
        if s.metrics_port:
            self.metrics.serve(s.metrics_port)
        self.scheduler.resume()
        log.info("scheduler running: %d source(s), %s", len(self.jobs.sources),
                 "crawls queued for `listwatch worker`s" if self.distributed else f"{s.max_crawls} crawl slot(s)")
        if not self.jobs.sources:
            log.warning("no sources to schedule: %s holds no valid *.yaml source file%s; add one (`listwatch "
                        "sources new URL` writes one) and it is crawled within a few seconds",
                        self.settings.sources_dir.resolve(),
                        f" ({len(self.jobs.skipped)} skipped, see above)" if self.jobs.skipped else "")

    def _internal(self, func: Callable[[], Any], seconds: float, name: str, instances: int = 1) -> None:
        self.scheduler.add_job(func, IntervalTrigger(seconds=seconds, timezone=UTC), id=name, jobstore="internal",
                               executor="internal", replace_existing=True, max_instances=instances)

    def stop(self) -> None:
        """Stop scheduling; running crawls get ``stop_grace`` seconds, then SIGTERM, then SIGKILL.

        Delivery goes on while crawls finish, and one last pass sends what they found (each subscription for at
        most ``deliver_budget`` s, as in any pass); what is left waits in the outbox for the next start.
        """
        s = self.settings.scheduler
        self.stop_at = time.monotonic() + s.stop_grace
        self.stopping.set()
        log.info("stopping: %d crawl(s) running get %d s to finish", len(self.active), s.stop_grace)
        self.scheduler.shutdown(wait=False)
        deadline = self.stop_at + s.kill_grace + 10
        while self.active and time.monotonic() < deadline:
            time.sleep(0.2)
        self.deliver_alerts()   # what the last crawls found goes out now, not at the next start
        self.delivery_closed.set()
        self.runner.close()   # the crawl hosts, once their runs have ended
        if self.queue is not None:
            self.queue.close()
        Daemon.current = None
        log.info("stopped")

    def serve(self) -> None:
        """Run until SIGTERM/SIGINT (main thread only); SIGHUP reloads the sources."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        stop = self.stop_requested
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.jobs.reload_requested.set())
        try:
            self.start()
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- crawls --------------------------------------------------------------------------------------

    def _lock(self, source_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(source_id, threading.Lock())

    def _acquire(self, lock: threading.Lock | threading.BoundedSemaphore, wait: bool, limit: float) -> bool:
        if not wait:
            return lock.acquire(blocking=False)
        deadline = time.monotonic() + limit
        while not self.stopping.is_set() and time.monotonic() < deadline:
            if lock.acquire(timeout=0.5):
                return True
        return False

    def crawl(self, source_id: str, kind: str) -> None:
        """One scheduled check: per-source lock, DB check, a crawl slot, the subprocess, then health."""
        entry = self.jobs.sources.get(source_id)
        if entry is None or self.stopping.is_set():
            return
        source, path = entry
        if self.distributed:
            self.enqueue(source, path, kind)
            return
        lock = self._lock(source_id)
        limit = self.settings.scheduler.crawl_timeout + self.settings.scheduler.kill_grace
        with logs.context(source=source_id, kind=kind):
            if not self._acquire(lock, wait=kind == "full", limit=limit):
                log.info("%s check skipped: the source is being crawled", kind)
                return
            try:
                busy = source_busy(self.catalog, self.settings, source_id)
                if busy:
                    log.info("%s check skipped: run %s of this source is still running", kind, busy)
                    return
                if not self._acquire(self.slots, wait=True, limit=float("inf")):
                    return
                try:
                    self._run(source, path, kind)
                finally:
                    self.slots.release()
            except Exception:  # a scheduler job must never die on one crawl's bookkeeping
                log.exception("%s check failed", kind)
            finally:
                lock.release()
        self.after_run(source_id)

    def _run(self, source: Source, path: Path, kind: str) -> None:
        run_id = new_run_id()
        self.active[run_id] = source.id
        self.metrics.running.inc()
        try:
            with logs.context(run_id=run_id):
                result = self.runner.run(source, path, kind, run_id)
        finally:
            self.active.pop(run_id, None)
            self.metrics.running.dec()
        self.metrics.record_run(source.id, kind, result.status, items=result.items, warc_bytes=result.warc_bytes,
                                seconds=result.seconds)
        if result.salvaged:
            self.sync_spool()

    # -- distributed mode ------------------------------------------------------------------------------

    def _open_queue(self) -> None:
        from scheduler.queue import ensure_schema, make_app

        ensure_schema(self.catalog)
        self.queue = make_app(self.settings, sync=True)
        self.queue.open()

    def enqueue(self, source: Source, path: Path, kind: str) -> None:
        from scheduler.queue import enqueue

        with logs.context(source=source.id, kind=kind):
            try:
                job = enqueue(self.queue, source, path, kind)
            except Exception:   # database away: the job's next tick (or the catch-up at restart) queues it
                log.exception("%s check not queued", kind)
                return
            if job is None:
                log.info("%s check already waits in the queue: not queued twice", kind)
            else:
                log.info("%s check queued (job %d)", kind, job)

    def watch_workers(self) -> None:
        from scheduler.queue import watch

        try:
            watch(self.settings, self.catalog)
        except Exception:
            log.exception("watch over lost workers failed; retried in %g s", self.settings.distributed.heartbeat)

    def after_run(self, source_id: str) -> None:
        health.check_sources(self.catalog, self.settings, [source_id])

    # -- housekeeping --------------------------------------------------------------------------------

    def deliver_alerts(self) -> None:
        from scheduler.alerts import deliver_due

        try:
            deliver_due(self.catalog, self.settings, stop=self.delivery_closed.is_set)
        except Exception:
            log.exception("alert delivery pass failed")
        from scheduler.status import alert_backlog

        self.metrics.alert_backlog.set(alert_backlog(self.catalog))

    def sync_spool(self) -> None:
        sync_spool(self.catalog, self.settings, "at the next maintenance pass")

    def maintenance(self) -> None:
        from scheduler.alerts.outbox import enqueue_missed
        from scheduler.status import spool_backlog

        if self.lock is not None and not self.lock.still_held():
            # The lock went with its connection (database restart, network cut): another scheduler may take
            # it now, so this one stops rather than risk two schedulers; a supervisor restarts it.
            log.error("lost the one-scheduler lock; stopping")
            self.lost_lock = True
            self.stop_requested.set()
            return
        try:
            recover(self.catalog, self.settings, ours=set(self.active))
            enqueue_missed(self.catalog)   # events of a crawl killed between recording and queueing them
            self.sync_spool()
            if self.distributed:
                from scheduler.queue import prune_finished

                prune_finished(self.settings)
            health.check_sources(self.catalog, self.settings, list(self.jobs.sources))
        except Exception:
            log.exception("maintenance pass failed")
        self.metrics.spool_backlog.set(spool_backlog(self.settings)["closed"])


    def prune_unchanged(self) -> None:
        """Retention (archive/retention.py): old unchanged checks' rows go, their WARCs stay in the store."""
        from archive.retention import prune_unchanged

        try:
            result = prune_unchanged(self.catalog, older_than_days=self.settings.retention.unchanged_days,
                                     stop=self.stop_requested.is_set)
        except Exception:
            log.exception("retention pass failed")
            return
        if result.checks:
            log.info("retention: deleted the rows of %d unchanged check(s) older than %d days (%d captures, %d WARC "
                     "files; the WARCs stay in the store)", result.checks, self.settings.retention.unchanged_days,
                     result.captures, result.warc_files)


def run_daemon(settings: Settings, standby: bool = False) -> None:
    """Take the one-scheduler lock (raise SchedulerHeld, or wait with ``standby``), then serve until stopped."""
    if settings.distributed.enabled:
        require_distributed(settings, "listwatch run")
    logs.configure(settings.log_level, settings.log_json)
    if settings.distributed.enabled:
        from scheduler.queue import quiet_queue_logs

        quiet_queue_logs()
    lock = scheduler_lock(settings.catalog, settings.data_dir)
    hold(lock, standby, on_wait=lambda who: log.warning("standing by: the scheduler lock is held by %s", who))
    try:
        daemon = Daemon(settings, lock)
        daemon.serve()
    finally:
        lock.release()
    if daemon.lost_lock:   # exit non-zero so a supervisor (systemd Restart=on-failure) starts it again
        raise SchedulerHeld("the one-scheduler lock was lost (database connection broken); stopped")
