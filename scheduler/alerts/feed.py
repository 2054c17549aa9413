"""Atom feeds (RFC 4287) of events: one overall, one per source; newest first.

Entry ids are stable (``tag:listwatch,2026:event/<id>``), so feed readers never show an event
twice. Each entry links ``rel="alternate"`` to the replay of the capture that shows it (the after
capture, else the before one) and ``rel="related"`` to the raw WARC records. Backfilled events
(from reprocessing) are history, not news, and stay out. The HTTP API serves these at
``/feeds/atom.xml`` and ``/feeds/{source}.atom``.

Example: ``atom_feed(catalog, settings, "demo-mofcom")`` → UTF-8 XML bytes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import quote

from archive.catalog import Catalog
from archive.catalog.models import Event, Source
from archive.programs.query import event_rows
from scheduler.alerts.messages import Alert, alerts_from, headline, iso, render_text
from scheduler.settings import Settings

ATOM = "http://www.w3.org/2005/Atom"
TAG = "tag:listwatch,2026:"
ET.register_namespace("", ATOM)


def feed_path(source_id: str | None) -> str:
    """Where the HTTP API serves the feed."""
    return "/feeds/atom.xml" if source_id is None else f"/feeds/{quote(source_id, safe='')}.atom"


# Characters XML 1.0 forbids even escaped (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF). A page
# title can hold any of them; one in a feed makes the document ill-formed for every reader.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry replaced by U+FFFD (visibly, not silently dropped)."""
    return _NOT_XML.sub("\ufffd", text)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _entry(feed: ET.Element, alert: Alert) -> None:
    entry = _sub(feed, "entry")
    _sub(entry, "id", f"{TAG}event/{alert.event_id}")
    _sub(entry, "title", headline(alert))
    _sub(entry, "updated", iso(alert.at))
    _sub(entry, "published", iso(alert.at))
    if alert.link:
        _sub(entry, "link", rel="alternate", type="text/html", href=alert.link)
    if alert.page:
        _sub(entry, "link", rel="related", type="text/html", href=alert.page, title="history and field diffs")
    for label, ev in (("after", alert.after), ("before", alert.before)):
        if ev is None:
            continue
        if ev.replay and ev.replay != alert.link:
            _sub(entry, "link", rel="related", type="text/html", href=ev.replay, title=f"replay ({label})")
        _sub(entry, "link", rel="related", type="application/warc", href=ev.record,
             title=f"WARC record {ev.record_id} ({label})")
    _sub(entry, "category", term=alert.kind, scheme=f"{TAG}kind")
    _sub(entry, "category", term=alert.source, scheme=f"{TAG}source")
    _sub(entry, "content", render_text(alert), type="text")


def atom_feed(catalog: Catalog, settings: Settings, source_id: str | None = None, limit: int = 100,
              *, now: datetime | None = None) -> bytes:
    """The newest ``limit`` events (of ``source_id``, or of all sources) as an Atom document."""
    with catalog.session() as session:
        query = event_rows().where(Event.backfill.is_(False)).order_by(Event.at.desc(), Event.id.desc()).limit(limit)
        if source_id is not None:
            query = query.where(Event.source_id == source_id)
        alerts = alerts_from(session, settings, session.execute(query).all())
        source = session.get(Source, source_id) if source_id is not None else None

    feed = ET.Element(f"{{{ATOM}}}feed")
    if source_id is None:
        _sub(feed, "id", f"{TAG}feed")
        _sub(feed, "title", "listwatch: programme events, all sources")
    else:
        _sub(feed, "id", f"{TAG}feed/source/{quote(source_id, safe='')}")
        _sub(feed, "title", f"listwatch: {source.name if source is not None and source.name else source_id}")
    _sub(feed, "subtitle", "New, changed, missing, removed and reappeared programmes, with archived evidence.")
    newest = alerts[0].at if alerts else (now or datetime.now(UTC))
    _sub(feed, "updated", iso(newest))
    _sub(feed, "link", rel="self", type="application/atom+xml",
         href=settings.api.public_url.rstrip("/") + feed_path(source_id))
    author = _sub(feed, "author")
    _sub(author, "name", "listwatch")
    _sub(feed, "generator", "listwatch")
    for alert in alerts:
        _entry(feed, alert)
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
