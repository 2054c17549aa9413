"""Logging for the daemon: plain text or JSON lines (``log_json``), with ``run_id`` and ``source`` fields.

Pass them per call (``log.info("…", extra={"run_id": rid, "source": sid})``) or for a block of code with
:func:`context` (a contextvar, so each scheduler thread carries its own)::

    with context(run_id=rid, source=sid):
        log.info("crawl started")      # {"time": …, "level": "INFO", "run_id": rid, "source": sid, …}
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

FIELDS = ("run_id", "source", "kind")
# Loggers whose INFO lines describe the machinery rather than the work (Scrapy's settings and middleware
# dumps, Alembic's plugin and migration lines, the Playwright handler's start-up): shown only at DEBUG.
CHATTER = ("scrapy.middleware", "scrapy.crawler", "scrapy.utils.log", "scrapy.addons", "scrapy.extensions.telnet",
           "scrapy.statscollectors", "scrapy_playwright", "alembic", "apscheduler", "asyncio", "tldextract",
           "filelock", "urllib3", "botocore", "boto3", "httpx", "uvicorn.access")
_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("listwatch_log_context")


@contextlib.contextmanager
def context(**values: str) -> Iterator[None]:
    token = _context.set({**_context.get({}), **values})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the context's fields onto each record (explicit ``extra`` values win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get({}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class ChatterFilter(logging.Filter):
    """Drops library chatter below WARNING unless the handler runs at DEBUG."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if self.level <= logging.DEBUG or record.levelno >= logging.WARNING:
            return True
        return not any(record.name == name or record.name.startswith(name + ".") for name in CHATTER)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry |= {key: getattr(record, key) for key in FIELDS if getattr(record, key, None) is not None}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = " ".join(f"{key}={getattr(record, key)}" for key in FIELDS if getattr(record, key, None))
        return f"{text} [{tags}]" if tags else text


def configure(level: str = "INFO", as_json: bool = False) -> None:
    """Send the root logger to stderr in the chosen format (replacing earlier handlers)."""
    from scheduler.alerts.redact import install_log_redaction

    install_log_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(ChatterFilter(logging.getLevelName(level.upper())))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
