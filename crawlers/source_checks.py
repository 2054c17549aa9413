"""Checks of the values a source file may set, shared by the schema's validators (:mod:`crawlers.sources`) and
the scheduler: the bounds on numbers, the id pattern, schedule intervals and cron expressions, page templates,
encodings, header names, regular expressions and selectors. Each check raises ``ValueError`` in the operator's
words; pydantic turns it into an error naming the file and the field.
"""

from __future__ import annotations

import re
import string

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


# Upper bounds on numbers a source may set: far above any real listing, low enough that a typo
# (``delay: 1e300``, ``max_pages: 1e9``) is refused at load time instead of hanging or exhausting a crawl.
MAX_PAGES = 100_000
MAX_DELAY = 60.0             # seconds between requests; a crawl must still honour its time limit and SIGTERM
MAX_TIMEOUT = 600.0          # seconds for one request or page render
MAX_SECONDS = 7 * 86400      # one crawl's time budget
MAX_BYTES = 4 * 2**30        # one response or attachment
MAX_INTERVAL = 366 * 86400   # the longest schedule interval


_EVERY = re.compile(r"^\d+\s*[smhd]$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval_seconds(spec: str) -> int | None:
    """Seconds of an interval like ``15m`` (None when ``spec`` is not an interval, e.g. a cron expression)."""
    spec = spec.strip()
    if not _EVERY.match(spec):
        return None
    return int(spec[:-1]) * _UNITS[spec[-1]]


def check_schedule(spec: str) -> str:
    """Refuse what the scheduler could not run, with the parser APScheduler itself uses for cron."""
    seconds = interval_seconds(spec)
    if seconds is not None:
        if not 1 <= seconds <= MAX_INTERVAL:
            raise ValueError(f"interval {spec!r} must be between 1s and {MAX_INTERVAL // 86400}d")
        return spec
    if len(spec.split()) != 5:
        raise ValueError(f"{spec!r} is neither an interval like '15m'/'6h' nor a five-field cron expression "
                         "(minute hour day month weekday, e.g. '0 3 * * *')")
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(spec)
    except ValueError as exc:
        raise ValueError(f"cron expression {spec!r} is not valid: {exc} "
                         "(fields: minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6 or mon-sun)") from None
    return spec


def check_template(template: str) -> str:
    """A page template may use ``{n}`` (the page number) and nothing else; ``{{``/``}}`` are literal braces."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        template.format(n=1)
    except (ValueError, IndexError, KeyError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise ValueError(f"template {template!r} is not a valid page template ({problem}); "
                         "use {n} for the page number and {{ }} for literal braces") from None
    if names - {"n"}:
        raise ValueError(f"template {template!r} uses {', '.join(sorted('{' + n + '}' for n in names - {'n'}))};"
                         " only {n} (the page number) is filled in")
    return template


def check_encoding(name: str) -> str:
    """A text codec Python knows (``hex``, ``base64``, ``zlib``… are bytes-to-bytes codecs and are refused)."""
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding {name!r} (e.g. utf-8, gb18030, big5, shift_jis)") from None
    try:
        "".encode(name)
        b"".decode(name)
    except LookupError:
        raise ValueError(f"encoding {name!r} is not a text encoding (e.g. utf-8, gb18030, big5)") from None
    return name


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names HTTP allows, values without a line break or NUL (no header injection)."""
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
        if any(c in str(value) for c in "\r\n\0"):
            raise ValueError(f"the value of header {name!r} contains a line break or NUL")
    return headers


def check_regex(pattern: str, where: str) -> None:
    """``pattern`` compiles as a Python regular expression (the error names ``where`` it was given)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}: regex {pattern!r} does not compile: {exc}") from None


def check_selectors(css: str | None = None, xpath: str | None = None, jsonpath: str | None = None) -> None:
    """Compile selectors now (``crawlers.rulecheck``) rather than fail on the first page at crawl time."""
    from crawlers import rulecheck

    problem = (css is not None and rulecheck.check_css(css)) or (xpath is not None and rulecheck.check_xpath(xpath)) \
        or (jsonpath is not None and rulecheck.check_jsonpath(jsonpath))
    if problem:
        raise ValueError(problem)
