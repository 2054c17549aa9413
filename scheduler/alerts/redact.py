"""Keeping subscription targets secret: a redacted form for display, and scrubbing of text and logs.

A target URL may carry tokens anywhere: in the user/password, the path (``tgram://BOTTOKEN/CHAT``,
``discord://ID/TOKEN``), the query or even the host position. So the only thing ever shown is the
scheme, plus the host for schemes where the host is a real server name (``json://127.0.0.1/…``).
Apprise and the HTTP clients log full URLs at DEBUG/TRACE level; :class:`scrubbed_logs` rewrites
those records while a send is in flight.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlsplit

REDACTED = "***"

# Schemes whose host part names a server rather than carrying a token.
_HOST_SCHEMES = frozenset({"http", "https", "json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos",
                           "gotify", "gotifys", "mmost", "mmosts", "apprise", "apprises", "ntfys"})
_HOSTNAME = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-f:]+\]|([a-z0-9-]+\.)+[a-z0-9-]+)$", re.IGNORECASE)
# Loggers known to print request URLs (apprise unpacks URLs at TRACE; urllib3/httpx log request lines).
_LEAKY_LOGGERS = ("apprise", "urllib3.connectionpool", "httpx", "httpcore.http11", "httpcore.connection")


def _scheme_and_host(target: str) -> tuple[str, str]:
    scheme, _, rest = target.partition("://")
    if not rest:
        return "", ""
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    host = netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc
    return scheme.lower(), host


def redact_target(target: str) -> str:
    """``json://user:tok@host:8080/a/b?k=v`` → ``json://host/…``; ``tgram://TOKEN/123`` → ``tgram://…``."""
    scheme, host = _scheme_and_host(target)
    if not scheme or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        return "(unparseable URL)"
    if scheme in _HOST_SCHEMES and _HOSTNAME.match(host):
        return f"{scheme}://{host.lower()}/…"
    return f"{scheme}://…"


def secret_fragments(target: str) -> list[str]:
    """Every part of ``target`` that may be secret (longest first), raw and percent-decoded."""
    scheme, host = _scheme_and_host(target)
    parts = {target}
    try:
        split = urlsplit(target)
    except ValueError:
        return [target]
    rest = target.partition("://")[2]
    parts.update([rest, split.netloc, split.path, split.query, split.fragment])
    userinfo = split.netloc.rpartition("@")[0]
    parts.update([userinfo, *userinfo.split(":")])
    parts.update(split.path.split("/"))
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        parts.update([value, f"{key}={value}"])
    if not (scheme in _HOST_SCHEMES and _HOSTNAME.match(host)):
        parts.add(host)
    decoded = {unquote(p) for p in parts}
    # Very short fragments ("a", "v1") are not secrets, and replacing them would garble every log line.
    return sorted({p for p in parts | decoded if len(p) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret fragment replaced by ``***``."""
    for fragment in secrets:
        if fragment in text:
            text = text.replace(fragment, REDACTED)
    return text


class _ScrubFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: drop its arguments rather than risk a leak
            message = str(record.msg)
        record.msg, record.args = scrub(message, self.secrets), None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        return True


@contextmanager
def scrubbed_logs(target: str) -> Iterator[list[str]]:
    """While inside, records of the URL-logging libraries have ``target``'s secrets scrubbed.

    Yields the secret fragments, so callers can scrub their own error messages too.
    """
    secrets = secret_fragments(target)
    scrubber = _ScrubFilter(secrets)
    loggers = [logging.getLogger(name) for name in _LEAKY_LOGGERS]
    for logger in loggers:
        logger.addFilter(scrubber)
    try:
        yield secrets
    finally:
        for logger in loggers:
            logger.removeFilter(scrubber)
