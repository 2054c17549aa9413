"""Full-text search over programmes that works for Chinese: SQLite FTS5 (trigram) or PostgreSQL pg_trgm.

Both indexes (created by migration 0002) answer substring queries of three characters or more. Shorter
terms — a two-character Chinese word such as 水稻 is common — cannot be split into trigrams, so they fall
back to ``LIKE`` over ``programs.search_text``: on SQLite a scan of a covering index of that one column
(migration 0004), not of the wide rows; on PostgreSQL a sequential scan. Every term must match (AND),
case-insensitively.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, column, select, table, text

from archive.catalog.models import Program

FTS_TABLE = "programs_fts"
PG_TRIGRAM_INDEX = "ix_programs_search_trgm"
SQLITE_SCAN_INDEX = "ix_programs_search_text"
MIN_TRIGRAM = 3


def terms(query: str) -> list[str]:
    """The query's words, lower-cased (``search_text`` is stored lower-cased), without duplicates."""
    return list(dict.fromkeys(query.lower().split()))


def _like(term: str, dialect: str) -> ColumnElement[bool]:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    condition = Program.search_text.like(f"%{escaped}%", escape="\\")
    if dialect != "sqlite":
        return condition
    # SQLite: scan the narrow covering index on search_text (migration 0004), not the wide rows with their JSON.
    return Program.id.in_(select(Program.id).where(condition))


def text_conditions(query: str, dialect: str) -> list[ColumnElement[bool]]:
    """WHERE conditions (all must hold) for programmes whose title, fields or attachments contain every term."""
    words = terms(query)
    long_words = [w for w in words if len(w) >= MIN_TRIGRAM]
    conditions: list[ColumnElement[bool]] = []
    if dialect == "sqlite" and long_words:
        # Each term as an FTS5 string ("…", quotes doubled): trigram substring match, no query syntax.
        match = " AND ".join('"' + w.replace('"', '""') + '"' for w in long_words)
        matching: Select[Any] = select(column("rowid")).select_from(table(FTS_TABLE)).where(
            text(f"{FTS_TABLE} MATCH :fts_query").bindparams(fts_query=match))
        conditions.append(Program.id.in_(matching))
        words = [w for w in words if len(w) < MIN_TRIGRAM]
    # PostgreSQL's planner uses the pg_trgm GIN index for LIKE '%term%' itself (three characters or more).
    conditions += [_like(w, dialect) for w in words]
    return conditions


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic filter: the search index structures exist only in the database, not in the models."""
    if type_ == "table" and name is not None and name.startswith(FTS_TABLE):
        return False
    return not (type_ == "index" and name in (PG_TRIGRAM_INDEX, SQLITE_SCAN_INDEX))
