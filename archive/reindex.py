"""Rebuild the catalog's captures from the stored WARC files alone (``listwatch archive reindex``).

Every object under the storage prefix whose key ends ``.warc.gz`` is streamed once (hashing it on the way) and
indexed; its old capture rows are replaced. A missing ``warc_files`` row is recreated (state ``verified``: the
bytes were just hashed); an existing row keeps its recorded SHA-256, and a stored object that no longer matches
it is marked ``corrupt`` (the audit trail is never rewritten to fit the store).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from archive.catalog import Catalog
from archive.catalog.models import Capture, WarcFile
from archive.indexer import HashingStream, add_captures, created_of, iter_captures, run_id_of
from archive.storage.base import ObjectInfo, Storage, StorageUnavailable

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]


@dataclass
class ReindexResult:
    files: int = 0
    captures: int = 0
    created: list[str] = field(default_factory=list)     # warc_files rows recreated
    corrupt: list[str] = field(default_factory=list)     # stored object differs from the catalog's SHA-256
    failed: list[tuple[str, str]] = field(default_factory=list)


def stored_warcs(storage: Storage, *, prefix: str = "", source_id: str | None = None) -> list[ObjectInfo]:
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    scope = base + (f"{source_id}/" if source_id else "")
    return [info for info in storage.list(scope) if info.key.endswith(".warc.gz")]


def reindex(catalog: Catalog, storage: Storage, *, source_id: str | None = None,
            prefix: str | None = None, progress: Progress | None = None) -> int:
    """Rebuild captures from the store; returns the number of captures indexed."""
    return reindex_report(catalog, storage, source_id=source_id, prefix=prefix, progress=progress).captures


def reindex_report(catalog: Catalog, storage: Storage, *, source_id: str | None = None,
                   prefix: str | None = None, progress: Progress | None = None) -> ReindexResult:
    prefix = getattr(storage, "prefix", "") if prefix is None else prefix
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    objects = stored_warcs(storage, prefix=prefix, source_id=source_id)
    result = ReindexResult()
    for done, info in enumerate(objects):
        if progress:
            progress(done, len(objects), info.key)
        source = info.key[len(base):].split("/", 1)[0]
        try:
            stream = HashingStream(storage.iter_bytes(info.key))
            rows = list(iter_captures(io.BufferedReader(stream, 1 << 20)))
            stream.drain()
        except StorageUnavailable:
            raise
        except Exception as exc:  # StorageError, or warcio/gzip errors on a damaged object
            result.failed.append((info.key, str(exc)))
            log.error("reindex: cannot read %s: %s", info.key, exc)
            continue
        _replace(catalog, info.key, source, stream.size, stream.sha256.hexdigest(), rows, result)
        result.files += 1
        result.captures += len(rows)
    if progress:
        progress(len(objects), len(objects), "done")
    return result


def _replace(catalog: Catalog, key: str, source: str, size: int, sha256: str, rows: list[dict[str, Any]],
             result: ReindexResult) -> None:
    name = key.rsplit("/", 1)[-1]
    now = datetime.now(UTC)
    with catalog.session() as session:
        warc = session.scalar(select(WarcFile).where(WarcFile.key == key))
        if warc is None:
            warc = session.scalar(select(WarcFile).where(WarcFile.name == name))
        if warc is None:
            warc = WarcFile(name=name, source_id=source, run_id=run_id_of(name), key=key, size=size, sha256=sha256,
                            state="verified", created_at=created_of(name), stored_at=now, verified_at=now,
                            problem="")
            session.add(warc)
            session.flush()
            result.created.append(key)
        elif warc.sha256 != sha256 or warc.size != size:
            warc.state = "corrupt"
            warc.problem = f"reindex: stored object has SHA-256 {sha256} ({size} bytes), catalog says {warc.sha256}"
            result.corrupt.append(key)
        session.execute(delete(Capture).where(Capture.warc_file_id == warc.id))
        ids = [row["record_id"] for row in rows]
        for start in range(0, len(ids), 500):
            session.execute(delete(Capture).where(Capture.record_id.in_(ids[start:start + 500])))
        add_captures(session, warc, rows)
