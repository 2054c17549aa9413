"""Keys every machine of an install must share, generated once and kept in the catalog (``shared_secrets``).

The first process that asks stores its candidate; every later one, on any machine, reads that one. Errors
never quote SQLAlchemy's message: it lists the statement's parameters, and one of them is the key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from archive.catalog.db import Catalog
from archive.catalog.models import SharedSecret


class SharedSecretError(RuntimeError):
    """The catalog could not be read or written (the message names no key)."""


def shared_secret(catalog: Catalog, name: str, candidate: str) -> str:
    """The key stored under ``name``; when there is none yet, ``candidate`` is stored and returned. Processes
    asking at once on a new catalog all get the one stored first (the name is the primary key)."""
    try:
        stored = _read(catalog, name)
        if stored is not None:
            return stored
        try:
            with catalog.session() as session:
                session.add(SharedSecret(name=name, value=candidate, created_at=datetime.now(UTC)))
            return candidate
        except IntegrityError:   # another process stored one in between: use theirs
            stored = _read(catalog, name)
            assert stored is not None
            return stored
    except SQLAlchemyError as exc:
        cause = str(exc.orig).splitlines()[0] if isinstance(exc, OperationalError) else type(exc).__name__
        raise SharedSecretError(f"could not read or store the shared key {name!r} in the catalog: {cause}") from None


def _read(catalog: Catalog, name: str) -> str | None:
    with catalog.read_session() as session:
        row = session.get(SharedSecret, name)
        return row.value if row is not None else None
