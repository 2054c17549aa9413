"""Atom feeds (parsed with feedparser), the ``listwatch alerts`` commands, and secrecy of targets."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from alerts_support import T0, Endpoint, add_event
from sqlalchemy import select
from typer.testing import CliRunner

from archive.catalog import Catalog
from archive.catalog.models import Outbox
from scheduler.alerts import SubscriptionError, atom_feed, deliver_due, enqueue, redact_target, subscribe
from scheduler.cli.alerts import app
from scheduler.settings import Settings
from scheduler.web.signing import LinkSigner, link_secret

SECRET_HOOK = "http://127.0.0.1:{port}/hooks/T0KEN-hook-5ecret?sig=Q5ecretQ"
SECRET_APPRISE = "json://alice:pa55w0rd-5ecret@127.0.0.1:{port}/apprise/path-5ecret?token=5ecret-query"


@pytest.fixture
def cli_env(tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTWATCH_CATALOG_URL", catalog.url)
    monkeypatch.setenv("LISTWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LISTWATCH_SETTINGS", str(tmp_path / "none.yaml"))


def test_atom_feed_parses_cleanly_with_entries_and_evidence_links(catalog: Catalog, settings: Settings) -> None:
    first = add_event(catalog, title="2026年数字经济发展研修班", at=T0)
    changed = add_event(catalog, kind="changed", title="港口管理研修班 <&>", at=T0 + timedelta(hours=1),
                        changes={"deadline": ["2026-04-01", "2026-04-15"]})
    tender = add_event(catalog, source="demo-tenders", title="Tender 7", at=T0 + timedelta(hours=2))
    add_event(catalog, title="backfilled", at=T0 + timedelta(hours=3), backfill=True)

    parsed = feedparser.parse(atom_feed(catalog, settings, None))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10" and parsed.feed.id == "tag:listwatch,2026:feed"
    assert [e.id for e in parsed.entries] == [f"tag:listwatch,2026:event/{i}" for i in (tender, changed, first)]
    entry = parsed.entries[1]
    assert entry.title == "Changed: 港口管理研修班 <&> (demo-mofcom)"
    assert entry.updated == "2026-03-02T11:05:00Z"
    links = {(link.rel, link.get("title", "")): link.href for link in entry.links}
    assert links[("alternate", "")] == f"http://127.0.0.1:8480/archive/20260302110500/http://demo.test/list?e={changed}"
    record = links[("related", f"WARC record <urn:uuid:after-{changed}> (after)")]
    assert record.startswith(f"http://127.0.0.1:8470/records/urn:uuid:after-{changed}?sig=")   # signed: opens
    forever = LinkSigner(link_secret(settings), ttl=10**9)    # the event is older than api.link_ttl here
    assert forever.valid(f"/records/urn:uuid:after-{changed}", "", record.split("sig=", 1)[1])
    assert links[("related", "replay (before)")].startswith("http://127.0.0.1:8480/archive/20260301090000/")
    assert "deadline: 2026-04-01 → 2026-04-15" in entry.content[0].value
    self_link = next(link.href for link in parsed.feed.links if link.rel == "self")
    assert self_link == "http://127.0.0.1:8470/feeds/atom.xml"

    per_source = feedparser.parse(atom_feed(catalog, settings, "demo-tenders"))
    assert not per_source.bozo and [e.id for e in per_source.entries] == [f"tag:listwatch,2026:event/{tender}"]
    assert next(link.href for link in per_source.feed.links if link.rel == "self").endswith("/feeds/demo-tenders.atom")
    assert len(feedparser.parse(atom_feed(catalog, settings, None, limit=2)).entries) == 2
    empty = feedparser.parse(atom_feed(catalog, settings, "nothing-here"))
    assert not empty.bozo and empty.entries == []


def test_cli_subscribe_list_feed_remove(catalog: Catalog, cli_env: None) -> None:
    runner = CliRunner()
    hook = SECRET_HOOK.format(port=9)
    done = runner.invoke(app, ["subscribe", "research", hook, "--webhook", "--source", "demo-mofcom",
                               "--kind", "new", "--keyword", "数字经济", "--mode", "hourly"])
    assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["subscribe", "phone", "-"], input=SECRET_APPRISE.format(port=9) + "\n").exit_code == 0
    table = runner.invoke(app, ["list"])
    listed = runner.invoke(app, ["list", "--json"])
    assert table.exit_code == listed.exit_code == 0
    views = {v["name"]: v for v in map(json.loads, listed.output.splitlines())}
    assert views["research"]["target"] == "http://127.0.0.1/…" and views["phone"]["target"] == "json://127.0.0.1/…"
    assert views["research"] | {"created_at": None} == {
        "name": "research", "channel": "webhook", "target": "http://127.0.0.1/…", "sources": ["demo-mofcom"],
        "kinds": ["new"], "keywords": ["数字经济"], "mode": "hourly", "active": True, "created_at": None}
    for output in (table.output, listed.output):
        assert "5ecret" not in output and "T0KEN" not in output and "alice" not in output and ":9" not in output

    duplicate = runner.invoke(app, ["subscribe", "research", hook, "--webhook"])
    assert duplicate.exit_code == 2 and "already exists" in duplicate.output
    bad_kind = runner.invoke(app, ["subscribe", "x", hook, "--webhook", "--kind", "edited"])
    assert bad_kind.exit_code == 2 and "unknown event kind" in bad_kind.output

    add_event(catalog, title="数字经济", at=T0)
    feed = runner.invoke(app, ["feed", "--source", "demo-mofcom"])
    assert feed.exit_code == 0 and not feedparser.parse(feed.stdout_bytes).bozo

    assert runner.invoke(app, ["remove", "research"]).exit_code == 0
    assert "research" not in runner.invoke(app, ["list", "--json"]).output
    assert runner.invoke(app, ["remove", "research"]).exit_code == 2


def test_bad_targets_are_refused_without_echoing_them(catalog: Catalog) -> None:
    with pytest.raises(SubscriptionError) as bad_apprise:
        subscribe(catalog, "a", "nosuchscheme://T0KEN-5ecret@host/x")
    with pytest.raises(SubscriptionError) as bad_hook:
        subscribe(catalog, "b", "json://T0KEN-5ecret@host/x", channel="webhook")
    assert "5ecret" not in str(bad_apprise.value) + str(bad_hook.value)


@pytest.mark.parametrize(("target", "shown"), [
    ("json://user:pw@127.0.0.1:8080/a/b?token=x", "json://127.0.0.1/…"),
    ("https://hooks.example.org/services/T000/B000/XXXX", "https://hooks.example.org/…"),
    ("mailtos://user:app-password@smtp.example.org?to=me@example.org", "mailtos://smtp.example.org/…"),
    ("tgram://123456789:AAHtoken/987654", "tgram://…"),
    ("discord://webhook_id/webhook_token", "discord://…"),
    ("not a url", "(unparseable URL)"),
])
def test_redacted_targets_show_only_scheme_and_server(target: str, shown: str) -> None:
    assert redact_target(target) == shown


def test_secrets_stay_out_of_logs_and_errors(catalog: Catalog, settings: Settings,
                                             caplog: pytest.LogCaptureFixture) -> None:
    endpoint = Endpoint(fail=["500", "close", "500", "close"]).start()
    port = int(endpoint.url.rsplit(":", 1)[1])
    try:
        subscribe(catalog, "hook", SECRET_HOOK.format(port=port), channel="webhook")
        subscribe(catalog, "apprise", SECRET_APPRISE.format(port=port))
        enqueue(catalog, [add_event(catalog, at=T0)], now=T0)
        caplog.set_level(1)                       # everything, including Apprise's TRACE URL dumps
        for step in range(4):
            deliver_due(catalog, settings, T0 + timedelta(minutes=5 * step))
    finally:
        endpoint.stop()
    with catalog.session() as s:
        outbox = list(s.scalars(select(Outbox)))
    assert [r.state for r in outbox] == ["sent", "sent"] and len(endpoint.received) == 2
    assert endpoint.at("/apprise/path-5ecret")      # the secret path was really used
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "urllib3" in logged or "apprise" in logged  # the libraries did log
    assert "failed" in logged
    for secret in ("T0KEN-hook-5ecret", "Q5ecretQ", "pa55w0rd-5ecret", "path-5ecret", "5ecret-query", "alice"):
        assert secret not in logged, secret
    assert logging.getLogger("apprise").filters == []   # the scrubbing filter is removed after each send
