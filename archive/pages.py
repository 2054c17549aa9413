"""The pages of a crawl (listing and detail pages), read back from its WARC ``metadata`` records.

Used to write WACZ ``pages.jsonl`` (json-pages-1.0): wacz's own page detection misses rendered
captures, while our metadata records name every listing and detail page exactly. An unchanged page
(a revisit) has no metadata record of its own: it is listed with the extraction of the capture its
``WARC-Refers-To`` names. A ``same_as`` pointer (written by crawls before that rule) takes the record it names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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


def resolve_pointer(data: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A ``same_as`` pointer's target (when at hand), else the record itself."""
    target = by_id.get(str(data.get("same_as")))
    return target if target is not None and "same_as" not in target else data


@dataclass
class _Seen:
    """A record that may stand for a page: a ``metadata`` record or a ``revisit``."""

    kind: str
    uri: str
    date: str
    record_id: str
    refers_to: str   # a metadata record's page record, or a revisit's original


def _scan(warc_paths: Iterable[Path]) -> tuple[list[_Seen], dict[str, dict[str, Any]], dict[str, _Seen]]:
    """Records in file order, metadata JSON by record id, and page record id → the metadata record about it."""
    seen: list[_Seen] = []
    by_id: dict[str, dict[str, Any]] = {}
    about: dict[str, _Seen] = {}
    for path in warc_paths:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                headers = record.rec_headers
                kind = record.rec_type
                if kind == "metadata" and "json" not in (record.content_type or ""):
                    continue
                if kind not in ("metadata", "revisit"):
                    continue
                item = _Seen(kind, headers.get_header("WARC-Target-URI") or "", headers.get_header("WARC-Date") or "",
                             headers.get_header("WARC-Record-ID") or "", headers.get_header("WARC-Refers-To") or "")
                if kind == "metadata":
                    by_id[item.record_id] = json.loads(record.content_stream().read())
                    if item.refers_to:
                        about[item.refers_to] = item
                seen.append(item)
    return seen, by_id, about


def iter_pages(warc_paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    seen, by_id, about = _scan(warc_paths)
    for item in seen:
        if item.kind == "metadata":
            uri, data = item.uri, by_id[item.record_id]
        else:  # an unchanged page without a metadata record of its own: its original's, if at hand
            original = about.get(item.refers_to) if item.refers_to else None
            if item.record_id in about or original is None or original.uri != ITEMS_URN + item.uri:
                continue
            uri, data = original.uri, by_id[original.record_id]
        page = page_entry(uri, item.date, resolve_pointer(data, by_id))
        if page is not None:
            yield page


def write_pages_jsonl(warc_paths: Iterable[Path], out: Path) -> int:
    """Write ``pages.jsonl``; returns how many pages it lists."""
    lines = [json.dumps(PAGES_HEADER)]
    lines += [json.dumps(page, ensure_ascii=False) for page in iter_pages(warc_paths)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1
