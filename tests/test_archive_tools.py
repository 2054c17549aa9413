"""The archive-validation helpers work, on a real WARC of a real exchange.

A tiny site is served on 127.0.0.1 (a static page, and a page whose list is built by JavaScript from a
`fetch()` of a JSON URL), fetched with http.client, and written with warcio's WARCWriter as WARC/1.1
(warcinfo, then request + response per URL, gzip, SHA-256 digests). The origin server is shut down before
anything is replayed, so a replay that leaked to the live site would fail.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from archive_tools import (
    ToolMissingError,
    cdxj_index,
    chromium_page,
    http_get,
    parse_cdxj,
    pywb_replay,
    replay_url,
    run_tool,
    tool_path,
    wacz_create_and_validate,
    wacz_validate,
    warcio_check,
)
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date, datetime_to_timestamp
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from tests.http_support import QuietHandler, serving

STATIC_TEXT = "Seminar on Archive Integrity for Foreign Officials"
CHINESE_TEXT = "发展中国家官员研修班"
JS_ITEMS = ["Workshop on Rendered Listings 2026", "数字经济合作研修班"]

SITE: dict[str, tuple[str, bytes]] = {
    "/static.html": (
        "text/html; charset=utf-8",
        f"""<!doctype html><html><head><meta charset="utf-8"><title>Static</title></head>
<body><h1 id="title">{STATIC_TEXT}</h1><p id="zh">{CHINESE_TEXT}</p>
<a href="/js.html">rendered list</a></body></html>""".encode(),
    ),
    "/js.html": (
        "text/html; charset=utf-8",
        b"""<!doctype html><html><head><meta charset="utf-8"><title>Programmes</title></head>
<body><h1>Programmes</h1><ul id="list"><li>loading</li></ul>
<script src="/static/app.js"></script></body></html>""",
    ),
    "/static/app.js": (
        "application/javascript; charset=utf-8",
        b"""fetch('/api/programmes.json')
  .then(function (r) { return r.json(); })
  .then(function (data) {
    var ul = document.getElementById('list');
    ul.innerHTML = '';
    data.items.forEach(function (it) {
      var li = document.createElement('li');
      li.className = 'programme';
      li.textContent = it.title;
      ul.appendChild(li);
    });
    document.body.setAttribute('data-rendered', String(data.items.length));
  });
""",
    ),
    "/api/programmes.json": (
        "application/json",
        json.dumps({"items": [{"title": t} for t in JS_ITEMS]}, ensure_ascii=False).encode(),
    ),
}
# Seconds after the first capture at which each URL is captured: replay must find the nearest capture of
# each subresource, not one at the page's exact timestamp.
CAPTURE_OFFSET = {"/static.html": 0, "/js.html": 0, "/static/app.js": 2, "/api/programmes.json": 5}


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        if self.path not in SITE:
            self.send_error(404)
            return
        ctype, body = SITE[self.path]
        self.answer(200, body, ctype)


class SHA256WARCWriter(WARCWriter):
    """WARCWriter with SHA-256 block and payload digests (warcio defaults to SHA-1)."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")


@dataclass(frozen=True)
class Captured:
    warc: Path
    origin: str  # http://127.0.0.1:PORT, no longer served
    timestamps: dict[str, str]  # path -> 14-digit timestamp

    def url(self, path: str) -> str:
        return self.origin + path


# Subresources are requested with a Referer, as a browser does; `wacz create -d` keeps as pages only
# HTML captures that some request names as its Referer (unless a warcinfo json-metadata lists the pages).
REFERER = {"/static/app.js": "/js.html", "/api/programmes.json": "/js.html"}


def _fetch(host: str, port: int, path: str) -> tuple[StatusAndHeaders, StatusAndHeaders, bytes]:
    """GET with exactly the headers recorded; returns (request headers, response headers, body)."""
    req_headers = [("Host", f"{host}:{port}"), ("User-Agent", "listwatch-tests/1.0"), ("Accept", "*/*"),
                   ("Connection", "close")]
    if path in REFERER:
        req_headers.append(("Referer", f"http://{host}:{port}{REFERER[path]}"))
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in req_headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        protocol = "HTTP/1.1" if resp.version == 11 else "HTTP/1.0"
        resp_sh = StatusAndHeaders(f"{resp.status} {resp.reason}", resp.getheaders(), protocol=protocol)
    finally:
        conn.close()
    req_sh = StatusAndHeaders(f"GET {path} HTTP/1.1", req_headers, is_http_request=True)
    return req_sh, resp_sh, body


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Captured:
    warc = tmp_path_factory.mktemp("warc") / "capture.warc.gz"
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    timestamps: dict[str, str] = {}
    with serving(_Handler) as origin, open(warc, "wb") as fh:
        host, port = "127.0.0.1", int(urlsplit(origin).port or 0)
        writer = SHA256WARCWriter(fh, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(
            warc.name, {"software": "listwatch tests (warcio)", "format": "WARC File Format 1.1"}))
        for path in SITE:
            req_sh, resp_sh, body = _fetch(host, port, path)
            when = start + timedelta(seconds=CAPTURE_OFFSET[path])
            timestamps[path] = datetime_to_timestamp(when)
            url = f"http://{host}:{port}{path}"
            resp = writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=resp_sh,
                warc_headers_dict={"WARC-Date": datetime_to_iso_date(when, use_micros=True),
                                   "WARC-IP-Address": host})
            req = writer.create_warc_record(url, "request", http_headers=req_sh)
            writer.write_request_response_pair(req, resp)
    return Captured(warc=warc, origin=f"http://{host}:{port}", timestamps=timestamps)


