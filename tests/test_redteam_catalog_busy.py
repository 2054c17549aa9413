"""The SQLite catalog locked by another process (a sqlite3 shell with an open write transaction): every
command waited its busy timeout, then died with a 400-line SQLAlchemy traceback ending in "database is locked
[SQL: BEGIN IMMEDIATE]" (a real ``listwatch crawl``: exit 1 after 66 s, nothing crawled; locked during its
ingest instead, the crawl's WARC stayed in the spool and was stored and indexed by the next crawl, whose diff
reported the change). Now it says which file is locked, how long it waited and what to do, in one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.catalog import db
from scheduler.cli import app


def test_a_locked_catalog_is_one_clear_line_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("LISTWATCH_DATA_DIR", str(data))
    monkeypatch.setenv("LISTWATCH_SETTINGS", str(data / "none.yaml"))
    monkeypatch.setattr(db, "BUSY_SECONDS", 1)   # the real wait is a minute
    path = data / "catalog.sqlite"
    db.open_catalog(f"sqlite:///{path}").dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")   # what a sqlite3 shell holds after an uncommitted UPDATE
    try:
        done = CliRunner().invoke(app, ["alerts", "subscribe", "desk", "json://127.0.0.1:9/hook"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.exit_code == 1, done.output
    assert done.stderr.strip() == (
        f"listwatch: the catalog database {path} is locked: another process has held a write transaction on it "
        "for more than 1 s (a sqlite3 shell or database browser with a change not yet committed, or a stuck "
        "listwatch command). Finish or close that process, then run the command again. Nothing captured is lost: "
        "WARC files wait in the spool until they reach the store (with the next crawl or `listwatch archive sync`), "
        "and the next crawl reports what changed")
