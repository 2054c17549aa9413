"""A crawl host: one long-lived process that runs many scheduled crawls, each in the same running reactor.

Started by :mod:`scheduler.hostpool` as ``python -m scheduler.crawlhost`` (internal, not a CLI command). A
crawl subprocess spends 2.5–4 CPU-seconds importing Python, Scrapy and the catalog before its first request;
an unchanged quick check of a static listing needs a fraction of that. A host pays the start-up once:
Scrapy's asyncio reactor is installed once and keeps running (a Twisted reactor cannot restart), each job is
one :class:`scrapy.crawler.Crawler` started in it (the ``CrawlerRunner`` way), and the catalog engine and the
store client stay open.

Protocol (JSON lines). Jobs arrive on stdin: ``{"run": RUN_ID, "source": PATH, "kind": "quick"}`` and
``{"cancel": RUN_ID, "reason": "..."}``. Results go to the file descriptor named by ``LISTWATCH_HOST_FD``
(not stdout, which a hook's ``print`` could corrupt): ``{"ready": PID}``, ``{"beat": TIME}`` every second
from the reactor (a blocked reactor stops beating), ``{"started": RUN_ID}`` once the run's lease is held,
``{"done": RUN_ID, "status": ..., "error": ...}`` after ingest.

Each job, like ``listwatch crawl`` does for one source (the same functions of :mod:`scheduler.pipeline`): the
run lease (:mod:`scheduler.lease`) is taken first and held until ingest ends; the known keys and pages to
re-check are read; the crawl runs; then ingest, store and the health check run in a worker thread, off the
reactor. Log records of a run go to its ``crawl.log`` (routed by the record's spider or the run's log
context); the rest go to stderr, which is the scheduler's log.

Stdin closing means the parent died (or recycles this host with nothing in flight): the host exits at once,
so a SIGKILLed scheduler or worker leaves no crawl behind (its runs are recovered at its next start, as for a
killed crawl subprocess). ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the child
ends, and the parent starts hosts from whichever scheduler thread needed one. SIGTERM (someone stopping the
host directly; the systemd unit's ``KillMode=mixed`` signals only the scheduler, which gives crawls their
``stop_grace``) closes every spider gracefully, ingests what was captured, then exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from scrapy.http import Response

from archive.catalog import open_catalog
from archive.dedup import DedupIndex
from archive.storage import open_storage
from crawlers import settings as crawl_defaults
from crawlers.capture import close_capture
from crawlers.report import LOG_FILE, run_dir
from crawlers.run import freeze_startup_objects, load_report, make_crawler, spider_arguments
from crawlers.sources import load_source
from scheduler import health, logs
from scheduler.hostlog import RunLogRouter
from scheduler.lease import RunLease, lease_path
from scheduler.pipeline import crawl_options, ingest, prepare_job, store
from scheduler.settings import Settings, load_settings

log = logging.getLogger(__name__)
FD_ENV = "LISTWATCH_HOST_FD"
BEAT = 1.0
STOP_AGAIN = 0.5


class AbortableHTTP(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, plus :meth:`abort` of the downloads in flight.

    Closing a spider waits for its in-flight downloads, so a server that never answers would hold a stopped
    crawl until ``DOWNLOAD_TIMEOUT``; in a shared host its co-tenants would then lose their crawls when the host
    is killed. Cancelling the download's future cancels Twisted's request, which drops the connection."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._inflight: set[asyncio.Task[Response]] = set()
        self._aborted: weakref.WeakSet[asyncio.Task[Response]] = weakref.WeakSet()
        crawler.__dict__.setdefault("listwatch_aborts", []).append(self.abort)

    async def download_request(self, request: Request) -> Response:
        task = asyncio.ensure_future(super().download_request(request))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            return await task
        except asyncio.CancelledError:
            if task not in self._aborted:
                raise
            # An ordinary failure of this request: a CancelledError escaping into Scrapy's downloader would
            # leave the request counted as in progress, and the spider would never finish closing.
            raise DownloadAborted("download aborted: the crawl was stopped") from None

    def abort(self) -> None:
        for task in list(self._inflight):
            self._aborted.add(task)
            task.cancel()


class DownloadAborted(Exception):
    """A download cut short because its crawl is being stopped (time limit, scheduler stopping)."""


HANDLERS = {"http": f"{__name__}.AbortableHTTP", "https": f"{__name__}.AbortableHTTP"}


@dataclass
class Job:
    run_id: str
    source_path: Path
    kind: str
    crawler: Any = None
    cancelled: str = ""
    stop_sent: bool = False


class CrawlHost:
    """Runs the jobs it is sent, several at once, in the reactor of this process."""

    def __init__(self, settings: Settings, out: Any, router: RunLogRouter) -> None:
        self.settings = settings
        self.out = out
        self.router = router
        self.catalog = open_catalog(settings.catalog)
        self.storage = open_storage(settings)
        self.jobs: dict[str, Job] = {}
        self.stopping = False
        self._send_lock = threading.Lock()

    def send(self, **message: Any) -> None:
        line = json.dumps(message) + "\n"
        with self._send_lock:
            self.out.write(line)
            self.out.flush()

    # -- messages from the parent (called in the reactor thread) ------------------------------------

    def receive(self, message: dict[str, Any]) -> None:
        if "run" in message:
            job = Job(message["run"], Path(message["source"]), message["kind"])
            self.jobs[job.run_id] = job
            asyncio.get_event_loop().create_task(self.run_job(job))
        elif "cancel" in message:
            self.cancel(message["cancel"], message.get("reason", "cancelled"))

    def cancel(self, run_id: str, reason: str) -> None:
        job = self.jobs.get(run_id)
        if job is None or job.cancelled:
            return
        job.cancelled = reason
        log.warning("stopping the crawl: %s", reason, extra={"run_id": run_id})
        self._stop(job)

    def _stop(self, job: Job) -> None:
        """Stop a cancelled job's crawl: Scrapy closes the spider at a safe point (its WARC closes, ingest
        follows), and downloads in flight are cut. Repeated until the job ends: a crawl still opening cannot
        be stopped yet, and a download may start while the engine winds down."""
        if job.run_id not in self.jobs:
            return
        crawler = job.crawler   # None: not started yet, and it checks ``cancelled`` before starting
        engine = getattr(crawler, "_engine", None)
        if crawler is not None and engine is not None and engine.running and not job.stop_sent:
            job.stop_sent = True
            asyncio.get_event_loop().create_task(crawler.stop_async())
        for abort in crawler.__dict__.get("listwatch_aborts", []) if crawler is not None else []:
            abort()
        asyncio.get_event_loop().call_later(STOP_AGAIN, self._stop, job)

    def stop_all(self, reason: str) -> None:
        self.stopping = True
        for run_id in list(self.jobs):
            self.cancel(run_id, reason)
        self._exit_when_idle()

    def _exit_when_idle(self) -> None:
        if self.stopping and not self.jobs:
            twisted_reactor().stop()

    # -- one job -------------------------------------------------------------------------------------

    async def run_job(self, job: Job) -> None:
        source_id = "?"
        try:
            source = load_source(job.source_path)
            source_id = source.id
            path = run_dir(self.settings.data_dir, source.id, job.run_id) / LOG_FILE
            self.router.begin(job.run_id, path)
            with logs.context(run_id=job.run_id, source=source.id), \
                    RunLease(lease_path(self.settings.data_dir, source.id, job.run_id)):
                self.send(started=job.run_id)
                status = await self._crawl_and_ingest(job, source)
            self.send(done=job.run_id, status=status)
        except Exception as exc:   # the parent records the run as failed with this reason
            log.exception("crawl host job %s of %s failed", job.run_id, source_id)
            self.send(done=job.run_id, error=f"{type(exc).__name__}: {exc}")
        finally:
            self.jobs.pop(job.run_id, None)
            self.router.end(job.run_id)
            self._exit_when_idle()

    async def _crawl_and_ingest(self, job: Job, source: Any) -> str:
        settings, catalog = self.settings, self.catalog
        crawl_job = await asyncio.to_thread(prepare_job, catalog, source, job.run_id, job.kind)
        options = replace(crawl_options(settings, dedup=DedupIndex(catalog, spool_dir=settings.spool_dir,
                                                                   storage=self.storage)),
                          extra={"DOWNLOAD_HANDLERS": HANDLERS})
        if not job.cancelled:
            job.crawler = make_crawler(crawl_job, options)
            try:
                await job.crawler.crawl_async(**spider_arguments(crawl_job))
            except Exception:   # e.g. a hook that cannot load: the report says "failed to start"
                log.exception("crawl of %s failed", source.id)
            finally:   # however it ended (finished, stopped, timed out, raised): no writer thread left idle here
                close_capture(job.crawler)
        report = load_report(crawl_job, options)

        def finish() -> str:
            with logs.context(run_id=job.run_id, source=source.id):
                outcome = ingest(settings, catalog, source, report)
                store(settings, catalog, self.storage, [outcome])
                health.check_sources(catalog, settings, [source.id])
                return outcome.status

        return await asyncio.to_thread(finish)


def twisted_reactor() -> Any:
    """The installed reactor (typed loosely: Twisted's interfaces do not declare ``run``'s keywords)."""
    from twisted.internet import reactor

    return reactor


def _read_jobs(host: CrawlHost, reactor: Any) -> None:
    """Stdin reader (a thread): hands each job to the reactor; at end of input the parent is gone, so exit."""
    for line in sys.stdin:
        if line.strip():
            reactor.callFromThread(host.receive, json.loads(line))
    if host.jobs:
        sys.stderr.write(f"crawl host {os.getpid()}: the scheduler is gone; {len(host.jobs)} crawl(s) abandoned "
                         "(recovered at its next start)\n")
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    from scrapy.utils.reactor import install_reactor

    from scheduler.alerts.redact import install_log_redaction

    install_log_redaction()   # as for every CLI command: no password or token in a log line
    settings = load_settings()
    out = os.fdopen(int(os.environ[FD_ENV]), "w", encoding="utf-8")
    router = RunLogRouter.install(settings.log_level)
    install_reactor(crawl_defaults.TWISTED_REACTOR, crawl_defaults.ASYNCIO_EVENT_LOOP)
    logging.getLogger("tldextract").setLevel(logging.ERROR)
    from twisted.internet.task import LoopingCall

    reactor = twisted_reactor()
    host = CrawlHost(settings, out, router)
    stop = "interrupted: the crawl host was asked to stop (SIGTERM)"
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(host.stop_all, stop))
    beat = LoopingCall(lambda: host.send(beat=time.time()))
    reactor.callWhenRunning(beat.start, BEAT)
    reactor.callWhenRunning(lambda: host.send(ready=os.getpid()))
    threading.Thread(target=_read_jobs, args=(host, reactor), name="crawl-host-jobs", daemon=True).start()
    freeze_startup_objects()   # once: what each crawl allocates must stay collectable in a long-lived host
    reactor.run(installSignalHandlers=False)


if __name__ == "__main__":
    main()
