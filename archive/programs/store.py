"""Applying a crawl to the catalog: programmes, versions, events and the crawl-run row.

Only the programmes a crawl listed are loaded (by key, in batches); the programmes it did not list
are marked missing/removed with set-based SQL, so time and memory follow the crawl's size, not the
archive's. Re-applying a run is a no-op: each programme remembers the last run that saw it
(``last_seen_run``) and the last run that counted it missing (``last_missed_run``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, func, insert, literal, literal_column, select, update
from sqlalchemy.orm import Session

from archive.catalog.db import Catalog
from archive.catalog.models import CrawlRun, Event, Program, ProgramVersion, Source
from archive.catalog.runs import finish, record_report
from archive.catalog.types import as_utc
from archive.programs.aliases import with_known_case
from archive.programs.diff import (
    ACTIVE,
    CHANGED,
    MISSING,
    NEW,
    REAPPEARED,
    REMOVED,
    SOURCE_HEALTH,
    Change,
    Completeness,
    Known,
    Recheck,
    Seen,
    assess,
    diff_seen,
    diff_unseen,
    empty_listing,
    evidence_record,
    health_change,
    report_problems,
    split_items,
    vanish_guard,
)
from crawlers.report import CrawlReport

BATCH = 500
PROGRAMS: Table = Program.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
VERSIONS: Table = ProgramVersion.__table__  # type: ignore[assignment]
RECENT_RUNS = 5
T = TypeVar("T")


def _chunks(values: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def search_text(title: str, fields: Mapping[str, Any]) -> str:
    """Title and field values as one lower-case line: what ``programs search`` looks in."""
    parts = [title]
    for value in fields.values():
        parts.extend(map(str, value) if isinstance(value, list) else (str(value),))
    return " ".join(" ".join(parts).split()).lower()


def posted_date(fields: Mapping[str, Any]) -> str | None:
    """``YYYY-MM-DD`` from the programme's posting date field (``date``), for filters and weekly charts."""
    value = fields.get("date")
    text = str(value)[:10] if value else ""
    return text if len(text) == 10 and text[4] == "-" and text[7] == "-" and text[:4].isdigit() else None


def _known(row: Program) -> Known:
    return Known(key=row.key, status=row.status, fields=row.fields or {}, title=row.title,
                 missing_runs=row.missing_runs, last_record_id=row.last_record_id, id=row.id)


def recent_item_counts(session: Session, source_id: str, run_id: str, before: datetime | None = None,
                       limit: int = RECENT_RUNS) -> list[int]:
    """Item counts of the source's last complete full crawls (started before ``before``, when given)."""
    query = select(CrawlRun.items).where(CrawlRun.source_id == source_id, CrawlRun.kind == "full",
                                         CrawlRun.status == "complete", CrawlRun.id != run_id)
    if before is not None:
        query = query.where(CrawlRun.started_at < before)
    return list(session.scalars(query.order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc()).limit(limit)))


def ensure_source(session: Session, source_id: str, now: datetime, name: str = "") -> None:
    if session.get(Source, source_id) is None:
        session.add(Source(id=source_id, name=name or source_id, created_at=now))
        session.flush()


