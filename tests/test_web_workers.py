"""The Sources page's crawl-worker section in real Chromium, over a real PostgreSQL catalog with a real queue.

A worker registered through the worker's own code (:class:`scheduler.worker_registry.Registration`) and a crawl
check queued through the scheduler's (:func:`scheduler.queue.enqueue`, Procrastinate): ``listwatch serve`` shows
the worker (host, pid, state, its crawl) and the queue (depth, the oldest waiting check) without console errors
or serious accessibility problems; a worker silent past ``distributed.stalled_after`` is shown as lost.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.catalog import open_catalog
from archive.catalog.models import QueueWorker
from crawlers.sources import load_source
from scheduler.queue import enqueue, ensure_schema, make_app
from scheduler.settings import load_settings
from scheduler.worker_registry import Registration
from tests import postgres
from tests.archive_tools import CHROMIUM_ARGS, chromium_executable, free_port
from tests.daemon_support import DEMO_SOURCES
from tests.postgres import postgres_url  # noqa: F401  (fixture)
from tests.web_support import running

pytestmark = [pytest.mark.browser]
TOKEN = "workers-web-token-0123"
AXE = (Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


def test_sources_page_shows_workers_and_the_queue(tmp_path: Path, postgres_url: str,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTWATCH_DEMO_URL", "http://127.0.0.1:9")   # the sources' URLs (nothing is fetched)
    postgres.reset_database(postgres_url)
    catalog = open_catalog(postgres_url)
    ensure_schema(catalog)
    settings = load_settings(tmp_path / "none.yaml", data_dir=tmp_path, catalog_url=postgres_url,
                             distributed={"enabled": True, "stalled_after": 30})
    app = make_app(settings, sync=True)
    app.open()
    try:
        for name in ("mofcom.yaml", "tenders.yaml"):
            path = DEMO_SOURCES / name
            assert enqueue(app, load_source(path), path, "quick") is not None
        assert enqueue(app, load_source(DEMO_SOURCES / "mofcom.yaml"), DEMO_SOURCES / "mofcom.yaml", "quick") is None
    finally:
        app.close()
    working = Registration(catalog, concurrency=2)
    working.register()
    working.start(41, "demo-api", "full", "20261130T220000Z-abc123")
    gone = Registration(catalog, concurrency=1)
    gone.id += "-gone"
    gone.register()
    with catalog.session() as session:
        row = session.get(QueueWorker, gone.id)
        assert row is not None
        row.host, row.last_heartbeat = "crawler-7", datetime.now(UTC) - timedelta(minutes=5)

    port = free_port()
    web = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(tmp_path), "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"),
           "LISTWATCH_CATALOG_URL": postgres_url, "LISTWATCH_API__TOKEN": TOKEN, "LISTWATCH_API__PORT": str(port),
           "LISTWATCH_API__PUBLIC_URL": web, "LISTWATCH_DISTRIBUTED__ENABLED": "true",
           "LISTWATCH_DISTRIBUTED__STALLED_AFTER": "30"}
    from playwright.sync_api import sync_playwright

    with running(["serve"], env, f"{web}/healthz", tmp_path / "serve.log"), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_executable(), args=list(CHROMIUM_ARGS))
        page = browser.new_context().new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{web}/login?next=/sources")
        page.fill("#token", TOKEN)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{web}/sources")
        queue = " ".join(page.locator("#queue").inner_text().split())
        assert queue.startswith("Queue: 2 waiting, 0 running; oldest waiting: quick:demo-mofcom (job "), queue
        rows = [" ".join(r.inner_text().split()) for r in page.locator("#workers tbody tr").all()]
        mine = next(r for r in rows if f" {os.getpid()} " in f" {r} " and "working" in r)
        assert mine.startswith(socket.gethostname()) and "full demo-api (job 41, run 20261130T220000Z-abc123)" in mine
        lost = next(r for r in rows if r.startswith("crawler-7"))
        silent = re.search(r" (\d+) s ago", lost)
        assert " lost " in lost and silent and int(silent[1]) >= 300, lost
        page.add_script_tag(content=AXE)
        result = page.evaluate("async () => await axe.run(document, {iframes: false, resultTypes: ['violations']})")
        serious = [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [] and errors == [], (serious, errors)
        browser.close()
    catalog.dispose()
