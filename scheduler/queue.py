"""Distributed mode's job queue: Procrastinate on the PostgreSQL catalog (no other broker).

``listwatch run`` puts one job per due check here (:func:`enqueue`); ``listwatch worker`` processes
(:mod:`scheduler.worker`) take them. Two Procrastinate locks per job:

- ``queueing_lock = "<kind>:<source>"``: while a check of a source waits in the queue, the same check is not
  queued again (a tick that finds it waiting is a no-op: the waiting job covers it). A quick and a full check
  of one source may both wait: the full sweep is never dropped behind a quick check;
- ``lock = "<source>"``: no two jobs of one source run at once, on any machine (a quick check waits behind
  a running full sweep of its source, as the single-machine scheduler's full sweep waits for a quick one).

A worker that dies (machine lost, kill -9) stops beating. :func:`watch`, run by the scheduler every
``distributed.heartbeat`` seconds, first closes the crawls such workers ran as ``interrupted`` (their ``.open``
WARCs stay on that machine's spool and are salvaged when it comes back; see :mod:`scheduler.worker`), then
retries their jobs (Procrastinate's ``get_stalled_jobs`` + ``retry_job``): the crawl runs again on another
worker, as a new run. If the same check was queued again meanwhile, or the job has used its
``distributed.max_attempts``, the stalled job is marked failed instead: the waiting job or the next tick covers it.
A job whose crawl had already ended (and ingested) when its worker died is marked succeeded, not run again: each
check is ingested once.

Queue figures for ``listwatch status`` and the web (:func:`queue_state`) are plain SQL over Procrastinate's
tables, so reading them needs no Procrastinate import.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from archive.catalog import Catalog
from archive.catalog.types import as_utc
from crawlers.sources import Source
from scheduler.settings import Settings

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger(__name__)
QUEUE = "crawls"
TASK = "listwatch.crawl"
SCHEMA_KEY = 0x6C69_7374_7761_7471 >> 1   # advisory lock: one process installs Procrastinate's schema
KEEP_FINISHED_HOURS = 24                   # finished jobs kept this long (status history), then deleted


def quiet_queue_logs() -> None:
    """Procrastinate's INFO lines repeat each job's arguments (a whole source file); ours say job, source, run."""
    logging.getLogger("procrastinate").setLevel(max(logging.WARNING, logging.getLogger().level))


def conninfo(catalog_url: str) -> str:
    """The libpq URL of a SQLAlchemy ``postgresql+psycopg://`` catalog URL (what psycopg connects with)."""
    return make_url(catalog_url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(settings: Settings, *, sync: bool = False) -> procrastinate.App:
    """A Procrastinate app on the catalog's database (sync: for deferring from the scheduler's threads)."""
    import procrastinate

    connector: procrastinate.BaseConnector
    if sync:
        connector = procrastinate.SyncPsycopgConnector(conninfo=conninfo(settings.catalog), min_size=1, max_size=4)
    else:
        connector = procrastinate.PsycopgConnector(conninfo=conninfo(settings.catalog))
    return procrastinate.App(connector=connector)


def ensure_schema(catalog: Catalog) -> bool:
    """Install Procrastinate's tables when they are missing (True if it did). Safe from several processes."""
    from procrastinate.schema import SchemaManager

    with catalog.engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_KEY})
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cursor:   # a multi-statement script: psycopg's simple query protocol, no parameters
            cursor.execute(SchemaManager.get_schema())
    log.info("installed the job queue's tables (Procrastinate) in the catalog database")
    return True


def enqueue(app: procrastinate.App, source: Source, path: Path, kind: str) -> int | None:
    """Queue one check of ``source``; None when the same check already waits in the queue.

    The job carries the source file's text, so a worker needs no copy of ``sources_dir``.
    """
    from procrastinate.exceptions import AlreadyEnqueued

    deferrer = app.configure_task(TASK, queue=QUEUE, lock=source.id, queueing_lock=f"{kind}:{source.id}")
    try:
        return deferrer.defer(source_id=source.id, kind=kind, file=path.name,
                              text=path.read_text(encoding="utf-8"))
    except AlreadyEnqueued:
        return None


