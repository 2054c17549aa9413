"""Signed, expiring links: the recipient of an alert or a feed opens its evidence without the shared token.

A link is signed over its path and query string with itsdangerous (``URLSafeTimedSerializer``) and carries
the signature as ``?sig=…``; it is good for ``api.link_ttl`` seconds, for that path only, and only for reading
(``scheduler/web/auth.py`` checks it). The key is ``api.link_secret``; else, on a PostgreSQL catalog, a random
key generated once into the catalog (table ``shared_secrets``), so that every machine of a several-machine install
signs and checks with the same key; else (SQLite: one machine) a random key generated once into
``DATA_DIR/secrets/link-secret`` (mode 600). Either way links stay valid across restarts. No web framework imports
here: alerts and feeds sign their links with this module alone.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from scheduler.settings import Settings, catalog_backend

SIG_PARAM = "sig"
SALT = "listwatch-link"
_catalog_keys: dict[str, str] = {}   # catalog URL → its link key (it never changes)
_cache_lock = threading.Lock()


def secret_path(settings: Settings) -> Path:
    return settings.data_dir / "secrets" / "link-secret"


def link_secret(settings: Settings) -> str:
    """``api.link_secret``; else, on a PostgreSQL catalog, the key kept in the catalog (one for every machine);
    else the key in the data directory (created on first use, never overwritten)."""
    if settings.api.link_secret is not None:
        return settings.api.link_secret.get_secret_value()
    if catalog_backend(settings) == "postgresql":
        return _catalog_key(settings)
    return _local_key(settings) or _new_local_key(settings)


def _catalog_key(settings: Settings) -> str:
    """The catalog's link key, read once per process. A PostgreSQL catalog is reached from every machine (the
    scheduler signs alert links, a ``serve`` elsewhere checks them), so a key per DATA_DIR would break links.
    The first process to ask seeds it with its DATA_DIR key when it has one: links it sent before still verify."""
    with _cache_lock:
        key = _catalog_keys.get(settings.catalog)
        if key is None:
            from archive.catalog import open_catalog
            from archive.catalog.secrets import shared_secret

            catalog = open_catalog(settings.catalog)
            try:
                key = shared_secret(catalog, "link", _local_key(settings) or secrets.token_urlsafe(32))
            finally:
                catalog.dispose()
            _catalog_keys[settings.catalog] = key
        return key


def _local_key(settings: Settings) -> str | None:
    path = secret_path(settings)
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def _new_local_key(settings: Settings) -> str:
    path = secret_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:      # another process made it first: use theirs
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(fresh + "\n")
    return fresh


class _IssuedAt(TimestampSigner):
    """A signer whose timestamp can be given: an alert's links are issued at the event's time, so a retried
    delivery carries byte-identical links."""

    def __init__(self, *args: Any, issued: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.issued = issued

    def get_timestamp(self) -> int:
        return self.issued if self.issued is not None else super().get_timestamp()


class LinkSigner:
    """Signs a path so that ``Access`` lets it be read (only that path, only for ``ttl`` seconds)."""

    def __init__(self, secret: str, ttl: int) -> None:
        self._secret = secret
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.ttl = ttl

    def sign_path(self, path: str, issued: datetime | None = None) -> str:
        """``/records/urn:uuid:…`` → ``/records/urn:uuid:…?sig=…``; the query string is signed too.

        ``issued``: when the link's lifetime starts (default now)."""
        parts = urlsplit(path)
        serializer = self._serializer if issued is None else URLSafeTimedSerializer(
            self._secret, salt=SALT, signer=_IssuedAt, signer_kwargs={"issued": int(issued.timestamp())})
        token = serializer.dumps(_canonical(unquote(parts.path), parts.query))
        joiner = "&" if parts.query else "?"
        return f"{path}{joiner}{SIG_PARAM}={token}"

    def sign_url(self, base: str, url: str, issued: datetime | None = None) -> str:
        """Sign a full URL under ``base`` (the public URL); the server sees the part after ``base``."""
        base = base.rstrip("/")
        if not url.startswith(base + "/"):
            raise ValueError(f"{url!r} is not under {base!r}")
        return base + self.sign_path(url[len(base):], issued)

    def valid(self, path: str, query: str, token: str) -> bool:
        """Is ``token`` a live signature of this path and query string (its ``sig`` parameter left out)?"""
        try:
            signed = self._serializer.loads(token, max_age=self.ttl)
        except BadSignature:       # also SignatureExpired
            return False
        rest = "&".join(p for p in query.split("&") if p and not p.startswith(f"{SIG_PARAM}="))
        return bool(signed == _canonical(path, rest))


def _canonical(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def signer_for(settings: Settings) -> LinkSigner:
    return LinkSigner(link_secret(settings), settings.api.link_ttl)


def signed_link(settings: Settings, url: str, issued: datetime | None = None) -> str:
    """``url`` (under ``api.public_url``) with a signature that lets its recipient read it for ``api.link_ttl``
    seconds from ``issued`` (default now)."""
    return signer_for(settings).sign_url(settings.api.public_url, url, issued)


def replay_index_key(settings: Settings) -> str:
    """The path key pywb uses to read the CDX index from ``listwatch serve`` (pywb cannot send a token)."""
    import hashlib
    import hmac

    return hmac.new(link_secret(settings).encode(), b"listwatch-replay-index", hashlib.sha256).hexdigest()[:40]
