"""The outbox: one row per (subscription, event), delivered with retries, never lost, not sent twice.

**Enqueue.** :func:`enqueue` inserts a row for every active subscription whose filters match an
event (``INSERT … ON CONFLICT DO NOTHING`` on the unique ``(subscription_id, event_id)``), so running
it twice, or in two processes at once, never makes a second row. Backfill events are skipped.
Immediate rows are due at once; digest rows carry a ``batch`` id (``hourly:2026-03-01T10:00Z``,
the UTC hour or day of the event) and are due when that window closes.

**Deliver.** :func:`deliver_due` serves subscriptions side by side (a bounded thread pool; each subscription
in order, for at most ``scheduler.deliver_budget`` seconds a pass, each send with a total deadline), so one slow or dead
endpoint delays only its own messages. Each subscription's due rows go one *unit* at a time (an immediate row,
or all due rows of one subscription's batch, which become one digest message):

1. *claim* — in one short transaction: ``state='sending'``, ``attempts+1``, ``next_attempt_at`` =
   now + lease; the ``UPDATE … WHERE state IN (pending, sending) AND next_attempt_at <= now`` only
   succeeds for one process, so two delivery processes never send the same row;
2. *send* — outside any transaction (no database lock is held during network I/O);
3. *settle* — immediately, in its own transaction: ``sent`` on acceptance; otherwise back to
   ``pending`` with exponential backoff (30 s, 1 min, 2 min … capped at 1 h) and a redacted
   ``last_error``, or ``dead`` (with a log line) once ``max_attempts`` is reached.

A process that dies between claim and settle leaves its rows ``sending``; once the lease expires
any process retries them. Counting the claim as an attempt means a message that crashes the
process every time still ends up ``dead`` rather than looping.

**At-least-once, not exactly-once.** A channel's acceptance and our ``sent`` commit cannot be one
atomic act (Apprise services and most webhooks have no transactional or idempotent receive). We
choose to send first and record second: if the process dies, or the database is unreachable, in
the instant between the channel's 2xx and the commit, or if a send outlives its lease (the send
timeout, 30 s, is far below the 5-minute lease), that message is sent again. Recording first would
make delivery at-most-once: a crash would silently lose an alert, which is worse for researchers
than a rare duplicate. The window is one commit wide, and every webhook message carries a stable
``delivery_id`` (also the ``Idempotency-Key`` header) so a receiver can make it exactly-once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from archive.catalog import Catalog
from archive.catalog.models import Event, Outbox, Subscription
from archive.catalog.types import as_utc
from archive.programs.query import event_rows
from scheduler.alerts.channels import Channel, DeliveryError, Message, default_channels
from scheduler.alerts.messages import (
    Alert,
    digest_payload,
    digest_title,
    event_payload,
    headline,
    load_alerts,
    render_digest,
    render_text,
)
from scheduler.alerts.subscriptions import matches
from scheduler.settings import Settings

log = logging.getLogger(__name__)

MISSED_WINDOW = timedelta(days=1)   # how far back enqueue_missed looks for events never queued
MAX_ATTEMPTS = 20
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
_WINDOWS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
_LIVE = ("pending", "sending")


@dataclass
class DeliveryStats:
    """What one :func:`deliver_due` pass did."""

    messages: int = 0   # messages a channel accepted
    rows: int = 0       # outbox rows marked sent (a digest message covers several)
    failures: int = 0   # messages a channel refused or could not take
    dead: int = 0       # rows given up on in this pass


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones: 30 s, 1 min, 2 min, … ≤ 1 h."""
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def window(mode: str, at: datetime) -> tuple[datetime, datetime]:
    """The UTC hour or day holding ``at``, as (start, end)."""
    at = as_utc(at)
    start = at.replace(minute=0, second=0, microsecond=0)
    if mode == "daily":
        start = start.replace(hour=0)
    return start, start + _WINDOWS[mode]


def batch_id(mode: str, start: datetime) -> str:
    return f"{mode}:{start:%Y-%m-%dT%H:%M}Z"


