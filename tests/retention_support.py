"""Real unchanged checks for the catalog-size tests (lean reports, retention): the demo site's one-page bench
listings (answered 304 to a conditional GET once crawled), checked through the scheduler's own path,
:class:`scheduler.runner.CrawlRunner` (one crawl host, run row, ingest, store in the local archive)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import CrawlRun
from crawlers.demo.site import DemoSite
from crawlers.sources import load_source
from scheduler.runner import CrawlRunner, RunResult
from scheduler.settings import Settings
from tests.listing_sources import listing_source

SCHEDULE = {"quick": "15m", "full": "1d", "quick_pages": 1, "jitter": 0}



class Checks:
    """A runner on its own data dir and catalog, with bench-listing sources on the demo site."""

    def __init__(self, tmp_path: Path, site: DemoSite, catalog_url: str) -> None:
        self.settings = Settings(data_dir=tmp_path / "data", sources_dir=tmp_path / "sources", catalog_url=catalog_url,
                                 scheduler={"crawl_hosts": 1, "host_crawls": 2, "crawl_timeout": 60})
        self.catalog: Catalog = open_catalog(catalog_url)
        self.runner = CrawlRunner(self.settings, self.catalog)
        self.site = site

    def source(self, source_id: str, page: str = "index.html") -> Path:
        path = self.settings.sources_dir / f"{source_id}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(listing_source(source_id, f"bench listing {source_id}", f"{self.site.url}/bench/list/{page}",
                                       limits={"max_pages": 5, "retries": 0}, schedule=SCHEDULE), encoding="utf-8")
        return path

    def check(self, path: Path, kind: str) -> RunResult:
        return self.runner.run(load_source(path), path, kind)

    def row(self, run_id: str) -> CrawlRun:
        with self.catalog.read_session() as session:
            run = session.get(CrawlRun, run_id)
            assert run is not None, run_id
            return run

    def runs(self) -> list[CrawlRun]:
        with self.catalog.read_session() as session:
            return list(session.scalars(select(CrawlRun).order_by(CrawlRun.started_at)))

    def close(self) -> None:
        self.runner.close()
        self.catalog.dispose()


@pytest.fixture(name="checks")
def checks_fixture(tmp_path: Path, demo_site: DemoSite, catalog_url: str) -> Iterator[Checks]:
    """A :class:`Checks` bench, closed after the test (a test module imports it to use ``checks``)."""
    bench = Checks(tmp_path, demo_site, catalog_url)
    yield bench
    bench.close()
