"""Who may read and who may change: bearer token, web sign-in, signed evidence links, open reading.

- **Read** (pages, JSON, records, feeds): the bearer token (``api.token``), a web session (signed cookie given
  by ``/login`` for the same token), a signed link for exactly this path (``?sig=…``, itsdangerous, expires after
  ``api.link_ttl``), or anyone when ``api.require_token`` is false (a trusted network).
- **Change** (subscriptions): the bearer token, or a web session *and* its CSRF token (form field ``csrf`` or
  header ``X-CSRF-Token``). Never a signed link, never open reading. With no token configured, nothing changes.

Links in alerts and feeds are signed (``scheduler/web/signing.py``) so that their recipient opens them without
the shared token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

from scheduler.settings import Settings
from scheduler.web.signing import SIG_PARAM, LinkSigner, link_secret

SESSION_COOKIE = "listwatch_session"


class Access:
    """The access decisions for one app (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.required = settings.api.require_token
        self.token = settings.api.token.get_secret_value().encode() if settings.api.token else b""
        secret = link_secret(settings)
        self.links = LinkSigner(secret, settings.api.link_ttl)
        self._sessions = URLSafeTimedSerializer(secret, salt="listwatch-session")
        self._csrf_key = hashlib.sha256(b"csrf:" + secret.encode()).digest()
        self.session_ttl = settings.api.session_ttl

    # -- who is asking ------------------------------------------------------------------------------
    def bearer(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return bool(self.token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                                        self.token)

    def session(self, request: Request) -> str | None:
        """The session id of a valid sign-in cookie, else None."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie or not self.token:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=self.session_ttl)
        except BadSignature:
            return None
        return str(data) if isinstance(data, str) else None

    def signed_link(self, request: Request) -> bool:
        token = request.query_params.get(SIG_PARAM)
        return bool(token) and self.links.valid(request.url.path, request.url.query, token or "")

    # -- decisions ----------------------------------------------------------------------------------
    def via_link_only(self, request: Request) -> bool:
        """Reading only thanks to a signed link: pages then sign the evidence links they show."""
        return (self.required and not self.bearer(request) and self.session(request) is None
                and self.signed_link(request))

    def can_read(self, request: Request) -> bool:
        return (not self.required or self.bearer(request) or self.session(request) is not None
                or self.signed_link(request))

    def write_refusal(self, request: Request, form_csrf: str | None = None) -> str | None:
        """Why a state-changing request is refused, or None when it may go ahead."""
        if not self.token:
            return "changes are off: no api.token is configured"
        if self.bearer(request):
            return None
        sid = self.session(request)
        if sid is None:
            return "sign in (or send Authorization: Bearer <api.token>) to change anything"
        given = form_csrf or request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(given.encode(), self.csrf_token(sid).encode()):
            return "missing or wrong CSRF token: reload the page and try again"
        return None

    # -- sessions -----------------------------------------------------------------------------------
    def check_token(self, given: str) -> bool:
        return bool(self.token) and hmac.compare_digest(given.strip().encode(), self.token)

    def new_session(self) -> str:
        """A cookie value for a fresh sign-in."""
        return self._sessions.dumps(secrets.token_urlsafe(16))

    def csrf_token(self, sid: str) -> str:
        return hmac.new(self._csrf_key, sid.encode(), hashlib.sha256).hexdigest()