def _parse_batch(batch: str) -> tuple[str, datetime, datetime]:
    mode, _, stamp = batch.partition(":")
    start = datetime.strptime(stamp, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    return mode, start, start + _WINDOWS[mode]


# -- enqueue ------------------------------------------------------------------------------------------

def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert outbox rows, skipping pairs that exist; returns how many were created."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        created = 0
        for start in range(0, len(rows), 200):
            chunk, pair = rows[start:start + 200], ["subscription_id", "event_id"]
            if dialect == "sqlite":
                stmt = sqlite.insert(Outbox).values(chunk).on_conflict_do_nothing(index_elements=pair)
                created += len(session.execute(stmt.returning(Outbox.id)).all())
            else:
                pg = postgresql.insert(Outbox).values(chunk).on_conflict_do_nothing(index_elements=pair)
                created += len(session.execute(pg.returning(Outbox.id)).all())
        return created
    created = 0
    for row in rows:  # other databases: one savepoint per row
        try:
            with session.begin_nested():
                session.execute(insert(Outbox).values(row))
            created += 1
        except IntegrityError:
            pass
    return created


def enqueue(catalog: Catalog, event_ids: Iterable[int], *, now: datetime | None = None,
            only_earlier_subscriptions: bool = False) -> int:
    """Queue ``event_ids`` for every matching active subscription; returns how many rows were created.

    Call it after a crawl's events are committed: ``enqueue(catalog, [e.id for e in events])``.
    Idempotent: a (subscription, event) pair already queued is left alone. ``only_earlier_subscriptions``: skip
    subscriptions created after the event (a late catch-up must not send a new subscriber old news).
    """
    ids = sorted(set(event_ids))
    now = as_utc(now or datetime.now(UTC))
    created = 0
    with catalog.session() as session:
        subs = list(session.scalars(select(Subscription).where(Subscription.active.is_(True))))
        if not subs or not ids:
            return 0
        for start in range(0, len(ids), 500):
            rows: list[dict[str, Any]] = []
            found = session.execute(event_rows().where(Event.id.in_(ids[start:start + 500]),
                                                       Event.backfill.is_(False)))
            for event, program in found:
                for sub in subs:
                    if not matches(sub, event, program):
                        continue
                    if only_earlier_subscriptions and sub.created_at > event.at:
                        continue
                    batch, due = None, now
                    if sub.mode in _WINDOWS:
                        begin, due = window(sub.mode, event.at)
                        batch = batch_id(sub.mode, begin)
                    rows.append({"subscription_id": sub.id, "event_id": event.id, "state": "pending",
                                 "attempts": 0, "next_attempt_at": due, "last_error": "", "batch": batch})
            if rows:
                created += _insert_ignoring_duplicates(session, rows)
    if created:
        log.info("queued %d alert deliveries for %d events", created, len(ids))
    return created


def enqueue_missed(catalog: Catalog, *, window: timedelta = MISSED_WINDOW, now: datetime | None = None) -> int:
    """Queue recent events that have no outbox row at all; returns how many rows were created.

    A crawl process killed after committing its events but before queueing them (two transactions) leaves
    such events behind; the daemon's maintenance pass calls this so their alerts are late, not lost. Only
    subscriptions that existed when the event happened get it; idempotent like :func:`enqueue`.
    """
    now = as_utc(now or datetime.now(UTC))
    with catalog.read_session() as session:
        queued = select(Outbox.id).where(Outbox.event_id == Event.id).exists()
        ids = list(session.scalars(select(Event.id).where(Event.backfill.is_(False), Event.at >= now - window,
                                                          ~queued)))
    created = enqueue(catalog, ids, now=now, only_earlier_subscriptions=True) if ids else 0
    if created:
        log.warning("queued %d alert deliveries for events whose crawl stopped before queueing them", created)
    return created


# -- deliver ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Unit:
    subscription_id: int
    row_id: int | None      # an immediate row
    batch: str | None       # or a digest batch


@dataclass(frozen=True)
class _Claim:
    unit: _Unit
    rows: dict[int, int]    # outbox id → event id
    name: str
    channel: str
    target: str
    message: Message | None
    missing: tuple[int, ...]  # outbox ids whose event no longer exists


def _due_units(catalog: Catalog, now: datetime, limit: int) -> list[_Unit]:
    """Due units, oldest first, of subscriptions that no other pass is sending to right now."""
    with catalog.session() as session:
        in_flight = select(Outbox.subscription_id).where(Outbox.state == "sending", Outbox.next_attempt_at > now)
        found = session.execute(
            select(Outbox.id, Outbox.subscription_id, Outbox.batch)
            .join(Subscription, Subscription.id == Outbox.subscription_id)
            .where(Subscription.active.is_(True), Outbox.state.in_(_LIVE), Outbox.next_attempt_at <= now,
                   Outbox.subscription_id.not_in(in_flight))
            .order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)).all()
    units: dict[tuple[int, Any], _Unit] = {}
    for row_id, sub_id, batch in found:
        key = (sub_id, batch) if batch else (sub_id, row_id)
        units.setdefault(key, _Unit(sub_id, None if batch else row_id, batch))
    return list(units.values())