def apply_crawl(catalog: Catalog, *, source_id: str, run_id: str, kind: str, report: CrawlReport | Mapping[str, Any],
                items: Iterable[Mapping[str, Any]], now: datetime, missing_runs_to_remove: int = 2,
                backfill: bool = False, min_ratio: float = 0.5, ignore_fields: Iterable[str] = (),
                baseline: bool = False) -> list[Event]:
    """Diff one crawl of ``source_id`` against the catalog and record the result; returns the run's events.

    ``kind``: full | quick. ``backfill``: events from reprocessing (never alerted). ``min_ratio``: a crawl
    listing fewer than this share of the median of recent complete crawls is incomplete. ``baseline``: while
    the source has no baseline, this crawl's events are backfill (a researcher adding a source hears about
    what is posted from then on, not about every programme already listed); the first crawl that read a
    listing page and ran to its end becomes the baseline, marked on the source row in this same transaction.
    """
    data = report.to_dict() if isinstance(report, CrawlReport) else dict(report)
    seen, rechecks = split_items(items, ignore_fields)
    with catalog.session() as session:
        ensure_source(session, source_id, now)
        if baseline and _takes_baseline(session, source_id, run_id, data):
            backfill = True
        existing = session.get(CrawlRun, run_id)
        started = existing.started_at if existing is not None else _parse_time(data.get("started"))
        recent = recent_item_counts(session, source_id, run_id, started)
        completeness = assess(data, kind=kind, items=len(seen), recent=recent, min_ratio=min_ratio)
        # the listing itself is suspect (far fewer items than usual), not a page of it failing
        suspect = kind != "quick" and not completeness.complete and not report_problems(data)
        ctx = _Context(session, source_id, run_id, now, backfill)
        known = ctx.known_count()
        seen = with_known_case(session, source_id, seen)   # /News/Detail.aspx is /news/detail.aspx
        for batch in _chunks(seen):
            ctx.apply_seen(batch)
        empty = empty_listing(data)   # an empty listing shown as such is news, not a broken page
        if completeness.complete and kind != "quick" and not (empty and not seen):
            completeness = vanish_guard(completeness, known=known, vanished=ctx.vanished_count())
            suspect = not completeness.complete
        if suspect:
            completeness = ctx.hold_new(completeness)
        if completeness.complete and kind != "quick":
            evidence = evidence_record(seen) or (empty or {}).get("record")
            ctx.apply_rechecks(rechecks, missing_runs_to_remove, evidence)
            ctx.apply_unseen(missing_runs_to_remove, evidence)
        if completeness.health:
            ctx.health(completeness)
        _record_run(session, source_id, run_id, kind, data, len(seen), completeness, now)
        if completeness.complete and kind != "quick":
            source = session.get(Source, source_id)
            if source is not None and (source.last_complete_at is None or source.last_complete_at < as_utc(now)):
                source.last_complete_at = now
        return list(session.scalars(select(Event).where(Event.source_id == source_id, Event.run_id == run_id)
                                    .order_by(Event.id)))


def _takes_baseline(session: Session, source_id: str, run_id: str, report: Mapping[str, Any]) -> bool:
    """Whether this run is (part of) the source's baseline: the source has none yet. The run becomes *the*
    baseline, closing it, if it read a listing page and ran to its end; a crawl stopped early (time limit,
    SIGTERM) is recorded as baseline too but leaves the next crawl, which sees more, the baseline as well."""
    source = session.get(Source, source_id)
    if source is None or source.baseline_run not in (None, run_id):
        return False
    read = int((report.get("pages_ok") or {}).get("listing", 0)) > 0
    if read and (report.get("stop_reason") or "") in ("", "finished"):
        source.baseline_run = run_id
    return True


