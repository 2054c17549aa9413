"""Server-rendered pages: sources, programmes, a programme, changes, captures, replay with a banner, charts.

Every page is a GET whose URL holds its whole state (filters, sort, page), so views can be bookmarked and
shared. A visitor who may not read is sent to ``/login``. Sign-in, sign-out, subscriptions and the API docs
page live in ``pages_account``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask

from archive.catalog import Catalog
from archive.cdx import QueryError, check_url, query_captures
from archive.links import replay_link
from archive.storage import Storage
from scheduler.settings import Settings
from scheduler.web import charts, data
from scheduler.web.auth import Access
from scheduler.web.diffs import event_diffs, field_diffs

HERE = Path(__file__).resolve().parent
REPLAYABLE = ("response", "revisit")


class LoginRequired(Exception):
    """The visitor may not read: send them to sign in, then back."""


def templates() -> Jinja2Templates:
    env = Jinja2Templates(directory=HERE / "templates")
    env.env.globals["weekly"] = charts.weekly
    env.env.globals["bar_chart"] = charts.bar_chart
    env.env.globals["stacked_chart"] = charts.stacked_chart
    env.env.filters["when"] = when
    return env


def context_maker(settings: Settings, access: Access) -> Callable[..., dict[str, Any]]:
    replay_base = settings.replay.public_url.rstrip("/")

    def make(request: Request, **extra: Any) -> dict[str, Any]:
        sid = access.session(request)
        sign = access.via_link_only(request)

        def href(path: str, **params: Any) -> str:
            query = urlencode({k: v for k, v in params.items() if v not in (None, "", False)})
            url = f"{path}?{query}" if query else path
            return access.links.sign_path(url) if sign else url

        def replay(url: str, timestamp: str) -> str:
            return replay_link(replay_base, url, timestamp)

        return {"request": request, "href": href, "replay": replay, "signed_in": sid is not None,
                "csrf": access.csrf_token(sid) if sid else "", "open_read": not access.required,
                "can_sign_in": bool(access.token), "path": request.url.path, **extra}

    return make


def page_router(app: FastAPI, settings: Settings, catalog: Catalog, store: Storage, access: Access) -> APIRouter:
    """The HTML pages (left out of the OpenAPI document)."""
    from scheduler.web.pages_account import account_routes

    views = templates()
    ctx = context_maker(settings, access)

    def reader(request: Request) -> None:
        if not access.can_read(request):
            raise LoginRequired()

    router = APIRouter(include_in_schema=False, dependencies=[Depends(reader)])
    open_router = APIRouter(include_in_schema=False)

    @app.exception_handler(LoginRequired)
    def _login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        return views.TemplateResponse(request, name, ctx(request, **values), status_code=status)

    @app.exception_handler(data.BadFilter)
    def _bad_filter(request: Request, exc: data.BadFilter) -> Response:
        if request.url.path.startswith("/api/"):
            from scheduler.web.jsonapi import refused_response

            return refused_response(request, exc)
        return render(request, "error.html", 400, title="Not valid", message=str(exc))

    @router.get("/")
    def home(request: Request) -> Response:
        return sources_page(request, None)

    @router.get("/sources")
    def sources_page(request: Request, recrawl: str | None = None) -> Response:
        from scheduler.queue import queue_state
        from scheduler.worker_registry import workers_state

        sources = data.list_sources(catalog)
        message = (f"Re-crawl of {recrawl} requested: `listwatch run` starts it within seconds."
                   if recrawl in {s["id"] for s in sources} else "")
        return render(request, "sources.html", title="Sources", sources=sources, message=message,
                      posted_weekly=data.postings_per_week(catalog), queue=queue_state(catalog),
                      workers=workers_state(catalog, settings.distributed.stalled_after))

    @router.get("/programmes")
    def programmes_page(request: Request, source: str | None = None, status: str | None = None,
                        q: str | None = None, posted_from: str | None = None, posted_to: str | None = None,
                        sort: str = "-first_seen", page: int = 1, per_page: int = 50) -> Response:
        query = data.ProgrammeQuery(source=source or None, status=status or None, q=q or None,
                                    posted_from=posted_from or None, posted_to=posted_to or None, sort=sort,
                                    page=page, per_page=per_page)
        rows, more = data.list_programmes(catalog, query)
        return render(request, "programmes.html", title="Programmes", rows=rows, more=more, query=query,
                      source_ids=data.source_ids(catalog), statuses=data.STATUSES)

    @router.get("/programmes/{programme_id}")
    def programme_page(request: Request, programme_id: int) -> Response:
        found = data.programme_history(catalog, programme_id)
        if found is None:
            return render(request, "error.html", 404, title="Not found",
                          message=f"No programme with id {programme_id}.")
        timeline = []
        previous: dict[str, Any] = {}
        for version in found.versions:
            timeline.append({**version, "diffs": field_diffs(previous, version["fields"]) if previous else []})
            previous = version["fields"]
        return render(request, "programme.html", title=found.programme["title"] or found.programme["key"],
                      p=found.programme, timeline=list(reversed(timeline)),
                      events=[{**e, "diffs": event_diffs(e["changes"])} for e in reversed(found.events)],
                      captures=found.captures)

    @router.get("/programmes/{programme_id}/evidence.wacz")
    def programme_wacz(programme_id: int) -> Response:
        from scheduler.web.evidence import programme_evidence_wacz

        path = programme_evidence_wacz(catalog, store, programme_id)
        return FileResponse(path, media_type="application/wacz", filename=f"programme-{programme_id}.wacz",
                            background=BackgroundTask(_remove_tree, path.parent))

    @router.get("/changes")
    def changes_page(request: Request, source: str | None = None, kind: str | None = None,
                     since: str | None = None, until: str | None = None, include_backfill: bool = False,
                     page: int = 1, per_page: int = 50) -> Response:
        query = data.EventQuery(source=source or None, kind=kind or None, since=since or None,
                                until=until or None, include_backfill=include_backfill, page=page,
                                per_page=per_page)
        rows, more = data.list_events(catalog, query)
        rows = [{**e, "diffs": event_diffs(e["changes"])} for e in rows]
        feed = "/feeds/atom.xml" if not query.source else f"/feeds/{query.source}.atom"
        feed_link = access.links.sign_path(feed) if access.session(request) or access.bearer(request) else feed
        source_ids = data.source_ids(catalog)
        # What this page holds at a glance, in the kinds' usual order, before the list itself.
        counts = Counter(e["kind"] for e in rows)
        tally = [(k, counts[k]) for k in (*data.EVENT_KINDS, *sorted(set(counts) - set(data.EVENT_KINDS)))
                 if counts[k]]
        return render(request, "changes.html", title="Changes", rows=rows, more=more, query=query, tally=tally,
                      kinds=data.EVENT_KINDS, source_ids=source_ids, feed_link=feed_link)

    @router.get("/captures")
    def captures_page(request: Request, url: str | None = None) -> Response:
        if not url:
            return render(request, "captures.html", title="Captures", url="", months=[], entries=[])
        try:
            entries = query_captures(catalog, check_url(url), record_types=REPLAYABLE, limit=5000)
        except QueryError as exc:
            raise data.BadFilter(str(exc)) from None
        return render(request, "captures.html", title=f"Captures of {url}", url=url, entries=entries,
                      months=calendar(entries))

    @router.get("/capture/{record_id:path}")
    def capture_page(request: Request, record_id: str) -> Response:
        from scheduler.web.replayview import capture_view

        view = capture_view(catalog, record_id)
        if view is None:
            return render(request, "error.html", 404, title="Not found", message=f"No capture {record_id[:100]}.")
        return render(request, "capture.html", title=f"Capture of {view['capture']['url']}", **view)

    @router.get("/charts")
    def charts_page(request: Request) -> Response:
        postings = data.postings_per_week(catalog)
        weeks = sorted(w for counts in postings.values() for w in counts)
        # One week range and one scale for every source's chart: the same place means the same week.
        span = (weeks[0], weeks[-1]) if weeks else None
        top = max((n for counts in postings.values() for n in counts.values()), default=1)
        return render(request, "charts.html", title="Charts", postings=postings, span=span, top=top,
                      changes=data.changes_per_week(catalog), runs=data.runs(catalog))

    account_routes(router, open_router, catalog, access, render, app)
    outer = APIRouter(include_in_schema=False)
    outer.include_router(open_router)
    outer.include_router(router)
    return outer


def when(value: str | None) -> str:
    """``2026-03-16T01:00:00+00:00`` → ``2026-03-16 01:00 UTC`` (catalog times are UTC)."""
    return f"{value[:10]} {value[11:16]} UTC" if value else ""


def calendar(entries: list[Any]) -> list[dict[str, Any]]:
    """Captures grouped as months of weeks of days (Monday first), for a calendar-like view."""
    import calendar as cal

    by_day: dict[str, list[Any]] = {}
    for entry in entries:
        by_day.setdefault(entry.timestamp[:8], []).append(entry)
    months: dict[str, list[list[dict[str, Any]]]] = {}
    for ym in sorted({d[:6] for d in by_day}):
        year, month = int(ym[:4]), int(ym[4:6])
        weeks = []
        for week in cal.Calendar().monthdayscalendar(year, month):
            weeks.append([{"day": d, "captures": by_day.get(f"{ym}{d:02d}", []) if d else []} for d in week])
        months[ym] = weeks
    return [{"label": f"{cal.month_name[int(k[4:])]} {k[:4]}", "weeks": v} for k, v in months.items()]


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
