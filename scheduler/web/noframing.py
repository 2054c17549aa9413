"""Every answer of ``listwatch serve`` refuses to be shown in another site's frame (clickjacking).

Replay (pywb) runs archived sites' own scripts on its origin, by default the same host name on another port.
That origin is *same-site* with the web UI, so a browser sends the ``SameSite=Lax`` session cookie into a frame
such a page opens: a hostile capture could frame the signed-in UI under a decoy and trick a click on "Remove"
or "Re-crawl now" (the form carries its own CSRF token). ``frame-ancestors 'none'`` (CSP) and
``X-Frame-Options: DENY`` (older browsers) forbid that; the UI never frames its own pages.

A plain ASGI middleware (not ``BaseHTTPMiddleware``) so streamed answers (WACZ export) pass untouched. A
second ``Content-Security-Policy`` header adds to, never loosens, a route's own (``sandbox`` on payloads).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_HEADERS = (("X-Frame-Options", "DENY"), ("Content-Security-Policy", "frame-ancestors 'none'"))


class NoFraming:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in FRAME_HEADERS:
                    headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