class _Context:
    """Writes for one run of one source (inside one transaction)."""

    def __init__(self, session: Session, source_id: str, run_id: str, now: datetime, backfill: bool) -> None:
        self.session, self.source_id, self.run_id, self.now, self.backfill = session, source_id, run_id, now, backfill

    def _event(self, change: Change, program_id: int | None) -> dict[str, Any]:
        return {"source_id": self.source_id, "program_id": program_id, "run_id": self.run_id, "kind": change.kind,
                "at": self.now, "title": change.title, "summary": change.summary, "changes": dict(change.changes),
                "before_record_id": change.before_record, "after_record_id": change.after_record,
                "backfill": self.backfill}

    def apply_seen(self, batch: Sequence[Seen]) -> None:
        c = PROGRAMS.c
        rows = self.session.execute(
            select(c.id, c.key, c.status, c.fields, c.title, c.missing_runs, c.last_record_id, c.last_seen_run,
                   c.detail_url).where(c.source_id == self.source_id, c.key.in_([s.key for s in batch]))).all()
        known_rows = {row.key: row for row in rows}
        fresh = [s for s in batch if s.key not in known_rows or known_rows[s.key].last_seen_run != self.run_id]
        known = {row.key: _known(row) for row in rows}  # type: ignore[arg-type]  # a Row with Program's columns
        by_key: dict[str, list[Change]] = {}
        for change in diff_seen(known, fresh):
            by_key.setdefault(change.key, []).append(change)
        ids = self._insert_new([s for s in fresh if s.key not in known_rows])
        touched, edited, versions, events = [], [], [], []
        for item in fresh:
            item_changes = by_key.get(item.key, [])
            row = known_rows.get(item.key)
            program_id = ids[item.key] if row is None else row.id
            fields = next((ch.fields for ch in item_changes if ch.fields is not None), None)
            if row is not None:
                touched.append({"pid": row.id, "record": item.record, "detail": item.detail_url or row.detail_url})
                if fields is not None:
                    edited.append({"pid": row.id, "title": item.title, "fields": dict(fields),
                                   "search_text": search_text(item.title, fields), "posted": posted_date(fields)})
            if row is None or any(ch.kind == CHANGED for ch in item_changes):
                versions.append({"program_id": program_id, "run_id": self.run_id, "seen_at": self.now,
                                 "fields": dict(fields if fields is not None else item.fields),
                                 "listing_record_id": item.listing_record,
                                 "detail_record_id": None if item.partial else item.detail_record})
            events += [self._event(ch, program_id) for ch in item_changes]
        if touched:
            self.session.execute(
                update(PROGRAMS).where(c.id == bindparam("pid")).values(
                    status=ACTIVE, last_seen=self.now, missing_runs=0, removed_at=None, removal_reason="",
                    last_seen_run=self.run_id, last_record_id=bindparam("record"), detail_url=bindparam("detail")),
                touched)
        if edited:
            self.session.execute(update(PROGRAMS).where(c.id == bindparam("pid")).values(
                title=bindparam("title"), fields=bindparam("fields"), search_text=bindparam("search_text"),
                posted=bindparam("posted")), edited)
        if versions:
            self.session.execute(insert(VERSIONS), versions)
        if events:
            self.session.execute(insert(EVENTS), events)

    def _insert_new(self, new: Sequence[Seen]) -> dict[str, int]:
        if not new:
            return {}
        rows = [{"source_id": self.source_id, "key": s.key, "title": s.title, "fields": dict(s.fields),
                 "status": ACTIVE, "first_seen": self.now, "last_seen": self.now, "missing_runs": 0,
                 "last_record_id": s.record, "detail_url": s.detail_url, "last_seen_run": self.run_id,
                 "search_text": search_text(s.title, s.fields), "posted": posted_date(s.fields),
                 "removal_reason": ""} for s in new]
        result = self.session.execute(insert(PROGRAMS).returning(PROGRAMS.c.id, PROGRAMS.c.key), rows)
        return {key: pid for pid, key in result}

    def known_count(self) -> int:
        """The source's active and missing programmes (before this run's are applied)."""
        p = Program
        return self.session.scalar(select(func.count()).select_from(p).where(
            p.source_id == self.source_id, p.status.in_((ACTIVE, MISSING)))) or 0

    def vanished_count(self) -> int:
        """Active programmes of the source this run did not list (after its listed ones are applied)."""
        p = Program
        return self.session.scalar(select(func.count()).select_from(p).where(
            p.source_id == self.source_id, p.status == ACTIVE, p.last_seen_run.is_distinct_from(self.run_id))) or 0

    def apply_rechecks(self, rechecks: Sequence[Recheck], missing_runs_to_remove: int, evidence: str | None) -> None:
        """Unlisted programmes whose detail page is gone are removed now, whatever their missing count."""
        gone = {r.key: r for r in rechecks if r.gone}
        for batch in _chunks(list(gone)):
            rows = list(self.session.scalars(select(Program).where(
                Program.source_id == self.source_id, Program.key.in_(batch),
                Program.status.in_((ACTIVE, MISSING)), Program.last_seen_run.is_distinct_from(self.run_id),
                Program.last_missed_run.is_distinct_from(self.run_id))))
            changes = {c.key: c for c in diff_unseen([_known(r) for r in rows], rechecks=gone,
                                                     missing_runs_to_remove=missing_runs_to_remove,
                                                     evidence=evidence)}
            for row in rows:
                change = changes.get(row.key)
                if change is None or change.kind != REMOVED:
                    continue
                row.status, row.removed_at, row.removal_reason = REMOVED, self.now, change.reason
                row.missing_runs += 1
                row.last_missed_run = self.run_id
                self.session.execute(insert(Event), [self._event(change, row.id)])
        self.session.flush()

    def apply_unseen(self, missing_runs_to_remove: int, evidence: str | None) -> None:
        """Set-based: count every unlisted active/missing programme missing once more; declare the results."""
        p = Program
        self.session.execute(
            update(p).where(p.source_id == self.source_id, p.status.in_((ACTIVE, MISSING)),
                            p.last_seen_run.is_distinct_from(self.run_id),
                            p.last_missed_run.is_distinct_from(self.run_id))
            .values(missing_runs=p.missing_runs + 1, last_missed_run=self.run_id)
            .execution_options(synchronize_session=False))
        counted = (p.source_id == self.source_id, p.last_missed_run == self.run_id)
        reaches = p.missing_runs >= missing_runs_to_remove
        removed_summary = f"Removed: missing from {missing_runs_to_remove} complete crawl(s) in a row"
        for kind, condition, summary in (
            (REMOVED, (p.status.in_((ACTIVE, MISSING)), reaches), removed_summary),
            (MISSING, (p.status == ACTIVE, ~reaches), "Not in the listing of a complete crawl"),
        ):
            self.session.execute(insert(Event).from_select(
                ["source_id", "program_id", "run_id", "kind", "at", "title", "summary", "changes",
                 "before_record_id", "after_record_id", "backfill"],
                select(p.source_id, p.id, literal(self.run_id), literal(kind), literal(self.now, Event.at.type),
                       p.title, literal(summary), literal_column("'{}'"), p.last_record_id,
                       literal(evidence, Event.after_record_id.type), literal(self.backfill))
                .where(*counted, *condition)))
        self.session.execute(
            update(p).where(*counted, p.status.in_((ACTIVE, MISSING)), reaches)
            .values(status=REMOVED, removed_at=self.now, removal_reason="missing")
            .execution_options(synchronize_session=False))
        self.session.execute(update(p).where(*counted, p.status == ACTIVE).values(status=MISSING)
                             .execution_options(synchronize_session=False))

    def hold_new(self, completeness: Completeness) -> Completeness:
        """This run's "new" events kept but never alerted (backfill): a listing that is suspect as a whole (far
        fewer items than usual, or most known programmes replaced at once) makes its new keys as doubtful as
        the missing ones (a maintenance page's one stray link, a token in every link renamed each crawl)."""
        held = self.session.execute(update(Event).where(
            Event.source_id == self.source_id, Event.run_id == self.run_id, Event.kind == NEW,
            Event.backfill.is_(False)).values(backfill=True).execution_options(synchronize_session=False))
        count = held.rowcount or 0  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
        if not count:
            return completeness
        reason = f"the {count} programme(s) new in this listing are recorded but not alerted"
        return Completeness(completeness.complete, (*completeness.reasons, reason))

    def health(self, completeness: Completeness) -> None:
        exists = self.session.scalar(select(Event.id).where(
            Event.source_id == self.source_id, Event.run_id == self.run_id, Event.kind == SOURCE_HEALTH))
        if exists is None:
            change = health_change(completeness)
            self.session.execute(insert(Event), [{**self._event(change, None), "title": self.source_id}])


