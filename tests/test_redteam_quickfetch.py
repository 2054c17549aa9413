"""``listwatch sources new`` and ``sources test`` fetch a page before any crawl: they must be bounded as a crawl
is (fetch policy on redirects, a total time limit, a size limit before inflating) against a hostile server on
loopback. Before, ``sources new`` followed a redirect to another service on the host and proposed its page,
held an endless or bomb body in memory, and waited forever on a server dripping one byte at a time."""

from __future__ import annotations

import time
import zlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from typer.testing import CliRunner

from scheduler.cli import app
from tests.hostile import HostileSite, listing_html, source_yaml

ROWS = [(f"/p/{n}.html", f"Programme {n}") for n in range(6)]


def _endless(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
    while True:
        handler.wfile.write(b"<li><a href='/x'>x</a></li>" * 4000)


def _short(handler: BaseHTTPRequestHandler) -> None:
    body = listing_html(ROWS).encode()
    handler.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n"
                        .encode() + body[:len(body) // 2])


def _drip(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(600):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.2)


def _bomb() -> bytes:
    """64 MiB of zeros gzipped to ~64 KiB: past the 30 MB default limit once inflated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([*(packer.compress(bytes(1 << 20)) for _ in range(64)), packer.flush()])


def test_sources_new_refuses_internal_redirects_and_unbounded_answers(tmp_path: Path) -> None:
    env = {"LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"), "LISTWATCH_SOURCES_DIR": str(tmp_path / "s"),
           "COLUMNS": "200"}
    with HostileSite() as site, HostileSite() as internal:
        internal.page("/admin", listing_html([(f"/secret/{n}", f"INTERNAL {n}") for n in range(6)]))
        site.redirect("/to-internal", f"{internal.url}/admin")
        site.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/")
        site.raw("/endless", _endless)
        site.raw("/short", _short)
        site.page("/bomb", _bomb(), headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")])
        site.page("/ok", listing_html(ROWS))
        expected = {"/to-internal": "internal address 127.0.0.1", "/to-metadata": "'169.254.169.254' is not one",
                    "/endless": "larger than limits.max_response_bytes", "/short": "closed before the whole answer",
                    "/bomb": "inflates past limits.max_response_bytes"}
        for path, words in expected.items():
            done = CliRunner().invoke(app, ["sources", "new", site.url + path, "--render", "never",
                                            "-o", str(tmp_path / "new.yaml")], env=env)
            assert done.exit_code == 2 and words in " ".join(done.output.split()), (path, done.output)
            assert not (tmp_path / "new.yaml").exists()
        assert internal.hits == {}, "nothing reached the internal service"
        ok = CliRunner().invoke(app, ["sources", "new", site.url + "/ok", "--render", "never",
                                      "-o", str(tmp_path / "new.yaml")], env=env)
        assert ok.exit_code == 0 and "6 item(s) extracted" in " ".join(ok.output.split()), ok.output


def test_sources_test_gives_up_on_a_dripping_server_at_the_sources_timeout(tmp_path: Path) -> None:
    with HostileSite() as site:
        site.raw("/drip", _drip)
        path = tmp_path / "drip.yaml"
        path.write_text(source_yaml(site.url, "drip", "/drip").replace("timeout: 5", "timeout: 1"), encoding="utf-8")
        done = CliRunner().invoke(app, ["sources", "test", str(path)],
                                  env={"LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"), "COLUMNS": "200"})
    # Unbounded, the drip would end after 120 s with the connection closing short of its Content-Length.
    assert "did not arrive within limits.timeout (1 s)" in " ".join(done.output.split()), done.output
