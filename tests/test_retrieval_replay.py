"""``listwatch replay`` (pywb over the store) and retrieval from an S3-compatible store (rclone on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from archive.catalog.models import Capture, WarcFile
from archive.cdx import query_captures
from archive.retrieval import read_payload, read_record, rfc1123
from crawlers.demo.programmes import expected_programmes
from scheduler.api import create_app
from scheduler.settings import Settings
from tests.archive_tools import STARTUP, chromium_page, http_get, replay_url
from tests.conftest import ROOT
from tests.http_support import serving_app
from tests.servers import S3Server, free_port

if TYPE_CHECKING:
    from tests.retrieval_support import Archived

pytest_plugins = ("tests.retrieval_support", "tests.servers")   # fixtures: archived (+ rclone_s3)
pytestmark = [pytest.mark.slow, pytest.mark.browser]
LISTING = "/mofcom/list/index.html"


@contextmanager
def listwatch_replay(tmp: Path, env: dict[str, str]) -> Iterator[str]:
    """Run the ``replay`` command (as the lead mounts it) on a free port; yields the collection's base URL."""
    port = free_port()
    full_env = {**os.environ, "LISTWATCH_DATA_DIR": str(tmp / "data"), "LISTWATCH_REPLAY__INDEX": "file",
                "LISTWATCH_SETTINGS": str(tmp / "none.yaml"), **env}   # the CDXJ-file index (no `serve` here)
    argv = [sys.executable, "-c", "from scheduler.cli.retrieve import app; app()", "replay", "--port", str(port),
            "--refresh", "0"]
    log = (tmp / "replay.log").open("wb")
    proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/archive"
    try:
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp / "replay.log").read_text()
            try:
                if http_get(base + "/", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("replay did not come up:\n" + (tmp / "replay.log").read_text())
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def local_env(arch: Archived) -> dict[str, str]:
    return {"LISTWATCH_CATALOG_URL": f"sqlite:///{arch.root / 'catalog.sqlite'}",
            "LISTWATCH_STORAGE__PATH": str(arch.storage.root)}


def test_replay_serves_raw_bytes_and_the_rendered_listing_in_chromium(archived: Archived, tmp_path: Path) -> None:
    url = archived.url(LISTING)
    first, second = query_captures(archived.catalog, url)
    expected = read_payload(archived.catalog, archived.storage, first.record_id).body
    academy = archived.url("/academy/index.html")
    academy_ts = query_captures(archived.catalog, academy)[-1].timestamp
    titles = [p["title"] for p in expected_programmes("academy", 0)[:10]]
    with listwatch_replay(tmp_path, local_env(archived)) as base:
        status, _, raw = http_get(replay_url(base, first.timestamp, url, "id_"))
        assert status == 200 and raw == expected
        status, _, raw = http_get(replay_url(base, second.timestamp, url, "id_"))   # the re-crawl: a revisit
        assert second.type == "revisit" and status == 200 and raw == expected
        with chromium_page() as page:
            page.goto(replay_url(base, academy_ts, academy), wait_until="load")
            page.wait_for_selector("#list li.item", timeout=20_000)
            shown = page.locator("#list li.item a").all_inner_texts()
    assert shown == titles


def test_retrieval_and_replay_from_an_s3_store(archived: Archived, rclone_s3: S3Server, tmp_path: Path) -> None:
    bucket = rclone_s3.make_bucket()
    s3 = rclone_s3.storage(bucket)
    with archived.catalog.session() as session:
        files = list(session.scalars(select(WarcFile)))
        captures = list(session.scalars(select(Capture)))
    for warc in files:
        s3.put_file(warc.key, archived.storage.local_path(warc.key), sha256=warc.sha256)
    for capture in captures:
        assert read_record(archived.catalog, s3, capture.record_id) == \
            read_record(archived.catalog, archived.storage, capture.record_id)
    url = archived.url(LISTING)
    first = query_captures(archived.catalog, url)[0]
    expected = read_payload(archived.catalog, s3, first.record_id).body
    env = {"LISTWATCH_CATALOG_URL": f"sqlite:///{archived.root / 'catalog.sqlite'}", **rclone_s3.settings_env(bucket)}
    with listwatch_replay(tmp_path, env) as base:
        status, _, raw = http_get(replay_url(base, first.timestamp, url, "id_"))
    assert status == 200 and raw == expected
    config = (tmp_path / "data" / "replay" / "config.yaml").read_text()
    assert f"s3://{bucket}/" in config and rclone_s3.secret_key not in config


def test_a_memento_client_goes_from_the_timegate_to_the_memento_in_replay(archived: Archived, tmp_path: Path) -> None:
    """memento_client (RFC 7089's reference client) asks the API's TimeGate, follows its 302 into pywb and reads
    the memento there: Memento-Datetime and rel=original from pywb match what the catalog holds."""
    import requests
    from memento_client import MementoClient

    url = archived.url(LISTING)
    first, second = query_captures(archived.catalog, url)
    with listwatch_replay(tmp_path, local_env(archived)) as base:
        def make_app(api: str) -> FastAPI:
            settings = Settings(data_dir=tmp_path, api={"require_token": False, "public_url": api},
                                replay={"public_url": base.removesuffix("/archive")})
            return create_app(settings, catalog=archived.catalog, storage=archived.storage)

        with serving_app(make_app) as api:
            client = MementoClient(timegate_uri=f"{api}/timegate/", check_native_timegate=False)
            gate = requests.head(f"{api}/timegate/{url}", allow_redirects=False, timeout=30)
            for entry, wanted in ((first, first.moment - timedelta(days=1)), (second, second.moment)):
                info = client.get_memento_info(url, wanted.replace(tzinfo=None), req_uri_response=gate)
                closest = info["mementos"]["closest"]
                assert closest["uri"] == [replay_url(base, entry.timestamp[:14], url)]
                assert closest["http_status_code"] == 200
                assert rfc1123(closest["datetime"].replace(tzinfo=UTC)) == rfc1123(entry.moment)
