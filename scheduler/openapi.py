"""What the OpenAPI document (``/openapi.json``) says the API answers, where FastAPI cannot tell by itself.

FastAPI documents every route as ``200 application/json`` plus ``422``. Routes that answer link-format, WARC,
PNG, WACZ, Atom or CSV, the TimeGate's 302, and the ``{"detail": ...}`` refusals (400, 401, 404, …) the app's
exception handlers make are declared here, so a client generated from the document, or one that checks
answers against it, sees what is really sent (``tests/test_openapi.py`` checks each route's real answers).
"""

from __future__ import annotations

from typing import Any

_DETAIL = {"application/json": {"schema": {"type": "object", "required": ["detail"],
                                           "properties": {"detail": {"type": "string"}}}}}


def _refusal(why: str) -> dict[str, Any]:
    return {"description": why, "content": _DETAIL}


# Every route can refuse these; the archive's routes can also fail to read the store.
REFUSALS: dict[int | str, dict[str, Any]] = {
    400: _refusal("Bad input: what is wrong and what would be valid"),
    401: _refusal("Missing or wrong bearer token (or no sign-in, or no valid signed link)"),
    403: _refusal("Signed in, but the change lacks its CSRF token"),
    404: _refusal("Nothing archived or recorded matches"),
}
STORE_FAILURES: dict[int | str, dict[str, Any]] = {
    500: _refusal("A stored record failed its integrity check"),
    502: _refusal("The store answered with an error"),
    503: _refusal("The store is unavailable"),
}


def body(media_type: str, description: str, *, binary: bool = False) -> dict[int | str, dict[str, Any]]:
    """A 200 answer of ``media_type`` (a string body, or bytes when ``binary``)."""
    schema = {"type": "string", "format": "binary"} if binary else {"type": "string"}
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


TIMEGATE_REDIRECT: dict[int | str, dict[str, Any]] = {302: {
    "description": "The memento nearest Accept-Datetime (RFC 7089 TimeGate, 302 style)",
    "headers": {name: {"schema": {"type": "string"}, "description": what} for name, what in (
        ("Location", "The memento in replay"),
        ("Vary", "accept-datetime"),
        ("Link", "rel=original, rel=timemap and rel=memento with its datetime"))},
}}


def with_bearer(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the bearer token (``api.token``) every documented route takes."""
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "api.token (unless api.require_token is false)"}}
    schema["security"] = [{"bearer": []}]
    return schema
