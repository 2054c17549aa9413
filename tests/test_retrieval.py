"""Retrieval over a real (twice-crawled) demo archive: records, payloads, CDX queries, Memento, WACZ export."""

from __future__ import annotations

import gzip
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from warcio.archiveiterator import ArchiveIterator

from archive.catalog import open_catalog
from archive.catalog.models import Capture, WarcFile
from archive.cdx import QueryError, format_entries, query_captures
from archive.indexer import register_warc
from archive.pages import iter_pages
from archive.retrieval import (
    NotFound,
    RecordIntegrityError,
    read_payload,
    read_record,
    screenshot,
    timegate,
    timemap,
)
from archive.storage import LocalStorage
from archive.wacz import export_wacz
from tests.archive_tools import wacz_validate, warcio_check
from tests.http_support import QuietHandler, serving
from tests.warc_rules import field_problems

if TYPE_CHECKING:
    from tests.retrieval_support import Archived

pytest_plugins = ("tests.retrieval_support",)   # fixtures: archived (+ rclone_s3)
pytestmark = [pytest.mark.slow, pytest.mark.browser]
LISTING = "/mofcom/list/index.html"


class CountingStorage:
    """Wraps a storage and counts what is read from it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls, self.bytes = inner, 0, 0

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        self.calls += 1
        data: bytes = self.inner.read_range(key, offset, length)
        self.bytes += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def all_captures(arch: Archived) -> list[tuple[Capture, WarcFile]]:
    with arch.catalog.session() as session:
        return [(c, w) for c, w in session.execute(select(Capture, WarcFile).join(WarcFile))]


def original_records(path: Path) -> dict[str, bytes]:
    """record id → uncompressed record bytes, found by warcio's own walk over the untouched file."""
    raw = path.read_bytes()
    out = {}
    with path.open("rb") as fh:
        it = ArchiveIterator(fh)
        for record in it:
            rid = record.rec_headers.get_header("WARC-Record-ID")
            record.content_stream().read()
            offset, length = it.get_record_offset(), it.get_record_length()
            out[rid] = gzip.decompress(raw[offset:offset + length])
    return out


def test_real_crawls_warcs_pass_warcio_and_the_field_rules(archived: Archived) -> None:
    """Both crawls' WARCs (static and browser-rendered pages, screenshots, DOMs, items metadata, both revisit
    profiles) pass ``warcio check`` and WARC 1.1's rules on named fields (tests/warc_rules.py)."""
    warcs = sorted(archived.originals.values())
    warcio_check(warcs)
    assert field_problems(warcs) == []
    kinds: set[str] = set()
    for path in warcs:
        with path.open("rb") as fh:
            kinds |= {f"{r.rec_type} {(r.rec_headers.get_header('WARC-Target-URI') or '').split(':')[1]}"
                      if r.rec_type in ("resource", "metadata") else r.rec_type for r in ArchiveIterator(fh)}
    assert {"warcinfo", "request", "response", "revisit", "resource screenshot", "resource dom",
            "metadata items"} <= kinds, kinds


def test_every_capture_reads_back_byte_identical_with_one_ranged_read(archived: Archived) -> None:
    counting = CountingStorage(archived.storage)
    originals = {name: original_records(path) for name, path in archived.originals.items()}
    captures = all_captures(archived)
    assert len(captures) > 100
    for capture, warc in captures:
        before = counting.calls
        data = read_record(archived.catalog, counting, capture.record_id)  # type: ignore[arg-type]
        assert counting.calls - before == 1, "one ranged read per record"
        assert data == originals[warc.name][capture.record_id], capture.record_id
    assert counting.bytes == sum(c.length for c, _ in captures)
    kinds = {c.record_type for c, _ in captures}
    assert {"response", "revisit", "resource", "metadata"} <= kinds


def _tampered_copy(src: Path, dst: Path, record_id: str) -> None:
    """Rewrite one record with a flipped body byte (recompressed, headers and digests unchanged)."""
    raw = src.read_bytes()
    with src.open("rb") as fh:
        it = ArchiveIterator(fh)
        for record in it:
            rid = record.rec_headers.get_header("WARC-Record-ID")
            record.content_stream().read()
            if rid == record_id:
                offset, length = it.get_record_offset(), it.get_record_length()
                break
    member = bytearray(gzip.decompress(raw[offset:offset + length]))
    at = member.index(b"</html>")
    member[at + 2] ^= 0x20   # </html> → </Html>: same length, different bytes
    dst.write_bytes(raw[:offset] + gzip.compress(bytes(member)) + raw[offset + length:])


