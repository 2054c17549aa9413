"""Re-extraction: rebuild a source's programme history from its archived WARC files.

Each run's pages are found through the ``metadata`` records the spider wrote (``urn:items:<url>``,
``WARC-Refers-To`` the response record, JSON with ``role`` and ``page``). An unchanged page's revisit has
none of its own: it takes the metadata of the capture its ``WARC-Refers-To`` names; a ``same_as`` pointer
(written by crawls before that rule) takes the record it names. The response records are
re-extracted with the source's current rules (``crawlers.offline``), a revisit's dates resolved against the
capture it repeats as the live crawl resolves them (``Page.captured_at``), and the runs are replayed oldest
first through :func:`~archive.programs.store.apply_crawl` with ``backfill=True``. Nothing is fetched;
backfill events are never alerted.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from sqlalchemy import delete, select
from warcio.archiveiterator import ArchiveIterator

from archive.catalog.db import Catalog
from archive.catalog.models import CrawlRun, Event, Outbox, Program, ProgramVersion, WarcFile
from archive.catalog.runs import report_of
from archive.programs.diff import DIFF_KINDS, GUARD_SUMMARY, SOURCE_HEALTH
from archive.programs.store import apply_crawl
from archive.records import ITEMS_URN
from crawlers.encoding import decode_body
from crawlers.gone import gone_reason
from crawlers.offline import extract_page
from crawlers.report import REPORT_FILE, run_dir
from crawlers.sources import Source

_RUN_IN_INFO = re.compile(r"listwatch crawl (\S+) of ")


@dataclass
class Page:
    """One archived exchange (or rendered DOM): where its record is, and what it was."""

    url: str
    record_id: str
    path: Path
    offset: int
    status: int
    rec_type: str = "response"
    digest: str = ""
    location: str = ""
    date: str = ""    # WARC-Date
    refers_to: str = ""  # a revisit's WARC-Refers-To: the capture it repeats
    refers_to_date: str = ""  # and that capture's WARC-Date (WARC-Refers-To-Date)

    @property
    def captured_at(self) -> datetime | None:
        """What extraction resolves relative and year-less dates against: the capture's date, and for a revisit
        (an unchanged page) the date of the capture it repeats, as the live crawl does (``ListingSpider._dated``):
        the same page says the same thing, so "12 Jan" keeps its year across New Year."""
        date = (self.refers_to_date if self.rec_type == "revisit" else "") or self.date
        try:
            return datetime.fromisoformat(date.replace("Z", "+00:00")) if date else None
        except ValueError:
            return None


@dataclass
class ArchivedRun:
    run_id: str
    date: str = ""
    pages: dict[str, Page] = field(default_factory=dict)            # record id → page
    by_url: dict[str, Page] = field(default_factory=dict)           # URL → latest page
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)   # record id → metadata JSON
    files: list[Path] = field(default_factory=list)


@dataclass
class ReprocessResult:
    source_id: str
    runs: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    warc_files: int = 0


def run_id_from_name(name: str, source_id: str) -> str | None:
    """``<source>-<run_id>-<serial>.warc.gz`` → run id."""
    match = re.fullmatch(re.escape(source_id) + r"-(.+)-\d{5}\.warc\.gz", name)
    return match.group(1) if match else None


def warc_paths(catalog: Catalog, source_id: str, spool_dir: Path, store_dir: Path | None = None,
               storage: Any = None, scratch: Path | None = None) -> list[Path]:
    """The source's WARC files: the spool, plus the files the catalog lists — from a local store
    directory when they are there, else downloaded from ``storage`` (``archive.storage``) into ``scratch``."""
    found = {p.name: p for p in sorted((spool_dir / source_id).glob(f"{source_id}-*.warc.gz"))}
    with catalog.session() as session:
        rows = session.execute(select(WarcFile.name, WarcFile.key).where(WarcFile.source_id == source_id)).all()
    for name, key in rows:
        if name in found:
            continue
        local = next((c for c in ([store_dir / key, store_dir / name] if store_dir else []) if c.is_file()), None)
        if local is None and storage is not None and scratch is not None:
            local = scratch / name
            with local.open("wb") as out:
                for chunk in storage.iter_bytes(key):
                    out.write(chunk)
        if local is not None:
            found[name] = local
    return list(found.values())


def read_runs(paths: Iterable[Path], source_id: str) -> dict[str, ArchivedRun]:
    """Index every run's records (positions only, no bodies kept)."""
    runs: dict[str, ArchivedRun] = {}
    by_id: dict[str, dict[str, Any]] = {}  # metadata record id → its JSON (pointers name records by it)
    for path in paths:
        run_id = run_id_from_name(path.name, source_id)
        with path.open("rb") as fh:
            iterator = ArchiveIterator(fh)
            for record in iterator:
                headers = record.rec_headers
                kind = record.rec_type
                if kind == "warcinfo":
                    info = record.content_stream().read().decode("utf-8", "replace")
                    match = _RUN_IN_INFO.search(info)
                    run_id = match.group(1) if match else run_id
                    continue
                if run_id is None:
                    continue
                run = runs.setdefault(run_id, ArchivedRun(run_id))
                if path not in run.files:
                    run.files.append(path)
                date = headers.get_header("WARC-Date") or ""
                run.date = min(run.date, date) if run.date else date
                uri = headers.get_header("WARC-Target-URI") or ""
                rid = headers.get_header("WARC-Record-ID") or ""
                if kind == "metadata" and uri.startswith(ITEMS_URN):
                    try:
                        data = json.loads(record.content_stream().read())
                    except ValueError:
                        continue
                    data["_url"] = uri[len(ITEMS_URN):]
                    run.meta[headers.get_header("WARC-Refers-To") or rid] = by_id[rid] = data
                elif kind in ("response", "revisit", "conversion", "resource") and not uri.startswith("urn:"):
                    status = int(record.http_headers.get_statuscode() or 0) if record.http_headers else 200
                    location = record.http_headers.get_header("Location") if record.http_headers else None
                    page = Page(uri, rid, path, iterator.get_record_offset(), status, kind,
                                headers.get_header("WARC-Payload-Digest") or "", location or "", date,
                                headers.get_header("WARC-Refers-To") or "",
                                headers.get_header("WARC-Refers-To-Date") or "")
                    run.pages[rid] = page
                    if kind in ("response", "revisit"):
                        run.by_url[uri] = page
    follow_metadata(runs, by_id)
    return runs


