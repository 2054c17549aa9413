"""The spider writes ``items.jsonl`` itself (``crawlers.items_file``): the same bytes Scrapy's jsonlines feed wrote."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

from scrapy.exporters import JsonLinesItemExporter

from crawlers.items_file import ItemsFile

ITEMS: list[dict[str, Any]] = [
    {"source": "mofcom", "key": "/a/1.html", "fields": {"title": "关于举办2026年研修班的通知", "date": "2026-01-12",
                                                        "tags": ["商务", "培训"], "amount": None},
     "listing_page": 1, "position": 0, "detail": {"url": "https://example.gov.cn/a/1.html", "status": 200,
                                                  "record": "<urn:uuid:1>", "gone": None}},
    {"source": "mofcom", "key": "/a/2.html", "recheck": True, "detail": {"status": None, "error": "timeout"}},
    # what a source's hook might put in an item: Scrapy's encoder writes these as text
    {"source": "hooked", "key": "k", "fields": {"when": datetime(2026, 1, 12, 8, 30, tzinfo=UTC),
                                                "day": date(2026, 1, 12), "fee": Decimal("12.50")}},
]


def scrapy_feed_bytes(items: list[dict[str, Any]]) -> bytes:
    """What ``FEEDS = {path: {"format": "jsonlines", "encoding": "utf8"}}`` wrote (its exporter, its options)."""
    out = BytesIO()
    exporter = JsonLinesItemExporter(out, encoding="utf8", indent=0)
    exporter.start_exporting()
    for item in items:
        exporter.export_item(item)
    exporter.finish_exporting()
    return out.getvalue()


def test_items_are_written_as_scrapys_jsonlines_feed_wrote_them(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "mofcom" / "r1" / "items.jsonl"   # the run directory is created if need be
    items = ItemsFile(path)
    for item in ITEMS:
        items.write(item)
    items.close()
    assert path.read_bytes() == scrapy_feed_bytes(ITEMS)
    assert "关于举办".encode() in path.read_bytes()   # UTF-8, not \\u escapes
    assert items.count == len(ITEMS)


def test_a_crawl_without_items_leaves_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    ItemsFile(path).close()
    assert path.read_bytes() == b""
