"""The evidence-link key on a PostgreSQL catalog is one for every machine (real PostgreSQL, real processes).

Machine A signs an alert's evidence link the way the scheduler does (``signed_link``); ``listwatch serve`` on
machine B (its own DATA_DIR, holding a different local key from its single-machine days) accepts it. A had a
DATA_DIR key before and was the first to ask, so the catalog key is A's old key: links A sent before still
verify. A fresh machine C gets the same key and writes no key file. The key is in no log.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from archive.catalog import open_catalog
from archive.catalog.models import SharedSecret
from scheduler.settings import load_settings
from scheduler.web.signing import LinkSigner, secret_path, signed_link
from tests import postgres
from tests.archive_tools import free_port, http_get
from tests.conftest import ROOT
from tests.postgres import postgres_url  # noqa: F401  (fixture)
from tests.web_support import running

TOKEN = "shared-secret-test-token"
OLD_A = "key-of-machine-a-from-its-single-machine-days"
OLD_B = "key-of-machine-b-from-its-single-machine-days"


def _machine(root: Path, local_key: str | None) -> Path:
    if local_key is not None:
        (root / "secrets").mkdir(parents=True)
        (root / "secrets" / "link-secret").write_text(local_key + "\n", encoding="utf-8")
    root.mkdir(exist_ok=True)
    return root


def test_links_signed_on_one_machine_verify_on_another(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    postgres.reset_database(postgres_url)
    a, b, c = _machine(tmp_path / "a", OLD_A), _machine(tmp_path / "b", OLD_B), _machine(tmp_path / "c", None)
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    settings_a = load_settings(tmp_path / "none.yaml", data_dir=a, catalog_url=postgres_url,
                               api={"public_url": web})
    alert_link = signed_link(settings_a, f"{web}/api/sources")  # as the scheduler signs an alert's links
    sent_before = web + LinkSigner(OLD_A, 3600).sign_path("/api/sources")
    b_own_old = web + LinkSigner(OLD_B, 3600).sign_path("/api/sources")

    env = {**os.environ, "LISTWATCH_DATA_DIR": str(b), "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"),
           "LISTWATCH_CATALOG_URL": postgres_url, "LISTWATCH_API__TOKEN": TOKEN, "LISTWATCH_API__PORT": str(port),
           "LISTWATCH_API__PUBLIC_URL": web}
    with running(["serve"], env, f"{web}/healthz", tmp_path / "serve.log"):
        assert http_get(alert_link)[0] == 200, "a link signed on machine A is refused by serve on machine B"
        assert http_get(sent_before)[0] == 200, "links machine A sent before the catalog key no longer verify"
        assert http_get(f"{web}/api/sources")[0] == 401
        assert http_get(b_own_old)[0] == 401, "serve on B still accepts its own DATA_DIR key"

    fresh = subprocess.run(
        [sys.executable, "-c", "import hashlib; from scheduler.settings import load_settings; "
         "from scheduler.web.signing import link_secret; "
         "print(hashlib.sha256(link_secret(load_settings(None)).encode()).hexdigest())"],
        cwd=ROOT, env={**env, "LISTWATCH_DATA_DIR": str(c)}, capture_output=True, text=True, timeout=120, check=True)
    assert fresh.stdout.strip() == hashlib.sha256(OLD_A.encode()).hexdigest(), "machine C got another key"
    assert not secret_path(load_settings(tmp_path / "none.yaml", data_dir=c)).exists(), "C wrote a local key"
    assert (b / "secrets" / "link-secret").read_text(encoding="utf-8").strip() == OLD_B   # never overwritten

    catalog = open_catalog(postgres_url)
    with catalog.read_session() as session:
        assert [row.name for row in session.query(SharedSecret)] == ["link"]
    catalog.dispose()
    logs = (tmp_path / "serve.log").read_text(encoding="utf-8", errors="replace") + fresh.stdout + fresh.stderr
    assert OLD_A not in logs and OLD_B not in logs
