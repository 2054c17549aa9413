"""Retention of old unchanged checks: the catalog keeps a summary of them, the store keeps their WARCs.

An unchanged quick check adds about 3 kB of catalog rows (one each in ``crawl_runs``, ``captures``,
``warc_files``). After ``retention.unchanged_days`` those rows are deleted, one UTC day at a time, for every
check that is all of:

- a ``quick`` run whose status is ``complete``;
- one whose captures are all ``revisit`` records (it archived nothing new: a payload seen before, or a 304);
- one no event, programme version, programme (last seen / last missed / last record) or source baseline
  names, by run id or by any of its captures' record ids (an alert's evidence, a removal's proof);
- one whose WARC files are all ``stored`` or ``verified`` (never a file still in the spool or found damaged);
- neither the first nor the last check of its source that day: those two stay whole, so the capture calendar
  still shows the day and a replay of the day has its first and last look.

What is deleted is summed into ``check_days`` (source, day, kind: count, pages, WARC bytes, seconds, and the
``[key, size, sha256]`` of each WARC object). The WARCs stay in the store: ``listwatch archive reindex`` brings
their ``warc_files`` and ``captures`` rows back, ``archive verify`` re-hashes them against that list, and its
orphan report does not count them. The ``crawl_runs`` rows are not rebuilt (their count is in ``check_days``).

Full crawls are never pruned: one a day per source, and the completeness guard compares item counts across
them (``archive.programs.store``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from archive.catalog import Catalog
from archive.catalog.models import Capture, CheckDay, CrawlRun, Event, Program, ProgramVersion, Source, WarcFile
from archive.catalog.types import as_utc

log = logging.getLogger(__name__)
CHUNK = 400           # ids per IN (…): well under SQLite's and PostgreSQL's parameter limits
SOURCES_PER_BATCH = 40
SAFE_STATES = ("stored", "verified")


@dataclass
class PruneResult:
    checks: int = 0                  # crawl_runs rows deleted (or that would be)
    captures: int = 0
    warc_files: int = 0
    kept: int = 0                    # old complete quick checks kept: first/last of a day, or referenced
    days: dict[tuple[str, str], int] = field(default_factory=dict)   # (source, day) → checks pruned
    dry_run: bool = False
    stopped: bool = False            # asked to stop before the end: a later pass goes on


def prune_unchanged(catalog: Catalog, *, older_than_days: float, now: datetime | None = None,
                    dry_run: bool = False, stop: Callable[[], bool] = lambda: False) -> PruneResult:
    """Delete the rows of old unchanged quick checks (see the module doc); ``dry_run`` only counts them.

    ``stop`` is asked between batches (the scheduler stopping): what is done stays done, a later pass goes on."""
    cutoff = (as_utc(now or datetime.now(UTC)) - timedelta(days=older_than_days)).date()
    result = PruneResult(dry_run=dry_run)
    day = _first_day(catalog)
    while day is not None and day < cutoff and not result.stopped:
        _prune_day(catalog, day, result, stop)
        day += timedelta(days=1)
    return result


def _first_day(catalog: Catalog) -> date | None:
    """Where to start: the last day already summarised (new checks of it may have ended), else the oldest."""
    with catalog.read_session() as session:
        done = session.scalar(select(func.max(CheckDay.day)))
        if done:
            return date.fromisoformat(done)
        oldest = session.scalar(select(func.min(CrawlRun.started_at)).where(
            CrawlRun.kind == "quick", CrawlRun.status == "complete"))
    return as_utc(oldest).date() if oldest is not None else None


def _prune_day(catalog: Catalog, day: date, result: PruneResult, stop: Callable[[], bool]) -> None:
    """One UTC day, a few sources at a time (a day of 10,000 sources is about a million checks), each batch its
    own transaction so the scheduler's writes never wait long."""
    start = datetime.combine(day, time(), UTC)
    with catalog.read_session() as session:
        sources = list(session.scalars(select(Source.id).order_by(Source.id)))
    for batch in _chunks(sources, SOURCES_PER_BATCH):
        if stop():
            result.stopped = True
            return
        with catalog.session() as session:
            runs = list(session.execute(
                select(CrawlRun.id, CrawlRun.source_id)
                .where(CrawlRun.source_id.in_(batch), CrawlRun.kind == "quick", CrawlRun.status == "complete",
                       CrawlRun.started_at >= start, CrawlRun.started_at < start + timedelta(days=1))
                .order_by(CrawlRun.source_id, CrawlRun.started_at, CrawlRun.id)).all())
            candidates = _between_first_and_last(runs)
            result.kept += len(runs) - len(candidates)
            for chunk in _chunks(candidates, CHUNK):
                prunable = set(chunk) - _held(session, chunk)
                result.kept += len(chunk) - len(prunable)
                _remove(session, sorted(prunable), day, result)


def _between_first_and_last(runs: Sequence[Any]) -> list[str]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for run_id, source_id in runs:
        by_source[source_id].append(run_id)
    return [run_id for ids in by_source.values() for run_id in ids[1:-1]]


