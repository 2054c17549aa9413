"""Spool → store: upload closed WARCs (and their ``.cdxj``), verify them, and only then delete the spool copies.

A WARC leaves the spool in these steps, each recorded in the catalog before the next::

    register (hash, index; state spooled) → upload → stored (stored_at) → verify → verified (verified_at) → delete

Any crash between two steps is finished by the next ``sync``: an object already in the store with the same
size and SHA-256 counts as stored (a retry after a crash between upload and delete); a *different* object
under the key is an error that keeps the spool file. With the store down nothing is deleted; the result says
what is waiting and why. Files still being written (``*.warc.gz.open``) are never touched.

>>> result = sync(catalog, open_storage(settings), settings.spool_dir)   # doctest: +SKIP
>>> result.ok, result.summary()                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from archive.catalog import Catalog
from archive.catalog.models import WarcFile
from archive.indexer import file_sha256, iter_captures, register_warc, write_cdxj
from archive.storage.base import (
    KeyExistsError,
    Storage,
    StorageError,
    StorageUnavailable,
    digest_object,
)

log = logging.getLogger(__name__)

WARC_SUFFIX = ".warc.gz"
CDXJ_SUFFIX = ".cdxj"
LOCK_NAME = ".sync.lock"
VerifyMode = Literal["checksum", "read-back"]
Progress = Callable[[int, int, str], None]     # (files done, files total, what is happening)
_SOURCE_IN_NAME = re.compile(r"^(.+)-\d{8}T\d{6}Z-[0-9a-f]+-\d{5}\.warc\.gz$")


@dataclass(frozen=True)
class Pending:
    """A spool file that is still in the spool, and why."""

    name: str
    reason: str


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)     # keys written by this sync
    verified: list[str] = field(default_factory=list)     # keys verified; their spool copies are gone
    waiting: list[Pending] = field(default_factory=list)  # the store is unavailable: retried by the next sync
    failed: list[Pending] = field(default_factory=list)   # needs an operator: the spool copy is kept
    bytes_uploaded: int = 0

    @property
    def ok(self) -> bool:
        return not self.waiting and not self.failed

    def summary(self) -> str:
        text = (f"{len(self.verified)} verified ({len(self.uploaded)} uploaded, {self.bytes_uploaded} bytes), "
                f"{len(self.waiting)} waiting, {len(self.failed)} failed")
        reasons = sorted({p.reason for p in self.waiting})
        return text + (f": {reasons[0]}" if len(reasons) == 1 else "")


def cdxj_key(warc_key: str) -> str:
    return warc_key.removesuffix(WARC_SUFFIX) + CDXJ_SUFFIX


def cdxj_path(warc_path: Path) -> Path:
    return warc_path.with_name(warc_path.name.removesuffix(WARC_SUFFIX) + CDXJ_SUFFIX)


def closed_warcs(spool_dir: Path) -> list[Path]:
    """Closed WARCs in the spool (recursively), oldest name first; ``.open`` files never match."""
    if not spool_dir.is_dir():
        return []
    return sorted((p for p in spool_dir.rglob(f"*{WARC_SUFFIX}") if p.is_file() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def source_of(spool_dir: Path, path: Path) -> str:
    """Spool files live in ``spool/<source>/``; a file at the top level is named ``<source>-<run>-<n>``."""
    relative = path.relative_to(spool_dir).parts
    if len(relative) > 1:
        return relative[0]
    match = _SOURCE_IN_NAME.match(path.name)
    return match.group(1) if match else "unknown"


@contextlib.contextmanager
def _sync_lock(spool_dir: Path, wait: float) -> Iterator[bool]:
    """One sync per spool at a time (the automatic one after each crawl and an operator's may overlap);
    waits up to ``wait`` seconds for the other one to finish."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with (spool_dir / LOCK_NAME).open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.2)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sync(catalog: Catalog, storage: Storage, spool_dir: Path, *, verify: VerifyMode = "read-back",
         prefix: str | None = None, progress: Progress | None = None, lock_wait: float = 600.0) -> SyncResult:
    """Upload, verify and then remove every closed WARC in ``spool_dir``. Never raises for a store problem:
    the result lists what is waiting (store unavailable) and what failed (needs an operator)."""
    prefix = getattr(storage, "prefix", "") if prefix is None else prefix
    result = SyncResult()
    with _sync_lock(spool_dir, lock_wait) as locked:
        files = closed_warcs(spool_dir)
        if not locked:
            result.waiting = [Pending(p.name, "another sync of this spool is still running") for p in files]
            return result
        for done, path in enumerate(files):
            if progress:
                progress(done, len(files), path.name)
            try:
                _sync_one(catalog, storage, spool_dir, path, verify=verify, prefix=prefix, result=result)
            except StorageUnavailable as exc:
                reason = str(exc)
                result.waiting.extend(Pending(p.name, reason) for p in files[done:])
                log.warning("store unavailable: %d spool files wait for the next sync: %s", len(files) - done, reason)
                break
            except (StorageError, OSError, ValueError) as exc:
                result.failed.append(Pending(path.name, str(exc)))
                log.error("sync of %s failed, spool copy kept: %s", path.name, exc)
        if progress:
            progress(len(files), len(files), "done")
    return result


