"""Shared fixtures: the demo site on a free loopback port, crawls run as real subprocesses, and catalogs
(an SQLite file per test, or the same test on SQLite and a throwaway PostgreSQL cluster).

Crawls run in subprocesses (``python -m scheduler crawl``) because a Twisted reactor cannot be
restarted inside the pytest process, exactly as the scheduler runs them in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from archive.catalog import Catalog, open_catalog
from crawlers.demo.site import DemoSite
from scheduler.settings import Settings, load_settings
from tests import postgres

ROOT = Path(__file__).resolve().parent.parent
DEMO_SOURCES = ROOT / "crawlers" / "demo" / "sources"


@dataclass
class Crawl:
    """What one crawl left behind: its report, its items and its WARC files."""

    report: dict[str, Any]
    items: list[dict[str, Any]]
    warcs: list[Path]

    @property
    def by_path(self) -> dict[str, dict[str, Any]]:
        from urllib.parse import urlsplit

        return {urlsplit(i["key"]).path: i for i in self.items}


def run_listwatch(args: list[str], *, data_dir: Path, site: DemoSite | None = None,
                  timeout: float = 300, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_LOG_LEVEL": "INFO",
           "LISTWATCH_SETTINGS": str(data_dir / "none.yaml"), **(extra_env or {})}
    if site is not None:
        env["LISTWATCH_DEMO_URL"] = site.url
    return subprocess.run([sys.executable, "-m", "scheduler", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def crawl_sources(paths: list[Path], *, data_dir: Path, site: DemoSite | None = None,
                  extra_env: dict[str, str] | None = None) -> dict[str, Crawl]:
    """Crawl sources side by side in one subprocess; returns each source's Crawl by source id."""
    done = run_listwatch(["crawl", "--json", *map(str, paths)], data_dir=data_dir, site=site, extra_env=extra_env)
    try:
        reports = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"crawl printed no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}") from None
    crawls = {}
    for report in reports:
        items_path = Path(report["items_path"])
        items = [json.loads(line) for line in items_path.read_text(encoding="utf-8").splitlines()] \
            if items_path.exists() else []
        warcs = [locate_warc(Path(p), data_dir) for p in report["warc_files"]]
        crawls[report["source_id"]] = Crawl(report, items, warcs)
    return crawls


def locate_warc(spooled: Path, data_dir: Path) -> Path:
    """A crawl's WARC: still in the spool, or already moved to the local store by sync."""
    if spooled.exists():
        return spooled
    stored = list((data_dir / "archive").rglob(spooled.name))
    if not stored:
        raise AssertionError(f"{spooled.name} is neither in the spool nor in the local store")
    return stored[0]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    yield cat
    cat.dispose()


@pytest.fixture
def settings(tmp_path: Path, catalog: Catalog) -> Settings:
    return load_settings(tmp_path / "none.yaml", data_dir=tmp_path, catalog_url=catalog.url)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test runs twice: on an SQLite file and on a fresh database of the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    postgres.reset_database(url)
    return url


@pytest.fixture
def demo_site() -> Iterator[DemoSite]:
    with DemoSite(bench_pages=50) as site:
        yield site


@pytest.fixture(scope="session")
def day0(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Crawl]]:
    """Every demo source crawled once on day 0 (shared by read-only tests)."""
    data_dir = tmp_path_factory.mktemp("day0")
    with DemoSite(bench_pages=50) as site:
        crawls = crawl_sources(sorted(DEMO_SOURCES.glob("*.yaml")), data_dir=data_dir, site=site)
        crawls_site_hits = dict(site.hits)
    for crawl in crawls.values():
        crawl.report["site_hits"] = crawls_site_hits
    yield crawls
