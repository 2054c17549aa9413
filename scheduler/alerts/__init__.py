"""Alerts: subscriptions, the outbox and its delivery, messages with evidence, and Atom feeds.

What the pipeline calls after a crawl has committed its events::

    from scheduler.alerts import enqueue, deliver_due
    enqueue(catalog, event_ids)            # one outbox row per matching (subscription, event)
    deliver_due(catalog, settings)         # or leave it to `listwatch alerts deliver --loop`
"""

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

__all__ = [
    "KINDS",
    "MODES",
    "AppriseChannel",
    "Channel",
    "DeliveryError",
    "DeliveryStats",
    "Message",
    "SubscriptionError",
    "SubscriptionView",
    "WebhookChannel",
    "atom_feed",
    "backoff",
    "deliver_due",
    "enqueue",
    "feed_path",
    "list_subscriptions",
    "redact_target",
    "remove_subscription",
    "subscribe",
]