def _message(sub: Subscription, unit: _Unit, rows: dict[int, int], alerts: dict[int, Alert]) -> Message | None:
    chosen = sorted((alerts[e] for e in rows.values() if e in alerts), key=lambda a: (a.at, a.event_id))
    if not chosen:
        return None
    if unit.batch is None:
        alert = chosen[0]
        delivery_id = f"listwatch:sub{sub.id}:event{alert.event_id}"
        return Message(title=f"[listwatch] {headline(alert)}", body=render_text(alert), delivery_id=delivery_id,
                       payload=event_payload(alert, subscription=sub.name, delivery_id=delivery_id))
    mode, start, end = _parse_batch(unit.batch)
    digest = hashlib.sha256(",".join(str(a.event_id) for a in chosen).encode()).hexdigest()[:12]
    delivery_id = f"listwatch:sub{sub.id}:{unit.batch}:{digest}"
    return Message(title=digest_title(chosen, mode, start), body=render_digest(chosen), delivery_id=delivery_id,
                   payload=digest_payload(chosen, subscription=sub.name, delivery_id=delivery_id, mode=mode,
                                          start=start, end=end))


def _claim(catalog: Catalog, settings: Settings, unit: _Unit, now: datetime, lease: timedelta) -> _Claim | None:
    """Take the unit's due rows for this process (or nothing, if another process has them)."""
    with catalog.session() as session:
        where = [Outbox.state.in_(_LIVE), Outbox.next_attempt_at <= now]
        if unit.row_id is not None:
            where.append(Outbox.id == unit.row_id)
        else:
            where += [Outbox.subscription_id == unit.subscription_id, Outbox.batch == unit.batch]
        taken = session.execute(
            update(Outbox).where(*where)
            .values(state="sending", attempts=Outbox.attempts + 1, next_attempt_at=now + lease)
            .returning(Outbox.id, Outbox.event_id).execution_options(synchronize_session=False)).all()
        if not taken:
            return None
        rows = {row_id: event_id for row_id, event_id in taken}
        sub = session.get(Subscription, unit.subscription_id)
        assert sub is not None  # the outbox row's foreign key guarantees it
        alerts = load_alerts(session, settings, rows.values())
        missing = tuple(row_id for row_id, event_id in rows.items() if event_id not in alerts)
        return _Claim(unit, rows, sub.name, sub.channel, sub.target, _message(sub, unit, rows, alerts), missing)


def _settle_sent(catalog: Catalog, ids: Iterable[int], now: datetime) -> None:
    with catalog.session() as session:
        session.execute(update(Outbox).where(Outbox.id.in_(list(ids)), Outbox.state == "sending")
                        .values(state="sent", sent_at=now, last_error="")
                        .execution_options(synchronize_session=False))


def _settle_failed(catalog: Catalog, name: str, ids: Iterable[int], error: str, now: datetime,
                   max_attempts: int, give_up: bool = False) -> int:
    """Back off or give up; returns how many rows died."""
    dead = 0
    with catalog.session() as session:
        for row in session.scalars(select(Outbox).where(Outbox.id.in_(list(ids)), Outbox.state == "sending")):
            row.last_error = error[:2000]
            if give_up or row.attempts >= max_attempts:
                row.state = "dead"
                dead += 1
                log.error("alert delivery dead: subscription %r, event %s, after %d attempts: %s",
                          name, row.event_id, row.attempts, error)
            else:
                row.state = "pending"
                row.next_attempt_at = now + backoff(row.attempts)
    return dead


