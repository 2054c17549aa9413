"""JSON API for sources, programmes, versions and events (beside the archive API; OpenAPI at ``/docs``).

Reading follows ``Access.can_read``; the one state-changing resource here, alert subscriptions, follows
``Access.write_refusal`` (bearer token, or a web session with its CSRF token).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from archive.catalog import Catalog
from scheduler.openapi import REFUSALS, body
from scheduler.web import data
from scheduler.web.auth import Access
from scheduler.web.export import programmes_csv


class SubscriptionIn(BaseModel):
    name: str = Field(description="A unique name for the subscription.")
    target: str = Field(description="An Apprise URL, or an https:// webhook URL when channel is webhook.")
    channel: str = Field("apprise", description="apprise or webhook.")
    sources: list[str] = Field(default_factory=list, description="Only these source ids (empty: all).")
    kinds: list[str] = Field(default_factory=list, description="Only these event kinds (empty: all).")
    keywords: list[str] = Field(default_factory=list, description="Only events whose text holds one of these.")
    mode: str = Field("immediate", description="immediate, hourly or daily.")


class Refused(Exception):
    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def programme_query(
    source: str | None = None, status: str | None = None,
    q: Annotated[str | None, Query(description="Words that must all appear (Chinese substrings work).")] = None,
    posted_from: Annotated[str | None, Query(description="Posted on or after (YYYY-MM-DD).")] = None,
    posted_to: Annotated[str | None, Query(description="Posted on or before (YYYY-MM-DD).")] = None,
    sort: Annotated[str, Query(description="first_seen, last_seen, posted or title; '-' for descending.")]
    = "-first_seen",
    page: int = 1, per_page: int = 50,
) -> data.ProgrammeQuery:
    return data.ProgrammeQuery(source=source, status=status, q=q, posted_from=posted_from, posted_to=posted_to,
                               sort=sort, page=page, per_page=per_page).check()


def event_query(
    source: str | None = None, kind: str | None = None,
    since: Annotated[str | None, Query(description="On or after this day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, Query(description="On or before this day (YYYY-MM-DD).")] = None,
    include_backfill: bool = False, page: int = 1, per_page: int = 50,
) -> data.EventQuery:
    return data.EventQuery(source=source, kind=kind, since=since, until=until, include_backfill=include_backfill,
                           page=page, per_page=per_page).check()


def json_router(catalog: Catalog, access: Access, read: Any) -> APIRouter:
    """Routes under ``/api``; ``read`` is the app's read-access dependency."""
    router = APIRouter(prefix="/api", tags=["programmes"], responses=REFUSALS)
    readers = [Depends(read)]

    @router.get("/sources", dependencies=readers, summary="Sources with health, last/next run, programme counts")
    def sources() -> list[dict[str, Any]]:
        return data.list_sources(catalog)

    @router.get("/programmes", dependencies=readers, summary="Programmes: filter, search, sort, page")
    def programmes(query: Annotated[data.ProgrammeQuery, Depends(programme_query)]) -> dict[str, Any]:
        rows, more = data.list_programmes(catalog, query)
        return {"page": query.page, "per_page": query.per_page, "has_next": more, "programmes": rows}

    @router.get("/programmes.csv", dependencies=readers, summary="The same selection as CSV",
                response_class=Response, responses=body("text/csv", "One programme a row"))
    def programmes_as_csv(query: Annotated[data.ProgrammeQuery, Depends(programme_query)]) -> Response:
        rows, _ = data.list_programmes(catalog, query)
        return Response(programmes_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="programmes.csv"'})

    @router.get("/programmes/{programme_id}", dependencies=readers,
                summary="A programme with its versions, events and the captures that show them")
    def programme(programme_id: int) -> dict[str, Any]:
        found = data.programme_history(catalog, programme_id)
        if found is None:
            raise data.BadFilter(f"no programme with id {programme_id}")
        return {**found.programme, "versions": found.versions, "events": found.events,
                "captures": found.captures}

    @router.get("/programmes/{programme_id}/versions", dependencies=readers, summary="A programme's versions")
    def versions(programme_id: int) -> list[dict[str, Any]]:
        found = data.programme_history(catalog, programme_id)
        if found is None:
            raise data.BadFilter(f"no programme with id {programme_id}")
        return found.versions

    @router.get("/events", dependencies=readers, summary="Events newest first (what alerts are made of)")
    def events(query: Annotated[data.EventQuery, Depends(event_query)]) -> dict[str, Any]:
        rows, more = data.list_events(catalog, query)
        return {"page": query.page, "per_page": query.per_page, "has_next": more, "events": rows}

    @router.get("/subscriptions", dependencies=readers, summary="Alert subscriptions (targets hidden)")
    def subscriptions() -> list[dict[str, Any]]:
        from scheduler.alerts.subscriptions import list_subscriptions

        return [{"name": s.name, "channel": s.channel, "sources": s.sources, "kinds": s.kinds,
                 "keywords": s.keywords, "mode": s.mode, "active": s.active} for s in list_subscriptions(catalog)]

    @router.post("/subscriptions", status_code=201, summary="Add a subscription (token, or session + CSRF)")
    def add_subscription(body: SubscriptionIn, request: Request) -> dict[str, str]:
        _require_write(access, request)
        from scheduler.alerts.subscriptions import SubscriptionError, subscribe

        try:
            subscribe(catalog, body.name, body.target, channel=body.channel, sources=body.sources,
                      kinds=body.kinds, keywords=body.keywords, mode=body.mode)
        except SubscriptionError as exc:
            raise data.BadFilter(str(exc)) from None
        return {"created": body.name}

    @router.delete("/subscriptions/{name}", summary="Remove a subscription (token, or session + CSRF)")
    def delete_subscription(name: str, request: Request) -> dict[str, str]:
        _require_write(access, request)
        from scheduler.alerts.subscriptions import SubscriptionError, remove_subscription

        try:
            remove_subscription(catalog, name)
        except SubscriptionError as exc:
            raise Refused(str(exc), 404) from None
        return {"removed": name}

    return router


def _require_write(access: Access, request: Request) -> None:
    refusal = access.write_refusal(request)
    if refusal is not None:
        raise Refused(refusal, 401 if "sign in" in refusal else 403)


def refused_response(_request: Request, exc: Exception) -> JSONResponse:
    status = exc.status if isinstance(exc, Refused) else 400
    return JSONResponse({"detail": str(exc)}, status_code=status)
