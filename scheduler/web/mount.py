"""Mount the web interface (JSON API, pages, static files) on the archive API's FastAPI app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from archive.catalog import Catalog
from archive.storage import Storage
from scheduler.settings import Settings
from scheduler.web.auth import Access
from scheduler.web.data import BadFilter
from scheduler.web.jsonapi import Refused, json_router, refused_response
from scheduler.web.replayindex import replay_index_router
from scheduler.web.security_headers import SecurityHeaders
from scheduler.web.signing import replay_index_key

HERE = Path(__file__).resolve().parent


def mount_web(app: FastAPI, settings: Settings, catalog: Catalog, store: Storage, access: Access,
              read: Callable[..., Any]) -> None:
    """Add the JSON API, the pages and the static files to the archive API's app."""
    from scheduler.web.pages import page_router

    app.add_exception_handler(BadFilter, refused_response)    # pages put an HTML answer in front of this one
    app.add_exception_handler(Refused, refused_response)
    app.include_router(json_router(catalog, access, read))
    app.include_router(replay_index_router(catalog, replay_index_key(settings)))
    app.include_router(page_router(app, settings, catalog, store, access))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SecurityHeaders)    # no framing of the UI; archived payloads sandboxed
