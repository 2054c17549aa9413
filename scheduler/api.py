"""The HTTP API for archivists (FastAPI): CDX queries, Memento, raw records, payloads, screenshots, WACZ, feeds.

Every route but ``/healthz`` needs ``Authorization: Bearer <api.token>`` (or a web sign-in, or a signed link for
that path: ``scheduler/web/auth.py``) unless ``api.require_token`` is false; that includes the OpenAPI document
(``/openapi.json``, shown as a page at ``/docs`` without scripts from a CDN). The web interface and the JSON API
for programmes and events are mounted from ``scheduler/web``. Bad input gets a 4xx JSON answer
``{"detail": "..."}`` that says what is wrong; record ids and URLs are only ever looked up in the catalog, so no
parameter can name a file.

Run it with ``listwatch serve`` (uvicorn on ``api.host``/``api.port``).
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.background import BackgroundTask

from archive.catalog import Catalog, open_catalog
from archive.cdx import QueryError, check_url, content_type, format_entries, query_captures
from archive.links import replay_link
from archive.retrieval import (
    NotFound,
    RecordIntegrityError,
    read_payload,
    read_record,
    rfc1123,
    screenshot,
    timegate,
    timemap,
)
from archive.storage import Storage, StorageError, StorageUnavailable, open_storage
from archive.wacz import ExportError, export_wacz
from scheduler.openapi import REFUSALS, STORE_FAILURES, TIMEGATE_REDIRECT, body, with_bearer
from scheduler.settings import Settings
from scheduler.web.auth import Access
from scheduler.web.mount import mount_web
from scheduler.web.security_headers import UNTRUSTED

RECORD_ID = re.compile(r"^<?urn:[A-Za-z0-9][A-Za-z0-9.+-]*:[A-Za-z0-9._~:+-]{1,200}>?$")
SOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ApiConfigError(RuntimeError):
    """The API cannot start with these settings (e.g. a token is required but none is set)."""


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _token_check(settings: Settings) -> Access:
    if settings.api.require_token and not settings.api.token:
        raise ApiConfigError("api.require_token is true but api.token is not set: set LISTWATCH_API__TOKEN "
                             "(or api.token in listwatch.yaml), or set api.require_token: false for a trusted network")
    return Access(settings)


class _Unauthorized(Exception):
    pass


def _target(url: str, request: Request) -> str:
    """The archived URL from a ``{url:path}`` parameter, with the request's query string put back."""
    query = request.url.query
    return check_url(f"{url}?{query}" if query else url)


def _check_id(value: str, what: str = "record id") -> str:
    if not RECORD_ID.match(value):
        raise QueryError(f"malformed {what} {value[:100]!r}: expected urn:uuid:… (a WARC-Record-ID)")
    return value


