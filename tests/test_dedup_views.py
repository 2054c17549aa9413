"""What a crawl knows of the archive: per-source views loaded once; unchanged pages write no metadata, and
readers follow their revisits (and older archives' pointers) to the extraction archived before."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from warcio.archiveiterator import ArchiveIterator

from archive.catalog import Catalog, open_catalog
from archive.dedup import DedupIndex
from archive.indexer import register_warc
from archive.pages import iter_pages
from archive.programs.reprocess import read_runs
from archive.records import ITEMS_URN, POINTER_TYPE, RecordBuilder, record_id
from archive.writer import RollingWarcWriter
from crawlers.demo.site import DemoSite
from tests.archive_tools import warcio_check
from tests.conftest import DEMO_SOURCES, crawl_sources

URL = "http://127.0.0.1:8000/a.html"


@contextmanager
def counting(catalog: Catalog) -> Iterator[list[str]]:
    """Every query (SELECT) the catalog's engine runs inside the block."""
    seen: list[str] = []

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(catalog.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(catalog.engine, "before_cursor_execute", before)


def _digest(record: object) -> str:
    return str(record.rec_headers.get_header("WARC-Payload-Digest"))  # type: ignore[attr-defined]


def test_views_answer_every_lookup_from_memory(tmp_path: Path) -> None:
    builder = RecordBuilder()
    spool = tmp_path / "spool"
    writer = RollingWarcWriter(spool / "s1", prefix="s1-20260101T000000Z-aaaaaa", builder=builder,
                               warcinfo={"isPartOf": "s1"})
    old = builder.response(URL, 200, [("ETag", '"v1"')], b"old body", date="2026-01-01T00:00:01Z")
    new = builder.response(URL, 200, [("ETag", '"v2"')], b"new body", date="2026-01-01T00:00:02Z")
    plain = builder.response(URL + "?b", 200, [("Content-Type", "text/html")], b"no validators")
    missing = builder.response(URL + "?gone", 404, [("ETag", '"x"')], b"not here")
    full = builder.metadata(ITEMS_URN + URL, {"role": "detail", "key": "k", "fields": {"t": 1}})
    pointer = builder.metadata(ITEMS_URN + URL, {"role": "detail", "key": "k", "same_as": "<urn:uuid:x>"},
                               content_type=POINTER_TYPE)
    writer.write(old, new, plain, missing, full, pointer)
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    for path in writer.close():
        register_warc(catalog, path, source_id="s1")

    dedup = DedupIndex(catalog, spool_dir=spool)
    with counting(catalog) as loading:
        dedup.prepare("s1")
    assert len(loading) == 5, loading
    with counting(catalog) as lookups:
        for _ in range(50):
            earlier = dedup.validators(URL, "s1")
            assert earlier is not None and earlier.etag == '"v2"', "the newest full capture's validators"
            assert dedup.validators(URL + "?b", "s1") is None, "newest capture has no validators: ask in full"
            assert dedup.validators(URL + "?gone", "s1") is None, "only 200 responses give validators"
            hit = dedup.by_digest(_digest(old), "s1")
            assert hit is not None and hit.url == URL
            assert dedup.by_digest("sha256:nothing", "s1") is None
            assert dedup.same_metadata(ITEMS_URN + URL, _digest(full), "s1") == \
                full.rec_headers.get_header("WARC-Record-ID")
            assert dedup.same_metadata(ITEMS_URN + URL, "sha256:other", "s1") is None
            extraction = dedup.extraction(URL, "s1")
            assert extraction is not None and extraction.record_id == full.rec_headers.get_header("WARC-Record-ID")
    assert lookups == [], "no catalog query on the per-request path"
    loaded = dedup.load_payload(earlier, "s1")
    assert loaded is not None and loaded[1] == b"new body"
    assert dedup.load_extraction(extraction, "s1") == {"role": "detail", "key": "k", "fields": {"t": 1}}

    # A source the catalog never captured (a first crawl): one existence check, nothing loaded.
    with counting(catalog) as first:
        assert dedup.validators(URL, "s2") is None
        assert dedup.by_digest(_digest(old), "s2") is None, "dedup stays within a source"
        assert dedup.same_metadata(ITEMS_URN + URL, _digest(full), "s2") is None
    assert len(first) == 1


def metadata_records(warcs: list[Path]) -> list[dict[str, object]]:
    found = []
    for path in warcs:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                if record.rec_type == "metadata" and uri.startswith(ITEMS_URN):
                    found.append(json.loads(record.content_stream().read()))
    return found


def record_types(warcs: list[Path]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in warcs:
        with path.open("rb") as fh:
            counts.update(record.rec_type for record in ArchiveIterator(fh))
    return counts


def test_three_unchanged_crawls_in_a_row_write_only_requests_and_revisits(tmp_path: Path,
                                                                          demo_site: DemoSite) -> None:
    source = DEMO_SOURCES / "mofcom.yaml"
    first = crawl_sources([source], data_dir=tmp_path, site=demo_site)["demo-mofcom"]
    originals = metadata_records(first.warcs)
    assert originals and not any("same_as" in m for m in originals)
    first_pages = sorted((p["url"], p["title"]) for p in iter_pages(first.warcs))
    assert len(first_pages) == len(originals)
    warcs = list(first.warcs)
    for n in range(3):
        again = crawl_sources([source], data_dir=tmp_path, site=demo_site)["demo-mofcom"]
        kinds = record_types(again.warcs)
        assert set(kinds) == {"warcinfo", "request", "revisit"}, f"unchanged crawl {n + 2} wrote {kinds}"
        assert kinds["request"] == kinds["revisit"] >= len(originals)
        assert by_key(again.items) == by_key(first.items), "unchanged pages keep their extraction"
        # Readers follow each revisit to the capture it repeats and list the page with that extraction.
        warcs += again.warcs
        assert sorted((p["url"], p["title"]) for p in iter_pages(again.warcs + first.warcs)) == \
            sorted([*first_pages, *first_pages])
    warcio_check(warcs)
    runs = read_runs(warcs, "demo-mofcom")
    assert len(runs) == 4
    roles = [Counter(m["role"] for rid, m in run.meta.items() if rid in run.pages) for run in runs.values()]
    assert all(r == roles[0] for r in roles) and roles[0]["listing"] and roles[0]["detail"], roles

    # New extraction rules: unchanged detail pages are extracted again, not taken from the archive.
    edited = tmp_path / "mofcom.yaml"
    edited.write_text(source.read_text(encoding="utf-8").replace("detail_title:", "heading:"), encoding="utf-8")
    changed = crawl_sources([edited], data_dir=tmp_path, site=demo_site)["demo-mofcom"]
    details = [m for m in metadata_records(changed.warcs) if m.get("role") == "detail"]
    assert details and all("same_as" not in m and "heading" in m["fields"] for m in details)
    assert all("heading" in i["fields"] for i in changed.items if "detail" in i)
    assert not [m for m in metadata_records(changed.warcs) if m.get("role") == "listing"], \
        "listing pages, unchanged under unchanged listing rules, still write nothing"


def test_readers_follow_pointers_of_archives_written_before(tmp_path: Path) -> None:
    """Crawls before unchanged pages wrote nothing left a ``same_as`` pointer per unchanged page."""
    builder = RecordBuilder()
    warcs = []
    for run, second in (("20260101T000000Z-aaaaaa", 1), ("20260102T000000Z-bbbbbb", 2)):
        writer = RollingWarcWriter(tmp_path / "s1", prefix=f"s1-{run}", builder=builder, warcinfo={"isPartOf": "s1"})
        if second == 1:
            page = builder.response(URL, 200, [("Content-Type", "text/html")], b"<h1>Programme</h1>",
                                    date="2026-01-01T00:00:01Z")
            original = page
            meta = builder.metadata(ITEMS_URN + URL, {"role": "detail", "key": "k", "fields":
                                                      {"detail_title": "Programme"}}, refers_to=record_id(page))
            full_id = record_id(meta)
        else:
            page = builder.revisit(URL, 200, [("Content-Type", "text/html")], payload_digest=_digest(original),
                                   refers_to_uri=URL, refers_to_date="2026-01-01T00:00:01Z",
                                   refers_to=record_id(original), date="2026-01-02T00:00:01Z")
            meta = builder.metadata(ITEMS_URN + URL, {"role": "detail", "key": "k", "same_as": full_id},
                                    refers_to=record_id(page), content_type=POINTER_TYPE)
        writer.write(page, meta)
        warcs += writer.close()
    assert [p["title"] for p in iter_pages(warcs)] == ["Programme", "Programme"]
    runs = read_runs(warcs, "s1")
    described = [m for run in runs.values() for rid, m in run.meta.items() if rid in run.pages]
    assert [m["fields"] for m in described] == [{"detail_title": "Programme"}] * 2


def by_key(items: list[dict[str, Any]]) -> dict[str, tuple[object, object]]:
    return {i["key"]: (i["fields"], i.get("attachments")) for i in items}
