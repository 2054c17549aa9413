"""Subscriptions: where alerts go (an Apprise URL or a JSON webhook), which events, and how often.

Filters combine with AND; values inside one filter with OR; an empty filter matches everything:

- ``sources``: source ids;
- ``kinds``: ``new``, ``changed``, ``missing``, ``removed``, ``reappeared``, ``source_health``;
- ``keywords``: matched case-insensitively (after NFKC, so full-width ``ＡＩ`` matches ``ai``) in the
  programme's title and field values, and in the old and new values of a change. Source-health
  events have no programme: a keyword subscription receives them only if it asks for the kind.

Example::

    subscribe(catalog, "moc-research", "json://127.0.0.1:9000/hook", kinds=["new", "changed"],
              keywords=["数字经济"], mode="hourly")
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from archive.catalog import Catalog
from archive.catalog.models import Event, Outbox, Program, Subscription
from scheduler.alerts.redact import redact_target

PROGRAM_KINDS = ("new", "changed", "missing", "removed", "reappeared")
HEALTH_KIND = "source_health"
KINDS = (*PROGRAM_KINDS, HEALTH_KIND)
# Event kinds written for source health; the subscription filter calls them all ``source_health``.
HEALTH_EVENT_KINDS = frozenset({HEALTH_KIND, "health", "failing", "blocked", "degraded", "silent", "incomplete"})
MODES = ("immediate", "hourly", "daily")
CHANNELS = ("apprise", "webhook")


class SubscriptionError(ValueError):
    """A subscription cannot be created or found; the message never contains the target."""


@dataclass(frozen=True)
class SubscriptionView:
    """A subscription as shown to operators: the target only in redacted form."""

    name: str
    channel: str
    target: str          # redacted
    sources: list[str]
    kinds: list[str]
    keywords: list[str]
    mode: str
    active: bool
    created_at: datetime


def kind_group(kind: str) -> str:
    """The filter name of an event kind: programme kinds as they are, health kinds as ``source_health``."""
    if kind in PROGRAM_KINDS:
        return kind
    return HEALTH_KIND if kind in HEALTH_EVENT_KINDS or kind.startswith("source") else kind


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _validate_target(channel: str, target: str) -> None:
    if channel == "webhook":
        try:
            parts = urlsplit(target)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise SubscriptionError(f"a webhook needs an http(s) URL, not {redact_target(target)}")
        return
    import apprise

    if apprise.Apprise.instantiate(target) is None:
        raise SubscriptionError(f"not an Apprise URL Apprise can use: {redact_target(target)} "
                                "(see https://github.com/caronc/apprise/wiki)")


def _clean(values: Iterable[str] | None) -> list[str]:
    return sorted({v.strip() for v in values or () if v.strip()})


def subscribe(catalog: Catalog, name: str, target: str, *, channel: str = "apprise",
              sources: Sequence[str] = (), kinds: Sequence[str] = (), keywords: Sequence[str] = (),
              mode: str = "immediate", now: datetime | None = None) -> SubscriptionView:
    """Create a subscription; ``SubscriptionError`` for a bad name, URL, kind, mode or a duplicate name."""
    name = name.strip()
    if not name:
        raise SubscriptionError("a subscription needs a name")
    if channel not in CHANNELS:
        raise SubscriptionError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if mode not in MODES:
        raise SubscriptionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise SubscriptionError(f"unknown event kind(s) {', '.join(bad)}; known: {', '.join(KINDS)}")
    _validate_target(channel, target)
    with catalog.session() as session:
        if session.scalar(select(Subscription.id).where(Subscription.name == name)) is not None:
            raise SubscriptionError(f"a subscription named {name!r} already exists")
        row = Subscription(name=name, channel=channel, target=target, sources=_clean(sources),
                           kinds=_clean(kinds), keywords=_clean(keywords), mode=mode, active=True,
                           created_at=now or datetime.now(UTC))
        session.add(row)
        session.flush()
        return view(row)


def remove_subscription(catalog: Catalog, name: str) -> None:
    """Delete a subscription with its outbox rows (pending ones are dropped, sent ones forgotten)."""
    with catalog.session() as session:
        sub_id = session.scalar(select(Subscription.id).where(Subscription.name == name))
        if sub_id is None:
            raise SubscriptionError(f"no subscription named {name!r}")
        session.execute(delete(Outbox).where(Outbox.subscription_id == sub_id))
        session.execute(delete(Subscription).where(Subscription.id == sub_id))


def list_subscriptions(catalog: Catalog) -> list[SubscriptionView]:
    with catalog.session() as session:
        return [view(s) for s in session.scalars(select(Subscription).order_by(Subscription.name))]


def view(sub: Subscription) -> SubscriptionView:
    return SubscriptionView(name=sub.name, channel=sub.channel, target=redact_target(sub.target),
                            sources=list(sub.sources), kinds=list(sub.kinds), keywords=list(sub.keywords),
                            mode=sub.mode, active=sub.active, created_at=sub.created_at)


def _texts(value: Any) -> Iterable[str]:
    if value is None:
        return
    if isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)
    else:
        yield str(value)


def haystack(event: Event, program: Program | None) -> str:
    """The text keywords are searched in, normalised."""
    parts = [event.title, *_texts(event.changes)]
    if program is not None:
        parts += [program.title, *_texts(program.fields)]
    return normalise("\n".join(p for p in parts if p))


def matches(sub: Subscription, event: Event, program: Program | None) -> bool:
    """Whether ``event`` passes ``sub``'s filters (the caller checks ``active`` and ``backfill``)."""
    if sub.sources and event.source_id not in sub.sources:
        return False
    group = kind_group(event.kind)
    if sub.kinds and group not in sub.kinds:
        return False
    if not sub.keywords:
        return True
    if group == HEALTH_KIND:
        return bool(sub.kinds)
    text = haystack(event, program)
    return any(normalise(k) in text for k in sub.keywords)
