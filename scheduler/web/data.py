"""What the web pages and the JSON API show: sources, programmes, versions, events — plain dicts from the catalog.

Every function reads in one read session and returns JSON-ready values (ISO times in UTC), so the JSON API
and the templates show the same thing. Lists page with ``limit + 1`` rows (is there a next page?) instead of
counting the whole selection, which keeps big catalogs fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from archive.catalog import Catalog
from archive.catalog.models import Capture, CrawlRun, Event, Program, Source
from archive.catalog.types import as_utc
from archive.programs.query import event_rows, live_url, timeline
from archive.programs.search import text_conditions

STATUSES = ("active", "missing", "removed")
SORTS = {"first_seen": Program.first_seen, "last_seen": Program.last_seen, "posted": Program.posted,
         "title": Program.title}
EVENT_KINDS = ("new", "changed", "missing", "removed", "reappeared", "failing", "blocked", "degraded", "silent",
               "source_health")
MAX_PAGE = 500


class BadFilter(ValueError):
    """A filter value that is not valid; the message names it and what would be."""


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return as_utc(moment).isoformat(timespec="seconds")


Filter = tuple[str, Callable[[str], ColumnElement[bool]]]   # (a query's field, the condition its value sets)
_Stmt = TypeVar("_Stmt", bound=Select)   # any row shape


def narrowed(stmt: _Stmt, query: object, filters: Iterable[Filter]) -> _Stmt:
    """``stmt`` with the condition of each filter whose field of ``query`` is set (the lists' one filter builder)."""
    for name, condition in filters:
        value = getattr(query, name)
        if value:
            stmt = stmt.where(condition(value))
    return stmt


def _midnight(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _day(value: str | None, name: str) -> str | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadFilter(f"{name} must be a date like 2026-03-16, got {value[:40]!r}") from None


# -- programmes -------------------------------------------------------------------------------------------


@dataclass
class ProgrammeQuery:
    """The programme list's filters, sort and page: exactly what the bookmarkable URL holds."""

    source: str | None = None
    status: str | None = None
    q: str | None = None
    posted_from: str | None = None
    posted_to: str | None = None
    sort: str = "-first_seen"
    page: int = 1
    per_page: int = 50

    def check(self) -> ProgrammeQuery:
        if self.status and self.status not in STATUSES:
            raise BadFilter(f"status must be one of {', '.join(STATUSES)}, got {self.status[:40]!r}")
        if self.sort.lstrip("-") not in SORTS:
            choices = ", ".join(f"{s}, -{s}" for s in SORTS)
            raise BadFilter(f"sort must be one of {choices}; got {self.sort[:40]!r}")
        if self.page < 1 or not 1 <= self.per_page <= MAX_PAGE:
            raise BadFilter(f"page must be ≥ 1 and per_page between 1 and {MAX_PAGE}")
        self.posted_from = _day(self.posted_from, "posted_from")
        self.posted_to = _day(self.posted_to, "posted_to")
        return self

    def params(self, **changes: Any) -> dict[str, Any]:
        """URL parameters of this view (defaults left out), with ``changes`` applied."""
        values = {"source": self.source, "status": self.status, "q": self.q, "posted_from": self.posted_from,
                  "posted_to": self.posted_to, "sort": self.sort, "page": self.page, "per_page": self.per_page,
                  **changes}
        defaults = {"sort": "-first_seen", "page": 1, "per_page": 50}
        return {k: v for k, v in values.items() if v not in (None, "") and defaults.get(k) != v}


_PROGRAMME_FILTERS: tuple[Filter, ...] = (
    ("source", lambda v: Program.source_id == v),
    ("status", lambda v: Program.status == v),
    ("posted_from", lambda v: Program.posted >= v),
    ("posted_to", lambda v: Program.posted <= v),
)


def _programme(p: Program) -> dict[str, Any]:
    return {"id": p.id, "source": p.source_id, "key": p.key, "title": p.title, "status": p.status,
            "posted": p.posted, "first_seen": iso(p.first_seen), "last_seen": iso(p.last_seen),
            "removed_at": iso(p.removed_at), "removal_reason": p.removal_reason, "fields": p.fields or {},
            "detail_url": p.detail_url, "live_url": live_url(p)}


def list_programmes(catalog: Catalog, query: ProgrammeQuery) -> tuple[list[dict[str, Any]], bool]:
    """One page of programmes and whether another page follows."""
    query.check()
    column = SORTS[query.sort.lstrip("-")]
    descending = query.sort.startswith("-")
    # Two steps: the page's ids (the sort then carries ids, not whole rows with their JSON fields), then rows.
    stmt = select(Program.id).order_by(column.desc() if descending else column.asc(),
                                       Program.id.desc() if descending else Program.id.asc())
    stmt = narrowed(stmt, query, _PROGRAMME_FILTERS).offset((query.page - 1) * query.per_page).limit(query.per_page + 1)
    with catalog.read_session() as session:
        if query.q and query.q.strip():
            stmt = stmt.where(*text_conditions(query.q, catalog.engine.dialect.name, session))
        ids = list(session.scalars(stmt))
        found = {p.id: p for p in session.scalars(select(Program).where(Program.id.in_(ids[:query.per_page])))}
    return [_programme(found[i]) for i in ids[:query.per_page] if i in found], len(ids) > query.per_page


@dataclass
class ProgrammeHistory:
    programme: dict[str, Any]
    versions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)   # record id → capture


def _capture(c: Capture) -> dict[str, Any]:
    return {"record_id": c.record_id, "url": c.url, "timestamp": c.timestamp[:14], "status": c.status,
            "mime": c.mime, "type": c.record_type, "source": c.source_id}


def captures_by_record(session: Session, record_ids: set[str]) -> dict[str, dict[str, Any]]:
    if not record_ids:
        return {}
    rows = session.scalars(select(Capture).where(Capture.record_id.in_(sorted(record_ids))))
    return {c.record_id: _capture(c) for c in rows}


def programme_history(catalog: Catalog, programme_id: int) -> ProgrammeHistory | None:
    with catalog.read_session() as session:
        p = session.get(Program, programme_id)
        if p is None:
            return None
        versions, events = timeline(session, p.id)
        ids = {r for v in versions for r in (v.listing_record_id, v.detail_record_id) if r}
        ids |= {r for e in events for r in (e.before_record_id, e.after_record_id) if r}
        captures = captures_by_record(session, ids)
        shots = _screenshots(session, {c["url"] for c in captures.values()})
    for capture in captures.values():
        capture["screenshot"] = _nearest(shots.get(capture["url"], []), capture["timestamp"])
    out = ProgrammeHistory(_programme(p), captures=captures)
    out.versions = [{"id": v.id, "run_id": v.run_id, "seen_at": iso(v.seen_at), "fields": v.fields or {},
                     "listing_record_id": v.listing_record_id, "detail_record_id": v.detail_record_id}
                    for v in versions]
    out.events = [_event(e, p) for e in events]
    return out


def _screenshots(session: Session, urls: set[str]) -> dict[str, list[str]]:
    """Timestamps of each page's ``urn:screenshot:`` records (rendered pages only)."""
    if not urls:
        return {}
    names = {f"urn:screenshot:{u}": u for u in urls}
    rows = session.execute(select(Capture.url, Capture.timestamp).where(Capture.url.in_(sorted(names))))
    out: dict[str, list[str]] = {}
    for url, ts in rows:
        out.setdefault(names[url], []).append(ts[:14])
    return out


def _nearest(stamps: list[str], ts: str) -> str | None:
    return min(stamps, key=lambda s: abs(int(s) - int(ts))) if stamps else None


# -- events -----------------------------------------------------------------------------------------------


def _event(e: Event, p: Program | None) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "source": e.source_id, "at": iso(e.at), "title": e.title,
            "summary": e.summary, "changes": e.changes or {}, "run_id": e.run_id, "backfill": e.backfill,
            "programme_id": e.program_id, "programme_title": p.title if p is not None else None,
            "programme_key": p.key if p is not None else None,
            "before_record_id": e.before_record_id, "after_record_id": e.after_record_id}