@pytest.fixture(scope="module")
def pywb_base(captured: Captured) -> Iterator[str]:
    with pywb_replay([captured.warc]) as base:
        yield base


def _only_from(base: str, requested: list[str]) -> list[str]:
    """Requests that did not go to the pywb server at `base` (leaks to the live web)."""
    netloc = urlsplit(base).netloc
    return [u for u in requested if urlsplit(u).netloc != netloc and not u.startswith(("data:", "about:"))]


# --------------------------------------------------------------------------------------------------------
# JavaScript-rendered content through pywb in chromium: the riskiest part, first.


@pytest.mark.browser
@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_pywb_replays_js_rendered_list_in_chromium(captured: Captured, framed: bool) -> None:
    with pywb_replay([captured.warc], framed=framed) as base, chromium_page() as page:
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(replay_url(base, captured.timestamps["/js.html"], captured.url("/js.html")))
        if framed:
            # pywb's top frame holds the archived page in an iframe at .../{ts}mp_/{url}.
            page.wait_for_selector("iframe")
            frame = next((f for f in page.frames if "mp_/" in f.url), None)
            assert frame is not None, [f.url for f in page.frames]
        else:
            frame = page.main_frame
        frame.wait_for_selector("body[data-rendered='2']", timeout=15_000)
        assert [li.text_content() for li in frame.query_selector_all("li.programme")] == JS_ITEMS
        # The JSON was fetched through the replay (its capture is 5 s after the page's), never live.
        assert any(u.endswith("/" + captured.url("/api/programmes.json")) for u in requested), requested
        assert _only_from(base, requested) == []


# --------------------------------------------------------------------------------------------------------
# warcio check


def test_warcio_check_passes(captured: Captured) -> None:
    warcio_check([captured.warc])
    with open(captured.warc, "rb") as fh:
        records = [(r.rec_type, r.rec_headers.get_header("WARC-Block-Digest") or "")
                   for r in ArchiveIterator(fh)]
    assert records[0][0] == "warcinfo"
    assert [t for t, _ in records[1:]] == ["response", "request"] * len(SITE)
    assert all(d.startswith("sha256:") for _, d in records)
    with gzip.open(captured.warc, "rb") as fh:
        assert fh.read(9) == b"WARC/1.1\r"


def _alter_record(captured: Captured, dst: Path, path: str, old: bytes, new: bytes) -> None:
    """Copy the WARC with `old` replaced by `new` (same length) inside the record of `path`: the gzip member
    is rewritten validly and the record's digests are kept, like silent corruption or an edit after the fact.
    """
    assert len(old) == len(new)
    entry = next(e for e in map(parse_cdxj, cdxj_index([captured.warc])) if e.url == captured.url(path))
    offset, length = int(entry.fields["offset"]), int(entry.fields["length"])
    data = captured.warc.read_bytes()
    member = gzip.decompress(data[offset:offset + length])
    assert member.count(old) == 1
    dst.write_bytes(data[:offset] + gzip.compress(member.replace(old, new)) + data[offset + length:])


def test_warcio_check_fails_on_altered_content(captured: Captured, tmp_path: Path) -> None:
    altered = tmp_path / "altered.warc.gz"
    _alter_record(captured, altered, "/static.html", STATIC_TEXT.encode(), STATIC_TEXT.upper().encode())
    with pytest.raises(AssertionError, match="digest fail"):
        warcio_check([altered])


def test_warcio_check_fails_on_flipped_byte(captured: Captured, tmp_path: Path) -> None:
    flipped = tmp_path / "flipped.warc.gz"
    data = bytearray(captured.warc.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="warcio check failed"):
        warcio_check([flipped])


def test_warcio_check_fails_on_truncated_file(captured: Captured, tmp_path: Path) -> None:
    # warcio check itself exits 0 on this file; the helper's gzip completeness check catches it.
    truncated = tmp_path / "truncated.warc.gz"
    data = captured.warc.read_bytes()
    truncated.write_bytes(data[: len(data) - 200])
    assert run_tool("warcio", "check", truncated, check=False).returncode == 0
    with pytest.raises(AssertionError, match="not a complete gzip stream"):
        warcio_check([truncated])


# --------------------------------------------------------------------------------------------------------
# cdxj-indexer


