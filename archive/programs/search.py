"""Full-text search over programmes that works for Chinese: SQLite FTS5 (trigram) or PostgreSQL pg_trgm.

Every term must match (AND), case-insensitively, as a substring of ``programs.search_text`` (title, field
values, attachment names).

- SQLite: terms of three characters or more are FTS5 trigram phrases. Shorter terms — a two-character Chinese
  word such as 水稻 is common — cannot be trigram-searched directly; the index keeps ``search_text`` padded
  with two spaces (migration 0005), so every occurrence of a short term begins at least one indexed trigram,
  and the vocabulary (``programs_fts_vocab``, read by range) turns the term into those trigrams, ORed. A term
  that begins more than ``MAX_EXPANSION`` trigrams (a single common character) falls back to ``LIKE``, which is
  then cheap because a page fills quickly. The vocabulary's document counts also pick the plan: few matches
  are looked up by id and sorted; many are found by walking the list's sort index (``+id IN (…)``, which
  hides the id index) until a page is full.
- PostgreSQL: ``LIKE '%term%'``; the planner uses the pg_trgm GIN index for terms of three characters or more.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, column, literal_column, select, table, text
from sqlalchemy.orm import Session

from archive.catalog.models import Program

FTS_TABLE = "programs_fts"
FTS_VOCAB = "programs_fts_vocab"
PG_TRIGRAM_INDEX = "ix_programs_search_trgm"
SQLITE_SCAN_INDEX = "ix_programs_search_text"
MIN_TRIGRAM = 3
MAX_EXPANSION = 256
FEW_MATCHES = 5000


def terms(query: str) -> list[str]:
    """The query's words, lower-cased (``search_text`` is stored lower-cased), without duplicates."""
    return list(dict.fromkeys(query.lower().split()))


def _like(term: str) -> ColumnElement[bool]:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Program.search_text.like(f"%{escaped}%", escape="\\")


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _expand(session: Session, term: str) -> tuple[list[str], int] | None:
    """The indexed trigrams that begin with a short ``term`` and how many documents hold them (None: too many
    trigrams to OR together)."""
    rows = session.execute(text(f"SELECT term, doc FROM {FTS_VOCAB} WHERE term >= :lo AND term < :hi LIMIT :n"),
                           {"lo": term, "hi": term + "\U0010ffff", "n": MAX_EXPANSION + 1}).all()
    return None if len(rows) > MAX_EXPANSION else ([r[0] for r in rows], sum(r[1] for r in rows))


def _phrase_docs(session: Session, term: str) -> int:
    """An upper bound of the documents holding ``term``: the rarest of its trigrams (0 if one is absent)."""
    grams = {term[i:i + 3] for i in range(len(term) - 2)}
    counts: dict[str, int] = dict(session.execute(text(f"SELECT term, doc FROM {FTS_VOCAB} WHERE term IN :grams")
                                  .bindparams(bindparam("grams", expanding=True)), {"grams": sorted(grams)}).all())
    return min(counts.get(g, 0) for g in grams)


def text_conditions(query: str, dialect: str, session: Session | None = None) -> list[ColumnElement[bool]]:
    """WHERE conditions (all must hold) for programmes whose title, fields or attachments contain every term.

    On SQLite, ``session`` reads the trigram vocabulary for short terms (without it they use ``LIKE``)."""
    words = terms(query)
    if dialect != "sqlite":
        return [_like(w) for w in words]
    groups: list[str] = []
    likes: list[ColumnElement[bool]] = []
    estimate = None if session is None else 1 << 62     # documents that can match at most
    for word in words:
        if len(word) >= MIN_TRIGRAM:
            groups.append(_phrase(word))
            if session is not None and estimate is not None:
                estimate = min(estimate, _phrase_docs(session, word))
            continue
        expansion = _expand(session, word) if session is not None else None
        if expansion is None:
            likes.append(_like(word))
            continue
        trigrams, docs = expansion
        groups.append("(" + " OR ".join(_phrase(t) for t in trigrams) + ")")
        estimate = min(estimate if estimate is not None else docs, docs)
    if estimate == 0:
        return [literal_column("0") == 1]                # some term is in no indexed text
    conditions = likes
    if groups:
        matching: Select[Any] = select(column("rowid")).select_from(table(FTS_TABLE)).where(
            text(f"{FTS_TABLE} MATCH :fts_query").bindparams(fts_query=" AND ".join(groups)))
        # Few matches: look them up and sort them. Many: "+id" hides the id index, so SQLite walks the sort
        # order and stops at a full page.
        few = estimate is not None and estimate <= FEW_MATCHES
        conditions.append((Program.id if few else literal_column("+programs.id")).in_(matching))
    return conditions


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic filter: the search index structures exist only in the database, not in the models."""
    if type_ == "table" and name is not None and name.startswith(FTS_TABLE):
        return False
    return not (type_ == "index" and name in (PG_TRIGRAM_INDEX, SQLITE_SCAN_INDEX))
