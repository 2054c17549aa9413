"""One capture in replay: the capture, its source, and the previous and next captures of the same URL.

The page (``capture.html``) shows a banner with these and the archived page in a frame from pywb
(``listwatch replay``), whose own index is the catalog's CDX endpoint; screenshots show as images.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import Capture, Source
from scheduler.web.data import _capture

REPLAYABLE = ("response", "revisit")


def capture_view(catalog: Catalog, record_id: str) -> dict[str, Any] | None:
    rid = record_id if record_id.startswith("<") else f"<{record_id}>"
    with catalog.read_session() as session:
        cap = session.scalar(select(Capture).where(Capture.record_id.in_((rid, record_id))))
        if cap is None:
            return None
        same_url = select(Capture).where(Capture.surt == cap.surt, Capture.url == cap.url,
                                         Capture.record_type == cap.record_type)
        before = session.scalar(same_url.where(Capture.timestamp < cap.timestamp)
                                .order_by(Capture.timestamp.desc()).limit(1))
        after = session.scalar(same_url.where(Capture.timestamp > cap.timestamp)
                               .order_by(Capture.timestamp).limit(1))
        source = session.get(Source, cap.source_id)
        count = len(session.scalars(same_url.with_only_columns(Capture.id).limit(10_000)).all())
    view = _capture(cap)
    return {"capture": view, "source": {"id": cap.source_id, "name": source.name if source else cap.source_id},
            "previous": _capture(before) if before else None, "next": _capture(after) if after else None,
            "count": count, "is_screenshot": cap.url.startswith("urn:screenshot:"),
            "replayable": cap.record_type in REPLAYABLE and not cap.url.startswith("urn:")}
