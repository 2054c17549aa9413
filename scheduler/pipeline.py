"""One crawl, end to end: record the run, crawl, then ingest what it produced.

Ingest = index the closed WARCs into the catalog, turn the items into programme records and events,
put the events in the alert outbox, move the WARCs from the spool to the store, and check the source's
health (an incident is alerted once when it starts and once when it ends, whoever ran the crawl). Each step after
the crawl is guarded: a failing step is reported and leaves its inputs in place for a retry
(``listwatch archive sync`` picks up anything still in the spool), so no captured byte is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import CrawlRun, Program
from archive.catalog.models import Source as SourceRow
from archive.catalog.runs import finish, record_report
from archive.dedup import DedupIndex
from archive.indexer import register_warc
from archive.programs import apply_crawl, programs_to_recheck
from archive.programs.diff import SOURCE_HEALTH
from archive.spool import sync
from archive.storage import Storage, StorageError, open_storage
from crawlers.report import CrawlReport
from crawlers.run import CrawlJob, CrawlOptions, new_run_id, run_crawls
from crawlers.sources import Source
from scheduler import health
from scheduler.alerts import enqueue
from scheduler.lease import RunLease, lease_path
from scheduler.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What happened to one crawl after it finished."""

    report: CrawlReport
    status: str = "complete"
    events: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)     # the events queued for alerting
    stored: int = 0
    waiting: int = 0
    steps_failed: list[str] = field(default_factory=list)


def crawl_options(settings: Settings, capture: bool = True, dedup: DedupIndex | None = None) -> CrawlOptions:
    return CrawlOptions(data_dir=settings.data_dir, chromium=settings.chromium, user_agent=settings.user_agent,
                        operator=settings.operator, warc_max_size=settings.warc_max_size, capture=capture,
                        log_level=settings.log_level, dedup=dedup)


def crawl_and_ingest(settings: Settings, sources: list[Source], *, kind: str = "full", run_id: str | None = None,
                     capture: bool = True, watch: Callable[[Any, str], None] | None = None) -> list[Outcome]:
    """Crawl sources side by side in this process, then ingest each crawl (``watch``: see ``run_crawls``)."""
    catalog = open_catalog(settings.catalog)
    storage = open_storage(settings)
    jobs = [prepare_job(catalog, source, run_id or new_run_id(), kind) for source in sources]
    with contextlib.ExitStack() as leases:
        for job in jobs:   # the lease first: from the moment the row says running, the run is visibly ours
            leases.enter_context(RunLease(lease_path(settings.data_dir, job.source.id, job.run_id)))
            start_run(catalog, job.source, job.run_id, kind)
        dedup = DedupIndex(catalog, spool_dir=settings.spool_dir, storage=storage)
        reports = run_crawls(jobs, crawl_options(settings, capture, dedup), watch=watch)
        outcomes = [ingest(settings, catalog, job.source, report) for job, report in zip(jobs, reports, strict=True)]
        store(settings, catalog, storage, outcomes)
    health.check_sources(catalog, settings, [source.id for source in sources])
    return outcomes


def prepare_job(catalog: Catalog, source: Source, run_id: str, kind: str) -> CrawlJob:
    """The crawl job of one source: known pages to re-check (full sweeps) and the known keys (quick checks)."""
    return CrawlJob(source, run_id, kind, _recheck(catalog, source, kind), known=known_keys(catalog, source.id))


def known_keys(catalog: Catalog, source_id: str) -> Callable[[list[str]], set[str]]:
    """Which of these programme keys the catalog already holds for the source: the source's keys are read
    in one query on the first call (a quick check's first listing page), then answered from memory."""
    loaded: list[set[str]] = []

    def known(keys: list[str]) -> set[str]:
        if not keys:
            return set()
        if not loaded:
            with catalog.read_session() as session:
                loaded.append(set(session.scalars(select(Program.key).where(Program.source_id == source_id))))
        return loaded[0].intersection(keys)

    return known


