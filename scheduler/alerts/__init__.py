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

if TYPE_CHECKING:  # the real names, for type checkers ("x as x" marks a re-export)
    from scheduler.alerts.channels import AppriseChannel as AppriseChannel
    from scheduler.alerts.channels import Channel as Channel
    from scheduler.alerts.channels import DeliveryError as DeliveryError
    from scheduler.alerts.channels import Message as Message
    from scheduler.alerts.channels import WebhookChannel as WebhookChannel
    from scheduler.alerts.feed import atom_feed as atom_feed
    from scheduler.alerts.feed import feed_path as feed_path
    from scheduler.alerts.outbox import DeliveryStats as DeliveryStats
    from scheduler.alerts.outbox import backoff as backoff
    from scheduler.alerts.outbox import deliver_due as deliver_due
    from scheduler.alerts.outbox import enqueue as enqueue
    from scheduler.alerts.redact import redact_target as redact_target
    from scheduler.alerts.subscriptions import KINDS as KINDS
    from scheduler.alerts.subscriptions import MODES as MODES
    from scheduler.alerts.subscriptions import SubscriptionError as SubscriptionError
    from scheduler.alerts.subscriptions import SubscriptionView as SubscriptionView
    from scheduler.alerts.subscriptions import list_subscriptions as list_subscriptions
    from scheduler.alerts.subscriptions import remove_subscription as remove_subscription
    from scheduler.alerts.subscriptions import subscribe as subscribe

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
