"""The catalog's one datetime column type: every moment is written and read back as an aware UTC datetime.

SQLite has no time zone type: SQLAlchemy stores a datetime there as its wall-clock text and drops the offset,
so a ``+08:00`` moment written as is would read back eight hours off, and reads come back naive while
PostgreSQL's ``timestamptz`` reads come back aware. Converting to UTC on the way in and marking UTC on the way
out gives both backends the same values, so callers compare and subtract datetimes without checking
``tzinfo`` first. A naive datetime is taken to be UTC already (what every writer here means by one).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (a naive one is taken to be UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always binds and returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)