def test_digest_check_catches_a_flipped_byte(archived: Archived, tmp_path: Path) -> None:
    capture = next(c for c, _ in all_captures(archived) if c.record_type == "response" and c.url.endswith(LISTING))
    warc_name = next(w.name for c, w in all_captures(archived) if c.record_id == capture.record_id)
    bad = tmp_path / "spool" / warc_name
    bad.parent.mkdir()
    _tampered_copy(archived.originals[warc_name], bad, capture.record_id)
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    store = LocalStorage(tmp_path / "store")
    warc = register_warc(catalog, bad, source_id="demo-mofcom")
    store.put_file(warc.key, bad, sha256=warc.sha256)
    with pytest.raises(RecordIntegrityError, match="block digest mismatch") as caught:
        read_record(catalog, store, capture.record_id)
    assert warc.key in str(caught.value) and "offset" in str(caught.value)
    # and a byte flipped in the stored (compressed) file is refused too, naming file and offset
    other = next(c for c, w in all_captures(archived) if w.name == warc_name and c.record_type == "metadata")
    with catalog.session() as session:
        row = session.scalar(select(Capture).where(Capture.record_id == other.record_id))
        assert row is not None
        offset, length = row.offset, row.length
    path = store.local_path(warc.key)
    data = bytearray(path.read_bytes())
    data[offset + length // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RecordIntegrityError, match=f"{warc.key} at offset {offset}"):
        read_record(catalog, store, other.record_id)
    catalog.dispose()


def test_payloads_and_revisits_resolve_to_the_archived_bytes(archived: Archived) -> None:
    url = archived.url(LISTING)
    first, second = query_captures(archived.catalog, url)
    assert first.type == "response" and second.type == "revisit"
    a = read_payload(archived.catalog, archived.storage, first.record_id)
    b = read_payload(archived.catalog, archived.storage, second.record_id)
    assert a.status == b.status == 200
    assert a.body == b.body and "共" in a.body.decode("gbk")
    assert b.source_record_id == first.record_id
    with pytest.raises(NotFound):
        read_payload(archived.catalog, archived.storage, "urn:uuid:00000000-0000-0000-0000-000000000000")


def test_screenshot_is_a_png_nearest_the_time(archived: Archived) -> None:
    url = archived.url("/academy/index.html")
    shots = query_captures(archived.catalog, f"urn:screenshot:{url}")
    assert len(shots) == 2
    latest = screenshot(archived.catalog, archived.storage, url)
    early = screenshot(archived.catalog, archived.storage, url, at=shots[0].timestamp)
    assert latest.startswith(b"\x89PNG\r\n\x1a\n") and early.startswith(b"\x89PNG\r\n\x1a\n")
    assert early == read_payload(archived.catalog, archived.storage, shots[0].record_id).body


def test_cdx_exact_prefix_host_domain_and_ranges(archived: Archived) -> None:
    cat = archived.catalog
    url = archived.url(LISTING)
    exact = query_captures(cat, url)
    assert [e.url for e in exact] == [url, url] and exact[0].timestamp <= exact[1].timestamp
    prefix = query_captures(cat, archived.url("/mofcom/detail/"), match="prefix")
    assert prefix and all("/mofcom/detail/" in e.url for e in prefix)
    assert {e.url for e in query_captures(cat, archived.url("/mofcom/detail/*"))} == {e.url for e in prefix}
    host = query_captures(cat, archived.url("/anything"), match="host")
    assert {e.url for e in host} >= {e.url for e in prefix} | {url}
    assert all(e.url.startswith(archived.site_url) for e in host)
    assert len(query_captures(cat, "127.0.0.1", match="domain")) >= 0   # an IP host has no subdomains
    # from / to / limit
    t1, t2 = exact[0].timestamp, exact[1].timestamp
    if t1 != t2:
        assert [e.timestamp for e in query_captures(cat, url, to=t1)] == [t1]
        assert [e.timestamp for e in query_captures(cat, url, from_=t2)] == [t2]
    assert len(query_captures(cat, url, from_=t1[:4], to=t2[:4])) == 2
    assert query_captures(cat, url, from_=str(int(t1[:4]) + 1)) == []
    assert len(query_captures(cat, archived.url("/mofcom/*"), limit=3)) == 3
    assert [e.timestamp for e in query_captures(cat, url, sort="reverse")] == [t2, t1]
    assert query_captures(cat, url, sort="closest", closest=t1, limit=1)[0].timestamp == t1
    # filters (pywb syntax)
    assert all(e.status == "200" for e in query_captures(cat, archived.url("/mofcom/*"), filters=["=status:200"]))
    assert all(e.type != "revisit" for e in query_captures(cat, archived.url("/mofcom/*"), filters=["!=type:revisit"]))
    # output formats
    cdxj = list(format_entries(exact, "cdxj"))
    surt, ts, blob = cdxj[0].split(" ", 2)
    assert surt == exact[0].urlkey and ts == t1 and json.loads(blob)["url"] == url
    rows = [json.loads(line) for line in format_entries(exact, "json", fl="url,timestamp,status")]
    assert rows == [{"url": url, "timestamp": e.timestamp, "status": e.status} for e in exact]
    assert exact[0].status == "200" and exact[1].status in ("200", "304", "")   # the re-crawl is a revisit


@pytest.mark.parametrize("kwargs, message", [
    ({"url": "file:///etc/passwd"}, "scheme"),
    ({"url": "http://"}, "host"),
    ({"url": "http://x/\x00"}, "control"),
    ({"url": "http://127.0.0.1/", "from_": "2026/01"}, "digits"),
    ({"url": "http://127.0.0.1/", "from_": "2027", "to": "2026"}, "after"),
    ({"url": "http://127.0.0.1/", "to": "20261399"}, "valid"),
    ({"url": "http://127.0.0.1/", "match": "everything"}, "matchType"),
    ({"url": "http://127.0.0.1/", "filters": ["bogus"]}, "filter"),
    ({"url": "http://127.0.0.1/", "sort": "closest"}, "closest"),
])
def test_bad_queries_say_what_is_wrong(archived: Archived, kwargs: dict[str, Any], message: str) -> None:
    url = kwargs.pop("url")
    with pytest.raises(QueryError, match=message):
        query_captures(archived.catalog, url, **kwargs)


def test_timemap_lists_both_crawls_and_timegate_picks_the_nearest(archived: Archived) -> None:
    url = archived.url(LISTING)
    first, second = query_captures(archived.catalog, url)
    text = timemap(archived.catalog, url, api_base="http://api", replay_base="http://replay")
    lines = text.strip().split(",\n")
    assert lines[0] == f'<{url}>; rel="original"'
    assert 'rel="self"; type="application/link-format"' in lines[1] and 'rel="timegate"' in lines[2]
    mementos = lines[3:]
    assert len(mementos) == 2
    assert f"<http://replay/archive/{first.timestamp}/{url}>" in mementos[0] and 'rel="first memento"' in mementos[0]
    assert f"/archive/{second.timestamp}/" in mementos[1] and 'rel="last memento"' in mementos[1]
    assert 'datetime="' in mementos[0] and " GMT" in mementos[0]
    assert timegate(archived.catalog, url, first.moment - timedelta(days=1)).record_id == first.record_id
    assert timegate(archived.catalog, url, second.moment + timedelta(days=1)).record_id == second.record_id
    assert timegate(archived.catalog, url).record_id == second.record_id
    with pytest.raises(NotFound):
        timemap(archived.catalog, archived.url("/never/crawled.html"))


def _pages(wacz: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(wacz) as zf:
        return [json.loads(line) for line in zf.read("pages/pages.jsonl").decode().splitlines()[1:]]


def test_wacz_export_validates_and_lists_listing_and_detail_pages(archived: Archived, tmp_path: Path) -> None:
    out = export_wacz(archived.catalog, archived.storage, tmp_path / "mofcom.wacz", source_id="demo-mofcom")
    wacz_validate(out)
    pages = _pages(out)
    # the same pages archive/pages.py reads straight from the WARC files (every urn:items: listing/detail record)
    expected = list(iter_pages(archived.originals[w.name] for c in archived.crawls for w in c["demo-mofcom"].warcs))
    first_run = archived.crawls[0]["demo-mofcom"].report["pages_ok"]
    assert len(expected) >= first_run["listing"] + first_run["detail"]
    assert sorted(p["url"] for p in pages) == sorted(p["url"] for p in expected)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        warcs = [n for n in names if n.startswith("archive/")]
        assert all(zf.getinfo(n).compress_type == zipfile.ZIP_STORED for n in warcs)
        for name in warcs:
            assert zf.read(name) == archived.originals[name.removeprefix("archive/")].read_bytes()
        package = json.loads(zf.read("datapackage.json"))
    assert package["wacz_version"] == "1.1.1" and {"indexes/index.cdxj", "pages/pages.jsonl"} <= set(names)
    # a time range narrows the export to the first crawl
    first_ts = query_captures(archived.catalog, archived.url(LISTING))[0].timestamp
    only_first = export_wacz(archived.catalog, archived.storage, tmp_path / "first.wacz", source_id="demo-mofcom",
                             to=first_ts)
    wacz_validate(only_first)
    assert 0 < len(_pages(only_first)) < len(pages)


def test_wacz_export_can_be_signed_by_a_signing_server(archived: Archived, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    class Signer(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"auth": self.headers.get("Authorization"), **body})
            answer = json.dumps({**body, "signature": "test-signature", "domain": "example.org"}).encode()
            self.answer(200, answer, "application/json")

    with serving(Signer) as url:
        out = export_wacz(archived.catalog, archived.storage, tmp_path / "signed.wacz", source_id="demo-academy",
                          sign=f"{url}/sign", sign_token="t0ken")
    wacz_validate(out)
    with zipfile.ZipFile(out) as zf:
        digest = json.loads(zf.read("datapackage-digest.json"))
    assert digest["signedData"]["signature"] == "test-signature" and seen[0]["auth"] == "bearer t0ken"
