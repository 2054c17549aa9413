"""Sign-in and sign-out, alert subscriptions, "Re-crawl now" (the pages that change state), and the API docs page.

Forms post ``application/x-www-form-urlencoded`` bodies (parsed here, no multipart dependency). Every form
that changes state carries the session's CSRF token; ``Access.write_refusal`` checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from archive.catalog import Catalog
from scheduler.web.auth import SESSION_COOKIE, Access

MAX_FORM = 64 * 1024


async def form_fields(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a full URL) may be a redirect target after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def account_routes(router: APIRouter, open_router: APIRouter, catalog: Catalog, access: Access,
                   render: Callable[..., Response], app: FastAPI) -> None:
    """Register the routes: ``router`` needs read access, ``open_router`` does not."""

    async def change_form(request: Request) -> tuple[dict[str, str], Response | None]:
        """The posted form, and the refusal page if its session and CSRF token do not allow a change."""
        form = await form_fields(request)
        refusal = access.write_refusal(request, form.get("csrf"))
        return form, None if refusal is None else render(request, "error.html", 403, title="Refused",
                                                          message=refusal)

    @open_router.get("/login")
    def login_page(request: Request, next: str = "/") -> Response:
        return render(request, "login.html", title="Sign in", next=safe_next(next), error="")

    @open_router.post("/login")
    async def login(request: Request) -> Response:
        form = await form_fields(request)
        target = safe_next(form.get("next"))
        if not access.check_token(form.get("token", "")):
            message = ("Sign-in is off: no api.token is configured." if not access.token
                       else "That is not the token. Ask whoever runs listwatch for it.")
            return render(request, "login.html", 401, title="Sign in", next=target, error=message)
        answer = RedirectResponse(target, status_code=303)
        answer.set_cookie(SESSION_COOKIE, access.new_session(), max_age=access.session_ttl, httponly=True,
                          samesite="lax", secure=request.url.scheme == "https", path="/")
        return answer

    @open_router.post("/logout")
    async def logout(request: Request) -> Response:
        _, refused = await change_form(request)
        if refused is not None:
            return refused
        answer = RedirectResponse("/login", status_code=303)
        answer.delete_cookie(SESSION_COOKIE, path="/")
        return answer

    @router.get("/subscriptions")
    def subscriptions_page(request: Request) -> Response:
        from scheduler.alerts.subscriptions import list_subscriptions

        return render(request, "subscriptions.html", title="Alert subscriptions", subs=list_subscriptions(catalog),
                      message="", error="")

    @router.post("/subscriptions")
    async def add_subscription(request: Request) -> Response:
        from scheduler.alerts.subscriptions import SubscriptionError, list_subscriptions, subscribe

        form, refused = await change_form(request)
        if refused is not None:
            return refused
        error = message = ""
        try:
            subscribe(catalog, form.get("name", ""), form.get("target", ""), channel=form.get("channel", "apprise"),
                      sources=_list(form.get("sources", "")), kinds=_list(form.get("kinds", "")),
                      keywords=_list(form.get("keywords", "")), mode=form.get("mode", "immediate"))
            message = f"Subscription {form.get('name', '').strip()!r} added."
        except SubscriptionError as exc:
            error = str(exc)
        return render(request, "subscriptions.html", 400 if error else 200, title="Alert subscriptions",
                      subs=list_subscriptions(catalog), message=message, error=error)

    async def form_action(request: Request, action: Callable[[], object], error: type[Exception], status: int,
                          title: str, done: str) -> Response:
        """A change that takes no form fields: refused without session and CSRF, ``error`` shown as a page with
        ``status``, else a redirect to ``done``."""
        _, refused = await change_form(request)
        if refused is not None:
            return refused
        try:
            action()
        except error as exc:
            return render(request, "error.html", status, title=title, message=str(exc))
        return RedirectResponse(done, status_code=303)

    @router.post("/subscriptions/{name}/delete")
    async def delete_subscription(request: Request, name: str) -> Response:
        from scheduler.alerts.subscriptions import SubscriptionError, remove_subscription

        return await form_action(request, lambda: remove_subscription(catalog, name), SubscriptionError, 404,
                                 "Not found", "/subscriptions")

    @router.post("/sources/{source_id}/recrawl")
    async def recrawl(request: Request, source_id: str) -> Response:
        from scheduler.recrawl import RecrawlError, request_recrawl

        return await form_action(request, lambda: request_recrawl(catalog, source_id), RecrawlError, 409,
                                 "Not scheduled", "/sources?" + urlencode({"recrawl": source_id}))

    @router.get("/docs")
    def docs_page(request: Request) -> Response:
        return render(request, "docs.html", title="API", operations=operations(app.openapi()))


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAPI document's operations, flattened for the docs page."""
    out = []
    for path, methods in sorted(spec.get("paths", {}).items()):
        for method, op in methods.items():
            params = [{"name": p.get("name"), "in": p.get("in"), "required": p.get("required", False),
                       "description": p.get("description", "")} for p in op.get("parameters", [])]
            out.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                        "description": op.get("description", ""), "params": params,
                        "body": "requestBody" in op})
    return out