def test_cdxj_index_lists_each_capture(captured: Captured) -> None:
    lines = cdxj_index([captured.warc])
    assert lines == sorted(lines)
    entries = {parse_cdxj(line).url: parse_cdxj(line) for line in lines}
    assert set(entries) == {captured.url(p) for p in SITE}  # responses only: requests are not indexed
    page = entries[captured.url("/static.html")]
    assert page.timestamp == captured.timestamps["/static.html"]
    assert page.surt.startswith("1,0,0,127:") and page.surt.endswith(")/static.html")
    assert page.fields["status"] == "200"
    assert page.fields["mime"] == "text/html"
    assert page.fields["filename"] == captured.warc.name
    assert page.fields["digest"].startswith("sha256:")


# --------------------------------------------------------------------------------------------------------
# WACZ


def test_wacz_create_and_validate(captured: Captured, tmp_path: Path) -> None:
    wacz = wacz_create_and_validate([captured.warc], tmp_path / "out.wacz")
    with zipfile.ZipFile(wacz) as zf:
        names = set(zf.namelist())
        pages = [json.loads(line) for line in zf.read("pages/pages.jsonl").decode().splitlines()[1:]]
    assert {"datapackage.json", "datapackage-digest.json", f"archive/{captured.warc.name}"} <= names
    assert any(n.startswith("indexes/") for n in names)
    # Detected pages: HTML captures named as a Referer by another request (here only /js.html).
    assert [p["url"] for p in pages] == [captured.url("/js.html")]


def test_wacz_with_given_pages(captured: Captured, tmp_path: Path) -> None:
    pages = tmp_path / "pages.jsonl"
    rows = [{"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}]
    rows += [{"url": captured.url(p), "ts": datetime.strptime(captured.timestamps[p], "%Y%m%d%H%M%S")
              .strftime("%Y-%m-%dT%H:%M:%SZ"), "title": p} for p in ("/static.html", "/js.html")]
    pages.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    wacz = wacz_create_and_validate([captured.warc], tmp_path / "pages.wacz", pages_jsonl=pages)
    with zipfile.ZipFile(wacz) as zf:
        listed = [json.loads(line) for line in zf.read("pages/pages.jsonl").decode().splitlines()[1:]]
    assert [p["url"] for p in listed] == [captured.url("/static.html"), captured.url("/js.html")]


def test_wacz_validate_fails_on_tampered_package(captured: Captured, tmp_path: Path) -> None:
    good = wacz_create_and_validate([captured.warc], tmp_path / "good.wacz")
    bad = tmp_path / "bad.wacz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.startswith("archive/"):
                data = gzip.compress(gzip.decompress(data).replace(STATIC_TEXT.encode(), b"X" * len(STATIC_TEXT)))
            zout.writestr(info, data)
    with pytest.raises(AssertionError, match="wacz validate failed"):
        wacz_validate(bad)


# --------------------------------------------------------------------------------------------------------
# pywb


def test_pywb_raw_replay_returns_served_bytes(captured: Captured, pywb_base: str) -> None:
    for path, (ctype, body) in SITE.items():
        status, headers, got = http_get(replay_url(pywb_base, captured.timestamps[path], captured.url(path),
                                                   "id_"))
        assert status == 200, path
        assert got == body, path
        assert headers["Content-Type"] == ctype
    # The nearest capture is served whatever timestamp is asked for.
    status, headers, got = http_get(replay_url(pywb_base, "2001", captured.url("/api/programmes.json"), "id_"))
    assert (status, got) == (200, SITE["/api/programmes.json"][1])
    assert "Memento-Datetime" in headers


def test_pywb_unknown_url_is_404(captured: Captured, pywb_base: str) -> None:
    status, _, _ = http_get(replay_url(pywb_base, captured.timestamps["/static.html"], captured.url("/nope"),
                                       "id_"))
    assert status == 404


@pytest.mark.browser
def test_pywb_rewritten_static_page_in_chromium(captured: Captured, pywb_base: str) -> None:
    with chromium_page() as page:
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(replay_url(pywb_base, captured.timestamps["/static.html"], captured.url("/static.html")))
        assert page.text_content("#title") == STATIC_TEXT
        assert page.text_content("#zh") == CHINESE_TEXT
        # Following a link stays in the archive (pywb's wombat reports the original URL from `a.href`, so
        # the navigation itself is what shows the rewrite).
        page.click("a")
        page.wait_for_selector("body[data-rendered='2']", timeout=15_000)
        assert page.url.startswith(pywb_base + "/") and page.url.endswith(captured.url("/js.html"))
        assert _only_from(pywb_base, requested) == []


# --------------------------------------------------------------------------------------------------------
# Tool lookup


def test_missing_tool_fails_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTWATCH_TOOLS_BIN", str(tmp_path))
    with pytest.raises(ToolMissingError, match=r"`wayback` not found in .*infra/setup\.sh"):
        tool_path("wayback")
    with pytest.raises(ToolMissingError, match="warcio"):
        warcio_check([Path(__file__)])


def test_tools_bin_override_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tool_path("warcio")
    shutil.copy(real, tmp_path / "warcio")
    monkeypatch.setenv("LISTWATCH_TOOLS_BIN", str(tmp_path))
    assert tool_path("warcio") == tmp_path / "warcio"


def test_chromium_override_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTWATCH_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(ToolMissingError, match="LISTWATCH_CHROMIUM"), chromium_page():
        pass

