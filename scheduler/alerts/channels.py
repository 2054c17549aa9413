"""Channels: how a message reaches a subscription's target. One small interface, two implementations.

``Channel.send(target, message)`` returns when the far end has accepted the message and raises
:class:`DeliveryError` otherwise. Error messages are scrubbed of the target's secrets, and the
HTTP libraries' own log lines are scrubbed while a send runs (see ``redact.scrubbed_logs``).

- :class:`AppriseChannel`: any Apprise URL; the message goes as title + plain-text body.
- :class:`WebhookChannel`: ``POST`` of the message's JSON document (``webhook.schema.json``) with
  an ``Idempotency-Key`` header equal to its ``delivery_id``, so receivers can drop the rare
  duplicate that at-least-once delivery allows (see ``outbox``). Any 2xx answer is acceptance.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from scheduler.alerts.redact import redact_target, scrub, scrubbed_logs

SEND_TIMEOUT = 30.0  # seconds for a whole attempt; well under the outbox lease


class DeliveryError(Exception):
    """The channel did not accept a message. The text is safe to store and log (no secrets)."""


@dataclass(frozen=True)
class Message:
    """One outgoing message: text for humans, a JSON document for machines, and its delivery id."""

    title: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)
    delivery_id: str = ""


class Channel(Protocol):
    def send(self, target: str, message: Message) -> None: ...


class AppriseChannel:
    """Delivers through Apprise (no plugins from the home directory, no persistent storage).

    Apprise's own timeouts are per network wait, so each attempt runs in a worker thread that the caller waits
    for at most ``timeout`` seconds in total: past that the attempt counts as failed (and is retried later; a
    late acceptance is the rare duplicate at-least-once delivery allows). The worker keeps the target's secrets
    scrubbed from the HTTP libraries' logs for as long as it runs.
    """

    def __init__(self, timeout: float = SEND_TIMEOUT) -> None:
        self.timeout = timeout

    def send(self, target: str, message: Message) -> None:
        outcome: list[DeliveryError | None] = []
        worker = threading.Thread(target=lambda: outcome.append(self._attempt(target, message)),
                                  name="listwatch-apprise", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if not outcome:
            raise DeliveryError(f"{redact_target(target)}: no complete answer within {self.timeout:g} s")
        if outcome[0] is not None:
            raise outcome[0]

    def _attempt(self, target: str, message: Message) -> DeliveryError | None:
        import apprise

        where = redact_target(target)
        with scrubbed_logs(target) as secrets:
            asset = apprise.AppriseAsset(plugin_paths=[], storage_mode="memory", service_timeout=self.timeout)
            notifier = apprise.Apprise(asset=asset)
            if not notifier.add(target):
                return DeliveryError(f"{where}: Apprise cannot use this URL")
            try:
                result = notifier.notify(body=message.body, title=message.title,
                                         body_format=apprise.NotifyFormat.TEXT, timeout=self.timeout)
            except Exception as exc:  # a plugin bug must not take the delivery loop down
                return DeliveryError(scrub(f"{where}: {type(exc).__name__}: {exc}", secrets))
            if not result:
                problems = [entry.message for entry in result.logs()
                            if getattr(entry, "level", "") in ("WARNING", "ERROR", "CRITICAL")]
                detail = "; ".join(dict.fromkeys(problems))[:500] or f"status {result.status.name}"
                return DeliveryError(scrub(f"{where}: {detail}", secrets))
        return None


class WebhookChannel:
    """POSTs JSON to an http(s) URL with httpx; redirects are not followed (a moved hook is an error).

    ``timeout`` is a total deadline for the attempt (connect, send, answer), not a per-read timeout.
    """

    def __init__(self, user_agent: str = "listwatch-alerts", timeout: float = SEND_TIMEOUT) -> None:
        self.user_agent = user_agent
        self.timeout = timeout

    def send(self, target: str, message: Message) -> None:
        import httpx  # imported when a webhook is sent, not by every `listwatch` command

        where = redact_target(target)
        body = json.dumps(message.payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": self.user_agent,
                   "Idempotency-Key": message.delivery_id}
        async def post() -> tuple[int, str]:
            # Only the status line matters: the answer's body is never read, so an endpoint answering an endless
            # body or a gzip bomb costs nothing (read whole, a 2 MiB bomb took the deliverer to 1.8 GiB RSS).
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client, \
                    client.stream("POST", target, content=body, headers=headers) as answer:
                return answer.status_code, answer.reason_phrase

        with scrubbed_logs(target) as secrets:
            try:
                # httpx's timeouts are per connect/read/write: an endpoint trickling bytes would never hit them.
                # wait_for bounds the whole attempt and cancels it (closing the connection) at the deadline.
                status, reason = asyncio.run(asyncio.wait_for(post(), self.timeout))
            except TimeoutError:
                raise DeliveryError(f"{where}: no complete answer within {self.timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise DeliveryError(scrub(f"{where}: {type(exc).__name__}: {exc}", secrets)) from None
            if 300 <= status < 400:
                raise DeliveryError(f"{where}: HTTP {status} {reason}: redirects are not followed (the hook may "
                                    "have moved: update the subscription's URL)")
            if not 200 <= status < 300:
                raise DeliveryError(f"{where}: HTTP {status} {reason}")


def default_channels(user_agent: str = "listwatch-alerts") -> dict[str, Channel]:
    return {"apprise": AppriseChannel(), "webhook": WebhookChannel(user_agent)}