def start_run(catalog: Catalog, source: Source, run_id: str, kind: str) -> None:
    now = datetime.now(UTC)
    with catalog.session() as session:
        row = session.get(SourceRow, source.id)
        if row is None:
            session.add(SourceRow(id=source.id, name=source.name, created_at=now))
        else:
            row.name = source.name
        if session.get(CrawlRun, run_id) is None:
            session.add(CrawlRun(id=run_id, source_id=source.id, kind=kind, status="running", started_at=now,
                                 host=socket.gethostname(), pid=os.getpid()))


def ingest(settings: Settings, catalog: Catalog, source: Source, report: CrawlReport) -> Outcome:
    outcome = Outcome(report, status=run_status(report))
    for path in map(Path, report.warc_files):
        try:
            register_warc(catalog, path, source_id=source.id, run_id=report.run_id, prefix=settings.storage.prefix)
        except Exception as exc:  # keep going: the file stays in the spool and sync registers it later
            logger.error("could not index %s: %s", path, exc)
            outcome.steps_failed.append(f"index {path.name}: {exc}")
    _finish_run(catalog, report, outcome.status)
    _programmes(settings, catalog, source, report, outcome)
    _alerts(catalog, outcome)
    return outcome


def run_status(report: CrawlReport) -> str:
    if report.pages_ok["listing"] == 0:
        return "failed"
    if report.kind == "quick":  # partial by design: judged on what it set out to read, and on keeping it
        clean = not report.challenges and report.pages_failed["listing"] == 0 and not report.evidence_lost
        return "complete" if clean else "incomplete"
    if not report.complete:
        return "incomplete"
    return "degraded" if report.degraded else "complete"


def _finish_run(catalog: Catalog, report: CrawlReport, status: str) -> None:
    with catalog.session() as session:
        run = session.get(CrawlRun, report.run_id)
        if run is None:
            return
        run.status = status
        finish(run, datetime.now(UTC))   # start_run's clock, not the report's (see archive.catalog.runs)
        record_report(run, report.to_dict())
        run.reason = "; ".join(p.message for p in [*report.challenges, *report.problems][:5])


def load_items(report: CrawlReport) -> list[dict[str, Any]]:
    path = Path(report.items_path)
    if not report.items_path or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _recheck(catalog: Catalog, source: Source, kind: str) -> list[tuple[str, str]]:
    if kind != "full":
        return []
    return programs_to_recheck(catalog, source.id)


def _programmes(settings: Settings, catalog: Catalog, source: Source, report: CrawlReport, outcome: Outcome) -> None:
    try:
        events = apply_crawl(catalog, source_id=source.id, run_id=report.run_id, kind=report.kind, report=report,
                             items=load_items(report), now=datetime.now(UTC),
                             missing_runs_to_remove=settings.scheduler.missing_runs_to_remove,
                             baseline=True)
        outcome.events = [e.id for e in events]
        # The guard's "incomplete crawl" note is the run's record; the health check alerts the incident.
        outcome.alerts = [e.id for e in events if e.kind != SOURCE_HEALTH]
    except Exception as exc:
        logger.exception("programme diff failed for run %s", report.run_id)
        outcome.steps_failed.append(f"programmes: {exc}")


def _alerts(catalog: Catalog, outcome: Outcome) -> None:
    if not outcome.alerts:
        return
    try:
        enqueue(catalog, outcome.alerts)
    except Exception as exc:
        logger.exception("could not queue alerts")
        outcome.steps_failed.append(f"alerts: {exc}")


def store(settings: Settings, catalog: Catalog, storage: Storage, outcomes: list[Outcome]) -> None:
    """Move the spool to the store once (sync takes every closed WARC), then say what became of each crawl's."""
    try:
        result = sync(catalog, storage, settings.spool_dir, verify=settings.storage.verify)
    except StorageError as exc:
        logger.warning("WARCs stay in the spool until the store is back: %s", exc)
        for outcome in outcomes:
            outcome.steps_failed.append(f"store: {exc}")
        return
    pending = {p.name: p for p in [*result.waiting, *result.failed]}
    for outcome in outcomes:
        mine = [Path(p).name for p in outcome.report.warc_files]
        outcome.stored = sum(name not in pending for name in mine)
        outcome.waiting = sum(name in pending for name in mine)
        outcome.steps_failed += [f"store: {name} stays in the spool: {pending[name].reason}"
                                 for name in mine if name in pending]
