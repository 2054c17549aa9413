"""Asking the running scheduler to crawl a source now (the web's "Re-crawl now" button).

``listwatch run`` keeps its crawl jobs in the catalog: APScheduler 3.11's ``SQLAlchemyJobStore``, table
``listwatch_jobs``, one job ``full:<source>`` / ``quick:<source>`` per schedule. That store *selects* due jobs by
its ``next_run_time`` column but *runs* them by the ``next_run_time`` inside the pickled job state, so a request
sets both, through the store's own ``lookup_job``/``update_job``. The scheduler looks for due jobs at every
wake-up, and its alert delivery pass wakes it every ``deliver_interval`` seconds, so the crawl starts within
seconds; afterwards the job's trigger sets its next run as usual. A source already crawling is not crawled
twice (the daemon runs one crawl per source at a time). Nothing here talks to the daemon process itself.

>>> request_recrawl(catalog, "demo-mofcom")   # doctest: +SKIP
'full:demo-mofcom'
"""

from __future__ import annotations

from datetime import UTC, datetime

from archive.catalog import Catalog


class RecrawlError(ValueError):
    """The source has no stored crawl job to bring forward; the message says why and what to do."""


def request_recrawl(catalog: Catalog, source_id: str, now: datetime | None = None) -> str:
    """Make ``source_id``'s full crawl job (else its quick one) due at ``now``; returns the job id."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from sqlalchemy.exc import SQLAlchemyError

    # imported here: reading a job imports the daemon module anyway (its function), a heavy import
    from scheduler.jobs import JOB_TABLE

    store = SQLAlchemyJobStore(engine=catalog.engine, tablename=JOB_TABLE)
    try:
        job = store.lookup_job(f"full:{source_id}") or store.lookup_job(f"quick:{source_id}")
        if job is None:
            raise RecrawlError(f"source {source_id!r} has no scheduled crawl: `listwatch run` schedules the "
                               "sources in its sources_dir (see `listwatch status`)")
        job.next_run_time = now or datetime.now(UTC)
        store.update_job(job)
    except SQLAlchemyError as exc:   # no job table yet: no scheduler has run against this catalog
        raise RecrawlError(f"no scheduler has stored its jobs in this catalog yet ({type(exc).__name__}); "
                           "start `listwatch run`") from None
    return str(job.id)
