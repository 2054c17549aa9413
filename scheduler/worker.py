"""``listwatch worker``: takes crawl jobs from the queue (:mod:`scheduler.queue`) and runs them, on any machine.

Each job runs through :class:`scheduler.runner.CrawlRunner` exactly as the single-machine scheduler runs a crawl
(in a long-lived crawl host or its own subprocess, ``crawl_timeout``, ``crawl_memory_mb``),
``scheduler.max_crawls`` at once in Procrastinate's worker threads. The spool is this machine's (``data_dir``);
the crawl ingests into the shared catalog and moves its WARCs to the shared store itself. What stays here
because only this machine can do it:

- **spool sync retry**: closed WARCs a crawl could not move to the store (store down) are retried every
  ``scheduler.maintenance_interval`` seconds — the spool is local, so no other process can;
- **salvage at start**: ``.open`` WARCs of runs that are no longer running (this worker was killed; the scheduler
  closed its runs as interrupted and the jobs were re-crawled elsewhere) are closed and moved to the store: the
  captured bytes are kept as evidence, while the programmes of those checks come from the re-crawl, so each
  check is ingested once. Runs this host left ``running`` are recovered as by ``listwatch run``;
- **heartbeat**: the ``queue_workers`` row (:mod:`scheduler.worker_registry`).

SIGTERM/SIGINT: take no new job; running crawls get ``stop_grace`` seconds, then SIGTERM/SIGKILL (as ``run``);
a crawl cut short that way is handed back to the queue for another worker; then the worker leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from archive.catalog import open_catalog
from archive.catalog.models import CrawlRun
from crawlers.run import new_run_id
from crawlers.sources import SourceError, load_source
from scheduler import logs
from scheduler.queue import QUEUE, TASK, ensure_schema, make_app, quiet_queue_logs
from scheduler.recovery import recover, source_busy, sync_spool
from scheduler.runner import CrawlRunner, salvage_run
from scheduler.settings import Settings, require_distributed
from scheduler.worker_registry import Registration

log = logging.getLogger(__name__)
BUSY_POLL = 2.0
RUN_PREFIX = re.compile(r"^(?P<source>.+)-(?P<run>\d{8}T\d{6}Z-[0-9a-f]+)")


class WorkerFailed(RuntimeError):
    """The worker stopped on an error, not on request (exit 1: a supervisor restarts it)."""


class WorkerStopping(Exception):
    """A crawl was cut short because this worker is stopping: the job goes back to the queue."""


class Worker:
    def __init__(self, settings: Settings, concurrency: int) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.catalog = open_catalog(settings.catalog)
        self.stopping = threading.Event()
        self.stop_at: float | None = None
        self.runner = CrawlRunner(settings, self.catalog, stopping=self.stopping, stop_deadline=lambda: self.stop_at)
        self.registration = Registration(self.catalog, concurrency)
        self._quit = threading.Event()
        self.failed = False

    # -- start: recover this machine's spool ---------------------------------------------------------

    def recover_spool(self) -> None:
        closed = recover(self.catalog, self.settings)
        if closed:
            log.warning("closed %d run(s) this host left running: %s", len(closed), ", ".join(closed))
        salvaged = self.salvage_orphans()
        if closed or salvaged:
            self.sync_spool()

    def salvage_orphans(self) -> int:
        """Salvage ``.open`` WARCs whose run is closed (by the scheduler, after this worker was lost)."""
        from archive.salvage import open_files

        runs: set[tuple[str, str]] = set()
        for path in open_files(self.settings.spool_dir):
            match = RUN_PREFIX.match(path.name)
            if match:
                runs.add((match["source"], match["run"]))
        count = 0
        for source_id, run_id in sorted(runs):
            with self.catalog.read_session() as session:
                run = session.get(CrawlRun, run_id)
            if run is not None and run.status == "running":
                continue   # recover() left it: its crawl is alive
            done = salvage_run(self.settings.spool_dir, source_id, run_id)
            count += len(done)
            if done:
                log.warning("salvaged %d .open WARC(s) of run %s (%s), closed while this worker was away",
                            len(done), run_id, run.status if run else "no run row")
        return count

    def sync_spool(self) -> None:
        sync_spool(self.catalog, self.settings, f"in {self.settings.scheduler.maintenance_interval:g} s")

    # -- heartbeat and housekeeping (a thread) --------------------------------------------------------

    def housekeeping(self) -> None:
        beat = self.settings.distributed.heartbeat
        next_sync = time.monotonic() + self.settings.scheduler.maintenance_interval
        while not self._quit.wait(beat):
            try:
                self.registration.beat()
            except Exception:   # the database is away: beat again later (the scheduler may call us lost)
                log.exception("heartbeat failed")
            if time.monotonic() >= next_sync:
                next_sync = time.monotonic() + self.settings.scheduler.maintenance_interval
                self.sync_spool()

    # -- one job -------------------------------------------------------------------------------------

    def crawl_job(self, context: Any, source_id: str, kind: str, file: str, text: str) -> str:
        """The task: one check of one source. Returns the run's status."""
        job_id = int(context.job.id)
        job_dir = self.settings.data_dir / "jobs" / str(job_id)
        with logs.context(source=source_id, kind=kind):
            try:
                path = self._source_file(job_dir, file, text)
                try:
                    source = load_source(path)
                except SourceError as exc:   # not retried: the same text fails the same way
                    log.error("job %d: the queued source file does not load here: %s", job_id, exc)
                    return "failed"
                if not self._wait_until_free(source.id):
                    return "skipped"
                run_id = new_run_id()
                self.registration.start(job_id, source.id, kind, run_id)
                try:
                    log.info("job %d: %s check of %s, run %s (attempt %d)", job_id, kind, source.id, run_id,
                             context.job.attempts + 1)
                    with logs.context(run_id=run_id):
                        result = self.runner.run(source, path, kind, run_id, on_retry=lambda retry: (
                            self.registration.start(job_id, source.id, kind, retry)))   # replaces the first run
                finally:
                    self.registration.finish(job_id)
                if result.salvaged:
                    self.sync_spool()
            finally:
                shutil.rmtree(job_dir, ignore_errors=True)
        if self.stopping.is_set() and result.status == "interrupted" and not self._waiting(f"{kind}:{source.id}"):
            raise WorkerStopping(f"run {run_id} interrupted by this worker's stop: queued again for another worker")
        return result.status

    def _waiting(self, check: str) -> bool:
        """Whether the same check already waits in the queue (it covers this one; a retry would collide)."""
        query = text("SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = :c AND status = 'todo'")
        with self.catalog.engine.connect() as conn:
            return conn.execute(query, {"c": check}).first() is not None

    def _source_file(self, job_dir: Path, file: str, text: str) -> Path:
        job_dir.mkdir(parents=True, exist_ok=True)
        path = job_dir / Path(file).name   # a bare name: the text is the scheduler's copy of the source file
        path.write_text(text, encoding="utf-8")
        return path

    def _wait_until_free(self, source_id: str) -> bool:
        """Wait while a run of this source is alive outside the queue (a manual crawl, an orphaned crawl)."""
        s = self.settings.scheduler
        deadline = time.monotonic() + s.crawl_timeout + s.kill_grace
        told = False
        while (busy := source_busy(self.catalog, self.settings, source_id)) is not None:
            if self.stopping.is_set() or time.monotonic() > deadline:
                log.warning("check skipped: run %s of this source is still running", busy)
                return False
            if not told:
                log.info("waiting for run %s of this source to finish", busy)
                told = True
            time.sleep(BUSY_POLL)
        return True

    # -- life cycle ----------------------------------------------------------------------------------

    def begin_stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stop_at = time.monotonic() + self.settings.scheduler.stop_grace
        self.stopping.set()
        log.info("stopping: no new job; running crawls get %d s to finish", self.settings.scheduler.stop_grace)
        with contextlib.suppress(Exception):
            self.registration.stopping()

    async def _serve(self) -> None:
        import procrastinate

        d = self.settings.distributed
        app = make_app(self.settings)
        app.task(name=TASK, queue=QUEUE, pass_context=True,
                 retry=procrastinate.RetryStrategy(max_attempts=d.max_attempts, retry_exceptions={WorkerStopping}),
                 )(self.crawl_job)
        loop = asyncio.get_running_loop()
        async with app.open_async():
            task = asyncio.create_task(app.run_worker_async(
                queues=[QUEUE], name=self.registration.id, concurrency=self.concurrency,
                install_signal_handlers=False, update_heartbeat_interval=d.heartbeat,
                stalled_worker_timeout=d.stalled_after, fetch_job_polling_interval=d.poll_interval,
                listen_notify=True, delete_jobs="never"))

            def on_signal() -> None:
                self.begin_stop()
                task.cancel()   # Procrastinate then stops fetching and waits for the running jobs

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal)
            log.info("worker %s: %d crawl slot(s), waiting for jobs", self.registration.id, self.concurrency)
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                # Procrastinate's loop ended on its own (e.g. this worker was pruned as stalled after a pause longer
                # than stalled_after, or the database went away): stop the crawls as on SIGTERM and exit 1 so a
                # supervisor starts a fresh worker; the jobs it held are retried elsewhere.
                log.exception("the job queue loop failed; stopping this worker")
                self.failed = True
                self.begin_stop()

    def serve(self) -> None:
        ensure_schema(self.catalog)
        self.recover_spool()
        self.registration.register()
        keeper = threading.Thread(target=self.housekeeping, name="worker-housekeeping", daemon=True)
        keeper.start()
        try:
            asyncio.run(self._serve())
        finally:
            self._quit.set()
            keeper.join(5)
            self.runner.close()   # the crawl hosts, once their runs have ended
            self.sync_spool()
            self.registration.leave()
            log.info("worker stopped")


def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    """``listwatch worker``: raise SettingsError unless distributed mode is set up; serve until SIGTERM/SIGINT."""
    require_distributed(settings, "listwatch worker")
    logs.configure(settings.log_level, settings.log_json)
    quiet_queue_logs()
    worker = Worker(settings, concurrency or settings.scheduler.max_crawls)
    worker.serve()
    if worker.failed:
        raise WorkerFailed("the job queue loop failed (see the log above); stopped")