def follow_metadata(runs: dict[str, ArchivedRun], by_id: dict[str, dict[str, Any]]) -> None:
    """Give every page the metadata that describes it: a pointer's target in place of the pointer, and to a
    revisit without a record of its own, the metadata of the capture it refers to (in any run)."""
    described: dict[str, dict[str, Any]] = {}
    for run in runs.values():
        for rid, data in run.meta.items():
            target = by_id.get(str(data.get("same_as")))
            if target is not None and "same_as" not in target:
                run.meta[rid] = {**target, "_url": data["_url"]}
        described.update(run.meta)
    for run in runs.values():
        for page in run.pages.values():
            inherited = described.get(page.refers_to) if page.rec_type == "revisit" else None
            if inherited is not None and page.record_id not in run.meta and inherited.get("_url") == page.url:
                run.meta[page.record_id] = inherited


MAX_PAYLOAD = 30_000_000   # the default limits.max_response_bytes: larger decoded payloads are not read


def read_body(page: Page, bodies: dict[str, Page]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and payload of a page; a revisit takes its payload from the record it repeats."""
    with page.path.open("rb") as fh:
        fh.seek(page.offset)
        record = next(iter(ArchiveIterator(fh)))
        http = record.http_headers
        headers = list(http.headers) if http else []
        status = int(http.get_statuscode() or 0) if http else 200
        body = record.content_stream().read(MAX_PAYLOAD + 1)  # decoded in bounded steps: no gzip bomb
        if len(body) > MAX_PAYLOAD:
            body = b""  # the live crawl refused it as too large too
    if record.rec_type == "revisit":
        original = bodies.get(page.digest)
        if original is None:
            return status, headers, b""
        original_status, original_headers, body = read_body(original, bodies)
        if status == 304 or not headers:  # server-not-modified: the earlier response stands, headers and all
            status, headers = original_status, original_headers
    return status, headers, body


def listing_pages(run: ArchivedRun, listing_urls: dict[str, int]) -> list[tuple[str, dict[str, Any]]]:
    """(record id, metadata) of the run's listing pages, in page order. An unchanged page (a revisit) may
    have no metadata record of its own: it is known by its URL, a listing page in an earlier run."""
    found = {rid: m for rid, m in run.meta.items() if m.get("role") == "listing" and rid in run.pages}
    for rid, meta in found.items():
        listing_urls[run.pages[rid].url] = int(meta.get("page") or 0)
    covered = {run.pages[rid].url for rid in found}
    for url, page in run.by_url.items():
        if url in listing_urls and url not in covered and page.rec_type == "revisit":
            found[page.record_id] = {"role": "listing", "page": listing_urls[url]}
    return sorted(found.items(), key=lambda pair: int(pair[1].get("page") or 0))


def rebuild_items(source: Source, run: ArchivedRun, bodies: dict[str, Page], known_details: dict[str, str],
                  listing_urls: dict[str, int]) -> tuple[list[dict[str, Any]], list[str]]:
    """The run's items as the spider would yield them today, and challenges/problems on listing pages."""
    listings = listing_pages(run, listing_urls)
    items: list[dict[str, Any]] = []
    problems: list[str] = []
    for rid, meta in listings:
        page = run.pages[rid]
        status, headers, body = read_body(page, bodies)
        result = extract_page(source, page.url, "listing", headers, body, status=status,
                              captured_at=page.captured_at, rendered=page.rec_type in ("conversion", "resource"))
        if not result.ok:
            problems.append(f"{page.url}: {result.challenge or result.problem}")
            continue
        for entry in result.items:
            items.append({"source": source.id, "key": entry["key"], "fields": entry["fields"],
                          "listing_url": page.url, "listing_page": int(meta.get("page") or 0),
                          "position": entry["position"], "listing_record": rid})
    linked = set()
    for item in items:
        link = item["fields"].get(source.detail.link) if source.detail else None
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            continue
        linked.add(link)
        item["detail"], item["attachments"] = _detail(source, run, bodies, link)
        if "fields" in item["detail"]:
            item["fields"].update(item["detail"].pop("fields"))
        known_details[link] = item["key"]
    items += _rechecks(source, run, bodies, linked, known_details, listing_urls)
    return items, problems


def _final(run: ArchivedRun, url: str, hops: int = 5) -> Page | None:
    """The page a URL ended on, following archived redirects."""
    page = run.by_url.get(url)
    while page is not None and 300 <= page.status < 400 and hops > 0 and page.location:
        page, hops = run.by_url.get(urljoin(page.url, page.location)), hops - 1
    return page


def _gone(source: Source, url: str, page: Page, status: int, headers: list[tuple[str, str]], body: bytes) -> str | None:
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    text = decode_body(body, content_type, source.encoding).text if status < 400 else ""
    return gone_reason(status, url, page.url, text, source.start_urls)


def _detail(source: Source, run: ArchivedRun, bodies: dict[str, Page],
            link: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    page = _final(run, link)
    if page is None:
        return {"url": link, "status": None, "error": "not-archived", "message": "no capture", "gone": None}, []
    status, headers, body = read_body(page, bodies)
    gone = _gone(source, link, page, status, headers, body)
    if status >= 400 or gone:
        return {"url": link, "status": status, "error": gone or f"http-{status}", "message": "", "gone": gone}, []
    result = extract_page(source, page.url, "detail", headers, body, status=status, captured_at=page.captured_at)
    if not result.ok:
        return {"url": link, "status": status, "error": result.challenge or result.problem, "message": "",
                "gone": None}, []
    return {"url": link, "status": status, "record": page.record_id,  # the text stays in the capture
            "gone": None, "fields": result.fields}, result.attachments


def _rechecks(source: Source, run: ArchivedRun, bodies: dict[str, Page], linked: set[str],
              known_details: dict[str, str], listing_urls: dict[str, int]) -> list[dict[str, Any]]:
    """Detail pages this run fetched for programmes it did not list: the spider's rechecks."""
    out = []
    for url in list(run.by_url):
        page = _final(run, url)
        if url in linked or url not in known_details or page is None or url in listing_urls:
            continue
        status, headers, body = read_body(page, bodies)
        gone = _gone(source, url, page, status, headers, body)
        out.append({"source": source.id, "key": known_details[url], "recheck": True,
                    "detail": {"url": url, "status": status, "record": page.record_id, "gone": gone}})
    return out


def _stored_runs(catalog: Catalog, source_id: str) -> dict[str, CrawlRun]:
    with catalog.session() as session:
        return {r.id: r for r in session.scalars(select(CrawlRun).where(CrawlRun.source_id == source_id))}


def _report(run: ArchivedRun, stored: CrawlRun | None, data_dir: Path | None, source_id: str,
            problems: list[str]) -> dict[str, Any]:
    if stored is not None and stored.report:
        return report_of(stored, data_dir=data_dir)
    path = run_dir(data_dir, source_id, run.run_id) / REPORT_FILE if data_dir else None
    if path is not None and path.is_file():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    listings = sum(1 for m in run.meta.values() if m.get("role") == "listing")
    return {"source_id": source_id, "run_id": run.run_id, "started": run.date, "stop_reason": "finished",
            "pages_ok": {"listing": listings}, "pages_failed": {"listing": len(problems)},
            "pagination_finished": not problems, "problems": [], "challenges": []}


def forget_history(catalog: Catalog, source_id: str) -> None:
    """Delete the source's programmes, versions and the events the diff wrote (and their pending deliveries).
    Health incidents (``scheduler.health``) are about the crawls, not the extraction: they stay."""
    diff_events = (Event.source_id == source_id) & (
        Event.kind.in_(DIFF_KINDS) | ((Event.kind == SOURCE_HEALTH) & Event.summary.startswith(GUARD_SUMMARY)))
    with catalog.session() as session:
        session.execute(delete(Outbox).where(Outbox.event_id.in_(select(Event.id).where(diff_events))))
        session.execute(delete(Event).where(diff_events))
        programs = select(Program.id).where(Program.source_id == source_id)
        session.execute(delete(ProgramVersion).where(ProgramVersion.program_id.in_(programs)))
        session.execute(delete(Program).where(Program.source_id == source_id))


def _when(run: ArchivedRun, stored: CrawlRun | None) -> datetime:
    if stored is not None and stored.finished_at is not None:
        return stored.finished_at
    try:
        return datetime.fromisoformat(run.date.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def ordered(runs: dict[str, ArchivedRun]) -> Iterator[ArchivedRun]:
    yield from sorted(runs.values(), key=lambda r: (r.date, r.run_id))


def reprocess(catalog: Catalog, source: Source, *, spool_dir: Path, store_dir: Path | None = None,
              data_dir: Path | None = None, missing_runs_to_remove: int = 2, storage: Any = None) -> ReprocessResult:
    """Rebuild ``source``'s programme history from its WARCs with its current rules (backfill events); a run the
    catalog has no report for takes the one in its run directory under ``data_dir`` (``crawlers.report.run_dir``)."""
    with tempfile.TemporaryDirectory(prefix="listwatch-reprocess-") as scratch:
        return _reprocess(catalog, source, warc_paths(catalog, source.id, spool_dir, store_dir, storage, Path(scratch)),
                          data_dir, missing_runs_to_remove)


def _reprocess(catalog: Catalog, source: Source, paths: list[Path], data_dir: Path | None,
               missing_runs_to_remove: int) -> ReprocessResult:
    runs = read_runs(paths, source.id)
    stored = _stored_runs(catalog, source.id)
    result = ReprocessResult(source.id, warc_files=len(paths))
    forget_history(catalog, source.id)
    bodies: dict[str, Page] = {}
    known_details: dict[str, str] = {}
    listing_urls: dict[str, int] = {}
    for run in ordered(runs):
        for page in run.pages.values():
            if page.digest and page.rec_type == "response":
                bodies.setdefault(page.digest, page)
        items, problems = rebuild_items(source, run, bodies, known_details, listing_urls)
        row = stored.get(run.run_id)
        report = _report(run, row, data_dir, source.id, problems)
        kind = row.kind if row is not None and row.kind in ("full", "quick") else str(report.get("kind") or "full")
        events = apply_crawl(catalog, source_id=source.id, run_id=run.run_id, kind=kind, report=report,
                             items=items, now=_when(run, row), missing_runs_to_remove=missing_runs_to_remove,
                             backfill=True, baseline=True)
        result.runs.append(run.run_id)
        for event in events:
            result.events[event.kind] = result.events.get(event.kind, 0) + 1
    return result
