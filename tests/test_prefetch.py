"""Earlier extractions already uploaded are read from the store ahead of the re-crawl, off the crawl's thread, in
few ranged reads, and an unavailable store is not asked again (end to end on a real S3 server:
``test_remote_store``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from archive.catalog import open_catalog
from archive.dedup import DedupIndex
from archive.prefetch import spans
from archive.storage import Storage, StorageError, StorageUnavailable, open_storage
from crawlers.demo.site import DemoSite
from scheduler.settings import load_settings
from tests.conftest import DEMO_SOURCES, crawl_sources


class Watched:
    """The real store, noting the thread of every ranged read (and failing them all with ``fail``)."""

    def __init__(self, storage: Storage, fail: type[StorageError] | None = None) -> None:
        self.storage, self.fail, self.threads = storage, fail, []

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        self.threads.append(threading.current_thread().name)
        if self.fail is not None:
            raise self.fail(f"{key} is unreachable")
        return self.storage.read_range(key, offset, length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


def _index(data_dir: Path, fail: type[StorageError] | None = None) -> tuple[DedupIndex, Watched]:
    settings = load_settings(data_dir / "none.yaml", data_dir=data_dir)
    store = Watched(open_storage(settings), fail)
    return DedupIndex(open_catalog(settings.catalog), spool_dir=settings.spool_dir, storage=store), store  # type: ignore[arg-type]


def test_uploaded_extractions_are_read_ahead_on_threads(tmp_path: Path, demo_site: DemoSite) -> None:
    first = crawl_sources([DEMO_SOURCES / "mofcom.yaml"], data_dir=tmp_path, site=demo_site)["demo-mofcom"]
    assert all(not p.is_relative_to(tmp_path / "spool") for p in first.warcs), "the crawl's WARCs were uploaded"
    dedup, store = _index(tmp_path)
    view = dedup.prepare("demo-mofcom")
    assert not store.threads, "nothing is read before a crawl asks (a quick check never does)"
    records = [*view.extractions.values(), *view.validators.values()]   # extractions, and payloads to parse again
    assert dedup.read_ahead("demo-mofcom") == len(records) > len(view.extractions) >= 2
    loaded = [dedup.load_extraction(earlier, "demo-mofcom") for earlier in view.extractions.values()]
    assert all(isinstance(data, dict) and data["role"] in ("listing", "detail") for data in loaded)
    assert all(dedup.load_payload(earlier, "demo-mofcom") for earlier in view.validators.values())
    assert len(store.threads) == len(list(spans(records))) < len(view.extractions) / 4, \
        "records close together share one GET"
    assert threading.current_thread().name not in store.threads, "no store read on the crawl's own thread"
    dedup.close_files("demo-mofcom")


def test_a_store_read_that_fails_ahead_is_an_unreadable_extraction(tmp_path: Path, demo_site: DemoSite) -> None:
    crawl_sources([DEMO_SOURCES / "mofcom.yaml"], data_dir=tmp_path, site=demo_site)
    dedup, store = _index(tmp_path, fail=StorageError)
    view = dedup.prepare("demo-mofcom")
    dedup.read_ahead("demo-mofcom")
    assert all(dedup.load_extraction(e, "demo-mofcom") is None for e in view.extractions.values())
    records = [*view.extractions.values(), *view.validators.values()]
    assert len(store.threads) == len(list(spans(records))), "a failed read ahead is not repeated on the crawl's thread"
    dedup.close_files("demo-mofcom")


def test_an_unavailable_store_is_not_asked_again(tmp_path: Path, demo_site: DemoSite) -> None:
    crawl_sources([DEMO_SOURCES / "mofcom.yaml"], data_dir=tmp_path, site=demo_site)
    dedup, store = _index(tmp_path, fail=StorageUnavailable)
    view = dedup.prepare("demo-mofcom")
    some = next(iter(view.extractions.values()))
    assert dedup.load_extraction(some, "demo-mofcom") is None
    assert len(store.threads) == 1
    dedup.read_ahead("demo-mofcom")
    assert all(dedup.load_extraction(e, "demo-mofcom") is None for e in view.extractions.values())
    assert all(dedup.load_payload(e, "demo-mofcom") is None for e in view.validators.values())
    assert len(store.threads) == 1, "once the store is unavailable, every later read fails without a request"
    dedup.close_files("demo-mofcom")


def test_a_quick_check_reads_ahead_only_its_start_pages(tmp_path: Path, demo_site: DemoSite) -> None:
    crawl_sources([DEMO_SOURCES / "mofcom.yaml"], data_dir=tmp_path, site=demo_site)
    dedup, store = _index(tmp_path)
    view = dedup.prepare("demo-mofcom")
    start = next(url for url in view.validators if url.endswith("/mofcom/list/index.html"))
    assert dedup.read_ahead("demo-mofcom", [start]) == 2, "the start page's extraction and payload"
    extraction = dedup.extraction(start, "demo-mofcom")
    assert extraction is not None
    assert (dedup.load_extraction(extraction, "demo-mofcom") or {}).get("role") == "listing"
    assert dedup.load_payload(view.validators[start], "demo-mofcom") is not None
    assert len(store.threads) == 1, "the two records are next to each other: one GET"
    assert threading.current_thread().name not in store.threads
    dedup.close_files("demo-mofcom")
