"""Re-crawls whose earlier records are only in an S3 store (the spool copies deleted after upload, as in
production), on a real S3 server (rclone) behind ``tests.store_proxy``, which counts the requests and plays an
outage. Timing is ``tests/benchmarks/bench_remote_store.py``'s business; here: how many reads, and what happens
when the store fails."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from archive.catalog import open_catalog
from archive.spool import sync
from archive.storage.base import ObjectInfo
from archive.storage.local import LocalStorage
from crawlers.demo.site import DemoSite
from tests.conftest import DEMO_SOURCES, run_listwatch
from tests.servers import S3Server, rclone_s3  # noqa: F401  (fixture)
from tests.store_proxy import StoreProxy
from tests.warc_factory import write_spool_warcs

MOFCOM = DEMO_SOURCES / "mofcom.yaml"


@pytest.fixture
def proxy(rclone_s3: S3Server) -> Iterator[StoreProxy]:  # noqa: F811
    with StoreProxy(rclone_s3.port) as proxy:
        yield proxy


def _env(server: S3Server, bucket: str, proxy: StoreProxy) -> dict[str, str]:
    return {**server.settings_env(bucket), "LISTWATCH_STORAGE__ENDPOINT_URL": proxy.endpoint,
            "LISTWATCH_LOG_LEVEL": "WARNING"}


def _crawl(data_dir: Path, site: DemoSite, env: dict[str, str],
           kind: str = "full") -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """One crawl of the demo source as the CLI runs it; its report and its items' fields by page path."""
    done = run_listwatch(["crawl", "--json", "--kind", kind, str(MOFCOM)], data_dir=data_dir, site=site,
                         extra_env=env)
    try:
        [report] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"crawl printed no report (exit {done.returncode}):\n{done.stderr}") from None
    lines = Path(report["items_path"]).read_text(encoding="utf-8").splitlines()
    return report, {urlsplit(item["key"]).path: item["fields"] for item in map(json.loads, lines)}


def _spooled(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "spool").rglob("*.warc.gz"))


def test_an_unchanged_recrawl_reads_the_store_a_few_times_not_once_per_page(
        tmp_path: Path, demo_site: DemoSite, rclone_s3: S3Server, proxy: StoreProxy) -> None:  # noqa: F811
    env = _env(rclone_s3, rclone_s3.make_bucket(), proxy)
    first, first_items = _crawl(tmp_path, demo_site, env)
    assert first["stored"] == len(first["warc_files"]) >= 1 and not _spooled(tmp_path), \
        "the first crawl's WARCs are in the store only"
    pages = sum(first["pages_ok"].values())

    before = proxy.counts().get("GET range", 0)
    again, items = _crawl(tmp_path, demo_site, env)
    full_reads = proxy.counts().get("GET range", 0) - before
    assert again["status"] == "complete"
    assert items == first_items, "the same extractions, read back from the store"
    assert 1 <= full_reads <= 3 < pages, f"{full_reads} ranged reads for {pages} unchanged pages"

    before = proxy.counts().get("GET range", 0)
    quick, _ = _crawl(tmp_path, demo_site, env, "quick")
    assert quick["status"] == "complete"
    assert proxy.counts().get("GET range", 0) - before == 1, \
        "a quick check reads its start page's extraction and payload with one GET"


def test_a_store_outage_during_a_recrawl_loses_nothing(
        tmp_path: Path, demo_site: DemoSite, rclone_s3: S3Server, proxy: StoreProxy) -> None:  # noqa: F811
    bucket = rclone_s3.make_bucket()
    env = _env(rclone_s3, bucket, proxy)
    first, first_items = _crawl(tmp_path, demo_site, env)
    pages = sum(first["pages_ok"].values())

    proxy.mode = "503"
    before = proxy.counts().get("GET range", 0)
    report, items = _crawl(tmp_path, demo_site, env)
    asked = proxy.counts().get("GET range", 0) - before
    assert report["status"] == "complete", "unreadable earlier extractions: the pages are fetched again"
    assert items == first_items
    assert asked <= 3 * 8 < 3 * pages, f"{asked} reads: the store is not asked again for every page once down"
    assert report["stored"] == 0 and len(_spooled(tmp_path)) == len(report["warc_files"]) >= 1, \
        "the re-crawl's WARCs stay in the spool"
    assert report["steps_failed"] and all("stays in the spool" in step and "is failing" in step
                                          for step in report["steps_failed"]), report["steps_failed"]
    assert rclone_s3.secret_key not in str(report)

    proxy.mode = "forward"
    done = run_listwatch(["archive", "sync"], data_dir=tmp_path, extra_env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not _spooled(tmp_path), "the next sync uploads what the outage kept"
    stored = {o["Key"].rsplit("/", 1)[-1] for o in rclone_s3.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert {Path(p).name for p in report["warc_files"]} <= stored


class SideBySide(LocalStorage):
    """A store whose uploads each wait (up to 10 s) for a second upload to be under way at the same time."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.meeting = threading.Barrier(2, timeout=10)

    def put_file(self, key: str, path: Path, *, sha256: str) -> ObjectInfo:
        self.meeting.wait()
        return super().put_file(key, path, sha256=sha256)


def test_sync_uploads_a_warc_and_its_index_side_by_side(tmp_path: Path) -> None:
    """Each is several round trips to a remote store; one after the other they were most of a quick check."""
    files = write_spool_warcs(tmp_path / "spool", pages=3, max_size=10_000_000)
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    done = sync(catalog, SideBySide(tmp_path / "store"), tmp_path / "spool")
    assert done.ok and len(done.verified) == len(files) and len(done.uploaded) == 2 * len(files)
    assert not _spooled(tmp_path)
