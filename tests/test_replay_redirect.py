"""pywb replays the redirects a crawl archives (a 301 record, then its target's 200) and a GBK page with its
own charset, from records built by the crawl's RecordBuilder and written by its writer."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

from archive.records import RecordBuilder
from archive.writer import RollingWarcWriter
from tests.archive_tools import http_get, pywb_replay, replay_url

SITE = "http://127.0.0.1:8000"
GBK = "<html><head><meta charset=\"gbk\"><title>通知公告</title></head><body>2026年研修班</body></html>"


def write_warc(directory: Path) -> tuple[Path, str]:
    builder = RecordBuilder()
    writer = RollingWarcWriter(directory, prefix="redirect-20260105T010203Z-a1b2c3", builder=builder,
                               warcinfo={"isPartOf": "redirect"})
    date = builder.now()
    pages = [(f"{SITE}/old.html", 301, [("Location", f"{SITE}/new.html"), ("Content-Length", "0")], b""),
             (f"{SITE}/new.html", 200, [("Content-Type", "text/html; charset=gbk")], GBK.encode("gbk"))]
    for url, status, headers, body in pages:
        response = builder.response(url, status, headers, body, ip_address="127.0.0.1", date=date)
        rid = str(response.rec_headers.get_header("WARC-Record-ID"))
        writer.write(response, builder.request(url, "GET", [("Host", "127.0.0.1:8000")], date=date,
                                               concurrent_to=rid))
    writer.close()
    [warc] = directory.glob("*.warc.gz")
    return warc, "".join(c for c in date if c.isdigit())[:14]


def status_and_location(url: str) -> tuple[int, str]:
    """One GET without following redirects."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        answer = connection.getresponse()
        return answer.status, answer.getheader("Location") or ""
    finally:
        connection.close()


def test_pywb_replays_an_archived_redirect_and_a_gbk_page(tmp_path: Path) -> None:
    warc, ts = write_warc(tmp_path / "spool")
    with pywb_replay([warc]) as base:
        status, location = status_and_location(replay_url(base, ts, f"{SITE}/old.html"))
        assert status == 301 and location.endswith(f"/{SITE}/new.html"), (status, location)
        assert urlsplit(location).path.startswith(urlsplit(base).path)   # into the archive, not the live site
        status, headers, body = http_get(replay_url(base, ts, f"{SITE}/old.html"))   # followed
        assert status == 200 and "2026年研修班" in body.decode("gbk")
        status, headers, raw = http_get(replay_url(base, ts, f"{SITE}/new.html", "id_"))
        assert status == 200 and raw == GBK.encode("gbk") and "gbk" in headers["Content-Type"].lower()
