"""What an alert says: the programme, what happened, each changed field, and the evidence.

Alerts are built from catalog rows (:func:`load_alerts`) into plain :class:`Alert` values, then
rendered as text (Apprise, Atom) or as webhook JSON documents that follow ``webhook.schema.json``.
Evidence for a record id is the ``captures`` row (URL and time, for a replay link) plus the raw
record link, signed so that its recipient opens it without the API token for ``api.link_ttl`` seconds after
the event (``scheduler/web/signing.py``; the same bytes on every retry); a record not (yet) indexed still
gets its record link. Every alert (text, Atom, webhook JSON) also gives the programme's page on the watched site
(the key is site-relative) and a signed link to its page in the web interface (every version, field diffs, each
capture), which a researcher reads more easily than a raw record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.catalog.models import Capture, Event, Program
from archive.catalog.types import as_utc
from archive.links import record_link, replay_link
from archive.programs.query import event_rows, live_url
from scheduler.alerts.subscriptions import kind_group
from scheduler.settings import Settings
from scheduler.web.signing import signed_link

SCHEMA_VERSION = 2    # 2: the programme's url (watched site) and page (web interface), absolute
_VERBS = {"new": "New programme", "changed": "Changed", "missing": "Missing from the listing",
          "removed": "Removed", "reappeared": "Reappeared", "source_health": "Source health"}
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")  # and bidi overrides
_MAX_VALUE = 300  # characters of a field value shown in text messages (JSON carries it whole)


def iso(moment: datetime) -> str:
    return as_utc(moment).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Evidence:
    record_id: str
    url: str | None
    timestamp: str | None      # 14-digit WARC date (CDX style), as in the captures table
    replay: str | None
    record: str

    def to_json(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "url": self.url, "timestamp": self.timestamp,
                "replay": self.replay, "record": self.record}


@dataclass(frozen=True)
class Alert:
    event_id: int
    kind: str
    source: str
    at: datetime
    title: str
    summary: str
    program_key: str | None
    changes: tuple[tuple[str, Any, Any], ...]
    before: Evidence | None
    after: Evidence | None
    run_id: str | None = None
    program_url: str | None = None     # the programme's page on the watched site
    page: str | None = None            # its page in the web interface, signed

    @property
    def link(self) -> str | None:
        """The best single link: replay of the after capture, else of the before capture, else a record."""
        for ev in (self.after, self.before):
            if ev is not None and ev.replay:
                return ev.replay
        for ev in (self.after, self.before):
            if ev is not None:
                return ev.record
        return None


def _evidence(record_id: str | None, captures: dict[str, Capture], settings: Settings,
              issued: datetime | None = None) -> Evidence | None:
    if not record_id:
        return None
    cap = captures.get(record_id)
    replay = replay_link(settings.replay.public_url, cap.url, cap.timestamp) if cap is not None else None
    record = signed_link(settings, record_link(settings.api.public_url, record_id), issued)
    return Evidence(record_id=record_id, url=cap.url if cap else None, timestamp=cap.timestamp if cap else None,
                    replay=replay, record=record)


def _changes(raw: dict[str, Any] | None) -> tuple[tuple[str, Any, Any], ...]:
    out = []
    for field, pair in sorted((raw or {}).items()):
        if isinstance(pair, list | tuple) and len(pair) == 2:
            out.append((field, pair[0], pair[1]))
        elif isinstance(pair, dict):
            out.append((field, pair.get("old"), pair.get("new")))
        else:
            out.append((field, None, pair))
    return tuple(out)


def load_alerts(session: Session, settings: Settings, event_ids: Iterable[int]) -> dict[int, Alert]:
    """Alerts for ``event_ids`` by event id (ids of events that do not exist are left out)."""
    ids = sorted(set(event_ids))
    alerts: dict[int, Alert] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(event_rows().where(Event.id.in_(ids[start:start + 500]))).all()
        alerts.update((a.event_id, a) for a in alerts_from(session, settings, rows))
    return alerts


def alerts_from(session: Session, settings: Settings, rows: Sequence[tuple[Event, Program | None]]) -> list[Alert]:
    """Alerts for ``event_rows()`` results, in their order, with the captures their evidence links name."""
    record_ids = {r for event, _ in rows for r in (event.before_record_id, event.after_record_id) if r}
    captures = {c.record_id: c for c in session.scalars(select(Capture).where(Capture.record_id.in_(record_ids)))}
    return [alert_from(event, program, captures, settings) for event, program in rows]


def alert_from(event: Event, program: Program | None, captures: dict[str, Capture], settings: Settings) -> Alert:
    return Alert(event_id=event.id, kind=event.kind, source=event.source_id, at=event.at,
                 title=(program.title if program is not None and program.title else event.title) or "",
                 summary=event.summary or "", program_key=program.key if program is not None else None,
                 changes=_changes(event.changes),
                 before=_evidence(event.before_record_id, captures, settings, event.at),
                 after=_evidence(event.after_record_id, captures, settings, event.at), run_id=event.run_id,
                 program_url=live_url(program) if program is not None else None,
                 page=signed_link(settings, f"{settings.api.public_url.rstrip('/')}/programmes/{program.id}",
                                  event.at) if program is not None else None)


# -- text ---------------------------------------------------------------------------------------------

def _short(value: Any) -> str:
    """One line of at most ``_MAX_VALUE`` characters: whitespace runs (newlines) and control characters are one
    space (a hostile page's title must not add lines or headers to a message)."""
    text = "∅" if value is None or value == "" else str(value)
    text = " ".join(_CONTROLS.sub(" ", text).split())
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 1] + "…"


