"""A WACZ of just one programme's evidence: the listing and detail captures behind each of its versions and
events (before and after), the originals of any revisits among them, and their screenshots.

The records are read digest-checked from the store (``read_record``) and written, each as its own gzip
member, into one new WARC inside the package, so the WACZ holds those captures and nothing else of the crawls.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import Capture, Program
from archive.indexer import cdxj_lines
from archive.pages import PAGES_HEADER
from archive.programs.query import timeline
from archive.retrieval import NotFound, read_payload, read_record
from archive.storage.base import Storage
from archive.wacz import SOFTWARE, WACZ_VERSION, _bytes_member, _resource, _write
from scheduler.web.data import BadFilter

WARC_NAME = "evidence.warc.gz"


def evidence_records(catalog: Catalog, storage: Storage, programme_id: int) -> tuple[Program, list[Capture]]:
    """The programme and the captures that show it (revisit originals and screenshots included)."""
    with catalog.read_session() as session:
        programme = session.get(Program, programme_id)
        if programme is None:
            raise BadFilter(f"no programme with id {programme_id}")
        ids = set()
        versions, events = timeline(session, programme_id)
        for v in versions:
            ids |= {v.listing_record_id, v.detail_record_id}
        for e in events:
            ids |= {e.before_record_id, e.after_record_id}
        ids.discard(None)
        captures = list(session.scalars(select(Capture).where(Capture.record_id.in_(sorted(ids)))))  # type: ignore[arg-type]
    originals = set()
    for cap in captures:
        if cap.record_type == "revisit":
            try:
                originals.add(read_payload(catalog, storage, cap.record_id).source_record_id)
            except NotFound:
                continue
    shots = {f"urn:screenshot:{c.url}" for c in captures}
    with catalog.read_session() as session:
        more = list(session.scalars(select(Capture).where(
            Capture.record_id.in_(sorted(originals - ids)) | Capture.url.in_(sorted(shots)))))
    by_id = {c.record_id: c for c in [*captures, *more]}
    return programme, sorted(by_id.values(), key=lambda c: (c.timestamp, c.record_id))


def programme_evidence_wacz(catalog: Catalog, storage: Storage, programme_id: int) -> Path:
    """Write the WACZ in a fresh temporary directory (the caller removes it) and return its path."""
    programme, captures = evidence_records(catalog, storage, programme_id)
    if not captures:
        raise BadFilter(f"programme {programme_id} has no archived captures yet")
    workdir = Path(tempfile.mkdtemp(prefix="listwatch-evidence-"))
    warc, rows = bytearray(), []
    for cap in captures:
        member = gzip.compress(read_record(catalog, storage, cap.record_id), compresslevel=6)
        rows.append({"url": cap.url, "surt": cap.surt, "timestamp": cap.timestamp, "status": cap.status,
                     "mime": cap.mime, "payload_digest": cap.payload_digest, "record_type": cap.record_type,
                     "offset": len(warc), "length": len(member)})
        warc += member
    pages = [json.dumps(PAGES_HEADER)]
    for cap in captures:
        if cap.record_type in ("response", "revisit") and not cap.url.startswith("urn:"):
            ts = datetime.strptime(cap.timestamp[:14], "%Y%m%d%H%M%S").strftime("%Y-%m-%dT%H:%M:%SZ")
            pages.append(json.dumps({"url": cap.url, "ts": ts, "title": programme.title}, ensure_ascii=False))
    out = workdir / f"programme-{programme_id}.wacz"
    with zipfile.ZipFile(out, "w", allowZip64=True) as zf:
        data = bytes(warc)
        _write(zf, f"archive/{WARC_NAME}", data, zipfile.ZIP_STORED)
        resources: list[dict[str, Any]] = [
            _resource(f"archive/{WARC_NAME}", "sha256:" + hashlib.sha256(data).hexdigest(), len(data)),
            _bytes_member(zf, "indexes/index.cdxj", ("\n".join(cdxj_lines(rows, WARC_NAME)) + "\n").encode()),
            _bytes_member(zf, "pages/pages.jsonl", ("\n".join(pages) + "\n").encode()),
        ]
        package = {"profile": "data-package", "resources": resources, "wacz_version": WACZ_VERSION,
                   "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "software": SOFTWARE,
                   "title": f"Evidence of {programme.title or programme.key} ({programme.source_id})"}
        package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode()
        _write(zf, "datapackage.json", package_bytes, zipfile.ZIP_DEFLATED)
        digest = {"path": "datapackage.json", "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
        _write(zf, "datapackage-digest.json", json.dumps(digest, indent=2).encode(), zipfile.ZIP_DEFLATED)
    return out
