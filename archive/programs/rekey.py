"""Re-key a source's programmes with the current key canonicalisation, keeping all their history.

Keys used to be absolute URLs (scheme, host and port included); :func:`crawlers.extract.canonical_key`
makes them relative to the source's site. ``listwatch programs rekey SOURCE`` rewrites the keys of an
existing catalog the same way. Programmes whose keys now coincide (the same page seen under two ports or
hosts) are merged into the oldest: their versions and events move to it, and its current state is the
one last seen. Nothing is deleted but the duplicate rows themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from archive.catalog.db import Catalog
from archive.catalog.models import Event, Program, ProgramVersion
from crawlers.extract import canonical_key
from crawlers.extractor import host_name, site_hosts
from crawlers.sources import Source

_STATE = ("title", "fields", "status", "last_seen", "missing_runs", "removed_at", "removal_reason",
          "last_record_id", "detail_url", "last_seen_run", "last_missed_run", "search_text")


@dataclass
class RekeyResult:
    source_id: str
    programmes: int = 0
    rekeyed: int = 0
    merged: int = 0
    examples: list[tuple[str, str]] = field(default_factory=list)


def new_key(key: str, source: Source, also_hosts: Iterable[str] = ()) -> str:
    rules = source.items
    drop = rules.key_params_drop if rules is not None else []
    hosts = site_hosts(source) | {host_name(f"http://{h}") for h in also_hosts}
    return canonical_key(key, drop, hosts)


def rekey(catalog: Catalog, source: Source, also_hosts: Iterable[str] = (), dry_run: bool = False) -> RekeyResult:
    """Rewrite ``source``'s programme keys; ``also_hosts`` are former hosts of the site (it moved)."""
    result = RekeyResult(source.id)
    hosts = list(also_hosts)
    with catalog.session() as session:
        programmes = list(session.scalars(select(Program).where(Program.source_id == source.id)
                                          .order_by(Program.first_seen, Program.id)))
        result.programmes = len(programmes)
        groups: dict[str, list[Program]] = {}
        for programme in programmes:
            groups.setdefault(new_key(programme.key, source, hosts), []).append(programme)
        for key, group in groups.items():
            keeper = group[0]
            if keeper.key != key or len(group) > 1:
                result.rekeyed += 1
                if len(result.examples) < 5:
                    result.examples.append((keeper.key, key))
            if dry_run:
                result.merged += len(group) - 1
                continue
            for other in group[1:]:
                _merge(session, keeper, other)
                result.merged += 1
            session.flush()  # the duplicates' rows are gone before the key is reused
            keeper.key = key
        if dry_run:
            session.rollback()
    return result


def _merge(session: Session, keeper: Program, other: Program) -> None:
    """Move ``other``'s versions and events to ``keeper``; the newer of the two gives the current state."""
    session.execute(update(ProgramVersion).where(ProgramVersion.program_id == other.id)
                    .values(program_id=keeper.id))
    taken = {(e.run_id, e.kind) for e in session.scalars(select(Event).where(Event.program_id == keeper.id))}
    for event in session.scalars(select(Event).where(Event.program_id == other.id)):
        # an event the keeper already has for that run stays, tied to the source only (kept, not lost)
        event.program_id = None if (event.run_id, event.kind) in taken else keeper.id
    keeper.first_seen = min(keeper.first_seen, other.first_seen)
    if other.last_seen > keeper.last_seen:
        for name in _STATE:
            setattr(keeper, name, getattr(other, name))
    session.delete(other)
