"""Helpers for the alert tests: a recording HTTP endpoint on loopback and events written straight
into a fresh catalog (with programmes, a WARC file and captures rows for their record ids)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from archive.catalog import Catalog
from archive.catalog.models import Capture, Event, Program, WarcFile

T0 = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Endpoint:
    """Records every POST it acknowledges (2xx). ``fail`` lists how the next requests fail:
    ``"500"`` answers HTTP 500, ``"close"`` drops the connection without an answer.
    With ``hold_at = n`` the n-th acknowledged-to-be request (0-based) is held unanswered until
    ``release`` is set: ``held`` is set when it arrives, and it is never acknowledged (with ``hold_path``,
    only requests to that path are counted and held)."""

    fail: list[str] = field(default_factory=list)
    hold_at: int | None = None
    hold_path: str | None = None     # count and hold only requests to this path
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    failed: list[Received] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    held_request: Received | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def start(self) -> Endpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with endpoint.lock:
                    failure = endpoint.fail.pop(0) if endpoint.fail else None
                    path = got.path.split("?")[0]
                    counted = endpoint.received if endpoint.hold_path is None else endpoint.at(endpoint.hold_path)
                    hold = failure is None and endpoint.hold_at == len(counted) and not endpoint.held.is_set() \
                        and endpoint.hold_path in (None, path)
                    if failure:
                        endpoint.failed.append(got)
                if hold:
                    endpoint.held_request = got
                    endpoint.held.set()
                    endpoint.release.wait(30)
                    failure = "close"
                if failure == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                code = 500 if failure == "500" else 200
                if endpoint.delay:
                    time.sleep(endpoint.delay)   # a slow receiver, so that concurrent senders overlap
                if code == 200:
                    with endpoint.lock:
                        endpoint.received.append(got)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):   # the sender gave up or was killed: kept
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0] == path]


def warc_file(catalog: Catalog) -> int:
    with catalog.session() as s:
        row = s.query(WarcFile).first()
        if row is None:
            row = WarcFile(name="t.warc.gz", source_id="demo-mofcom", key="demo-mofcom/t.warc.gz", size=1,
                           sha256="0" * 64, created_at=T0)
            s.add(row)
            s.flush()
        return row.id


def add_capture(catalog: Catalog, record_id: str, url: str, timestamp: str) -> None:
    wf = warc_file(catalog)
    with catalog.session() as s:
        s.add(Capture(warc_file_id=wf, record_id=record_id, record_type="response", url=url, surt=url,
                      timestamp=timestamp, status=200, mime="text/html", offset=0, length=1,
                      source_id="demo-mofcom"))


def add_event(catalog: Catalog, *, kind: str = "new", source: str = "demo-mofcom", title: str = "培训班",
              fields: dict[str, Any] | None = None, changes: dict[str, Any] | None = None, at: datetime = T0,
              backfill: bool = False, key: str | None = None, evidence: bool = True, summary: str = "") -> int:
    """One event (and its programme unless it is a source-health event); returns the event id."""
    with catalog.session() as s:
        program_id = None
        if kind != "source_health":
            key = key or f"http://demo.test/{source}/{title}/{at:%H%M%S%f}"
            program = s.query(Program).filter_by(source_id=source, key=key).one_or_none()
            if program is None:
                program = Program(source_id=source, key=key, title=title, fields=fields or {"title": title},
                                  first_seen=at, last_seen=at)
                s.add(program)
                s.flush()
            program_id = program.id
        event = Event(source_id=source, program_id=program_id, run_id=f"run-{at:%H%M%S%f}", kind=kind, at=at,
                      title=title, summary=summary, changes=changes or {}, backfill=backfill)
        s.add(event)
        s.flush()
        event_id = event.id
        if evidence:
            event.before_record_id = f"<urn:uuid:before-{event_id}>" if kind in ("changed", "removed") else None
            event.after_record_id = f"<urn:uuid:after-{event_id}>"
    if evidence:
        if kind in ("changed", "removed"):
            add_capture(catalog, f"<urn:uuid:before-{event_id}>", f"http://demo.test/list?e={event_id}",
                        "20260301090000")
        add_capture(catalog, f"<urn:uuid:after-{event_id}>", f"http://demo.test/list?e={event_id}",
                    f"{at:%Y%m%d%H%M%S}")
    return event_id
