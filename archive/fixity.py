"""Fixity audits: re-hash stored WARCs against the catalog (``listwatch archive verify``).

Only the whole-file SHA-256 is trusted: ``warcio check`` 1.8.1 passes a truncated ``.warc.gz``. Each audited
file ends ``verified`` (``verified_at`` updated), ``missing``, ``corrupt`` or ``unreadable`` (with ``problem``).
An error about one object (the store lists others but that one fails) marks that object and the audit goes
on; a store that cannot be reached at all aborts the audit without marking anything (an outage is not data
loss).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import Source, WarcFile
from archive.reindex import stored_warcs
from archive.retention import pruned_objects
from archive.storage.base import Storage, StorageError, StorageUnavailable, digest_object

log = logging.getLogger(__name__)

AUDITED_STATES = ("stored", "verified", "missing", "corrupt", "unreadable")
Progress = Callable[[int, int, str], None]     # (files done, files total, key)


@dataclass(frozen=True)
class FixityProblem:
    key: str
    state: str          # missing | corrupt | unreadable
    problem: str


@dataclass
class FixityReport:
    selected: int = 0
    checked: int = 0
    bytes_read: int = 0
    verified: list[str] = field(default_factory=list)
    problems: list[FixityProblem] = field(default_factory=list)
    unavailable: str | None = None     # the audit stopped: the store could not be reached
    orphans: list[str] = field(default_factory=list)   # stored WARCs the catalog knows nothing of (a full audit)

    @property
    def ok(self) -> bool:
        return not self.problems and self.unavailable is None

    @property
    def missing(self) -> list[str]:
        return [p.key for p in self.problems if p.state == "missing"]

    @property
    def corrupt(self) -> list[str]:
        return [p.key for p in self.problems if p.state == "corrupt"]

    @property
    def unreadable(self) -> list[str]:
        return [p.key for p in self.problems if p.state == "unreadable"]


def select_files(catalog: Catalog, *, sample: int | None = None, older_than_days: float | None = None,
                 now: datetime | None = None, rng: random.Random | None = None) -> list[WarcFile]:
    """Stored WARCs to audit: all, those not verified for ``older_than_days``, and/or a random ``sample``.

    Without ``older_than_days`` the WARCs whose rows retention pruned are among them (as rows not in the
    session, ``id`` None: checked against the list retention kept, ``check_days.warcs``, their outcome not
    recorded); with it they are not, having no time of their last audit."""
    now = now or datetime.now(UTC)
    with catalog.session() as session:
        files = list(session.scalars(select(WarcFile).where(WarcFile.state.in_(AUDITED_STATES))
                                     .order_by(WarcFile.key)))
    if older_than_days is not None:
        cutoff = now - timedelta(days=older_than_days)
        files = [f for f in files if (f.verified_at or datetime.min.replace(tzinfo=UTC)) < cutoff]
    else:
        files += [WarcFile(id=None, key=key, size=size, sha256=sha256) for key, size, sha256 in pruned_objects(catalog)]
    if sample is not None and sample < len(files):
        files = sorted((rng or random.Random()).sample(files, max(sample, 0)), key=lambda f: f.key)
    return files


def check_file(storage: Storage, warc: WarcFile) -> tuple[str, str, int]:
    """(state, problem, bytes read) for one stored WARC; StorageUnavailable propagates only for an outage."""
    try:
        info = storage.stat(warc.key)
        if info is None:
            return "missing", f"not found in {storage.describe()}", 0
        if info.size != warc.size:
            return "corrupt", f"size {info.size} in the store, catalog says {warc.size}", 0
        size, sha256 = digest_object(storage, warc.key)
    except StorageUnavailable as exc:
        return object_error(storage, warc.key, exc)
    except StorageError as exc:
        return "corrupt", f"cannot be read back: {exc}", 0
    if size != warc.size:
        return "corrupt", f"read back {size} bytes, catalog says {warc.size}", size
    if sha256 != warc.sha256:
        return "corrupt", f"SHA-256 {sha256}, catalog says {warc.sha256}", size
    return "verified", "", size


def object_error(storage: Storage, key: str, error: StorageUnavailable) -> tuple[str, str, int]:
    """Tell an outage from one bad object: ask the store for a listing next to the key.

    Some stores answer 5xx for one object (``rclone serve s3`` does for a file deleted under it). When the
    listing works the store is up: the object is ``missing`` if it is not listed, else ``unreadable``. When the
    listing fails too, the store is down and ``error`` is raised again (the audit stops, nothing is marked).
    """
    try:
        listed = any(info.key == key for info in storage.list(key))
    except StorageUnavailable:
        raise error from None
    except StorageError as exc:
        raise StorageUnavailable(f"{error}; listing the store failed as well: {exc}") from None
    if not listed:
        return "missing", f"not listed in {storage.describe()} (reading it failed: {error})", 0
    return "unreadable", f"listed in {storage.describe()} but cannot be read: {error}", 0


def verify(catalog: Catalog, storage: Storage, *, sample: int | None = None, older_than_days: float | None = None,
           now: datetime | None = None, progress: Progress | None = None,
           rng: random.Random | None = None) -> FixityReport:
    """Re-hash stored WARCs (all, a random ``sample``, or those unverified for ``older_than_days``).

    The WARCs whose rows retention pruned are audited too, against the list it kept (see :func:`select_files`).
    A full audit (neither option) also lists the stored WARCs of each source that neither a row nor that list
    names as ``orphans``."""
    files = select_files(catalog, sample=sample, older_than_days=older_than_days, now=now, rng=rng)
    full = sample is None and older_than_days is None
    report = FixityReport(selected=len(files))
    for done, warc in enumerate(files):
        if progress:
            progress(done, len(files), warc.key)
        try:
            state, problem, size = check_file(storage, warc)
        except StorageUnavailable as exc:
            report.unavailable = str(exc)
            log.warning("fixity audit stopped after %d of %d files: %s", done, len(files), exc)
            break
        report.checked += 1
        report.bytes_read += size
        if warc.id is not None:   # a pruned WARC has no row to mark
            _record(catalog, warc.id, state, problem)
        if state == "verified":
            report.verified.append(warc.key)
        else:
            report.problems.append(FixityProblem(warc.key, state, problem))
            log.error("fixity: %s is %s: %s", warc.key, state, problem)
    if full and report.unavailable is None:
        try:
            report.orphans = orphans(catalog, storage)
        except StorageError as exc:   # the audit itself is done; only the look for strays failed
            log.warning("fixity: could not list the store for WARCs the catalog does not know: %s", exc)
        for key in report.orphans:
            log.warning("fixity: %s is in the store but not in the catalog (`archive reindex` adds it)", key)
    if progress:
        progress(report.checked, len(files), "done")
    return report


def orphans(catalog: Catalog, storage: Storage) -> list[str]:
    """Stored WARCs under each known source's folder that no ``warc_files`` row and no retention list names."""

    with catalog.read_session() as session:
        sources = list(session.scalars(select(Source.id).order_by(Source.id)))
    found: list[str] = []
    for source_id in sources:
        with catalog.read_session() as session:
            known = set(session.scalars(select(WarcFile.key).where(WarcFile.source_id == source_id)))
        known |= {key for key, _size, _sha in pruned_objects(catalog, source_id)}
        prefix = getattr(storage, "prefix", "")
        found += [o.key for o in stored_warcs(storage, prefix=prefix, source_id=source_id) if o.key not in known]
    return found


def _record(catalog: Catalog, warc_id: int, state: str, problem: str) -> None:
    with catalog.session() as session:
        warc = session.get(WarcFile, warc_id)
        if warc is None:
            return
        warc.state = state
        warc.problem = problem
        if state == "verified":
            warc.verified_at = datetime.now(UTC)
