"""A server without validators answers an unchanged page with 200 and the same bytes: the capture writes an
identical-payload-digest revisit and hands the spider the extraction archived with the capture it repeats, as
for a 304, instead of having the page parsed again. Only that extraction, under the same rules, at the same URL.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from warcio.archiveiterator import ArchiveIterator

from archive.dedup import DedupIndex, Earlier
from archive.records import ITEMS_URN, RecordBuilder, record_id, sha256_digest
from archive.writer import RollingWarcWriter
from crawlers.capture import WarcCapture, WarcCaptureMiddleware
from tests.conftest import crawl_sources
from tests.http_support import QuietHandler, serving

URL = "http://127.0.0.1:1/detail/1.html"
BODY = "<html><body><h1>关于举办研修班的通知</h1></body></html>".encode()
DATE = "2026-01-05T08:00:00.000001Z"
EXTRACTION = {"role": "detail", "key": "/detail/1.html", "fields": {"heading": "关于举办研修班的通知"},
              "attachments": [], "decoding": {}, "problems": [], "rules": "r1"}


def archived(spool: Path, extraction_date: str = DATE) -> DedupIndex:
    """A spool WARC holding the page's capture and, dated ``extraction_date``, its extraction; and the view of
    the catalog a crawl would load for it."""
    builder = RecordBuilder()
    response = builder.response(URL, 200, [("Content-Type", "text/html; charset=utf-8")], BODY, date=DATE)
    metadata = builder.metadata(ITEMS_URN + URL, EXTRACTION, refers_to=record_id(response), date=extraction_date)
    (spool / "src").mkdir(parents=True)
    members = [gzip.compress(builder.to_bytes(record)) for record in (response, metadata)]   # one per record
    (spool / "src" / "src-1.warc.gz").write_bytes(b"".join(members))
    dedup = DedupIndex(None, spool_dir=spool)
    view = dedup.prepare("src")
    digest = sha256_digest(BODY)
    view.digests[digest] = Earlier(URL, DATE, record_id(response), digest)
    view.extractions[ITEMS_URN + URL] = Earlier(ITEMS_URN + URL, extraction_date, record_id(metadata), "",
                                                warc_name="src-1.warc.gz", offset=len(members[0]),
                                                length=len(members[1]))
    return dedup


def fetched(dedup: DedupIndex, tmp_path: Path, body: bytes = BODY, **meta: Any) -> dict[str, Any]:
    """The capture middleware's view of a 200 for ``URL``; returns the request's meta after it."""
    capture = WarcCapture(RollingWarcWriter(tmp_path / "out", prefix="t", warcinfo={}), dedup, "src")
    request = Request(URL, meta={"role": "detail", "listwatch_rules": "r1", **meta})
    response = HtmlResponse(URL, status=200, body=body, headers={"Content-Type": "text/html; charset=utf-8"},
                            request=request)
    assert WarcCaptureMiddleware(capture).process_response(request, response) is response
    capture.close()
    return request.meta


def test_the_same_bytes_again_take_the_extraction_archived_with_them(tmp_path: Path) -> None:
    dedup = archived(tmp_path / "spool")
    meta = fetched(dedup, tmp_path)
    assert meta["listwatch_original"].record_id and meta["listwatch_original"].warc_date == DATE   # a revisit
    assert meta["listwatch_reused"] == (None, EXTRACTION)
    # The spool WARC read back stays open only while the crawl runs: closing the capture closes it.
    warc = tmp_path / "spool" / "src" / "src-1.warc.gz"
    assert os.path.realpath(warc) not in {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}


@pytest.mark.parametrize(("case", "extraction_date", "meta", "body"), [
    # the newest extraction of the URL is of other bytes (the page changed, then changed back)
    ("changed and back", "2026-01-06T08:00:00Z", {}, BODY),
    ("other rules", DATE, {"listwatch_rules": "r2"}, BODY),
    ("redirected here", DATE, {"redirect_urls": ["http://127.0.0.1:1/old/1.html"]}, BODY),
    ("other bytes", DATE, {}, BODY + b"<p>new</p>"),
])
def test_the_page_is_read_again_otherwise(tmp_path: Path, case: str, extraction_date: str, meta: dict[str, Any],
                                          body: bytes) -> None:
    assert "listwatch_reused" not in fetched(archived(tmp_path / "spool", extraction_date), tmp_path, body, **meta)


# -- end to end: a site without ETag or Last-Modified ------------------------------------------------------------

PAGES = {
    "/list.html": "<ul>" + "".join(f'<li><a href="/d/{n}.html">研修班 {n}</a><span>12-{n:02d}</span></li>'
                                   for n in range(1, 6)) + "</ul>",
    **{f"/d/{n}.html": f"<h1>第{n}期研修班</h1><p class=org>主办单位 {n}</p>" for n in range(1, 6)},
}
SOURCE = """id: plain
name: plain
start_urls: ["{url}/list.html"]
items: {{selector: "li", key: url, fields: {{title: "a::text", url: {{css: "a::attr(href)", type: url}},
        date: {{css: "span::text", type: date, missing_year: capture}}}}}}
detail: {{link: url, fields: {{heading: "h1::text", organizer: "p.org::text"}}}}
politeness: {{delay: 0}}
"""


@pytest.fixture
def plain_site() -> Iterator[str]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            page = PAGES.get(self.path)
            body = f"<html><body>{page}</body></html>".encode() if page is not None else b""
            kind = "text/html; charset=utf-8"
            if self.path == "/robots.txt":
                page, body, kind = "", b"User-agent: *\nAllow: /\n", "text/plain"
            self.answer(200 if page is not None else 404, body, kind)   # no ETag, no Last-Modified

    with serving(Handler) as url:
        yield url


def test_unchanged_crawls_of_a_site_without_validators_keep_their_items_and_write_only_revisits(
        tmp_path: Path, plain_site: str) -> None:
    source = tmp_path / "plain.yaml"
    source.write_text(SOURCE.format(url=plain_site), encoding="utf-8")
    first = crawl_sources([source], data_dir=tmp_path)["plain"]
    assert first.report["pages_ok"] == {"listing": 1, "detail": 5, "attachment": 0, "recheck": 0}
    assert len(first.items) == 5 and all(i["fields"]["heading"].endswith("期研修班") for i in first.items)
    for _ in range(2):
        again = crawl_sources([source], data_dir=tmp_path)["plain"]
        assert again.report["complete"]
        assert {i["key"]: i["fields"] for i in again.items} == {i["key"]: i["fields"] for i in first.items}
        kinds: Counter[str] = Counter()
        for path in again.warcs:
            with path.open("rb") as fh:
                for record in ArchiveIterator(fh):
                    kinds[record.rec_type] += 1
                    if record.rec_type == "revisit":
                        assert record.rec_headers.get_header("WARC-Profile").endswith("identical-payload-digest")
        assert kinds == {"warcinfo": 1, "request": 7, "revisit": 7}, kinds   # robots.txt, list, 5 details
