"""What ``listwatch status`` shows: each source's last run, next runs, items and health; the backlogs.

Read-only over the catalog, the job table of the daemon and the spool (works whether the daemon runs or not);
in distributed mode also the workers (``queue_workers``) and the crawl queue (Procrastinate's tables).

>>> gather(settings)["sources"]["demo-mofcom"]["last_run"]["status"]   # doctest: +SKIP
'complete'
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, inspect, select, text

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import CrawlRun, Outbox, Program
from archive.catalog.models import Source as SourceRow
from archive.catalog.types import as_utc
from archive.retention import pruned_counts
from archive.salvage import open_files
from crawlers.sources import SourceError, load_sources
from scheduler.health import current_state
from scheduler.queue import queue_state
from scheduler.settings import Settings
from scheduler.singleton import running_scheduler
from scheduler.worker_registry import workers_state

JOB_TABLE = "listwatch_jobs"


def alert_backlog(catalog: Catalog) -> int:
    with catalog.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(Outbox)
                                  .where(Outbox.state.in_(("pending", "sending")))) or 0)


def spool_backlog(settings: Settings) -> dict[str, int]:
    spool = settings.spool_dir
    closed = [p for p in spool.rglob("*.warc.gz") if p.is_file()] if spool.is_dir() else []
    return {"closed": len(closed), "bytes": sum(p.stat().st_size for p in closed),
            "open": len(open_files(spool)),
            "quarantined": len(list(spool.rglob("*.quarantined"))) if spool.is_dir() else 0}


def next_runs(catalog: Catalog) -> dict[str, str]:
    """job id → next run time (ISO, UTC) from the daemon's job table (empty before the first ``run``)."""
    if not inspect(catalog.engine).has_table(JOB_TABLE):
        return {}
    with catalog.engine.connect() as connection:
        rows = connection.execute(text(f"SELECT id, next_run_time FROM {JOB_TABLE}")).all()
    return {row.id: datetime.fromtimestamp(row.next_run_time, UTC).isoformat(timespec="seconds")
            for row in rows if row.next_run_time is not None}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return as_utc(moment).isoformat(timespec="seconds")


def _run(run: CrawlRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"id": run.id, "kind": run.kind, "status": run.status, "reason": run.reason,
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at), "items": run.items,
            "pages": run.pages, "warc_bytes": run.warc_bytes}


def gather(settings: Settings, catalog: Catalog | None = None) -> dict[str, Any]:
    catalog = catalog or open_catalog(settings.catalog)
    broken: list[SourceError] = []
    configured = set(load_sources(settings.sources_dir, broken)) if settings.sources_dir.is_dir() else set()
    problem = "; ".join(map(str, broken))
    jobs = next_runs(catalog)
    with catalog.read_session() as session:
        known = set(session.scalars(select(SourceRow.id)))
        sources: dict[str, Any] = {}
        for source_id in sorted(configured | known):
            runs = select(CrawlRun).where(CrawlRun.source_id == source_id).order_by(CrawlRun.started_at.desc())
            last = session.scalars(runs.limit(1)).first()
            last_done = session.scalars(runs.where(CrawlRun.status != "running").limit(1)).first()
            last_complete = session.scalars(runs.where(CrawlRun.status == "complete").limit(1)).first()
            running = list(session.scalars(runs.where(CrawlRun.status == "running")))
            counts = dict(session.execute(select(CrawlRun.status, func.count()).where(
                CrawlRun.source_id == source_id).group_by(CrawlRun.status)).all())
            pruned = pruned_counts(session, source_id)   # complete checks whose rows retention deleted
            if pruned:
                counts["pruned"] = pruned
            items = session.scalar(select(func.count()).select_from(Program).where(
                Program.source_id == source_id, Program.status != "removed")) or 0
            sources[source_id] = {
                "configured": source_id in configured,
                "last_run": _run(last), "last_finished": _run(last_done),
                "last_complete_at": _iso(last_complete.finished_at) if last_complete else None,
                "running": [r.id for r in running],
                "next_run": {kind: jobs.get(f"{kind}:{source_id}") for kind in ("quick", "full")},
                "runs": counts, "programmes": int(items),
            }
    for source_id, entry in sources.items():
        state = current_state(catalog, source_id)
        entry["health"] = sorted(k for k, v in state.items() if v) or ["ok"]
    return {"at": datetime.now(UTC).isoformat(timespec="seconds"), "sources": sources,
            "alert_backlog": alert_backlog(catalog), "spool": spool_backlog(settings),
            "sources_problem": problem, "scheduler": running_scheduler(settings.catalog, settings.data_dir),
            "workers": workers_state(catalog, settings.distributed.stalled_after), "queue": queue_state(catalog)}