def _sync_one(catalog: Catalog, storage: Storage, spool_dir: Path, path: Path, *, verify: VerifyMode,
              prefix: str, result: SyncResult) -> None:
    try:
        warc = register_warc(catalog, path, source_id=source_of(spool_dir, path), prefix=prefix)
    except FileNotFoundError:
        return  # another process finished it between listing and now
    except Exception as exc:  # warcio / gzip errors on a damaged spool file
        raise ValueError(f"cannot index spool file {path}: {exc}") from None
    index = cdxj_path(path)
    if not index.exists():
        with path.open("rb") as fh:
            write_cdxj(path, list(iter_captures(fh)))
    # The WARC and its index go up side by side: each is four or five round trips to the store (existence check,
    # upload with 100-continue, stat, read-back), one after the other the most of a quick check's time against a
    # store 20 ms away (bench_remote_store). If one fails, the next sync finds the other already stored.
    with ThreadPoolExecutor(2, thread_name_prefix="listwatch-sync") as pool:
        warc_put = pool.submit(_put_verified, storage, warc.key, path, warc.size, warc.sha256, verify)
        index_size = index.stat().st_size
        index_put = pool.submit(_put_verified, storage, cdxj_key(warc.key), index, index_size, file_sha256(index),
                                verify)
        warc_uploaded = _count(result, warc.key, warc.size, warc_put.result())
        _set_state(catalog, warc.id, "stored")
        _count(result, cdxj_key(warc.key), index_size, index_put.result())
    _set_state(catalog, warc.id, "verified")
    result.verified.append(warc.key)
    log.info("%s %s and verified it (%s); removing the spool copy",
             "uploaded" if warc_uploaded else "found", warc.key, verify)
    path.unlink(missing_ok=True)
    index.unlink(missing_ok=True)


def _count(result: SyncResult, key: str, size: int, uploaded: bool) -> bool:
    if uploaded:
        result.uploaded.append(key)
        result.bytes_uploaded += size
    return uploaded


def _put_verified(storage: Storage, key: str, path: Path, size: int, sha256: str, verify: VerifyMode) -> bool:
    """Make sure ``key`` holds exactly ``path`` (``size``, ``sha256``); True if this call uploaded it."""
    if path.stat().st_size != size:
        raise StorageError(f"spool file {path} is {path.stat().st_size} bytes but was registered with {size}: "
                           "it changed after it was closed; kept for inspection")
    uploaded = False
    try:  # put_file itself refuses an existing key: no separate existence check needed
        storage.put_file(key, path, sha256=sha256)
        uploaded = True
    except KeyExistsError:
        pass  # stored before (a retry after a crash, a concurrent sync): compare below
    problem = check_object(storage, key, size, sha256, verify)
    if problem is None:
        return uploaded
    if uploaded:
        raise StorageError(f"{key}: the uploaded copy failed verification ({problem}); spool copy kept")
    raise StorageError(f"{key}: a different object already exists in {storage.describe()} ({problem}); "
                       f"refusing to overwrite it, spool copy {path} kept")


def check_object(storage: Storage, key: str, size: int, sha256: str, verify: VerifyMode = "read-back") -> str | None:
    """None when the stored object has ``size`` and ``sha256``, else what is wrong. ``checksum`` trusts the
    SHA-256 kept with the object (our metadata) when there is one, and reads the object back otherwise."""
    info = storage.stat(key)
    if info is None:
        return "not found in the store"
    if info.size != size:
        return f"size {info.size}, expected {size}"
    if verify == "checksum" and info.sha256:
        found = info.sha256
    else:
        read_size, found = digest_object(storage, key)
        if read_size != size:
            return f"read back {read_size} bytes, expected {size}"
    if found.lower() != sha256.lower():
        return f"SHA-256 {found}, expected {sha256}"
    return None


def _set_state(catalog: Catalog, warc_id: int, state: str) -> None:
    now = datetime.now(UTC)
    with catalog.session() as session:
        warc = session.get(WarcFile, warc_id)
        if warc is None:
            raise StorageError(f"WARC file #{warc_id} vanished from the catalog during sync")
        if state == "stored":
            if warc.state == "spooled" or warc.stored_at is None:
                warc.stored_at = now
            if warc.state == "spooled":
                warc.state = "stored"
        else:
            warc.state = state
            warc.verified_at = now
            warc.problem = ""
