"""A catalog filled by real demo crawls across several days, and a running ``listwatch serve`` over it.

``web_archive`` (session fixture) crawls ``demo-mofcom`` (static, GBK, Chinese titles) and ``demo-tenders`` on
the demo site's days 0, 1 and 2 through the whole pipeline (``listwatch crawl`` in a subprocess: WARCs stored,
programmes diffed, events recorded). Day 1 edits one programme (deadline and location), day 2 lists new ones
and drops some, so the catalog holds versions, field diffs, missing programmes and their evidence.

Use it with ``pytest_plugins = ("tests.web_support",)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from archive.catalog import Catalog
from crawlers.demo.site import DemoSite
from tests.archive_tools import CHROMIUM_ARGS, STARTUP, chromium_executable, free_port, http_get, stop_process
from tests.conftest import ROOT
from tests.programs_support import crawl_day, pipeline_catalog

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SOURCES = ("demo-mofcom", "demo-tenders")
DAYS = (0, 1, 2)
TOKEN = "web-test-token-0123"


@dataclass
class WebArchive:
    data_dir: Path
    catalog: Catalog
    site_url: str
    token: str = TOKEN

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "LISTWATCH_DATA_DIR": str(self.data_dir),
                "LISTWATCH_SETTINGS": str(self.data_dir / "none.yaml"), "LISTWATCH_API__TOKEN": TOKEN, **extra}


@pytest.fixture(scope="session")
def web_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebArchive]:
    data_dir = tmp_path_factory.mktemp("web") / "data"
    with DemoSite(bench_pages=50) as site:
        for day in DAYS:
            crawl_day(site, day, data_dir, source_ids=SOURCES)
        url = site.url
    catalog = pipeline_catalog(data_dir)
    yield WebArchive(data_dir, catalog, url)
    catalog.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A real Chromium (Playwright), one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_executable(), args=list(CHROMIUM_ARGS))
        yield chromium
        chromium.close()


@contextmanager
def running(argv: list[str], env: dict[str, str], probe: str, log: Path) -> Iterator[None]:
    """Start a listwatch server subprocess and wait until ``probe`` answers (any HTTP status below 500)."""
    out = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "scheduler", *argv], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                if http_get(probe, timeout=2)[0] < 500:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server did not come up:\n" + log.read_text(errors="replace")
            time.sleep(0.2)
        yield
    finally:
        stop_process(proc)  # type: ignore[arg-type]
        out.close()


@dataclass
class Servers:
    web: str        # listwatch serve
    replay: str     # listwatch replay (pywb), reading the web server's CDX endpoint


@pytest.fixture(scope="session")
def servers(web_archive: WebArchive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    logs = tmp_path_factory.mktemp("web-logs")
    web_port, replay_port = free_port(), free_port()
    web, replay = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{replay_port}"
    env = web_archive.env(LISTWATCH_API__PORT=str(web_port), LISTWATCH_API__PUBLIC_URL=web,
                          LISTWATCH_REPLAY__PORT=str(replay_port), LISTWATCH_REPLAY__PUBLIC_URL=replay)
    with running(["serve"], env, f"{web}/healthz", logs / "serve.log"), \
            running(["replay"], env, f"{replay}/archive/", logs / "replay.log"):
        yield Servers(web, replay)
