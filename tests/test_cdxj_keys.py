"""The CDXJ listwatch writes beside each WARC is the one pywb's own indexer (cdxj-indexer) makes of that WARC:
same keys, same fields, same order, including the ``urn:<kind>:<url>`` records of pages whose URLs have upper
case, query strings or fragments (pywb canonicalizes the whole URN: lower case, query sorted, fragment dropped;
a CDXJ keyed otherwise is searched in the wrong place)."""

from __future__ import annotations

from pathlib import Path

from archive.catalog import open_catalog
from archive.indexer import register_warc
from archive.records import RecordBuilder
from archive.writer import RollingWarcWriter
from tests.archive_tools import cdxj_index

URLS = ("http://127.0.0.1:8000/List/Default.aspx?page=2&Size=10",
        "http://127.0.0.1:8000/notice/A1.html#top",
        "https://www.example.gov.cn/zcfg/index.html")


def write_warc(directory: Path) -> Path:
    builder = RecordBuilder()
    writer = RollingWarcWriter(directory, prefix="keys-20260105T010203Z-a1b2c3", builder=builder,
                               warcinfo={"isPartOf": "keys"})
    for i, url in enumerate(URLS):
        response = builder.response(url, 200, [("Content-Type", "text/html; charset=utf-8")],
                                    f"<html><body>page {i}</body></html>".encode(), ip_address="127.0.0.1")
        rid = str(response.rec_headers.get_header("WARC-Record-ID"))
        writer.write(
            response,
            builder.request(url, "GET", [("Host", "127.0.0.1:8000")], date=builder.now(), concurrent_to=rid),
            builder.resource(f"urn:screenshot:{url}", "image/png", b"\x89PNG fake", refers_to=rid),
            builder.resource(f"urn:dom:{url}", "text/html; charset=utf-8", b"<html></html>", refers_to=rid),
            builder.metadata(f"urn:items:{url}", {"items": [{"title": f"Programme {i}"}]}, refers_to=rid),
        )
    writer.close()
    [warc] = directory.glob("*.warc.gz")
    return warc


def test_our_cdxj_is_what_pywbs_indexer_makes(tmp_path: Path) -> None:
    warc = write_warc(tmp_path / "spool")
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    try:
        register_warc(catalog, warc, source_id="keys")
    finally:
        catalog.dispose()
    ours = warc.with_name(warc.name.removesuffix(".warc.gz") + ".cdxj").read_text(encoding="utf-8").splitlines()
    theirs = cdxj_index([warc])
    assert len(ours) == 4 * len(URLS)
    assert ours == theirs
    assert any(line.startswith("urn:screenshot:http://127.0.0.1:8000/list/default.aspx?page=2&size=10 ")
               for line in ours)
