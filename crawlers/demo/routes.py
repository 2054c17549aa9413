"""URL routing of the demo site: ``resolve(day, path, query)`` → an in-memory :class:`Response`.

Dynamic faults (stall, flaky, huge, per-path overrides) are handled by the server, not here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs

from crawlers.demo import assets, pages
from crawlers.demo import programmes as data
from crawlers.demo.pages import Response

_DETAIL = re.compile(r"^/(mofcom|academy|tenders)/detail/(\d+)\.html$")
_FILE = re.compile(r"^/(mofcom|academy|api|tenders)/files/(\d+)\.(pdf|doc)$")
_MOFCOM_LIST = re.compile(r"^/mofcom/list/index(?:_(\d+))?\.html$")
_TENDERS_LIST = re.compile(r"^/tenders/list(?:_(\d+))?\.html$")
_BENCH = re.compile(r"^/bench/list/index(?:_(\d+))?\.html$")
_API_ITEM = re.compile(r"^/api/programs/(\d+)$")

_DETAILS = {"mofcom": pages.mofcom_detail, "academy": pages.academy_detail, "tenders": pages.tenders_detail}


def _int_arg(query: str, name: str, default: int) -> int | None:
    values = parse_qs(query).get(name)
    if not values:
        return default
    try:
        return int(values[0])
    except ValueError:
        return None


def _bad_request() -> Response:
    return Response(400, pages.JSON_UTF8, b'{"code": 400, "msg": "bad request"}', cacheable=False)


def _attachment(day: int, section: str, pid: str, ext: str) -> Response:
    status, prog = data.detail(section, day, pid)
    if status != 200 or prog is None or ext not in prog.attachments:
        return pages.not_found()
    label = f"{section}-{pid}"
    if ext == "pdf":
        body = assets.pdf(label, large=f"/{section}/files/{pid}.pdf" == data.LARGE_ATTACHMENT)
        return Response(200, "application/pdf", body)
    return Response(200, "application/msword", assets.doc(label))


def resolve(day: int, path: str, query: str, base_url: str, bench_pages: int, bench_page_kb: int = 0) -> Response:
    """Render the response for ``path`` (no query string) on ``day``; ``base_url`` has no trailing slash."""
    day = data.effective_day(day)
    static: dict[str, tuple[str, bytes]] = {
        "/academy/app.js": ("application/javascript; charset=utf-8", assets.APP_JS.encode()),
        "/academy/style.css": ("text/css; charset=utf-8", assets.STYLE_CSS.encode()),
        "/academy/logo.png": ("image/png", assets.png()),
        "/favicon.ico": ("image/png", assets.png()),
    }
    if path in static:
        ctype, body = static[path]
        return Response(200, ctype, body)
    if m := _DETAIL.match(path):
        return _DETAILS[m[1]](day, m[2])
    if m := _FILE.match(path):
        return _attachment(day, m[1], m[2], m[3])
    if m := _MOFCOM_LIST.match(path):
        index = int(m[1]) if m[1] else 0
        return pages.mofcom_list(day, index) if index != 0 or not m[1] else pages.not_found()
    if m := _TENDERS_LIST.match(path):
        number = int(m[1]) if m[1] else 0
        return pages.tenders_list(day, number) if number != 0 or not m[1] else pages.not_found()
    if m := _BENCH.match(path):
        index = int(m[1]) if m[1] else 0
        if (m[1] and index == 0) or index >= bench_pages:
            return pages.not_found()
        return assets.bench_page(index, bench_pages, bench_page_kb)
    if m := _API_ITEM.match(path):
        return pages.api_item(day, m[1])
    simple: dict[str, Callable[[], Response]] = {
        "/": pages.index_page, "/index.html": pages.index_page, "/robots.txt": pages.robots,
        "/private/secret.html": pages.private_page, "/faults/wrong-charset.html": assets.wrong_charset,
        "/faults/no-charset.html": assets.no_charset, "/faults/bad-gzip.html": assets.bad_gzip,
        "/faults/challenge.html": assets.jsl_challenge, "/faults/cf.html": assets.cloudflare_challenge,
    }
    if path in simple:
        return simple[path]()
    if path in ("/mofcom/", "/mofcom/list/", "/academy/", "/tenders/", "/faults/loop", "/faults/loop2"):
        target = {
            "/mofcom/": "/mofcom/list/index.html", "/mofcom/list/": "/mofcom/list/index.html",
            "/academy/": "/academy/index.html", "/tenders/": "/tenders/list.html",
            "/faults/loop": "/faults/loop2", "/faults/loop2": "/faults/loop",
        }[path]
        return Response(302, pages.HTML_UTF8, b"", (("Location", base_url + target),), cacheable=False)
    if path == "/academy/index.html":
        page = _int_arg(query, "page", 1)
        return pages.academy_shell(day, page) if page is not None and page >= 1 else pages.not_found()
    if path == "/academy/api/list":
        page = _int_arg(query, "page", 1)
        return pages.academy_api(day, page) if page is not None and page >= 1 else _bad_request()
    if path == "/api/programs":
        page, size = _int_arg(query, "page", 1), _int_arg(query, "size", 10)
        if page is None or size is None or page < 1 or not 1 <= size <= 100:
            return _bad_request()
        return pages.api_list(day, page, size)
    if path == "/feed.xml":
        return pages.feed_rss(day, base_url)
    if path == "/atom.xml":
        return pages.feed_atom(day, base_url)
    return pages.not_found()
