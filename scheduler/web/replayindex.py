"""The CDX endpoint pywb reads (``index_paths: cdx+http://…``) instead of a CDXJ file rewritten every minute.

pywb's remote index source asks ``?url=…&closest=…&sort=closest[&limit=10]`` and cannot send a token, so the
route carries a key in its path (``signing.replay_index_key``: an HMAC of the link secret, which ``listwatch
replay`` reads from the same data directory). Lines are CDXJ as pywb's own indexer writes them (string
offsets and lengths, ``warc/revisit`` for revisits, ``filename`` = the WARC's storage key under the store root).
Only captures in stored WARCs are listed: a WARC still in the spool is not readable through ``archive_paths``.
"""

from __future__ import annotations

import hmac
import json

from fastapi import APIRouter, Response
from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import WarcFile
from archive.cdx import CdxEntry, QueryError, query_captures

READABLE_STATES = ("stored", "verified")


def cdxj_line(entry: CdxEntry) -> str:
    fields = {"url": entry.url, "mime": "warc/revisit" if entry.type == "revisit" else entry.mime}
    if entry.status:
        fields["status"] = entry.status
    if entry.digest:
        fields["digest"] = entry.digest
    fields.update(length=str(entry.length), offset=str(entry.offset), filename=entry.filename)
    return f"{entry.urlkey} {entry.timestamp} {json.dumps(fields, ensure_ascii=False)}"


def replay_index_router(catalog: Catalog, key: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/replay-index/{given}/cdx")
    def replay_cdx(given: str, url: str, closest: str | None = None, matchType: str | None = None,
                   limit: int | None = None) -> Response:
        if not hmac.compare_digest(given.encode(), key.encode()):
            return Response("wrong replay index key\n", status_code=403, media_type="text/plain")
        try:
            entries = query_captures(catalog, url, match=matchType or "exact", closest=closest or None,
                                     sort="closest" if closest else None, limit=limit if closest else None,
                                     record_types=("response", "revisit", "resource"))
        except QueryError as exc:
            return Response(f"{exc}\n", status_code=400, media_type="text/plain")
        readable = _readable(catalog, {e.filename for e in entries})
        body = "".join(cdxj_line(e) + "\n" for e in entries if e.filename in readable)
        return Response(body, media_type="text/x-cdxj")

    return router


def _readable(catalog: Catalog, keys: set[str]) -> set[str]:
    if not keys:
        return set()
    with catalog.read_session() as session:
        return set(session.scalars(select(WarcFile.key).where(WarcFile.key.in_(sorted(keys)),
                                                              WarcFile.state.in_(READABLE_STATES))))
