"""The catalog: what was crawled, what was archived where, and what the programmes looked like.

The WARC files are the evidence; every row here can be rebuilt from them (``listwatch archive
reindex``), except subscriptions and delivery state. SQLAlchemy 2 typed mappings; migrations in
``archive/catalog/migrations`` (Alembic).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from archive.catalog.types import UtcDateTime


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime()}  # noqa: RUF012


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    config_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]
    last_complete_at: Mapped[datetime | None]
    # The run whose programme diff set this source's baseline (its programmes recorded, not alerted). Set in
    # the same transaction as that diff, so a crawl killed before its diff leaves the next crawl the baseline.
    baseline_run: Mapped[str | None] = mapped_column(String(64))


class CrawlRun(Base):
    """One crawl of one source. ``status``: running, complete, incomplete, failed, interrupted."""

    __tablename__ = "crawl_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="full")       # full | quick | reprocess
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int | None]
    pages: Mapped[int] = mapped_column(Integer, default=0)
    pages_failed: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[int] = mapped_column(Integer, default=0)
    warc_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    log_tail: Mapped[str] = mapped_column(Text, default="")


class WarcFile(Base):
    """A closed WARC. ``state``: spooled → stored → verified; or missing / corrupt after an audit."""

    __tablename__ = "warc_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    source_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(600), unique=True)    # storage key, e.g. src/2026/03/NAME
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="spooled", index=True)
    created_at: Mapped[datetime]
    stored_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    problem: Mapped[str] = mapped_column(Text, default="")


class Capture(Base):
    """One WARC record, indexed for lookup by URL (SURT), time and payload digest."""

    __tablename__ = "captures"
    __table_args__ = (
        Index("ix_captures_surt_ts", "surt", "timestamp"),
        Index("ix_captures_digest", "payload_digest"),
        Index("ix_captures_url_ts", "url", "timestamp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    warc_file_id: Mapped[int] = mapped_column(ForeignKey("warc_files.id"), index=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    record_type: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    surt: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[str] = mapped_column(String(20))   # WARC-Date as 14 digits (+ micros): CDX style
    status: Mapped[int | None]
    mime: Mapped[str] = mapped_column(String(200), default="")
    payload_digest: Mapped[str] = mapped_column(String(100), default="")
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    refers_to_uri: Mapped[str | None] = mapped_column(Text)
    refers_to_date: Mapped[str | None] = mapped_column(String(40))
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    source_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)


class Program(Base):
    """A listed programme, keyed per source. ``status``: active, missing, removed."""

    __tablename__ = "programs"
    __table_args__ = (
        UniqueConstraint("source_id", "key"),
        Index("ix_programs_source_status", "source_id", "status"),
        Index("ix_programs_first_seen", "first_seen"),     # the web list's sort orders
        Index("ix_programs_last_seen", "last_seen"),
        Index("ix_programs_posted", "posted"),
        Index("ix_programs_title", "title"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    missing_runs: Mapped[int] = mapped_column(Integer, default=0)
    removed_at: Mapped[datetime | None]
    removal_reason: Mapped[str] = mapped_column(Text, default="")
    last_record_id: Mapped[str | None] = mapped_column(String(64))
    detail_url: Mapped[str | None] = mapped_column(Text)                  # what a recheck fetches
    last_seen_run: Mapped[str | None] = mapped_column(String(64))        # run ids: re-applying a run is a no-op
    last_missed_run: Mapped[str | None] = mapped_column(String(64))
    search_text: Mapped[str] = mapped_column(Text, default="")           # title + field values, for search
    posted: Mapped[str | None] = mapped_column(String(10))               # YYYY-MM-DD from the date field


class ProgramVersion(Base):
    """The fields of a programme as one crawl saw them, with the record that shows it."""

    __tablename__ = "program_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime]
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    listing_record_id: Mapped[str | None] = mapped_column(String(64))
    detail_record_id: Mapped[str | None] = mapped_column(String(64))


class Event(Base):
    """new, changed, missing, removed, reappeared, or source health (failing, blocked, degraded, silent)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("program_id", "run_id", "kind", name="uq_events_program_run_kind"),
        Index("ix_events_source_run", "source_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), index=True)
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)     # field → [old, new]
    before_record_id: Mapped[str | None] = mapped_column(String(64))
    after_record_id: Mapped[str | None] = mapped_column(String(64))
    backfill: Mapped[bool] = mapped_column(Boolean, default=False)    # from reprocessing: never alerted


class Subscription(Base):
    """Where alerts go: an Apprise URL or a JSON webhook, with filters and a delivery mode."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="apprise")   # apprise | webhook
    target: Mapped[str] = mapped_column(Text)                             # secret: never logged
    sources: Mapped[list[Any]] = mapped_column(default=list)
    kinds: Mapped[list[Any]] = mapped_column(default=list)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    mode: Mapped[str] = mapped_column(String(16), default="immediate")   # immediate | hourly | daily
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Outbox(Base):
    """One (subscription, event) delivery; the unique pair is what makes 'never twice' hold."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("subscription_id", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)   # pending | sending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None]
    batch: Mapped[str | None] = mapped_column(String(64))


class QueueWorker(Base):
    """One ``listwatch worker`` process (distributed mode), for status across machines and for recovery: a
    ``running`` crawl of another host is alive while the worker that runs it (``current``) keeps beating."""

    __tablename__ = "queue_workers"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)     # host:pid:start, unique per process
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    last_heartbeat: Mapped[datetime] = mapped_column(index=True)
    stopping: Mapped[bool] = mapped_column(Boolean, default=False)
    # the jobs it runs now: [{"job": id, "source": id, "kind": quick|full, "run": run id, "since": ISO time}]
    current: Mapped[list[Any]] = mapped_column(default=list)


class SharedSecret(Base):
    """A key every machine of an install must share (the evidence-link key), generated once by the first
    process that needs it. Only on a PostgreSQL catalog: a SQLite catalog has one machine (see
    ``scheduler/web/signing.py``)."""

    __tablename__ = "shared_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class CheckDay(Base):
    """What retention (``archive/retention.py``) pruned of one source's unchanged checks of one UTC day: their
    count and totals (for charts and ``listwatch status``) and the WARC objects they wrote, which stay in the
    store: ``warcs`` is ``[[key, size, sha256], …]``, so audits know them and ``archive reindex`` restores them."""

    __tablename__ = "check_days"

    source_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)      # YYYY-MM-DD, UTC
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)     # quick
    checks: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    warc_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    warcs: Mapped[list[Any]] = mapped_column(default=list)