def _record_run(session: Session, source_id: str, run_id: str, kind: str, data: Mapping[str, Any], items: int,
                completeness: Completeness, now: datetime) -> None:
    run = session.get(CrawlRun, run_id)
    if run is None:   # no one opened it (re-extraction of an old run): the report's times are all there is
        started = _parse_time(data.get("started")) or now
        run = CrawlRun(id=run_id, source_id=source_id, kind=kind, started_at=started)
        session.add(run)
    quick_ok = kind == "quick" and not completeness.reasons
    if run.status != "failed":  # the pipeline's verdict when no listing page answered
        whole = "degraded" if data.get("degraded") else "complete"  # read all, yet doubtful (crawlers.report)
        run.status = whole if completeness.complete or quick_ok else "incomplete"
    run.reason = "; ".join(completeness.reasons)
    if run.finished_at is None:   # the pipeline closed its own runs on start_run's clock: keep that
        finish(run, _parse_time(data.get("finished")) or now)
    record_report(run, data, items)
    session.flush()


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def programs_to_recheck(catalog: Catalog, source_id: str) -> list[tuple[str, str]]:
    """(key, detail URL) of the source's missing programmes: the spider fetches these again (``recheck``)."""
    with catalog.session() as session:
        rows = session.execute(select(Program.key, Program.detail_url).where(
            Program.source_id == source_id, Program.status == MISSING).order_by(Program.id))
        out = []
        for key, url in rows:
            target = url or (key if key.startswith(("http://", "https://")) else None)
            if target:
                out.append((key, target))
        return out


__all__ = ["NEW", "REAPPEARED", "apply_crawl", "programs_to_recheck"]