def _held(session: Session, run_ids: list[str]) -> set[str]:
    """The runs of ``run_ids`` that must stay: named by another row, archived something new, or whose WARCs
    are not safely stored."""
    held = set(session.scalars(select(Event.run_id).where(Event.run_id.in_(run_ids))))
    held |= set(session.scalars(select(ProgramVersion.run_id).where(ProgramVersion.run_id.in_(run_ids))))
    held |= set(session.scalars(select(Source.baseline_run).where(Source.baseline_run.in_(run_ids))))
    for column in (Program.last_seen_run, Program.last_missed_run):
        held |= set(session.scalars(select(column).where(column.in_(run_ids))))
    held |= set(session.scalars(select(WarcFile.run_id).where(
        WarcFile.run_id.in_(run_ids), WarcFile.state.not_in(SAFE_STATES))))
    captures = session.execute(
        select(Capture.record_id, Capture.record_type, Capture.run_id, WarcFile.run_id)
        .join(WarcFile, Capture.warc_file_id == WarcFile.id)
        .where(or_(Capture.run_id.in_(run_ids), WarcFile.run_id.in_(run_ids)))).all()
    owners: dict[str, set[str]] = defaultdict(set)   # record → the candidate runs its row or its WARC belongs to
    wanted = set(run_ids)
    for record, kind, run, warc_run in captures:
        mine = {r for r in (run, warc_run) if r in wanted}
        owners[record] |= mine
        if kind != "revisit":
            held |= mine
    for record in _named_records(session, list(owners)):
        held |= owners[record]
    return {r for r in held if r is not None}


def _named_records(session: Session, record_ids: list[str]) -> set[str]:
    """Those of ``record_ids`` an event, a programme version or a programme points at (evidence, proof)."""
    named: set[str] = set()
    columns = (Event.before_record_id, Event.after_record_id, ProgramVersion.listing_record_id,
               ProgramVersion.detail_record_id, Program.last_record_id)
    for chunk in _chunks(record_ids, CHUNK):
        for column in columns:
            named |= {r for r in session.scalars(select(column).where(column.in_(chunk))) if r}
    return named


def _remove(session: Session, run_ids: list[str], day: date, result: PruneResult) -> None:
    if not run_ids:
        return
    runs = list(session.scalars(select(CrawlRun).where(CrawlRun.id.in_(run_ids))))
    warcs = list(session.scalars(select(WarcFile).where(WarcFile.run_id.in_(run_ids)).order_by(WarcFile.name)))
    wids = [w.id for w in warcs]
    theirs = or_(Capture.run_id.in_(run_ids), Capture.warc_file_id.in_(wids))
    result.checks += len(runs)
    result.warc_files += len(wids)
    result.captures += session.scalar(select(func.count()).select_from(Capture).where(theirs)) or 0
    if not result.dry_run:
        session.execute(delete(Capture).where(theirs))
        session.execute(delete(WarcFile).where(WarcFile.id.in_(wids)))
        session.execute(delete(CrawlRun).where(CrawlRun.id.in_(run_ids)))
    by_source: dict[str, list[CrawlRun]] = defaultdict(list)
    for run in runs:
        by_source[run.source_id].append(run)
    for source_id, mine in by_source.items():
        key = (source_id, day.isoformat())
        result.days[key] = result.days.get(key, 0) + len(mine)
        if not result.dry_run:
            _summarise(session, source_id, day, mine, [w for w in warcs if w.source_id == source_id])


def _summarise(session: Session, source_id: str, day: date, runs: Iterable[CrawlRun],
               warcs: Iterable[WarcFile]) -> None:
    row = session.get(CheckDay, (source_id, day.isoformat(), "quick"))
    if row is None:
        row = CheckDay(source_id=source_id, day=day.isoformat(), kind="quick", checks=0, pages=0, warc_bytes=0,
                       seconds=0.0, warcs=[])
        session.add(row)
    for run in runs:
        row.checks += 1
        row.pages += run.pages or 0
        row.warc_bytes += run.warc_bytes or 0
        if run.finished_at is not None:
            row.seconds += (as_utc(run.finished_at) - as_utc(run.started_at)).total_seconds()
    row.warcs = [*row.warcs, *([w.key, w.size, w.sha256] for w in warcs)]   # a new list: JSON change tracking


def pruned_objects(catalog: Catalog, source_id: str | None = None) -> list[tuple[str, int, str]]:
    """``(key, size, sha256)`` of every WARC object whose rows retention deleted (they stay in the store)."""
    query = select(CheckDay.warcs)
    if source_id is not None:
        query = query.where(CheckDay.source_id == source_id)
    with catalog.read_session() as session:
        return [(str(k), int(n), str(h)) for warcs in session.scalars(query) for k, n, h in warcs]


def pruned_counts(session: Session, source_id: str) -> int:
    """How many of the source's checks retention summarised (for status)."""
    return int(session.scalar(select(func.coalesce(func.sum(CheckDay.checks), 0))
                              .where(CheckDay.source_id == source_id)) or 0)


def _chunks(values: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])
