"""Hardening, issue 8 failure 9: no password or token in what listwatch prints or logs.

``listwatch crawl`` with a PostgreSQL catalog URL carrying a password used to print it in its summary; now the
one redaction function (``scheduler.alerts.redact.redact_url``) is applied to every printed DSN and, through a
log record factory, to every URL in every log line.
"""

from __future__ import annotations

import logging

import pytest
from conftest import DEMO_SOURCES, run_listwatch

from crawlers.demo.site import DemoSite
from scheduler.alerts.redact import install_log_redaction, redact_text, redact_url
from tests.postgres import postgres_url  # noqa: F401  (fixture)

SECRET = "Pw-9f3kZq"


@pytest.mark.parametrize(("raw", "shown"), [
    (f"postgresql+psycopg://lw:{SECRET}@db.example:5432/lw", "postgresql+psycopg://lw:***@db.example:5432/lw"),
    (f"https://u:{SECRET}@h/x?token={SECRET}&page=2#f", "https://u:***@h/x?token=***&page=2#f"),
    (f"https://h/list?api_key={SECRET}&X-Amz-Signature={SECRET}&n=1", "https://h/list?api_key=***&X-Amz-Signature=***&n=1"),
    (f"host=db user=lw password={SECRET} dbname=lw", "host=db user=lw password=*** dbname=lw"),
    ("https://h/list?page=2&sort=new", "https://h/list?page=2&sort=new"),
    ("sqlite:////var/lib/listwatch/catalog.sqlite", "sqlite:////var/lib/listwatch/catalog.sqlite"),
    ("https://user@h/x", "https://user@h/x"),
])
def test_redact_url(raw: str, shown: str) -> None:
    assert redact_url(raw) == shown


def test_redact_text_and_every_log_record(caplog: pytest.LogCaptureFixture) -> None:
    line = f"could not reach postgresql://lw:{SECRET}@db/lw (from https://h/a?token={SECRET})"
    assert SECRET not in redact_text(line) and "postgresql://lw:***@db/lw" in redact_text(line)
    install_log_redaction()
    install_log_redaction()   # idempotent
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("GET %s failed", f"https://h/list?sessionid={SECRET}&p=1")
    assert SECRET not in caplog.text and "sessionid=***&p=1" in caplog.text


def test_crawl_output_never_shows_the_catalog_password(tmp_path: object, postgres_url: str,  # noqa: F811
                                                       demo_site: DemoSite) -> None:
    with_password = postgres_url.replace("listwatch@", f"listwatch:{SECRET}@")   # trust auth ignores it
    done = run_listwatch(["crawl", str(DEMO_SOURCES / "feed.yaml")], data_dir=tmp_path / "data",  # type: ignore[operator]
                         site=demo_site, extra_env={"LISTWATCH_CATALOG_URL": with_password})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "listwatch:***@127.0.0.1" in done.stdout
    assert SECRET not in done.stdout + done.stderr
