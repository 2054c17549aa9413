"""The pages of a crawl (listing and detail pages), read back from its WARC ``metadata`` records.

Used to write WACZ ``pages.jsonl`` (json-pages-1.0): wacz's own page detection misses rendered
captures, while our metadata records name every listing and detail page exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from archive.records import ITEMS_URN

PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "Listing and detail pages"}


def page_entry(target_uri: str, warc_date: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The pages.jsonl line for one ``urn:items:`` metadata record, or None when it is not a page."""
    if data.get("role") not in ("listing", "detail"):
        return None
    return {
        "url": target_uri.removeprefix(ITEMS_URN),
        "ts": warc_date,
        "title": data.get("fields", {}).get("detail_title") or f"{data['role']} page",
    }


def iter_pages(warc_paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in warc_paths:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type != "metadata" or "json" not in (record.content_type or ""):
                    continue
                page = page_entry(record.rec_headers.get_header("WARC-Target-URI"),
                                  record.rec_headers.get_header("WARC-Date"),
                                  json.loads(record.content_stream().read()))
                if page is not None:
                    yield page


def write_pages_jsonl(warc_paths: Iterable[Path], out: Path) -> int:
    """Write ``pages.jsonl``; returns how many pages it lists."""
    lines = [json.dumps(PAGES_HEADER)]
    lines += [json.dumps(page, ensure_ascii=False) for page in iter_pages(warc_paths)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1
