"""A hostile webhook endpoint on loopback: its answer's body is never read (an endless body or a gzip bomb cost
the deliverer gigabytes before), and a redirect, even to an internal address, is not followed."""

from __future__ import annotations

import tracemalloc
import zlib
from http.server import BaseHTTPRequestHandler

import pytest

from scheduler.alerts.channels import DeliveryError, Message, WebhookChannel
from tests.hostile import HostileSite

MESSAGE = Message("New programme", "A programme appeared", {"kind": "new"}, "delivery-1")


def _read_request(handler: BaseHTTPRequestHandler) -> None:
    handler.rfile.read(int(handler.headers["Content-Length"]))


def _endless(handler: BaseHTTPRequestHandler) -> None:
    _read_request(handler)
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    while True:
        handler.wfile.write(b"x" * (1 << 20))


def _bomb_answer(bomb: bytes) -> object:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        _read_request(handler)
        handler.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n"
                            .encode() + bomb)
    return answer


def test_a_webhook_answering_an_endless_body_or_a_bomb_is_delivered_without_reading_it() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join([*(packer.compress(bytes(1 << 20)) for _ in range(128)), packer.flush()])  # 128 MiB inflated
    channel = WebhookChannel(timeout=5)
    with HostileSite() as hook:
        hook.raw("/endless", _endless)
        hook.raw("/bomb", _bomb_answer(bomb))  # type: ignore[arg-type]
        for path in ("/endless", "/bomb"):
            tracemalloc.start()
            try:
                channel.send(hook.url + path, MESSAGE)   # a 200 is a delivery, whatever follows it
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 32 << 20, f"{path}: the delivery held {peak >> 20} MiB"


def test_a_webhook_redirect_is_not_followed_and_says_so() -> None:
    with HostileSite() as hook, HostileSite() as internal:
        hook.redirect("/moved", f"{internal.url}/admin", status=307)
        with pytest.raises(DeliveryError, match=r"HTTP 307 .*redirects are not followed"):
            WebhookChannel(timeout=5).send(hook.url + "/moved", MESSAGE)
        assert internal.hits == {}


def test_a_hostile_title_makes_a_one_line_bounded_headline() -> None:
    """A title holding newlines, a header-like line, control and bidi-override characters and 100 KB of text
    (a JSON source's title field can hold anything) gives a one-line headline channels accept."""
    from datetime import UTC, datetime

    from scheduler.alerts.messages import Alert, headline, render_text

    title = "Grant\r\nBcc: victim@example.org\x00\x1b[31m\u202egnp.exe " + "长" * 100_000
    alert = Alert(1, "new", "hostile", datetime(2026, 3, 1, tzinfo=UTC), title, "", "k", (), None, None)
    line = headline(alert)
    assert "\n" not in line and "\r" not in line and "\x00" not in line and "\u202e" not in line
    assert line.startswith("New programme: Grant Bcc: victim@example.org") and len(line) < 400, line[:400]
    assert render_text(alert).splitlines()[0] == line