# -- the scheduler's watch over lost workers --------------------------------------------------------------

def watch(settings: Settings, catalog: Catalog) -> list[str]:
    """Close the crawls of lost workers, then retry (or fail) their jobs. Returns what was done, in words."""
    from scheduler.worker_registry import close_lost_runs, job_runs

    done = close_lost_runs(catalog, settings)
    lost, alive = job_runs(catalog, settings.distributed.stalled_after)
    done += asyncio.run(_retry_stalled(settings, lost, alive))
    return done


async def _retry_stalled(settings: Settings, lost: dict[int, str | None], alive: set[int]) -> list[str]:
    from procrastinate import exceptions
    from procrastinate.jobs import Status

    app = make_app(settings)
    done = []
    async with app.open_async():
        manager = app.job_manager
        silent = settings.distributed.stalled_after
        stalled = await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=silent)
        for job in stalled:
            what = f"job {job.id} ({job.queueing_lock})"
            run_status = lost.get(job.id) if job.id is not None else None
            if job.id in alive:
                continue   # its worker still beats in our table: slow, not lost
            if run_status not in (None, "running", "interrupted"):
                # the crawl finished (and ingested) before its worker was lost: running it again would ingest twice
                await manager.finish_job(job, status=Status.SUCCEEDED, delete_job=False)
                done.append(f"{what}: its worker was lost after its crawl ended ({run_status}); not run again")
                continue
            if job.attempts + 1 >= settings.distributed.max_attempts:
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
                done.append(f"{what}: its worker was lost on its last attempt ({job.attempts + 1}); marked failed, "
                            "the next tick queues the check again")
                continue
            try:
                await manager.retry_job(job)
                done.append(f"{what}: its worker was lost; queued again for another worker")
            except exceptions.ConnectorException:   # the same check is already waiting (queueing lock)
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
                done.append(f"{what}: its worker was lost; the same check already waits in the queue, so this "
                            "one is marked failed")
        await manager.prune_stalled_workers(silent)
    for line in done:
        log.warning("lost worker: %s", line)
    return done


def prune_finished(settings: Settings) -> None:
    """Delete finished jobs older than a day (the queue table would otherwise grow by every check)."""
    async def prune() -> None:
        app = make_app(settings)
        async with app.open_async():
            await app.job_manager.delete_old_jobs(KEEP_FINISHED_HOURS, queue=QUEUE, include_failed=True,
                                                  include_cancelled=True, include_aborted=True)

    asyncio.run(prune())


# -- figures for status and the web -----------------------------------------------------------------------

def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return as_utc(moment).isoformat(timespec="seconds")


def queue_state(catalog: Catalog) -> dict[str, Any] | None:
    """Jobs waiting and running, and the oldest waiting one; None when there is no queue (single machine)."""
    if catalog.engine.dialect.name != "postgresql" or not inspect(catalog.engine).has_table("procrastinate_jobs"):
        return None
    counts = text("SELECT status::text, count(*) FROM procrastinate_jobs WHERE queue_name = :q "
                  "AND status IN ('todo', 'doing') GROUP BY status")
    # waiting since it was queued or, for a retried job, since it was put back
    oldest = text("SELECT j.id, j.queueing_lock, max(e.at) AS since FROM procrastinate_jobs j "
                  "JOIN procrastinate_events e ON e.job_id = j.id "
                  "AND e.type IN ('deferred', 'deferred_for_retry', 'retried') "
                  "WHERE j.queue_name = :q AND j.status = 'todo' GROUP BY j.id ORDER BY since LIMIT 1")
    with catalog.engine.connect() as conn:
        by_status: dict[str, int] = {row[0]: row[1] for row in conn.execute(counts, {"q": QUEUE})}
        row = conn.execute(oldest, {"q": QUEUE}).first()
    waiting = None
    if row is not None:
        since = as_utc(row.since)   # a raw query: no column type converts it
        waiting = {"job": row.id, "check": row.queueing_lock, "since": _iso(since),
                   "seconds": round((datetime.now(UTC) - since).total_seconds())}
    return {"waiting": int(by_status.get("todo", 0)), "running": int(by_status.get("doing", 0)),
            "oldest_waiting": waiting}
