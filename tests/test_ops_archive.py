"""Hardening, issue 8 failures 7 (CDX ReDoS) and 10 (feeds and stores).

- A catastrophic ``filter`` regex (nested ``(.*)`` groups) answers at once through RE2 on the real API;
  backreferences are refused with a 400 naming RE2.
- A control character in a programme title does not make the Atom feed ill-formed (an XML parser and
  feedparser's ``bozo`` flag both judge it).
- With a real ``rclone serve s3`` whose file was deleted under it (it then answers 500 for that one object),
  the fixity audit marks that object and goes on to verify all the others.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from alerts_support import T0, add_event
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import WarcFile
from archive.cdx import QueryError, compile_filter
from archive.fixity import verify
from archive.indexer import register_warc
from archive.spool import sync
from scheduler.alerts import atom_feed
from scheduler.api import create_app
from scheduler.settings import Settings, load_settings
from tests.servers import S3Server, rclone_s3  # noqa: F401  (fixture)
from tests.warc_factory import write_spool_warcs

TOKEN = "t" * 32


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")


@pytest.fixture
def settings(tmp_path: Path, catalog: Catalog) -> Settings:
    return load_settings(tmp_path / "none.yaml", data_dir=tmp_path, catalog_url=catalog.url)


def test_catastrophic_filter_regex_answers_at_once(tmp_path: Path, catalog: Catalog) -> None:
    spool = tmp_path / "spool"
    write_spool_warcs(spool, pages=3)
    for path in sorted(spool.rglob("*.warc.gz")):
        register_warc(catalog, path, source_id="demo-static")
    app = create_app(Settings(data_dir=tmp_path, api={"token": TOKEN, "public_url": "http://testserver"}),
                     catalog=catalog)
    client = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})
    # Python's re backtracks through ~n^8 splits of each captured URL: minutes per row; RE2 is linear.
    evil = "~url:(.*)(.*)(.*)(.*)(.*)(.*)(.*)(.*)Z"
    params: dict[str, str | list[str]] = {"url": "http://127.0.0.1:8000/list/", "matchType": "prefix"}
    answer = client.get("/cdx", params={**params, "filter": evil})
    assert answer.status_code == 200 and answer.text == "", answer.text
    backreference = client.get("/cdx", params={**params, "filter": r"~url:(a)\1"})
    assert backreference.status_code == 400 and "RE2" in backreference.text
    plain = client.get("/cdx", params={**params, "filter": "~url:.*/list/1"})
    assert plain.status_code == 200 and "/list/1" in plain.text


def test_re2_matches_a_redos_pattern_in_linear_time() -> None:
    pattern = compile_filter("(a+)+$")
    assert pattern.match("a" * 50_000 + "!") is None   # Python's re would not return in this lifetime
    with pytest.raises(QueryError, match="too long"):
        compile_filter("a" * 5000)


def test_control_characters_in_titles_keep_the_feed_well_formed(catalog: Catalog, settings: Settings) -> None:
    add_event(catalog, title="研修班\x01报名\x0b通知\x1f", at=T0)
    add_event(catalog, title="normal \ufffe title", at=T0 + timedelta(minutes=1))
    feed = atom_feed(catalog, settings)
    ET.fromstring(feed)   # raises on an ill-formed document
    parsed = feedparser.parse(feed)
    assert not parsed.bozo, parsed.get("bozo_exception")
    titles = [entry.title for entry in parsed.entries]
    # a headline is one line: control characters become spaces (scheduler.alerts.messages.headline); what XML
    # cannot hold and a headline keeps (U+FFFE, a noncharacter) is replaced in the feed
    assert "New programme: 研修班 报名 通知 (demo-mofcom)" in titles, titles
    assert "New programme: normal \ufffd title (demo-mofcom)" in titles, titles


def test_fixity_goes_on_past_an_object_the_store_fails_on(rclone_s3: S3Server, tmp_path: Path,  # noqa: F811
                                                         catalog: Catalog) -> None:
    bucket = rclone_s3.make_bucket()
    storage = rclone_s3.storage(bucket)
    spool = tmp_path / "spool"
    write_spool_warcs(spool, pages=12)
    assert sync(catalog, storage, spool).ok
    with catalog.read_session() as session:
        keys = sorted(w.key for w in session.scalars(select(WarcFile)))
    assert len(keys) >= 3
    gone = keys[0]
    rclone_s3.object_path(bucket, gone).unlink()     # deleted under the server, not through it
    report = verify(catalog, storage)
    assert report.unavailable is None, report.unavailable
    assert report.checked == len(keys)
    assert [p.key for p in report.problems] == [gone]
    assert report.problems[0].state in ("missing", "unreadable")
    assert sorted(report.verified) == keys[1:]
    with catalog.read_session() as session:
        states = {w.key: w.state for w in session.scalars(select(WarcFile))}
    assert states[gone] in ("missing", "unreadable") and {states[k] for k in keys[1:]} == {"verified"}
