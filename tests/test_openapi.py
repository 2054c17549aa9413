"""The served OpenAPI document is valid (openapi-spec-validator) and says what the routes really answer.

Every documented operation is called (a small archive from tests/warc_factory.py in a local store, the app in
process) with good and bad input; each answer's status must be one the document lists for that operation, and
its Content-Type one of those listed for that status. A route added without a sample here fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from archive.catalog import open_catalog
from archive.cdx import query_captures
from archive.spool import sync
from archive.storage import LocalStorage
from scheduler.api import create_app
from scheduler.settings import Settings
from tests.warc_factory import write_spool_warcs

TOKEN = "openapi-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGE = "http://127.0.0.1:8000/list/1.html"
SOURCE = "demo-static"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("openapi")
    write_spool_warcs(root / "spool", SOURCE, pages=3)
    catalog = open_catalog(f"sqlite:///{root / 'catalog.sqlite'}")
    storage = LocalStorage(root / "store")
    assert sync(catalog, storage, root / "spool").ok
    settings = Settings(data_dir=Path(root), api={"token": TOKEN, "public_url": "http://testserver"},
                        replay={"public_url": "http://replay.test"})
    with TestClient(create_app(settings, catalog=catalog, storage=storage)) as c:
        c.record_id = query_captures(catalog, PAGE)[0].record_id.strip("<>")  # type: ignore[attr-defined]
        yield c
    catalog.dispose()


def samples(record_id: str) -> dict[tuple[str, str], list[tuple[str, dict[str, Any]]]]:
    """(method, documented path) → requests to make: (URL, extra arguments to the client)."""
    return {
        ("get", "/cdx"): [(f"/cdx?url={PAGE}", {}), (f"/cdx?url={PAGE}&output=json", {}),
                          (f"/cdx?url={PAGE}&output=text", {}), ("/cdx?url=file:///etc/passwd", {}),
                          ("/cdx?url=http://example.com/&limit=-1", {}), (f"/cdx?url={PAGE}", {"headers": {}})],
        ("get", "/timemap/link/{url}"): [(f"/timemap/link/{PAGE}", {}), ("/timemap/link/http://example.com/", {})],
        ("get", "/timegate/{url}"): [(f"/timegate/{PAGE}", {}),
                                     (f"/timegate/{PAGE}", {"headers": {**AUTH, "Accept-Datetime": "soon"}})],
        ("get", "/records/{record_id}/payload"): [(f"/records/{record_id}/payload", {}),
                                                  ("/records/urn:uuid:0/payload", {})],
        ("get", "/records/{record_id}"): [(f"/records/{record_id}", {}), ("/records/not-an-id", {})],
        ("get", "/screenshot"): [(f"/screenshot?url={PAGE}", {}), ("/screenshot?url=http://example.com/", {})],
        ("get", "/export/wacz"): [(f"/export/wacz?source={SOURCE}", {}), ("/export/wacz", {}),
                                  ("/export/wacz?source=nothing-here", {})],
        ("get", "/feeds/atom.xml"): [("/feeds/atom.xml", {})],
        ("get", "/feeds/{source}.atom"): [(f"/feeds/{SOURCE}.atom", {}), ("/feeds/..%2fetc.atom", {})],
        ("get", "/api/sources"): [("/api/sources", {})],
        ("get", "/api/programmes"): [("/api/programmes", {}), ("/api/programmes?sort=nonsense", {})],
        ("get", "/api/programmes.csv"): [("/api/programmes.csv", {})],
        ("get", "/api/programmes/{programme_id}"): [("/api/programmes/999", {}), ("/api/programmes/x", {})],
        ("get", "/api/programmes/{programme_id}/versions"): [("/api/programmes/999/versions", {})],
        ("get", "/api/events"): [("/api/events", {}), ("/api/events?since=someday", {})],
        ("get", "/api/subscriptions"): [("/api/subscriptions", {})],
        ("post", "/api/subscriptions"): [("/api/subscriptions", {"json": {"name": "x"}}),
                                         ("/api/subscriptions", {"json": {"name": "ops", "target": "json://127.0.0.1/"}})],
        ("delete", "/api/subscriptions/{name}"): [("/api/subscriptions/ops", {}), ("/api/subscriptions/ops", {})],
    }


def _media_types(response: dict[str, Any]) -> set[str]:
    return set(response.get("content", {}))


def test_the_document_is_valid_openapi(client: TestClient) -> None:
    doc = client.get("/openapi.json", headers=AUTH).json()
    validate(doc)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer" and doc["security"]


def test_every_operation_answers_as_documented(client: TestClient) -> None:
    doc = client.get("/openapi.json", headers=AUTH).json()
    todo = samples(client.record_id)  # type: ignore[attr-defined]
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == set(todo), f"operations without samples: {documented - set(todo)}; " \
                                    f"samples without operations: {set(todo) - documented}"
    for (method, path), requests in todo.items():
        responses = doc["paths"][path][method]["responses"]
        for url, kwargs in requests:
            answer = client.request(method.upper(), url, **{"headers": AUTH, "follow_redirects": False, **kwargs})
            where = f"{method.upper()} {url} answered {answer.status_code}"
            assert str(answer.status_code) in responses, f"{where}, documented: {sorted(responses)}"
            listed = _media_types(responses[str(answer.status_code)])
            if not listed:
                assert not answer.content, f"{where} with a body, documented without one"
                continue
            media = answer.headers["content-type"].split(";")[0].strip()
            assert media in listed or "*/*" in listed, f"{where} as {media}, documented: {sorted(listed)}"
            schema = responses[str(answer.status_code)]["content"].get("application/json", {}).get("schema", {})
            if media == "application/json" and "$ref" not in str(schema):
                jsonschema.validate(answer.json(), schema)
