"""A small real archive for retrieval tests: the demo site crawled twice, stored in a fresh catalog and store.

``archived`` (session fixture) crawls ``demo-mofcom`` (static, GBK) and ``demo-academy`` (rendered, with
screenshots) twice against the same demo site, so every URL has two captures (the second crawl writes
revisits). The WARCs are copied into a fresh spool and moved to a fresh ``LocalStorage`` with
``archive.spool.sync`` (register → upload → verify), keeping the original files for byte comparisons.

Use it from a test module with ``pytest_plugins = ("tests.retrieval_support",)``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from archive.catalog import Catalog, open_catalog
from archive.spool import sync
from archive.storage import LocalStorage
from crawlers.demo.site import DemoSite
from tests.conftest import DEMO_SOURCES, Crawl, crawl_sources

SOURCES = ("mofcom", "academy")


@dataclass
class Archived:
    catalog: Catalog
    storage: LocalStorage
    root: Path                      # holds catalog.sqlite, store/, originals/
    originals: dict[str, Path]      # WARC name → untouched copy
    crawls: list[dict[str, Crawl]]  # [first, second], by source id
    site_url: str

    def url(self, path: str) -> str:
        return f"{self.site_url}{path}"


@pytest.fixture(scope="session")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    root = tmp_path_factory.mktemp("retrieval")
    paths = [DEMO_SOURCES / f"{name}.yaml" for name in SOURCES]
    with DemoSite(bench_pages=50) as site:
        crawls = [crawl_sources(paths, data_dir=root / "crawls", site=site) for _ in (1, 2)]
        site_url = site.url
    spool, originals_dir = root / "spool", root / "originals"
    originals: dict[str, Path] = {}
    for crawl_set in crawls:
        for source_id, crawl in crawl_set.items():
            assert crawl.warcs, f"{source_id} wrote no WARC: {crawl.report}"
            for warc in crawl.warcs:
                (spool / source_id).mkdir(parents=True, exist_ok=True)
                originals_dir.mkdir(exist_ok=True)
                shutil.copy2(warc, spool / source_id / warc.name)
                originals[warc.name] = Path(shutil.copy2(warc, originals_dir / warc.name))
    catalog = open_catalog(f"sqlite:///{root / 'catalog.sqlite'}")
    storage = LocalStorage(root / "store")
    result = sync(catalog, storage, spool)
    assert result.ok and len(result.verified) == len(originals), result.summary()
    yield Archived(catalog, storage, root, originals, crawls, site_url)
    catalog.dispose()
