"""Alerts: subscriptions, the outbox and its delivery, messages with evidence, and Atom feeds.

What the pipeline calls after a crawl has committed its events::

    from scheduler.alerts import enqueue, deliver_due
    enqueue(catalog, event_ids)            # one outbox row per matching (subscription, event)
    deliver_due(catalog, settings)         # or leave it to `listwatch alerts deliver --loop`

The names below are loaded on first use (PEP 562): importing ``scheduler.alerts.redact`` — which every log
line goes through — must not import Apprise's channels, feeds and the web signing code with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names, for type checkers
    from scheduler.alerts.channels import AppriseChannel, Channel, DeliveryError, Message, WebhookChannel
    from scheduler.alerts.feed import atom_feed, feed_path
    from scheduler.alerts.outbox import DeliveryStats, backoff, deliver_due, enqueue
    from scheduler.alerts.redact import redact_target
    from scheduler.alerts.subscriptions import (
        KINDS,
        MODES,
        SubscriptionError,
        SubscriptionView,
        list_subscriptions,
        remove_subscription,
        subscribe,
    )

_HOME = {
    "AppriseChannel": "channels", "Channel": "channels", "DeliveryError": "channels", "Message": "channels",
    "WebhookChannel": "channels",
    "atom_feed": "feed", "feed_path": "feed",
    "DeliveryStats": "outbox", "backoff": "outbox", "deliver_due": "outbox", "enqueue": "outbox",
    "redact_target": "redact",
    "KINDS": "subscriptions", "MODES": "subscriptions", "SubscriptionError": "subscriptions",
    "SubscriptionView": "subscriptions", "list_subscriptions": "subscriptions",
    "remove_subscription": "subscriptions", "subscribe": "subscriptions",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
