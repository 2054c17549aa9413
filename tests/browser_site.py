"""A loopback site for the browser-evidence tests; it records the User-Agent of every request it receives.

- ``/zh/index.html``: a Chinese listing whose programme titles are also drawn in a grid of fixed cells
  (:data:`GLYPH_CELLS`), plus one cell holding a code point no font draws (the "tofu" reference) and one
  repeating an earlier character (a control: the same glyph must give the same pixels).
- ``/blocked/index.html``: HTTP 412 with a captcha challenge body (the answer of a WAF, as government sites give).
- ``/ua/index.html``: a page that makes the browser fetch in every way it can — stylesheet, image, web font,
  script, ``fetch``, XHR, iframe, dedicated worker, service worker (its install-time and pass-through fetches),
  prefetch, favicon, beacon — and shows ``#loaded`` once they are all done.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TITLES = ("数字经济研修班", "绿色发展合作", "职业教育培训", "农业技术交流")
CELL = 64                        # px: each glyph cell is CELL × CELL, drawn at 48 px
GRID_TOP = 200
TOFU = "\U0010fffd"              # a private-use code point of plane 16: no installed font has a glyph for it
GLYPHS = "研修班绿色发展职业教育农技术交流"
GLYPH_CELLS: tuple[tuple[str, int, int], ...] = tuple(
    (ch, 16 + (i % 8) * CELL, GRID_TOP + (i // 8) * CELL) for i, ch in enumerate(GLYPHS + TOFU + GLYPHS[0]))

_CELLS_HTML = "".join(
    f'<span class="g" style="left:{x}px;top:{y}px">{ch}</span>' for ch, x, y in GLYPH_CELLS)
ZH_INDEX = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>项目公告</title>
<style>body{{margin:0;background:#fff;color:#000}}
.g{{position:absolute;width:{CELL}px;height:{CELL}px;font:48px/{CELL}px sans-serif;text-align:center;overflow:hidden}}
</style></head><body><h1>项目公告列表</h1><ul id="list">
{"".join(f'<li class="item"><a href="/zh/{i}.html">{t}</a></li>' for i, t in enumerate(TITLES))}
</ul>{_CELLS_HTML}</body></html>"""

CHALLENGE = """<!doctype html><html><head><meta charset="utf-8"><title>安全验证</title></head>
<body><div class="captcha"><p>请输入验证码后继续访问</p><img src="/blocked/captcha.png" alt=""></div>
<script src="/blocked/check.js"></script></body></html>"""

UA_INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>ua</title>
<link rel="icon" href="/ua/icon.png"><link rel="stylesheet" href="/ua/style.css">
<link rel="prefetch" href="/ua/prefetch.txt"><script src="/ua/app.js"></script></head>
<body><ul id="list"><li class="item"><a href="/ua/detail.html">一</a></li></ul>
<img src="/ua/pixel.png" alt=""><iframe src="/ua/frame.html"></iframe><p class="font">字</p></body></html>"""

UA_APP = """
async function everything() {
  await fetch('/ua/fetch.json');
  await new Promise(done => { const x = new XMLHttpRequest(); x.onloadend = done; x.open('GET', '/ua/xhr.json');
                              x.send(); });
  await new Promise(done => { const w = new Worker('/ua/worker.js'); w.onmessage = done; });
  navigator.sendBeacon('/ua/beacon', 'b');
  const registration = await navigator.serviceWorker.register('/ua/sw.js');
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise(done => navigator.serviceWorker.addEventListener('controllerchange', done));
  }
  await fetch('/ua/through-sw.json');          // answered by the service worker's own fetch
  await document.fonts.ready;
  const flag = document.createElement('div'); flag.id = 'loaded'; document.body.append(flag);
}
window.addEventListener('load', () => everything().catch(e => {
  const flag = document.createElement('div'); flag.id = 'loaded'; flag.dataset.error = String(e);
  document.body.append(flag);
}));
"""
UA_SW = """
self.addEventListener('install', e => e.waitUntil(fetch('/ua/sw-install.json').then(() => self.skipWaiting())));
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', e => { if (e.request.url.includes('through-sw')) e.respondWith(fetch(e.request)); });
"""
UA_WORKER = "fetch('/ua/from-worker.json').then(() => postMessage('done'));"
UA_CSS = """@font-face{font-family:probe;src:url(/ua/font.woff2) format('woff2')}
body{background:url(/ua/background.png)} .font{font-family:probe,sans-serif}"""
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")

PAGES: dict[str, tuple[int, str, bytes]] = {
    "/robots.txt": (200, "text/plain", b"User-agent: *\nAllow: /\n"),
    "/zh/index.html": (200, "text/html; charset=utf-8", ZH_INDEX.encode()),
    "/blocked/index.html": (412, "text/html; charset=utf-8", CHALLENGE.encode()),
    "/blocked/check.js": (200, "application/javascript", b"void 0;"),
    "/blocked/captcha.png": (200, "image/png", PNG),
    "/ua/index.html": (200, "text/html; charset=utf-8", UA_INDEX.encode()),
    "/ua/app.js": (200, "application/javascript", UA_APP.encode()),
    "/ua/sw.js": (200, "application/javascript", UA_SW.encode()),
    "/ua/worker.js": (200, "application/javascript", UA_WORKER.encode()),
    "/ua/style.css": (200, "text/css", UA_CSS.encode()),
    "/ua/frame.html": (200, "text/html", b"<!doctype html><p>frame</p><img src='/ua/in-frame.png'>"),
}


@dataclass
class Seen:
    path: str
    user_agent: str


@dataclass
class BrowserSite:
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def start(self) -> BrowserSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                path = self.path.split("?")[0]
                with site.lock:
                    site.seen.append(Seen(path, self.headers.get("User-Agent", "")))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, mime, body = PAGES.get(path, (200, _guess(path), b"{}" if path.endswith(".json") else b""))
                if path.endswith(".png") and path not in PAGES:
                    body = PNG
                self.send_response(status)
                self.send_header("Content-Type", mime)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _guess(path: str) -> str:
    for ext, mime in ((".json", "application/json"), (".png", "image/png"), (".woff2", "font/woff2"),
                      (".txt", "text/plain"), (".html", "text/html; charset=utf-8")):
        if path.endswith(ext):
            return mime
    return "application/octet-stream"
