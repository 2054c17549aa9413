"""Reading programme records: list, search, one programme's history, export rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from archive.catalog.db import Catalog
from archive.catalog.models import Event, Program, ProgramVersion
from archive.programs.search import text_conditions


@dataclass
class History:
    program: Program
    versions: list[ProgramVersion]
    events: list[Event]


def live_url(p: Program) -> str | None:
    """The programme's page on the watched site, absolute. Keys are site-relative (``/list/1.html``, so a
    host change keeps the programme) and would resolve against listwatch's own server as a link; the detail
    URL, else the item's ``url`` field, names the real page. None when the item has no absolute URL."""
    url = p.detail_url or (p.fields or {}).get("url")
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def list_programs(catalog: Catalog, *, source: str | None = None, status: str | None = None,
                  text: str | None = None, limit: int | None = None) -> list[Program]:
    """Programmes, newest first seen first. ``text``: words that must all appear, case-insensitively, in the
    title, a field value or an attachment name: the web's search (:mod:`archive.programs.search`, FTS5
    trigram on SQLite, pg_trgm on PostgreSQL), so both find the same programmes."""
    query = select(Program).order_by(Program.first_seen.desc(), Program.id.desc())
    if source:
        query = query.where(Program.source_id == source)
    if status:
        query = query.where(Program.status == status)
    with catalog.read_session() as session:
        if text and text.strip():
            query = query.where(*text_conditions(text, catalog.engine.dialect.name, session))
        return list(session.scalars(query.limit(limit) if limit else query))


def event_rows() -> Select[Event, Program]:
    """(event, its programme) rows, the programme None for source health events: callers add their filters,
    order and limit (the web's and the CLI's event lists, alerts, the feed, the outbox)."""
    return select(Event, Program).outerjoin(Program, Event.program_id == Program.id)


def timeline(session: Session, program_id: int) -> tuple[list[ProgramVersion], list[Event]]:
    """A programme's versions and events, oldest first."""
    versions = list(session.scalars(select(ProgramVersion).where(ProgramVersion.program_id == program_id)
                                    .order_by(ProgramVersion.seen_at, ProgramVersion.id)))
    events = list(session.scalars(select(Event).where(Event.program_id == program_id).order_by(Event.at, Event.id)))
    return versions, events


def history(catalog: Catalog, source: str, key: str) -> History | None:
    with catalog.read_session() as session:
        program = session.scalar(select(Program).where(Program.source_id == source, Program.key == key))
        if program is None:
            return None
        return History(program, *timeline(session, program.id))


EXPORT_COLUMNS = ("source_id", "key", "title", "status", "first_seen", "last_seen", "removed_at",
                  "removal_reason", "last_record_id")


def export_rows(catalog: Catalog, *, source: str | None = None, status: str | None = None,
                batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every matching programme as a flat dict (fields under ``fields``), streamed in batches."""
    last_id = 0
    while True:
        query = select(Program).where(Program.id > last_id).order_by(Program.id).limit(batch)
        if source:
            query = query.where(Program.source_id == source)
        if status:
            query = query.where(Program.status == status)
        with catalog.read_session() as session:
            rows = list(session.scalars(query))
        if not rows:
            return
        yield from map(program_dict, rows)
        last_id = rows[-1].id


def program_dict(row: Program) -> dict[str, Any]:
    """A programme as a flat JSON-ready dict (its current fields under ``fields``)."""
    out = {name: getattr(row, name) for name in EXPORT_COLUMNS}
    out["first_seen"], out["last_seen"] = row.first_seen.isoformat(), row.last_seen.isoformat()
    out["removed_at"] = row.removed_at.isoformat() if row.removed_at else None
    out["fields"] = row.fields
    return out


def keys_ending_with(catalog: Catalog, source: str, tail: str, limit: int = 5) -> list[str]:
    """Keys of the source's programmes that end with ``tail`` (a short way to name one)."""
    escaped = tail.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (select(Program.key).where(Program.source_id == source, Program.key.like(f"%{escaped}", escape="\\"))
             .limit(limit))
    with catalog.read_session() as session:
        return list(session.scalars(query))