def headline(alert: Alert) -> str:
    """``Changed: 数字经济研修班 (demo-mofcom)``; ``Source health: Incomplete crawl, … (demo-mofcom)``."""
    group = kind_group(alert.kind)
    verb = _VERBS.get(group, alert.kind)
    if group == "source_health":
        if alert.kind != "source_health":
            verb = f"{verb} ({alert.kind})"
        what = alert.summary or alert.title
    else:
        what = alert.title or alert.summary or alert.program_key or "(untitled)"
    # A message title (an e-mail subject, a chat heading) is one short line whatever the page put in the title:
    # a 100 KB or multi-line title would be refused by the channel, and the alert retried until dead.
    return f"{verb}: {_short(what) if what else '(no detail)'} ({alert.source})"


def _evidence_line(label: str, ev: Evidence | None) -> list[str]:
    if ev is None:
        return []
    where = f"  {label}: {ev.replay}" if ev.replay else f"  {label}:"
    return [where, f"    WARC record {ev.record_id} — {ev.record}"]


def render_text(alert: Alert) -> str:
    """The body of a one-event message (and of an Atom entry)."""
    lines = [headline(alert), f"Source: {alert.source} · {alert.at:%Y-%m-%d %H:%M} UTC"]
    if alert.program_key:
        lines.append(f"Programme: {alert.program_url or alert.program_key}")
    if alert.page:
        lines.append(f"History and field diffs: {alert.page}")
    if alert.summary and alert.summary != alert.title:
        lines.append(alert.summary)
    if alert.changes:
        lines.append("Changes:")
        lines += [f"  • {field}: {_short(old)} → {_short(new)}" for field, old, new in alert.changes]
    if alert.before or alert.after:
        lines.append("Evidence:")
        lines += _evidence_line("before", alert.before) + _evidence_line("after", alert.after)
    return "\n".join(lines)


def digest_title(alerts: Sequence[Alert], mode: str, start: datetime) -> str:
    window = f"{start:%Y-%m-%d %H:00} UTC" if mode == "hourly" else f"{start:%Y-%m-%d} (UTC)"
    noun = "event" if len(alerts) == 1 else "events"
    return f"[listwatch] {mode} digest, {window}: {len(alerts)} {noun}"


def render_digest(alerts: Sequence[Alert]) -> str:
    return "\n\n".join(f"{n}. {render_text(a)}" for n, a in enumerate(alerts, 1))


# -- webhook JSON -------------------------------------------------------------------------------------

def alert_document(alert: Alert) -> dict[str, Any]:
    """``{"event": …, "evidence": …}``: one alert as ``webhook.schema.json`` defines it."""
    program = {"key": alert.program_key, "title": alert.title, "url": alert.program_url,
               "page": alert.page} if alert.program_key is not None else None
    return {
        "event": {"id": alert.event_id, "kind": alert.kind, "category": kind_group(alert.kind),
                  "source": alert.source, "program": program, "title": alert.title, "summary": alert.summary,
                  "changes": [{"field": f, "old": o, "new": n} for f, o, n in alert.changes],
                  "at": iso(alert.at), "run_id": alert.run_id, "headline": headline(alert)},
        "evidence": {"before": alert.before.to_json() if alert.before else None,
                     "after": alert.after.to_json() if alert.after else None},
    }


def event_payload(alert: Alert, *, subscription: str, delivery_id: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "type": "event", "delivery_id": delivery_id,
            "subscription": subscription, **alert_document(alert)}


def digest_payload(alerts: Sequence[Alert], *, subscription: str, delivery_id: str, mode: str,
                   start: datetime, end: datetime) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "type": "digest", "delivery_id": delivery_id,
            "subscription": subscription,
            "window": {"mode": mode, "start": iso(start), "end": iso(end)},
            "count": len(alerts), "alerts": [alert_document(a) for a in alerts]}