def deliver_due(catalog: Catalog, settings: Settings, now: datetime | None = None, *,
                channels: dict[str, Channel] | None = None, lease: timedelta | None = None,
                max_attempts: int = MAX_ATTEMPTS, stop: Callable[[], bool] | None = None,
                limit: int = 1000, channel_budget: float | None = None,
                threads: int | None = None) -> DeliveryStats:
    """Send every outbox row due at ``now`` (default: the clock, read afresh for each message).

    Subscriptions are served side by side (up to ``threads`` at once), each in order, each for at most
    ``channel_budget`` seconds per pass (``lease``, ``channel_budget``, ``threads``: the ``scheduler.deliver_*``
    settings unless given), and each send has a total deadline (the channel's): a slow or dead
    endpoint delays only its own subscription. A subscription with a send in flight in another pass is left to
    that pass. ``stop`` is asked before each message; when it answers true the pass ends cleanly.
    Example: ``deliver_due(catalog, settings)`` after ``enqueue``; ``listwatch alerts deliver --loop``.
    """
    clock: Callable[[], datetime] = (lambda: as_utc(now)) if now is not None else (lambda: datetime.now(UTC))
    channels = channels if channels is not None else default_channels(settings.user_agent)
    per_sub: dict[int, list[_Unit]] = {}
    for unit in _due_units(catalog, clock(), limit):
        per_sub.setdefault(unit.subscription_id, []).append(unit)
    stats = DeliveryStats()
    if not per_sub:
        return stats
    knobs = settings.scheduler
    held = lease if lease is not None else timedelta(seconds=knobs.deliver_lease)
    budget = channel_budget if channel_budget is not None else knobs.deliver_budget

    def serve(units: list[_Unit]) -> DeliveryStats:
        return _deliver_subscription(catalog, settings, units, clock, channels, held, max_attempts, stop,
                                     time.monotonic() + budget)

    with ThreadPoolExecutor(max_workers=max(1, min(threads or knobs.deliver_threads, len(per_sub))),
                            thread_name_prefix="listwatch-deliver") as pool:
        for done in pool.map(serve, per_sub.values()):
            stats.messages += done.messages
            stats.rows += done.rows
            stats.failures += done.failures
            stats.dead += done.dead
    return stats


def _deliver_subscription(catalog: Catalog, settings: Settings, units: list[_Unit], clock: Callable[[], datetime],
                          channels: dict[str, Channel], lease: timedelta, max_attempts: int,
                          stop: Callable[[], bool] | None, budget_ends: float) -> DeliveryStats:
    """One subscription's due units, in order, until one fails (the rest wait for the next pass), the
    subscription's time budget for this pass is spent, or ``stop`` says so."""
    stats = DeliveryStats()
    for unit in units:
        if (stop is not None and stop()) or time.monotonic() >= budget_ends:
            break
        try:
            claim = _claim(catalog, settings, unit, clock(), lease)
        except Exception:   # a database hiccup: this subscription waits for the next pass, the others go on
            log.exception("could not claim alert deliveries of subscription %s", unit.subscription_id)
            break
        if claim is None:
            continue
        if claim.missing:
            stats.dead += _settle_failed(catalog, claim.name, claim.missing, "the event no longer exists", clock(),
                                         max_attempts, give_up=True)
        live = {row_id: e for row_id, e in claim.rows.items() if row_id not in claim.missing}
        if not live or claim.message is None:
            continue
        channel = channels.get(claim.channel)
        try:
            if channel is None:
                raise DeliveryError(f"unknown channel {claim.channel!r}")
            channel.send(claim.target, claim.message)
        except DeliveryError as exc:
            stats.failures += 1
            log.warning("alert delivery to subscription %r failed: %s", claim.name, exc)
            stats.dead += _settle_failed(catalog, claim.name, live, str(exc), clock(), max_attempts)
            break   # leave this subscription's other messages for later, in order
        _settle_sent(catalog, live, clock())
        stats.messages += 1
        stats.rows += len(live)
        log.info("alert sent to subscription %r: %s", claim.name, claim.message.title)
    return stats
