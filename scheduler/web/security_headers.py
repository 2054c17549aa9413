"""The security headers of every answer of ``listwatch serve``, set here and nowhere else.

- No framing (clickjacking): replay (pywb) runs archived sites' own scripts on its origin, by default the same
  host name on another port. That origin is *same-site* with the web UI, so a browser sends the ``SameSite=Lax``
  session cookie into a frame such a page opens: a hostile capture could frame the signed-in UI under a decoy
  and trick a click on "Remove" or "Re-crawl now" (the form carries its own CSRF token).
  ``frame-ancestors 'none'`` (CSP) and ``X-Frame-Options: DENY`` (older browsers) forbid that; the UI never
  frames its own pages.
- Archived bytes (a record's payload) are a hostile site's, served on this app's origin: a route serving them
  marks its answer :data:`UNTRUSTED` and gets ``sandbox`` too (no script runs with the reader's session) and
  ``nosniff`` (no sniffing into another type). One ``Content-Security-Policy`` header carries every directive.

A plain ASGI middleware (not ``BaseHTTPMiddleware``) so streamed answers (WACZ export) pass untouched.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A route's mark (a response header, removed here) that its body is archived content, not the app's own.
UNTRUSTED = {"X-Listwatch-Untrusted": "1"}
_MARK = "x-listwatch-untrusted"
_FRAME_POLICY = "frame-ancestors 'none'"
_UNTRUSTED_POLICY = "sandbox"


def security_headers(untrusted: bool) -> list[tuple[str, str]]:
    """The headers an answer gets, whatever route gave it."""
    policy = f"{_UNTRUSTED_POLICY}; {_FRAME_POLICY}" if untrusted else _FRAME_POLICY
    headers = [("X-Frame-Options", "DENY"), ("Content-Security-Policy", policy)]
    return [*headers, ("X-Content-Type-Options", "nosniff")] if untrusted else headers


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                untrusted = _MARK in headers
                del headers[_MARK]
                for name, value in security_headers(untrusted):
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
