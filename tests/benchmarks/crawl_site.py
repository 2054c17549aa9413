"""The loopback site ``bench_crawl`` crawls: 2,000 pages served from memory by a process of its own.

100 listing pages x 19 items and 1,900 detail pages, each of about ``--kb`` KB of varied Chinese prose, with an
ETag and Last-Modified on every page and 304 to a matching ``If-None-Match``.

Why a process per crawl, pinned to the crawl's core, and why asyncio with prebuilt responses:
``bench_crawl`` runs listwatch and the bare spider at the same time, each on its own core. A site shared by both
(the old ``ThreadingHTTPServer`` in the parent, ~0.3 ms of CPU a request through ``email``'s header parser and
a thread per connection) floated between the cores and took CPU from whichever crawl it landed next to.
Here each crawl gets its own server on its own core, doing the same work for both sides, and that work is a
dictionary lookup and one ``write`` of bytes built at start-up (tens of µs a request).

Run alone (``python -m tests.benchmarks.crawl_site --kb 6 [--core N]``) it prints ``PORT n`` and serves until
its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTING_PAGES, PER_PAGE = 100, 19
PAGES = LISTING_PAGES + LISTING_PAGES * PER_PAGE
WORDS = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主"
         "发年动同工也能下过子说产种面而方后多定")
MODIFIED = formatdate(1767225600, usegmt=True)


def _filler(seed: int, size: int) -> str:
    """Varied Chinese prose of about ``size`` UTF-8 bytes (compresses like real text)."""
    state, chars = seed * 2654435761 + 1, []
    for _ in range(max(0, size) // 3):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        chars.append(WORDS[state % len(WORDS)])
    text = "".join(chars)
    return "".join(f"<p>{text[i:i + 120]}</p>" for i in range(0, len(text), 120))


def _html(title: str, body: str, size: int, seed: int) -> bytes:
    head = f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title></head><body>'
    page = head + body
    return (page + f'<div class="text">{_filler(seed, size - len(page.encode()) - 40)}</div></body></html>').encode()


def site_pages(size: int) -> dict[str, bytes]:
    pages: dict[str, bytes] = {"/robots.txt": b"User-agent: *\nAllow: /\n"}
    for n in range(LISTING_PAGES):
        items = "".join(f'<li><a href="/detail/{k}.html">研修班 {k}</a>'
                        f'<span class="date">2026-01-{1 + k % 28:02d}</span></li>'
                        for k in range(n * PER_PAGE, (n + 1) * PER_PAGE))
        nxt = f'<a class="next" href="index_{n + 1}.html">下一页</a>' if n + 1 < LISTING_PAGES else ""
        name = "index.html" if n == 0 else f"index_{n}.html"
        pages[f"/list/{name}"] = _html(f"列表 {n}", f'<ul class="list">{items}</ul>'
                                       f'<div class="pager">共{LISTING_PAGES}页 {nxt}</div>', size, n)
    for k in range(LISTING_PAGES * PER_PAGE):
        body = (f"<h1>2026年研修班 {k}</h1><table><tr><td class=\"org\">主办单位 {k % 7}</td>"
                f"<td class=\"deadline\">2026-02-{1 + k % 28:02d}</td></tr></table>")
        pages[f"/detail/{k}.html"] = _html(f"研修班 {k}", body, size, 1000 + k)
    return pages


def _response(status: str, path: str, body: bytes, etag: str) -> bytes:
    ctype = "text/plain" if path.endswith(".txt") else "text/html; charset=utf-8"
    head = [f"HTTP/1.1 {status}", "Server: bench-site", f"Date: {MODIFIED}"]
    if etag:
        head += [f"ETag: {etag}", f"Last-Modified: {MODIFIED}"]
    head += [f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Answers = dict[bytes, tuple[bytes, bytes, bytes]]   # path -> (200 response, 304 response, ETag)


def answers(size: int) -> Answers:
    built: Answers = {}
    for path, body in site_pages(size).items():
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        built[path.encode()] = (_response("200 OK", path, body, etag), _response("304 Not Modified", path, b"", etag),
                                etag.encode())
    return built


NOT_FOUND = (_response("404 Not Found", "/", b"not found", ""),) * 2 + (b"",)


class SiteProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive GETs without bodies (what Scrapy and wget send), answered from ``answers``."""

    def __init__(self, site: Answers) -> None:
        self.site, self.buffer = site, b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            assert self.transport is not None
            self.transport.write(self.answer(head))

    def answer(self, head: bytes) -> bytes:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        full, not_modified, etag = self.site.get(parts[1] if len(parts) > 1 else b"", NOT_FOUND)
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if etag and name.lower() == b"if-none-match" and value.strip() == etag:
                return not_modified
        return full


async def _serve(size: int) -> None:
    loop = asyncio.get_running_loop()
    site = answers(size)
    server = await loop.create_server(lambda: SiteProtocol(site), "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)   # the parent closes our stdin (or dies): stop
    server.close()


class Site:
    """A site process started by the parent: its URL and stop()."""

    def __init__(self, kb: int, core: int | None = None) -> None:
        args = [sys.executable, "-m", "tests.benchmarks.crawl_site", "--kb", str(kb)]
        if core is not None:
            args += ["--core", str(core)]
        self.process = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the bench site did not start (exit {self.process.poll()}): {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.crawl_site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", type=int, default=6, help="page weight in KB (default 6)")
    parser.add_argument("--core", type=int, help="pin the server to this CPU")
    args = parser.parse_args()
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    asyncio.run(_serve(args.kb * 1024))


if __name__ == "__main__":
    main()
