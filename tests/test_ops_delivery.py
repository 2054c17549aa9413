"""Hardening, issue 8 failure 5: one slow webhook must not stall the other subscriptions' alerts.

Real HTTP endpoints on loopback: a fast one, a slow one (one second an answer), and one that trickles its answer
a byte at a time (every read succeeds, so a per-read timeout never fires): both channels (webhook, Apprise)
give up on it at their total deadline.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from alerts_support import T0, Endpoint, add_event
from daemon_support import wait_for
from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import Outbox
from scheduler.alerts import deliver_due, enqueue, subscribe
from scheduler.alerts.channels import AppriseChannel, DeliveryError, Message, WebhookChannel
from scheduler.settings import Settings, SettingsError, load_settings


def test_a_slow_webhook_delays_only_itself(catalog: Catalog, settings: Settings) -> None:
    fast, slow = Endpoint().start(), Endpoint(delay=1.0).start()
    try:
        subscribe(catalog, "slow", f"http://{slow.url}/hook", channel="webhook")
        subscribe(catalog, "fast", f"http://{fast.url}/hook", channel="webhook")
        ids = [add_event(catalog, title=f"研修班 {n}", at=T0 + timedelta(minutes=n)) for n in range(6)]
        assert enqueue(catalog, ids, now=T0) == 12
        passes = threading.Thread(target=deliver_due, args=(catalog, settings, T0 + timedelta(minutes=10)))
        passes.start()
        wait_for(lambda: len(fast.received) == 6, 30, "the fast subscriber's six alerts")
        slow_meanwhile = len(slow.received)
        passes.join(60)
        assert not passes.is_alive()
        # sequential delivery (the old way) interleaves the two: the fast one waits for five slow answers
        assert slow_meanwhile <= 1, slow_meanwhile
        assert len(slow.received) == 6, "the slow subscriber lost alerts"
        for endpoint in (fast, slow):
            keys = [r.headers["idempotency-key"] for r in endpoint.received]
            assert len(keys) == len(set(keys)) == 6
            assert sorted(r.json["event"]["id"] for r in endpoint.received) == ids
        with catalog.session() as session:
            assert Counter(r.state for r in session.scalars(select(Outbox))) == {"sent": 12}
        assert deliver_due(catalog, settings, T0 + timedelta(hours=1)).messages == 0
    finally:
        fast.stop()
        slow.stop()


def test_events_a_killed_crawl_never_queued_are_queued_late_not_lost(catalog: Catalog) -> None:
    from archive.catalog.models import Subscription
    from scheduler.alerts.outbox import enqueue_missed

    subscribe(catalog, "early", "http://127.0.0.1:9/hook", channel="webhook")
    now = T0 + timedelta(minutes=30)
    # a crawl recorded these, then died before its enqueue(): no outbox row at all
    ids = [add_event(catalog, title=f"研修班 {n}", at=T0 + timedelta(minutes=n)) for n in range(3)]
    queued = add_event(catalog, title="queued normally", at=T0 + timedelta(minutes=5))
    enqueue(catalog, [queued], now=T0)
    old = add_event(catalog, title="long ago", at=T0 - timedelta(days=3))
    history = add_event(catalog, title="reprocessed", at=T0, backfill=True)
    subscribe(catalog, "late", "http://127.0.0.1:9/late", channel="webhook")
    with catalog.session() as session:   # "late" was created after the events: no old news for it
        for sub in session.scalars(select(Subscription)):
            sub.created_at = T0 + timedelta(minutes=20) if sub.name == "late" else T0 - timedelta(days=30)
    assert enqueue_missed(catalog, now=now) == 3
    assert enqueue_missed(catalog, now=now) == 0
    with catalog.session() as session:
        rows = [(r.subscription_id, r.event_id) for r in session.scalars(select(Outbox))]
    assert sorted(e for _, e in rows) == sorted([*ids, queued])
    assert old not in {e for _, e in rows} and history not in {e for _, e in rows}
    assert len({s for s, _ in rows}) == 1


class Trickle:
    """Answers every request one byte every ``every`` seconds (a reader never waits long for a byte)."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\nok"
        with conn:
            conn.recv(65536)
            for byte in answer:
                if self.stopped.wait(self.every):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.mark.parametrize("kind", ["webhook", "apprise"])
def test_a_trickling_answer_hits_the_total_deadline(kind: str) -> None:
    trickle = Trickle()
    try:
        # The whole answer takes ~45 s; no read waits more than 0.2 s, so a per-read timeout would never fire.
        channel: WebhookChannel | AppriseChannel = WebhookChannel(timeout=1.0)
        target = trickle.url
        if kind == "apprise":
            channel, target = AppriseChannel(timeout=1.0), trickle.url.replace("http://", "json://")
        with pytest.raises(DeliveryError, match="no complete answer within 1 s"):
            channel.send(target, Message(title="t", body="b", payload={"x": 1}, delivery_id="d"))
    finally:
        trickle.stop()


def test_the_delivery_budget_setting_bounds_one_pass(tmp_path: Path, catalog: Catalog) -> None:
    settings = load_settings(tmp_path / "none.yaml", data_dir=tmp_path, catalog_url=catalog.url,
                             scheduler={"deliver_budget": 1.5, "deliver_threads": 1})
    slow = Endpoint(delay=1.0).start()
    try:
        subscribe(catalog, "slow", f"http://{slow.url}/hook", channel="webhook")
        ids = [add_event(catalog, title=f"研修班 {n}", at=T0 + timedelta(minutes=n)) for n in range(6)]
        enqueue(catalog, ids, now=T0)
        first = deliver_due(catalog, settings, T0 + timedelta(minutes=10))
        # the budget is checked before each send: one or two answers fit in 1.5 s, never all six (default 120 s)
        assert 1 <= first.messages <= 2 and len(slow.received) == first.messages
        with catalog.session() as session:
            assert Counter(r.state for r in session.scalars(select(Outbox)))["pending"] == 6 - first.messages
    finally:
        slow.stop()


@pytest.mark.parametrize(("yaml_text", "named"), [
    ("scheduler:\n  deliver_lease: 10\n", "scheduler.deliver_lease"),
    ("scheduler:\n  deliver_threads: 0\n", "scheduler.deliver_threads"),
    ("scheduler:\n  deliver_passes: many\n", "scheduler.deliver_passes"),
    ("scheduler:\n  deliver_budget: -1\n", "scheduler.deliver_budget"),
])
def test_bad_delivery_settings_are_refused_naming_the_setting(tmp_path: Path, yaml_text: str, named: str) -> None:
    path = tmp_path / "listwatch.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert str(path) in message and named in message, message