@dataclass
class EventQuery:
    source: str | None = None
    kind: str | None = None
    since: str | None = None
    until: str | None = None
    include_backfill: bool = False
    page: int = 1
    per_page: int = 50

    def check(self) -> EventQuery:
        if self.kind and self.kind not in EVENT_KINDS:
            raise BadFilter(f"kind must be one of {', '.join(EVENT_KINDS)}, got {self.kind[:40]!r}")
        if self.page < 1 or not 1 <= self.per_page <= MAX_PAGE:
            raise BadFilter(f"page must be ≥ 1 and per_page between 1 and {MAX_PAGE}")
        self.since = _day(self.since, "since")
        self.until = _day(self.until, "until")
        return self

    def params(self, **changes: Any) -> dict[str, Any]:
        values = {"source": self.source, "kind": self.kind, "since": self.since, "until": self.until,
                  "include_backfill": self.include_backfill or None, "page": self.page,
                  "per_page": self.per_page, **changes}
        defaults = {"page": 1, "per_page": 50}
        return {k: v for k, v in values.items() if v not in (None, "", False) and defaults.get(k) != v}


_EVENT_FILTERS: tuple[Filter, ...] = (
    ("source", lambda v: Event.source_id == v),
    ("kind", lambda v: Event.kind == v),
    ("since", lambda v: Event.at >= _midnight(v)),
    ("until", lambda v: Event.at < _midnight(v) + timedelta(days=1)),
)


