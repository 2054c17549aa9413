"""Alert delivery through the outbox: real SQLite, real HTTP endpoints on loopback, real Apprise."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from alerts_support import T0, Endpoint, add_event
from sqlalchemy import select

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import Outbox
from scheduler.alerts import backoff, deliver_due, enqueue, subscribe
from scheduler.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "scheduler" / "alerts" / "webhook.schema.json").read_text(encoding="utf-8"))


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint().start()
    yield ep
    ep.stop()


def rows(catalog: Catalog) -> list[Outbox]:
    with catalog.session() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def event_ids_at(endpoint: Endpoint, path: str) -> list[int]:
    """Event ids a webhook path received."""
    return [r.json["event"]["id"] for r in endpoint.at(path)]


def test_each_subscription_gets_one_delivery_per_matching_event(catalog: Catalog, settings: Settings,
                                                                 endpoint: Endpoint) -> None:
    base = f"http://{endpoint.url}"
    subscribe(catalog, "hook", f"{base}/hook", channel="webhook")
    subscribe(catalog, "apprise", f"json://{endpoint.url}/apprise")
    subscribe(catalog, "tenders", f"{base}/tenders", channel="webhook", sources=["demo-tenders"])
    subscribe(catalog, "changes", f"{base}/changes", channel="webhook", kinds=["changed", "removed"])
    subscribe(catalog, "digital", f"{base}/digital", channel="webhook", keywords=["数字经济", "ＡＩ"])
    subscribe(catalog, "health", f"{base}/health", channel="webhook", kinds=["source_health"])

    new = add_event(catalog, title="2026年数字经济发展研修班", at=T0)
    changed = add_event(catalog, kind="changed", title="发展中国家港口管理研修班", at=T0 + timedelta(minutes=1),
                        fields={"deadline": "2026-04-15", "topic": "智慧港口与数字经济",
                                "url": "http://demo.test/port/1.html"},
                        changes={"deadline": ["2026-04-01", "2026-04-15"], "place": ["北京", "上海"]})
    tender = add_event(catalog, source="demo-tenders", title="Ai tooling tender", at=T0 + timedelta(minutes=2))
    removed = add_event(catalog, kind="removed", title="已撤销的项目", at=T0 + timedelta(minutes=3))
    health = add_event(catalog, kind="source_health", title="demo-mofcom blocked: challenge page",
                       at=T0 + timedelta(minutes=4), evidence=False)
    backfilled = add_event(catalog, title="数字经济 backfill", at=T0 + timedelta(minutes=5), backfill=True)
    all_ids = [new, changed, tender, removed, health, backfilled]

    expected = {"/hook": [new, changed, tender, removed, health], "/tenders": [tender],
                "/changes": [changed, removed], "/digital": [new, changed, tender], "/health": [health]}
    assert enqueue(catalog, all_ids, now=T0) == sum(map(len, expected.values())) + 5   # + the Apprise subscription
    assert enqueue(catalog, all_ids, now=T0) == 0      # idempotent
    stats = deliver_due(catalog, settings, T0 + timedelta(minutes=10))
    assert stats.failures == 0 and stats.rows == stats.messages == 17
    assert deliver_due(catalog, settings, T0 + timedelta(hours=5)).messages == 0   # nothing left

    for path, ids in expected.items():
        assert sorted(event_ids_at(endpoint, path)) == sorted(ids), path
    assert backfilled not in [i for r in endpoint.received if r.path != "/apprise" for i in [r.json["event"]["id"]]]
    for r in endpoint.received:
        if r.path != "/apprise":
            jsonschema.validate(r.json, SCHEMA)
            assert r.headers["idempotency-key"] == r.json["delivery_id"]

    # The webhook document of the changed event: fields old → new, evidence before and after.
    doc = next(r.json for r in endpoint.at("/hook") if r.json["event"]["id"] == changed)
    assert doc["event"]["kind"] == "changed" and doc["event"]["source"] == "demo-mofcom"
    assert doc["event"]["program"]["title"] == "发展中国家港口管理研修班"
    # beside its key, the programme's absolute links: its page on the watched site and in the web interface
    assert doc["schema_version"] == 2 and doc["event"]["program"]["url"] == "http://demo.test/port/1.html"
    page = doc["event"]["program"]["page"]
    assert page.startswith("http://127.0.0.1:8470/programmes/") and "?sig=" in page, page
    assert {"field": "deadline", "old": "2026-04-01", "new": "2026-04-15"} in doc["event"]["changes"]
    before, after = doc["evidence"]["before"], doc["evidence"]["after"]
    assert before["replay"] == f"http://127.0.0.1:8480/archive/20260301090000/http://demo.test/list?e={changed}"
    assert before["record"].startswith(f"http://127.0.0.1:8470/records/urn:uuid:before-{changed}?sig=")  # signed
    assert after["record_id"] == f"<urn:uuid:after-{changed}>" and after["timestamp"] == "20260302100600"

    # Apprise json:// got one message per event, with title, source, changes and links in the text.
    apprise_msgs = [r.json for r in endpoint.at("/apprise")]
    assert len(apprise_msgs) == 5
    text = next(m["message"] for m in apprise_msgs if "港口管理" in m["title"])
    assert "Changed: 发展中国家港口管理研修班 (demo-mofcom)" in text
    assert "deadline: 2026-04-01 → 2026-04-15" in text and "place: 北京 → 上海" in text
    assert f"http://127.0.0.1:8480/archive/20260301090000/http://demo.test/list?e={changed}" in text
    assert f"WARC record <urn:uuid:after-{changed}>" in text
    assert not any("backfill" in m["message"] for m in apprise_msgs)
    assert all(r.state == "sent" and r.attempts == 1 for r in rows(catalog))


def test_enqueue_in_two_processes_at_once_never_duplicates(catalog: Catalog, tmp_path: Path) -> None:
    subscribe(catalog, "a", "http://127.0.0.1:9/a", channel="webhook")
    subscribe(catalog, "b", "json://127.0.0.1:9/b", mode="daily")
    ids = [add_event(catalog, title=f"项目 {n}", at=T0 + timedelta(seconds=n)) for n in range(40)]
    code = ("import sys; from archive.catalog import open_catalog; from scheduler.alerts import enqueue; "
            "print(enqueue(open_catalog(sys.argv[1], migrate=False), map(int, sys.argv[2:])))")
    procs = [subprocess.Popen([sys.executable, "-c", code, catalog.url, *map(str, ids)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE) for _ in range(3)]
    created = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(created) == 80 and len(rows(catalog)) == 80
    assert Counter((r.subscription_id, r.event_id) for r in rows(catalog)).most_common(1)[0][1] == 1


@pytest.mark.parametrize("failure", ["500", "close"])
def test_failing_endpoint_backs_off_then_delivers_each_event_once(catalog: Catalog, settings: Settings,
                                                                  endpoint: Endpoint, failure: str) -> None:
    subscribe(catalog, "hook", f"http://{endpoint.url}/hook?token=s3cr3t-hook", channel="webhook")
    subscribe(catalog, "apprise", f"json://{endpoint.url}/apprise/s3cr3t-path")
    ids = [add_event(catalog, title=f"研修班 {n}", at=T0) for n in range(3)]
    enqueue(catalog, ids, now=T0)
    endpoint.fail = [failure] * 8          # every row fails once, two rows twice

    now, failures, delays, errors, seen = T0, 0, set(), set(), dict[int, int]()
    for _ in range(50):
        stats = deliver_due(catalog, settings, now)
        assert stats.failures <= 2          # at most one try per failing subscription and pass
        failures += stats.failures
        pending = [r for r in rows(catalog) if r.state != "sent"]
        for r in pending:
            if r.attempts > seen.get(r.id, 0):      # this row failed in this pass: how long it waits now
                delays.add((r.attempts, (r.next_attempt_at - now).total_seconds()))
                errors.add(r.last_error)
            seen[r.id] = r.attempts
        if not pending:
            break
        now = min(r.next_attempt_at for r in pending)   # advance the clock, no sleeps
    assert not [r for r in rows(catalog) if r.state != "sent"]
    assert failures == len(endpoint.failed) == 8
    assert sorted(event_ids_at(endpoint, "/hook")) == ids
    assert len(endpoint.at("/apprise/s3cr3t-path")) == 3
    # The first failed try of a row waits 30 s, the second 60 s (and so on, doubling, capped at 1 h).
    assert delays == {(1, 30), (2, 60)}
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4, 8, 20)] == [30, 60, 120, 240, 3600, 3600]
    assert errors and all("127.0.0.1/…" in e and "s3cr3t" not in e for e in errors)
    assert any(("HTTP 500" if failure == "500" else "RemoteProtocolError") in e for e in errors), errors
    assert all(r.last_error == "" for r in rows(catalog))


def test_dead_after_max_attempts_with_a_log_line(catalog: Catalog, settings: Settings, endpoint: Endpoint,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    subscribe(catalog, "hook", f"http://{endpoint.url}/hook/tok-SECRET-123", channel="webhook")
    enqueue(catalog, [add_event(catalog)], now=T0)
    endpoint.fail = ["500"] * 10
    caplog.set_level(logging.INFO)
    now = T0
    for _ in range(4):
        deliver_due(catalog, settings, now, max_attempts=3)
        now += timedelta(hours=2)
    [row] = rows(catalog)
    assert row.state == "dead" and row.attempts == 3 and "HTTP 500" in row.last_error
    assert len(endpoint.failed) == 3 and not endpoint.received
    assert "alert delivery dead: subscription 'hook'" in caplog.text
    assert "SECRET" not in caplog.text and "SECRET" not in row.last_error


def test_two_delivery_processes_never_send_the_same_row(catalog: Catalog, settings: Settings,
                                                        endpoint: Endpoint) -> None:
    subscribe(catalog, "hook", f"http://{endpoint.url}/hook", channel="webhook")
    subscribe(catalog, "apprise", f"json://{endpoint.url}/apprise")
    ids = [add_event(catalog, title=f"研修班 {n}", at=T0) for n in range(8)]
    enqueue(catalog, ids, now=T0)
    endpoint.delay = 0.02
    catalogs = [open_catalog(catalog.url, migrate=False) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        stats = list(pool.map(lambda c: deliver_due(c, settings, T0), catalogs))
    for c in catalogs:
        c.dispose()
    assert sum(s.messages for s in stats) == 16 and len(endpoint.received) == 16
    assert sorted(event_ids_at(endpoint, "/hook")) == ids
    assert len({r.body for r in endpoint.at("/apprise")}) == 8
    assert all(r.state == "sent" and r.attempts == 1 for r in rows(catalog))


def _runner() -> list[str]:
    """``python -m scheduler alerts`` once the lead mounts the app; until then the app itself."""
    from scheduler.cli import app

    if any(group.name == "alerts" for group in app.registered_groups):
        return [sys.executable, "-m", "scheduler", "alerts"]
    return [sys.executable, "-c", "from scheduler.cli.alerts import app; app(prog_name='listwatch alerts')"]


def test_restart_after_sigkill_loses_nothing_and_duplicates_nothing(catalog: Catalog, tmp_path: Path,
                                                                      endpoint: Endpoint) -> None:
    subscribe(catalog, "hook", f"http://{endpoint.url}/hook", channel="webhook")
    subscribe(catalog, "apprise", f"json://{endpoint.url}/apprise")
    ids = [add_event(catalog, title=f"研修班 {n}", at=T0 + timedelta(minutes=n)) for n in range(6)]
    assert enqueue(catalog, ids) == 12       # due now (real clock: the subprocesses use it)
    endpoint.hold_at, endpoint.hold_path = 2, "/hook"   # the hook's 3rd message hangs: killed mid-send
    env = {**os.environ, "LISTWATCH_CATALOG_URL": catalog.url, "LISTWATCH_DATA_DIR": str(tmp_path),
           "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"), "LISTWATCH_LOG_LEVEL": "INFO"}
    first = subprocess.Popen([*_runner(), "deliver", "--lease", "2"], cwd=ROOT, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert endpoint.held.wait(60), first.communicate(timeout=5)
    # subscriptions are served side by side: the other one is not held back by the hanging hook
    deadline = time.monotonic() + 60
    while Counter(r.state for r in rows(catalog))["sent"] < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    endpoint.release.set()
    assert len(endpoint.received) == 8 and len(endpoint.at("/apprise")) == 6
    states = Counter(r.state for r in rows(catalog))
    assert states == {"sent": 8, "sending": 1, "pending": 3}

    # Restart: the stale lease (2 s) expires and the held message is retried, everything else sent once.
    second = subprocess.Popen([*_runner(), "deliver", "--loop", "--interval", "0.2"], cwd=ROOT, env=env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(endpoint.received) < 12 and time.monotonic() < deadline and second.poll() is None:
        time.sleep(0.05)
    second.send_signal(signal.SIGTERM)
    _, errors = second.communicate(timeout=30)
    assert second.returncode == 0, errors
    assert Counter(r.state for r in rows(catalog)) == {"sent": 12}
    keys = [r.headers.get("idempotency-key") or r.json["title"] for r in endpoint.received]
    assert len(keys) == len(set(keys)) == 12
    assert sorted(event_ids_at(endpoint, "/hook")) == ids
    assert len(endpoint.at("/apprise")) == 6 and len({r.body for r in endpoint.at("/apprise")}) == 6
    held = endpoint.held_request
    assert held is not None and sum(r.body == held.body for r in endpoint.received) == 1
    assert max(r.attempts for r in rows(catalog)) == 2


def test_hourly_digest_groups_the_hour_and_waits_for_it_to_close(catalog: Catalog, settings: Settings,
                                                                  endpoint: Endpoint) -> None:
    subscribe(catalog, "hourly-hook", f"http://{endpoint.url}/digest", channel="webhook", mode="hourly")
    subscribe(catalog, "hourly-apprise", f"json://{endpoint.url}/apprise-digest", mode="hourly")
    first = add_event(catalog, title="数字经济研修班", at=T0)                                   # 10:05
    second = add_event(catalog, kind="changed", title="港口管理研修班", at=T0 + timedelta(minutes=35),
                       changes={"deadline": ["2026-04-01", "2026-04-15"]})                      # 10:40
    third = add_event(catalog, title="农业技术研修班", at=T0 + timedelta(minutes=65))            # 11:10
    enqueue(catalog, [first, second, third], now=T0)
    assert {r.batch for r in rows(catalog)} == {"hourly:2026-03-02T10:00Z", "hourly:2026-03-02T11:00Z"}

    assert deliver_due(catalog, settings, T0 + timedelta(minutes=54)).messages == 0    # 10:59: window open
    stats = deliver_due(catalog, settings, T0 + timedelta(minutes=56))                  # 11:01
    assert (stats.messages, stats.rows) == (2, 4)
    [digest] = endpoint.at("/digest")
    jsonschema.validate(digest.json, SCHEMA)
    assert digest.json["type"] == "digest" and digest.json["count"] == 2
    assert digest.json["window"] == {"mode": "hourly", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"}
    assert [a["event"]["id"] for a in digest.json["alerts"]] == [first, second]
    [text] = endpoint.at("/apprise-digest")
    assert "hourly digest, 2026-03-02 10:00 UTC: 2 events" in text.json["title"]
    assert "数字经济研修班" in text.json["message"] and "deadline: 2026-04-01 → 2026-04-15" in text.json["message"]
    assert "农业技术研修班" not in text.json["message"]

    assert deliver_due(catalog, settings, T0 + timedelta(minutes=100)).messages == 0   # 11:45
    assert deliver_due(catalog, settings, T0 + timedelta(minutes=116)).messages == 2   # 12:01
    assert [a["event"]["id"] for a in endpoint.at("/digest")[1].json["alerts"]] == [third]
    assert Counter(r.state for r in rows(catalog)) == {"sent": 6}


def test_a_graceful_stop_sends_what_is_waiting_before_it_exits(catalog: Catalog, settings: Settings,
                                                                endpoint: Endpoint, tmp_path: Path) -> None:
    """Alerts found by the last crawls go out at SIGTERM, not at the next start (no pass runs in this hour)."""
    from scheduler.daemon import Daemon

    subscribe(catalog, "hook", f"http://{endpoint.url}/hook", channel="webhook")
    settings = settings.model_copy(update={
        "sources_dir": tmp_path / "sources",
        "scheduler": settings.scheduler.model_copy(update={"deliver_interval": 3600.0})})
    daemon = Daemon(settings)
    daemon.start()
    event = add_event(catalog, title="停止前发现的研修班")
    enqueue(catalog, [event])
    daemon.stop()
    assert event_ids_at(endpoint, "/hook") == [event]
    assert [r.state for r in rows(catalog)] == ["sent"]