def create_app(settings: Settings, *, catalog: Catalog | None = None, storage: Storage | None = None) -> FastAPI:
    """The API app; refuses (ApiConfigError) to build when a token is required but not configured."""
    access = _token_check(settings)

    def auth(request: Request) -> None:
        """Read access: the token, a web sign-in, a signed link for this path, or open reading (see web.auth)."""
        if not access.can_read(request):
            raise _Unauthorized()

    catalog = catalog or open_catalog(settings.catalog)
    store = storage or open_storage(settings)
    api_base, replay_base = settings.api.public_url.rstrip("/"), settings.replay.public_url.rstrip("/")
    app = FastAPI(title="listwatch archive API", version="0.1.0", openapi_url=None, docs_url=None, redoc_url=None,
                  description="Find, fetch and export archived captures. Bearer token required (see api.token).")
    router = APIRouter(dependencies=[Depends(auth)], responses=REFUSALS)

    @app.exception_handler(_Unauthorized)
    def _unauthorized(_request: Request, _exc: _Unauthorized) -> JSONResponse:
        return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="listwatch"'})

    @app.exception_handler(QueryError)
    def _query_error(_request: Request, exc: QueryError) -> JSONResponse:
        return _bad(str(exc))

    @app.exception_handler(NotFound)
    def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return _bad(str(exc), 404)

    @app.exception_handler(RecordIntegrityError)
    def _integrity(_request: Request, exc: RecordIntegrityError) -> JSONResponse:
        return _bad(f"stored record failed its integrity check: {exc}", 500)

    @app.exception_handler(StorageError)
    def _storage(_request: Request, exc: StorageError) -> JSONResponse:
        status = 503 if isinstance(exc, StorageUnavailable) else 502
        return _bad(f"the store could not serve this: {exc}", status)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(with_bearer(app.openapi()))

    @router.get("/cdx", summary="Captures of a URL (pywb CDX server API)", response_class=Response,
                responses={200: {"description": "One capture a line: CDXJ (output=cdxj), JSON lines (json) or "
                                 "space-separated fields (text)", "content": {
                    media: {"schema": {"type": "string"}} for media in (
                        "text/x-cdxj", "application/x-ndjson", "text/plain")}}})
    def cdx(
        url: str, matchType: str | None = None, from_: Annotated[str | None, Query(alias="from")] = None,
        to: str | None = None, limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
        sort: str | None = None, closest: str | None = None, output: str = "cdxj",
        filter: Annotated[list[str] | None, Query()] = None, fl: str | None = None,
        source: str | None = None,
    ) -> Response:
        entries = query_captures(catalog, url, match=matchType or "exact", from_=from_, to=to, limit=limit,
                                 sort=sort, closest=closest, filters=filter or (), source_id=source)
        lines = list(format_entries(entries, output, fl))
        return Response("".join(line + "\n" for line in lines), media_type=content_type(output))

    @router.get("/timemap/link/{url:path}", summary="Memento TimeMap (application/link-format)",
                response_class=Response, responses=body("application/link-format", "RFC 7089 TimeMap"))
    def timemap_route(url: str, request: Request) -> Response:
        body = timemap(catalog, _target(url, request), api_base=api_base, replay_base=replay_base)
        return Response(body, media_type="application/link-format")

    @router.get("/timegate/{url:path}", summary="Memento TimeGate: 302 to the capture nearest Accept-Datetime",
                status_code=302, response_class=Response, responses=TIMEGATE_REDIRECT)
    def timegate_route(url: str, request: Request) -> Response:
        target = _target(url, request)
        wanted: datetime | None = None
        header = request.headers.get("accept-datetime")
        if header:
            try:
                wanted = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                raise QueryError(f"Accept-Datetime must be an RFC 1123 date, got {header[:80]!r}") from None
        entry = timegate(catalog, target, wanted)
        location = replay_link(replay_base, entry.url, entry.timestamp)
        links = (f'<{target}>; rel="original", <{api_base}/timemap/link/{target}>; rel="timemap"; '
                 f'type="application/link-format", <{location}>; rel="memento"; datetime="{rfc1123(entry.moment)}"')
        return Response(status_code=302, headers={"Location": location, "Vary": "accept-datetime", "Link": links})

    # Memento clients ask TimeGates and TimeMaps with HEAD (RFC 7089 examples; memento_client does): answer it
    # like GET (uvicorn drops the body). Not in the OpenAPI document: one operation per path and method there.
    for path, route in (("/timemap/link/{url:path}", timemap_route), ("/timegate/{url:path}", timegate_route)):
        router.add_api_route(path, route, methods=["HEAD"], include_in_schema=False)

    @router.get("/records/{record_id:path}/payload", summary="The HTTP payload of a record (revisits resolved)",
                response_class=Response, responses={**body("*/*", "The archived payload, with its own Content-Type",
                                                           binary=True), **STORE_FAILURES})
    def payload_route(record_id: str) -> Response:
        payload = read_payload(catalog, store, _check_id(record_id))
        # The archived bytes are a hostile site's, served on this app's origin: marked UNTRUSTED, they get the
        # headers that keep a browser from running their scripts here or sniffing them into another type.
        headers = {"X-Archive-Record-Id": payload.source_record_id.strip("<>"),
                   "X-Archive-Status": str(payload.status or ""),
                   "Memento-Datetime": rfc1123(_moment(payload.timestamp)), **UNTRUSTED}
        encoding = payload.header("Content-Encoding")
        if encoding:
            headers["Content-Encoding"] = encoding
        return Response(payload.body, media_type=payload.header("Content-Type") or "application/octet-stream",
                        headers=headers)

    @router.get("/records/{record_id:path}", summary="A raw WARC record (uncompressed, digest-checked)",
                response_class=Response,
                responses={**body("application/warc", "The WARC record", binary=True), **STORE_FAILURES})
    def record_route(record_id: str) -> Response:
        data = read_record(catalog, store, _check_id(record_id))
        return Response(data, media_type="application/warc")

    @router.get("/screenshot", summary="The PNG screenshot of a rendered page nearest a time",
                response_class=Response,
                responses={**body("image/png", "The screenshot", binary=True), **STORE_FAILURES})
    def screenshot_route(url: str, at: str | None = None) -> Response:
        return Response(screenshot(catalog, store, url, at), media_type="image/png")

    @router.get("/export/wacz", summary="A WACZ of a source (or URL prefix) over a time range",
                response_class=Response,
                responses={**body("application/wacz", "A WACZ 1.1.1 package", binary=True), **STORE_FAILURES})
    def export_route(source: str | None = None, url: str | None = None,
                     from_: Annotated[str | None, Query(alias="from")] = None, to: str | None = None) -> Response:
        if source is None and url is None:
            raise QueryError("give source=<source id> and/or url=<URL prefix>")
        if source is not None and not SOURCE_ID.match(source):
            raise QueryError(f"malformed source id {source[:80]!r}")
        workdir = Path(tempfile.mkdtemp(prefix="listwatch-wacz-"))
        out = workdir / f"{source or 'export'}.wacz"
        try:
            export_wacz(catalog, store, out, source_id=source, url_prefix=url, from_=from_, to=to)
        except ExportError as exc:
            _cleanup(workdir)
            return _bad(str(exc), 404)
        except BaseException:
            _cleanup(workdir)
            raise
        return FileResponse(out, media_type="application/wacz", filename=out.name,
                            background=BackgroundTask(_cleanup, workdir))

    @router.get("/feeds/atom.xml", summary="Atom feed of all events", response_class=Response,
                responses=body("application/atom+xml", "Atom (RFC 4287)"))
    def feed_all() -> Response:
        return _feed(catalog, settings, None)

    @router.get("/feeds/{source}.atom", summary="Atom feed of one source's events", response_class=Response,
                responses=body("application/atom+xml", "Atom (RFC 4287)"))
    def feed_source(source: str) -> Response:
        if not SOURCE_ID.match(source):
            raise QueryError(f"malformed source id {source[:80]!r}")
        return _feed(catalog, settings, source)

    app.include_router(router)
    mount_web(app, settings, catalog, store, access, auth)
    return app


def _moment(timestamp: str) -> datetime:
    from archive.cdx import ts_datetime

    return ts_datetime(timestamp)


def _cleanup(workdir: Path) -> None:
    for path in workdir.glob("*"):
        path.unlink(missing_ok=True)
    workdir.rmdir()


def _feed(catalog: Catalog, settings: Settings, source: str | None) -> Response:
    try:
        from scheduler.alerts.feed import atom_feed
    except ImportError:
        return PlainTextResponse("Atom feeds are not available in this build", status_code=501)
    body = atom_feed(catalog, settings, source)
    return Response(body, media_type="application/atom+xml")
