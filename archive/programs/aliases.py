"""A listed key that differs from a known programme's key only in letter case, or a trailing ``/``, is that
programme.

Sites on case-insensitive servers (IIS, ASP.NET) write the same link in different cases on different days
(``/News/Detail.aspx?ID=5``, then ``/news/detail.aspx?id=5``), and CMSs add or drop a trailing slash
(``/p/9`` → ``/p/9/``): the same page, yet a new key, so the programme was "new" and its old key "missing",
then "removed". Before a crawl is applied, a key the catalog does not know takes the key of the one known
programme (active or missing) that equals it ignoring case and a trailing slash, provided that
programme is not itself listed by this crawl and no other listed key claims it. Keys already in the catalog
are never rewritten, so nothing changes for sources whose links keep their case.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive.catalog.models import Program
from archive.programs.diff import ACTIVE, MISSING, Seen, loose

BATCH = 500


def with_known_case(session: Session, source_id: str, seen: Sequence[Seen]) -> list[Seen]:
    """``seen`` with each unknown key replaced by the known key that differs from it only in case."""
    listed = {s.key for s in seen}
    existing = _known_keys(session, source_id, list(listed))
    fresh = [s for s in seen if s.key not in existing]
    if not fresh:
        return list(seen)
    candidates: dict[str, list[str]] = {}
    for key in _keys_loosely(session, source_id, [loose(s.key) for s in fresh]):
        if key not in listed:
            candidates.setdefault(loose(key), []).append(key)
    claims = Counter(loose(s.key) for s in fresh)
    out = []
    for item in seen:
        match = candidates.get(loose(item.key), []) if item.key not in existing else []
        if len(match) == 1 and claims[loose(item.key)] == 1:
            item = dataclasses.replace(item, key=match[0])
        out.append(item)
    return out


def _known_keys(session: Session, source_id: str, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), BATCH):
        found.update(session.scalars(select(Program.key).where(
            Program.source_id == source_id, Program.key.in_(keys[start:start + BATCH]))))
    return found


def _keys_loosely(session: Session, source_id: str, lowered: list[str]) -> list[str]:
    found: list[str] = []
    for start in range(0, len(lowered), BATCH):
        found += session.scalars(select(Program.key).where(
            Program.source_id == source_id, Program.status.in_((ACTIVE, MISSING)),
            func.rtrim(func.lower(Program.key), "/").in_(lowered[start:start + BATCH])))   # loose() in SQL
    return found
