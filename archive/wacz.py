"""WACZ 1.1.1 export: the selected WARCs streamed from the store into one ZIP, with index, pages and datapackage.

Layout (WACZ 1.1.1): ``archive/<name>.warc.gz`` (stored, not deflated), ``indexes/index.cdxj`` (SURT-sorted,
``filename`` relative to ``archive/``), ``pages/pages.jsonl`` (json-pages-1.0: the listing and detail pages,
from our ``urn:items:`` metadata records), ``datapackage.json`` (every file with ``sha256:`` hash and size)
and ``datapackage-digest.json`` (the hash of datapackage.json).

Signing: the WACZ spec signs ``datapackage-digest.json`` through an *authsign* signing server (it holds the
key or a domain certificate). ``sign`` is that server's URL: the package hash and creation time are POSTed and
the answer is embedded as ``signedData``. Without a signing server there is no signature.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import Capture, WarcFile
from archive.cdx import check_range, check_url, search_range
from archive.indexer import cdx_timestamp, cdxj_lines, safe_surt
from archive.pages import PAGES_HEADER, page_entry
from archive.records import ITEMS_URN
from archive.retrieval import NotFound, read_payload
from archive.storage.base import Storage

WACZ_VERSION = "1.1.1"
SOFTWARE = "listwatch 0.1.0"
READABLE_STATES = ("stored", "verified")


class ExportError(ValueError):
    """Nothing to export, or a bad selection."""


def _selected_files(catalog: Catalog, source_id: str | None, url_prefix: str | None, lo: str | None,
                    hi: str | None) -> list[WarcFile]:
    stmt = select(Capture.warc_file_id).distinct()
    if source_id:
        stmt = stmt.where(Capture.source_id == source_id)
    if url_prefix:
        start, end = search_range(check_url(url_prefix), "prefix")
        stmt = stmt.where(Capture.surt >= start, Capture.surt < end)
    if lo:
        stmt = stmt.where(Capture.timestamp >= lo)
    if hi:
        stmt = stmt.where(Capture.timestamp <= hi + "999999")
    with catalog.read_session() as session:
        ids = list(session.scalars(stmt))
        files = list(session.scalars(select(WarcFile).where(WarcFile.id.in_(ids), WarcFile.state.in_(READABLE_STATES))
                                     .order_by(WarcFile.name))) if ids else []
    return files


def _rows(catalog: Catalog, files: list[WarcFile]) -> list[dict[str, Any]]:
    cols = [Capture.url, Capture.surt, Capture.timestamp, Capture.status, Capture.mime, Capture.payload_digest,
            Capture.record_type, Capture.offset, Capture.length, Capture.warc_file_id, Capture.record_id,
            Capture.refers_to_uri, Capture.refers_to_date, Capture.source_id]
    with catalog.read_session() as session:
        result = session.execute(select(*cols).where(Capture.warc_file_id.in_([f.id for f in files])))
        return [dict(row._mapping) for row in result]


class _Extractions:
    """What was extracted from each page, read from its metadata record (pointers followed), by record id or
    by page and moment: a page's metadata record carries its capture's timestamp."""

    def __init__(self, catalog: Catalog, storage: Storage, sources: set[str]) -> None:
        self.catalog, self.storage = catalog, storage
        with catalog.read_session() as session:
            rows = session.execute(select(Capture.url, Capture.timestamp, Capture.record_id).where(
                Capture.source_id.in_(sorted(sources)), Capture.record_type == "metadata",
                Capture.url.startswith(ITEMS_URN, autoescape=True)))
            self.at = {(url, ts): rid for url, ts, rid in rows}
        self._read: dict[str, dict[str, Any] | None] = {}

    def of_record(self, record_id: str) -> dict[str, Any] | None:
        if record_id not in self._read:
            try:
                data = json.loads(read_payload(self.catalog, self.storage, record_id).body)
            except (NotFound, ValueError):
                data = None
            if isinstance(data, dict) and "same_as" in data:  # a pointer (crawls before unchanged pages wrote none)
                data = {**data, **(self.of_record(str(data["same_as"])) or {})}
            self._read[record_id] = data if isinstance(data, dict) else None
        return self._read[record_id]

    def of_page(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """A page record's extraction: its own metadata record's, else (an unchanged page, a revisit) that of
        the capture it refers to."""
        own = self.at.get((ITEMS_URN + row["url"], row["timestamp"]))
        if own is not None:
            return None  # listed through its own metadata record
        if row["record_type"] != "revisit" or row["refers_to_uri"] != row["url"] or not row["refers_to_date"]:
            return None
        original = self.at.get((ITEMS_URN + row["url"], cdx_timestamp(row["refers_to_date"])))
        return self.of_record(original) if original is not None else None


def _page_lines(catalog: Catalog, storage: Storage, rows: list[dict[str, Any]], url_prefix: str | None,
                lo: str | None, hi: str | None) -> list[str]:
    """pages.jsonl: each metadata record's page, and each unchanged page (a revisit without a metadata record
    of its own) with the extraction of the capture it refers to."""
    prefix_range = search_range(check_url(url_prefix), "prefix") if url_prefix else None
    lines = [json.dumps(PAGES_HEADER)]
    extractions = _Extractions(catalog, storage, {r["source_id"] for r in rows})
    for row in sorted(rows, key=lambda r: r["timestamp"]):
        if (lo and row["timestamp"] < lo) or (hi and row["timestamp"][:14] > hi):
            continue
        if row["record_type"] == "metadata" and row["url"].startswith(ITEMS_URN):
            page_url, data = row["url"].removeprefix(ITEMS_URN), extractions.of_record(row["record_id"])
        elif row["record_type"] == "revisit" and not row["url"].startswith("urn:"):
            page_url, data = row["url"], extractions.of_page(row)
        else:
            continue
        if data is None or (prefix_range and not prefix_range[0] <= safe_surt(page_url) < prefix_range[1]):
            continue
        ts = datetime.strptime(row["timestamp"][:14], "%Y%m%d%H%M%S").strftime("%Y-%m-%dT%H:%M:%SZ")
        page = page_entry(page_url, ts, data)
        if page is not None:
            lines.append(json.dumps(page, ensure_ascii=False))
    return lines


def export_wacz(catalog: Catalog, storage: Storage, out: Path, *, source_id: str | None = None,
                url_prefix: str | None = None, from_: str | None = None, to: str | None = None,
                sign: str | None = None, sign_token: str | None = None, title: str | None = None) -> Path:
    """Write a WACZ of the stored WARCs holding captures in the selection; returns ``out``."""
    lo, hi = check_range(from_, to)
    files = _selected_files(catalog, source_id, url_prefix, lo, hi)
    if not files:
        raise ExportError("no stored WARC files hold captures in that selection")
    rows = _rows(catalog, files)
    names = {f.id: f.name for f in files}
    index: list[str] = []
    for f in files:
        index += cdxj_lines([r for r in rows if r["warc_file_id"] == f.id], names[f.id])
    pages = _page_lines(catalog, storage, rows, url_prefix, lo, hi)
    resources: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", allowZip64=True) as zf:
            for f in files:
                resources.append(_stream_member(zf, f"archive/{f.name}", storage, f.key, f.size))
            resources.append(_bytes_member(zf, "indexes/index.cdxj", ("\n".join(sorted(index)) + "\n").encode()))
            resources.append(_bytes_member(zf, "pages/pages.jsonl", ("\n".join(pages) + "\n").encode()))
            created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            package: dict[str, Any] = {
                "profile": "data-package", "resources": resources, "wacz_version": WACZ_VERSION,
                "created": created, "software": SOFTWARE,
                "title": title or f"listwatch export{f' of {source_id}' if source_id else ''}",
            }
            if len(pages) > 1:
                first = json.loads(pages[1])
                package.update(mainPageURL=first["url"], mainPageDate=first["ts"])
            package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode()
            _write(zf, "datapackage.json", package_bytes, zipfile.ZIP_DEFLATED)
            digest: dict[str, Any] = {"path": "datapackage.json",
                                      "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
            if sign:
                digest["signedData"] = _sign(sign, sign_token, digest["hash"], created)
            _write(zf, "datapackage-digest.json", json.dumps(digest, indent=2).encode(), zipfile.ZIP_DEFLATED)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def _info(path: str, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, datetime.now(UTC).timetuple()[:6])
    info.compress_type = compress
    return info


def _write(zf: zipfile.ZipFile, path: str, data: bytes, compress: int) -> None:
    zf.writestr(_info(path, compress), data)


def _bytes_member(zf: zipfile.ZipFile, path: str, data: bytes) -> dict[str, Any]:
    _write(zf, path, data, zipfile.ZIP_DEFLATED)
    return _resource(path, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def _stream_member(zf: zipfile.ZipFile, path: str, storage: Storage, key: str, expected: int) -> dict[str, Any]:
    """Copy a stored WARC into the ZIP uncompressed (WACZ requires 'store'), hashing it on the way.

    Its size is given ahead (the catalog's), so zipfile writes Zip64 fields only for a member that needs them.
    Forced Zip64 put them in the local header of every WARC but not in the central directory (zipfile drops
    them there under 4 GiB), and ReplayWeb.page, which finds a member's bytes from the central directory,
    then read each WARC 20 bytes early: no page of such an export replayed in it."""
    info = _info(path, zipfile.ZIP_STORED)
    info.file_size = expected
    digest, size = hashlib.sha256(), 0
    with zf.open(info, "w") as dst:
        for block in storage.iter_bytes(key):
            digest.update(block)
            size += len(block)
            dst.write(block)
    return _resource(path, "sha256:" + digest.hexdigest(), size)


def _resource(path: str, digest: str, size: int) -> dict[str, Any]:
    return {"name": path.rsplit("/", 1)[-1].lower(), "path": path, "hash": digest, "bytes": size}


def _sign(url: str, token: str | None, digest: str, created: str) -> dict[str, Any]:
    """Ask an authsign-compatible signing server to sign the package digest."""
    request = urllib.request.Request(url, data=json.dumps({"hash": digest, "created": created}).encode(),
                                     headers={"Content-Type": "application/json", "Accept": "application/json"},
                                     method="POST")
    if token:
        request.add_header("Authorization", f"bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            signed = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise ExportError(f"signing server {url} failed: {exc}") from None
    if signed.get("hash") != digest or signed.get("created") != created:
        raise ExportError(f"signing server {url} signed something else (hash/created differ)")
    return dict(signed)