def list_events(catalog: Catalog, query: EventQuery) -> tuple[list[dict[str, Any]], bool]:
    """Events newest first (backfill left out unless asked for), one page, and whether more follow."""
    query.check()
    stmt = narrowed(event_rows().order_by(Event.at.desc(), Event.id.desc()), query, _EVENT_FILTERS)
    if not query.include_backfill:
        stmt = stmt.where(Event.backfill.is_(False))
    stmt = stmt.offset((query.page - 1) * query.per_page).limit(query.per_page + 1)
    with catalog.read_session() as session:
        rows = session.execute(stmt).all()
    return [_event(e, p) for e, p in rows[:query.per_page]], len(rows) > query.per_page


# -- sources ----------------------------------------------------------------------------------------------


def _run(run: CrawlRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {"id": run.id, "kind": run.kind, "status": run.status, "reason": run.reason,
            "started_at": iso(run.started_at), "finished_at": iso(run.finished_at), "seconds": seconds,
            "pages": run.pages, "items": run.items}


def list_sources(catalog: Catalog) -> list[dict[str, Any]]:
    """Every source with its health, last and next runs and programme counts."""
    from scheduler.health import current_state
    from scheduler.status import next_runs

    upcoming = next_runs(catalog)
    out: list[dict[str, Any]] = []
    with catalog.read_session() as session:
        sources = list(session.scalars(select(Source).order_by(Source.id)))
        counts: dict[str, dict[str, int]] = {}
        for sid, status, n in session.execute(select(Program.source_id, Program.status, func.count())
                                              .group_by(Program.source_id, Program.status)):
            counts.setdefault(sid, {})[status] = n
        for s in sources:
            last = session.scalar(select(CrawlRun).where(CrawlRun.source_id == s.id)
                                  .order_by(CrawlRun.started_at.desc()).limit(1))
            nexts = sorted(v for k, v in upcoming.items() if k.endswith(f":{s.id}"))
            out.append({"id": s.id, "name": s.name, "last_complete_at": iso(s.last_complete_at),
                        "last_run": _run(last), "next_run": nexts[0] if nexts else None,
                        "programmes": {st: counts.get(s.id, {}).get(st, 0) for st in STATUSES}})
    for item in out:
        state = current_state(catalog, item["id"])
        item["health"] = next((c for c, on in state.items() if on), "ok")
        item["conditions"] = [c for c, on in state.items() if on]
    return out


def source_ids(catalog: Catalog) -> list[str]:
    """Every source id (cheap: for filter menus)."""
    with catalog.read_session() as session:
        return list(session.scalars(select(Source.id).order_by(Source.id)))


def runs(catalog: Catalog, source: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The newest finished runs, oldest first (for charts of duration and pages per run)."""
    stmt = select(CrawlRun).where(CrawlRun.finished_at.is_not(None)).order_by(CrawlRun.started_at.desc())
    if source:
        stmt = stmt.where(CrawlRun.source_id == source)
    with catalog.read_session() as session:
        rows = list(session.scalars(stmt.limit(limit)))
    return [{**(_run(r) or {}), "source": r.source_id} for r in reversed(rows)]


# -- weekly counts ----------------------------------------------------------------------------------------


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def postings_per_week(catalog: Catalog, source: str | None = None) -> dict[str, dict[str, int]]:
    """source → ISO week → programmes posted that week (from the posting date)."""
    stmt = (select(Program.source_id, Program.posted, func.count()).where(Program.posted.is_not(None))
            .group_by(Program.source_id, Program.posted))
    if source:
        stmt = stmt.where(Program.source_id == source)
    out: dict[str, dict[str, int]] = {}
    with catalog.read_session() as session:
        for sid, posted, n in session.execute(stmt):
            if not posted:
                continue
            try:
                week = week_of(date.fromisoformat(posted))
            except ValueError:
                continue
            bucket = out.setdefault(sid, {})
            bucket[week] = bucket.get(week, 0) + n
    return out


def changes_per_week(catalog: Catalog) -> dict[str, dict[str, int]]:
    """event kind → ISO week → events (backfill left out)."""
    stmt = select(Event.kind, Event.at).where(Event.backfill.is_(False), Event.program_id.is_not(None))
    out: dict[str, dict[str, int]] = {}
    with catalog.read_session() as session:
        for kind, at in session.execute(stmt):
            bucket = out.setdefault(kind, {})
            week = week_of(at.date())
            bucket[week] = bucket.get(week, 0) + 1
    return out

