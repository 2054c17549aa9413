"""Keeping secrets out of what is printed and logged: subscription targets, URLs and database DSNs.

Two strengths. A *subscription target* is shown as its scheme (and host) only, see below. Any other URL or DSN
(the catalog URL, a start URL, a store endpoint) goes through :func:`redact_url`: it keeps what an operator
needs to recognise it but replaces a userinfo password and token-like query values with ``***``
(``postgresql://lw:s3cret@db/lw`` → ``postgresql://lw:***@db/lw``). :func:`redact_text` does the same to every
URL and ``password=…`` pair inside free text, and :func:`install_log_redaction` applies it to every log record
of the process (the CLI and the daemon install it), so a URL a library logs is redacted too.

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


# Query parameters whose value is a credential (matched on the whole name, case-insensitively).
_SECRET_PARAM = re.compile(
    r"(.*[_-])?(token|secret|passw(or)?d|pwd|pass|api[_-]?key|apikey|key|auth|authorization|signature|sig|"
    r"session|sessionid|sid|credential|x-amz-credential|x-amz-signature|x-amz-security-token|code|ticket)",
    re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_KEYWORD_SECRET = re.compile(r"\b(password|passwd|pwd|secret|token)(\s*[=:]\s*)('[^']*'|\"[^\"]*\"|[^\s,;&]+)",
                             re.IGNORECASE)


def _redact_query(query: str) -> str:
    def one(pair: str) -> str:
        name, eq, value = pair.partition("=")
        return f"{name}={REDACTED}" if eq and value and _SECRET_PARAM.fullmatch(unquote(name)) else pair

    return "&".join(one(pair) for pair in query.split("&"))


def redact_url(url: str) -> str:
    """``url`` (or a SQLAlchemy/libpq DSN) with its userinfo password and token-like query values as ``***``.

    ``https://u:p@h/x?token=abc&page=2`` → ``https://u:***@h/x?token=***&page=2``. Text that is not a URL is
    returned with ``password=…``-style pairs redacted (a libpq keyword DSN: ``host=db password=x``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", url)
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{hostport}" if colon and password else netloc
    path, qmark, query = tail.partition("?")
    query, hash_, fragment = query.partition("#")
    if qmark:
        tail = f"{path}?{_redact_query(query)}{hash_}{fragment}"
    return f"{scheme}://{netloc}{tail}"


def redact_text(text: str) -> str:
    """Every URL and ``password=…`` pair in ``text`` redacted (see :func:`redact_url`)."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)
    return _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def install_log_redaction() -> None:
    """Redact URLs and passwords in every log record this process makes (idempotent).

    A record factory rather than a handler filter: Scrapy and the CLI replace handlers, the factory stays.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "listwatch_redacts", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep it as it is; logging reports it
            return record
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return record

    factory.listwatch_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


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
