"""The demo site over real HTTP on loopback: encodings, shapes, days, conditional GET and faults."""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.request
import urllib.robotparser
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.message import Message
from email.utils import parsedate_to_datetime
from html import unescape
from urllib.parse import urljoin, urlsplit

import pytest

from crawlers.demo.programmes import LARGE_ATTACHMENT, SHAPES, SOFT_404_TEXT, expected_programmes, plan
from crawlers.demo.site import DemoSite

DAYS = range(5)


@pytest.fixture
def site() -> Iterator[DemoSite]:
    with DemoSite(bench_pages=5) as s:
        yield s


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(site: DemoSite, path: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    """GET ``path`` without following redirects; HTTP errors are returned, not raised."""
    req = urllib.request.Request(site.url + path, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def get_text(site: DemoSite, path: str, encoding: str = "utf-8") -> str:
    status, _, body = fetch(site, path)
    assert status == 200, path
    return body.decode(encoding)


# ---- minimal per-shape crawlers (regex over the served bytes) -------------------------------------------

_ROW = re.compile(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>")
_CN_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")
_NEXT = re.compile(r'<a class="next" href="([^"]+)">下一页</a>')


def _detail_fields(site: DemoSite, path: str, encoding: str) -> dict[str, object]:
    html = get_text(site, path, encoding)
    rows = {unescape(k): unescape(v) for k, v in _ROW.findall(html)}
    y, m, d = (int(x) for x in _CN_DATE.fullmatch(rows["报名截止"]).groups())  # type: ignore[union-attr]
    hrefs = re.findall(r'<a class="attachment" href="([^"]+)">', html)
    return {
        "organizer": rows["主办单位"], "deadline": dt.date(y, m, d).isoformat(), "location": rows["地点"],
        "attachments": [urlsplit(urljoin(site.url + path, h)).path for h in hrefs],
    }


def _follow(site: DemoSite, start: str, item_re: str, encoding: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    path: str | None = start
    while path:
        html = get_text(site, path, encoding)
        for href, title, date in re.findall(item_re, html):
            url = urlsplit(urljoin(site.url + path, href)).path
            pid = re.search(r"(\d+)\.html$", url)[1]  # type: ignore[index]
            out.append({"id": pid, "title": unescape(title), "url": url, "date": date})
        nxt = _NEXT.search(html)
        path = urlsplit(urljoin(site.url + path, nxt[1])).path if nxt else None
    for rec in out:
        rec.update(_detail_fields(site, str(rec["url"]), encoding))
    return out


def crawl_mofcom(site: DemoSite) -> list[dict[str, object]]:
    item = r'<li><a href="([^"]+)" title="[^"]*">([^<]+)</a><span class="date">([\d-]+)</span></li>'
    return _follow(site, "/mofcom/list/index.html", item, "gbk")


def crawl_tenders(site: DemoSite) -> list[dict[str, object]]:
    item = r'<tr><td class="no">[^<]*</td><td><a href="([^"]+)">([^<]+)</a></td><td class="date">([\d-]+)</td>'
    return _follow(site, "/tenders/list.html", item, "utf-8")


def crawl_academy(site: DemoSite) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    page: int | None = 1
    while page:
        shell = get_text(site, f"/academy/index.html?page={page}")
        assert '<div id="list">加载中…</div>' in shell and "/academy/app.js" in shell
        doc = json.loads(get_text(site, f"/academy/api/list?page={page}"))
        assert doc["page"] == page
        item = r'<li class="item" data-id="(\d+)"><a href="([^"]+)">([^<]+)</a><span class="date">([\d-]+)</span>'
        for pid, href, title, date in re.findall(item, doc["html"]):
            out.append({"id": pid, "title": unescape(title), "url": href, "date": date})
        nxt = _NEXT.search(shell)
        page = int(nxt[1].split("=")[1]) if nxt else None
        assert (page is not None) == (doc["page"] < doc["pages"])
    for rec in out:
        rec.update(_detail_fields(site, str(rec["url"]), "utf-8"))
    return out


def crawl_api(site: DemoSite) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    page = 1
    while items := json.loads(get_text(site, f"/api/programs?page={page}&size=10"))["items"]:
        for it in items:
            full = json.loads(get_text(site, it["url"]))
            out.append({
                "id": str(it["id"]), "title": it["title"], "url": it["url"], "date": it["published"][:10],
                "organizer": it["organizer"], "deadline": full["deadline"], "location": full["location"],
                "attachments": [a["url"] for a in full["attachments"]],
            })
        page += 1
    return out


def crawl_feed(site: DemoSite) -> list[dict[str, object]]:
    root = ET.fromstring(fetch(site, "/feed.xml")[2])
    out: list[dict[str, object]] = []
    for item in root.iter("item"):
        link = item.findtext("link") or ""
        assert link.startswith(site.url) and item.findtext("guid") == link
        published = parsedate_to_datetime(item.findtext("pubDate") or "")
        out.append({
            "id": link.rsplit("/", 1)[1], "title": item.findtext("title"), "url": urlsplit(link).path,
            "date": published.date().isoformat(),
        })
    return out


CRAWLERS = {"mofcom": crawl_mofcom, "academy": crawl_academy, "api": crawl_api, "feed": crawl_feed,
            "tenders": crawl_tenders}


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("shape", SHAPES)
def test_expected_programmes_match_served_content(site: DemoSite, shape: str, day: int) -> None:
    site.day = day
    assert CRAWLERS[shape](site) == expected_programmes(shape, day)


@pytest.mark.parametrize("day", DAYS)
def test_atom_has_the_same_entries_as_rss(site: DemoSite, day: int) -> None:
    site.day = day
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(fetch(site, "/atom.xml")[2])
    links = [e.find("a:link", ns).get("href") for e in root.findall("a:entry", ns)]  # type: ignore[union-attr]
    assert [urlsplit(str(u)).path for u in links] == [p["url"] for p in expected_programmes("feed", day)]


# ---- the day plan -----------------------------------------------------------------------------------------

def test_day_plan_lifecycle() -> None:
    for shape in ("mofcom", "academy", "api", "tenders"):
        p = plan(shape)
        ids = [[r["id"] for r in expected_programmes(shape, d)] for d in DAYS]
        by_id = [{r["id"]: r for r in expected_programmes(shape, d)} for d in DAYS]
        assert ids[1][:2] == list(reversed(p.new_day1)) and set(ids[1]) - set(ids[0]) == set(p.new_day1)
        e0, e1 = by_id[0][p.edited], by_id[1][p.edited]
        assert e0["title"] == e1["title"] and e0["deadline"] != e1["deadline"] and e0["location"] != e1["location"]
        a, b = p.swapped
        assert by_id[0][a]["date"] == by_id[0][b]["date"]
        assert (ids[0].index(a) > ids[0].index(b)) and (ids[1].index(a) < ids[1].index(b))
        assert set(ids[1]) - set(ids[2]) == {p.removed, p.soft404, p.delisted}
        assert set(ids[2]) - set(ids[1]) == {p.new_day2} and ids[2][0] == p.new_day2
        assert set(ids[3]) - set(ids[2]) == {p.delisted, p.backdated}
        assert str(by_id[3][p.backdated]["date"]) < str(by_id[3][ids[3][9]]["date"])  # beyond the first page
        assert ids[4] == ids[3] and expected_programmes(shape, 9) == expected_programmes(shape, 3)
    assert expected_programmes("feed", 1)[0]["id"] == plan("api").new_day1[1]


@pytest.mark.parametrize("shape,detail", [
    ("mofcom", "/mofcom/detail/{}.html"), ("academy", "/academy/detail/{}.html"),
    ("tenders", "/tenders/detail/{}.html"), ("api", "/api/programs/{}"),
])
def test_removed_soft404_and_delisted_detail_pages(site: DemoSite, shape: str, detail: str) -> None:
    p = plan(shape)
    enc = "gbk" if shape == "mofcom" else "utf-8"
    site.day = 1
    assert all(fetch(site, detail.format(i))[0] == 200 for i in (p.removed, p.soft404, p.delisted))
    assert fetch(site, detail.format(p.backdated))[0] == 404  # not posted yet
    site.day = 2
    assert fetch(site, detail.format(p.removed))[0] == 404
    status, _, body = fetch(site, detail.format(p.soft404))
    assert status == 200 and SOFT_404_TEXT in body.decode(enc)
    status, _, body = fetch(site, detail.format(p.delisted))
    assert status == 200 and SOFT_404_TEXT not in body.decode(enc)
    site.day = 3
    assert fetch(site, detail.format(p.removed))[0] == 404 and fetch(site, detail.format(p.backdated))[0] == 200


# ---- encodings ------------------------------------------------------------------------------------------

def test_mofcom_list_is_gbk_on_the_wire(site: DemoSite) -> None:
    status, headers, body = fetch(site, "/mofcom/list/index.html")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=GBK"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    html = body.decode("gbk")
    assert 'content="text/html; charset=gb2312"' in html and "共3页" in html
    assert '<a class="next" href="index_1.html">下一页</a>' in html and html.count('<li><a href="../detail/') == 10
    last = fetch(site, "/mofcom/list/index_2.html")[2].decode("gbk")
    assert "下一页" not in last and fetch(site, "/mofcom/list/index_3.html")[0] == 404


def test_mofcom_detail_charset_trap(site: DemoSite) -> None:
    status, headers, body = fetch(site, "/mofcom/detail/1001.html")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    html = body.decode("gbk")
    assert '<meta charset="gbk">' in html and '<h1 class="title">' in html and "<th>主办单位</th>" in html


def test_charset_fault_pages(site: DemoSite) -> None:
    status, headers, body = fetch(site, "/faults/wrong-charset.html")
    assert status == 200 and "charset=utf-8" in headers["Content-Type"] and '<meta charset="gbk">' in body.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    status, headers, body = fetch(site, "/faults/no-charset.html")
    assert status == 200 and headers["Content-Type"] == "text/html" and b"charset" not in body.lower()
    assert "商务部" in body.decode("gbk")


# ---- reverse numbering ----------------------------------------------------------------------------------

def _tender_ids(site: DemoSite, path: str) -> list[str]:
    return re.findall(r'href="detail/(\d+)\.html"', get_text(site, path))


def test_reverse_numbering_shifts_between_days(site: DemoSite) -> None:
    day0 = {p: _tender_ids(site, p) for p in ("/tenders/list.html", "/tenders/list_1.html")}
    assert len(day0["/tenders/list.html"]) == 9 and day0["/tenders/list_1.html"] == [str(4010 - i) for i in range(10)]
    assert "共2页" in get_text(site, "/tenders/list.html") and fetch(site, "/tenders/list_2.html")[0] == 404
    assert "下一页" not in get_text(site, "/tenders/list_1.html")
    site.day = 1  # 21 items: a new numbered page appears, the oldest page keeps its items
    html = get_text(site, "/tenders/list.html")
    assert "共3页" in html and '<a class="next" href="list_2.html">下一页</a>' in html
    assert _tender_ids(site, "/tenders/list.html") == ["4021"]
    assert _tender_ids(site, "/tenders/list_2.html")[0] == "4020"
    assert _tender_ids(site, "/tenders/list_1.html") == day0["/tenders/list_1.html"]
    assert "共3页" in get_text(site, "/tenders/list_1.html")
    site.day = 2  # removals shift older items across the numbered pages
    assert "共2页" in get_text(site, "/tenders/list.html") and fetch(site, "/tenders/list_2.html")[0] == 404
    assert "4011" in _tender_ids(site, "/tenders/list_1.html")
    site.day = 3  # the back-dated item lands on the oldest page
    assert plan("tenders").backdated in _tender_ids(site, "/tenders/list_1.html")


# ---- conditional GET ------------------------------------------------------------------------------------

def test_conditional_get(site: DemoSite) -> None:
    path = "/mofcom/list/index.html"
    status, headers, body = fetch(site, path)
    etag, last_modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and etag.startswith('"') and not etag.startswith('"W/') and last_modified
    status, headers, body = fetch(site, path, {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["ETag"] == etag
    assert fetch(site, path, {"If-Modified-Since": last_modified})[0] == 304
    assert fetch(site, path, {"If-None-Match": '"other"'})[0] == 200
    assert site.hits[path] == 4
    pdf_headers = fetch(site, "/mofcom/files/1002.pdf")[1]
    site.day = 1
    status, headers, _ = fetch(site, path, {"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag and headers["Last-Modified"] != last_modified
    assert fetch(site, path, {"If-Modified-Since": last_modified})[0] == 200
    unchanged = {"If-None-Match": pdf_headers["ETag"]}
    assert fetch(site, "/mofcom/files/1002.pdf", unchanged)[0] == 304
    assert fetch(site, "/mofcom/files/1002.pdf", {"If-Modified-Since": pdf_headers["Last-Modified"]})[0] == 304


def test_keep_alive_and_head(site: DemoSite) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    for path in ("/", "/mofcom/list/index.html", "/api/programs?page=1&size=10", "/academy/logo.png"):
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and resp.version == 11 and len(body) == int(resp.headers["Content-Length"])
    conn.request("HEAD", "/mofcom/files/1003.pdf")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"" and resp.headers["Content-Type"] == "application/pdf"
    conn.close()


# ---- assets, robots, bench --------------------------------------------------------------------------------

def test_attachments_and_subresources(site: DemoSite) -> None:
    status, headers, pdf = fetch(site, "/mofcom/files/1003.pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[startxref:].startswith(b"xref")
    assert len(fetch(site, LARGE_ATTACHMENT)[2]) >= 3 * 1024 * 1024
    assert fetch(site, "/mofcom/files/1003.doc")[1]["Content-Type"] == "application/msword"
    assert fetch(site, "/mofcom/files/1002.doc")[0] == 404  # programme 1002 has only a PDF
    assert fetch(site, "/mofcom/files/1001.pdf")[0] == 404  # programme 1001 has no attachments
    js = get_text(site, "/academy/app.js")
    assert "/academy/style.css" in js and "/academy/logo.png" in js and 'dataset.loaded = "1"' in js
    assert fetch(site, "/academy/logo.png")[2].startswith(b"\x89PNG\r\n\x1a\n")
    assert fetch(site, "/academy/style.css")[1]["Content-Type"].startswith("text/css")


def test_index_robots_and_private(site: DemoSite) -> None:
    index = get_text(site, "/")
    for link in ("/mofcom/list/index.html", "/academy/index.html", "/feed.xml", "/atom.xml", "/tenders/list.html"):
        assert f'href="{link}"' in index
    rp = urllib.robotparser.RobotFileParser()
    rp.parse(get_text(site, "/robots.txt").splitlines())
    assert rp.can_fetch("listwatch", site.url + "/mofcom/list/index.html")
    assert not rp.can_fetch("listwatch", site.url + "/private/secret.html")
    assert fetch(site, "/private/secret.html")[0] == 200


def test_bench_pages(site: DemoSite) -> None:
    for i in range(5):
        html = get_text(site, "/bench/list/index.html" if i == 0 else f"/bench/list/index_{i}.html")
        assert 5000 <= len(html.encode()) <= 8000 and html.count('<li><a href="/bench/item/') == 20
        assert ('class="next"' in html) == (i < 4)
    assert fetch(site, "/bench/list/index_5.html")[0] == 404


# ---- faults -----------------------------------------------------------------------------------------------

def test_bad_gzip(site: DemoSite) -> None:
    status, headers, body = fetch(site, "/faults/bad-gzip.html")
    assert status == 200 and headers["Content-Encoding"] == "gzip" and len(body) == int(headers["Content-Length"])
    with pytest.raises(EOFError):
        gzip.decompress(body)


def test_huge_response_is_streamed(site: DemoSite) -> None:
    with urllib.request.urlopen(site.url + "/faults/huge.bin", timeout=30) as resp:
        assert int(resp.headers["Content-Length"]) == 20 * 1024 * 1024
        total = 0
        while chunk := resp.read(1 << 20):
            total += len(chunk)
    assert total == 20 * 1024 * 1024


def test_redirect_loop(site: DemoSite) -> None:
    status, headers, _ = fetch(site, "/faults/loop")
    assert status == 302 and headers["Location"] == site.url + "/faults/loop2"
    status, headers, _ = fetch(site, "/faults/loop2")
    assert status == 302 and headers["Location"] == site.url + "/faults/loop"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(site.url + "/faults/loop", timeout=10)


def _stalled_socket(site: DemoSite, path: str) -> tuple[socket.socket, bytes]:
    """Send a GET and read until the end of the response headers."""
    sock = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    return sock, data


@pytest.mark.parametrize("how", ["fixed", "set_fault"])
def test_stall_sends_headers_then_blocks_without_blocking_others(site: DemoSite, how: str) -> None:
    path = "/faults/stall.html"
    if how == "set_fault":
        path = "/tenders/list.html"
        site.set_fault(path, "stall")
    sock, data = _stalled_socket(site, path)
    try:
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and rest == b""
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        assert fetch(site, "/robots.txt")[0] == 200  # other requests are served meanwhile
        started = time.monotonic()
        site.stop()
        assert time.monotonic() - started < 3
    finally:
        sock.close()


def test_flaky_answers_503_once(site: DemoSite) -> None:
    assert fetch(site, "/faults/flaky.html")[0] == 503
    status, _, body = fetch(site, "/faults/flaky.html")
    assert status == 200 and '<ul class="list">' in body.decode()
    assert site.hits["/faults/flaky.html"] == 2


def test_jsl_challenge(site: DemoSite) -> None:
    status, headers, body = fetch(site, "/faults/challenge.html")
    html = body.decode()
    assert status == 412 and "document.cookie=('__jsl_clearance_s=" in html
    assert "location.href=location.pathname+location.search" in html and "__jsluid_s" in headers["Set-Cookie"]


def test_cloudflare_challenge(site: DemoSite) -> None:
    status, headers, body = fetch(site, "/faults/cf.html")
    html = body.decode()
    assert status == 503 and headers["cf-mitigated"] == "challenge" and headers["Server"] == "cloudflare"
    assert "<title>Just a moment...</title>" in html and "cf_chl_opt" in html and "/cdn-cgi/challenge-platform/" in html


def test_set_fault_overrides_and_clears(site: DemoSite) -> None:
    path = "/mofcom/list/index.html"
    site.set_fault(path, "503")
    assert [fetch(site, path)[0] for _ in range(2)] == [503, 503]
    site.set_fault(path, "503-once")
    assert [fetch(site, path)[0] for _ in range(2)] == [503, 200]
    site.set_fault(path, "challenge")
    status, _, body = fetch(site, path)
    assert status == 412 and b"__jsl_clearance_s" in body
    site.set_fault(path, "404")
    assert fetch(site, path)[0] == 404
    assert fetch(site, "/mofcom/list/index.html?x=1")[0] == 404  # faults match the path, whatever the query
    site.set_fault(path, None)
    status, headers, _ = fetch(site, path)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=GBK"
    assert fetch(site, "/mofcom/list/index_1.html")[0] == 200
    with pytest.raises(ValueError):
        site.set_fault(path, "teapot")
