"""Opening the catalog: engine set-up per backend, migrations to the current schema, sessions.

SQLite runs in WAL mode and starts write transactions with ``BEGIN IMMEDIATE``: with several crawl
processes writing, plain deferred transactions fail with "database is locked" when a reader upgrades
to a writer (seen ≈ 45 % of the time under four writers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATE_KEY = 0x6C69_7374_7761_746D >> 1   # PostgreSQL advisory lock held while migrating
BUSY_SECONDS = 60   # how long a write waits for another process's write transaction on SQLite


class CatalogBusy(OperationalError):
    """SQLite's "database is locked", in the operator's words: which file, for how long, what to do.

    Still an ``OperationalError`` (code that handles those keeps doing so); ``str()`` is the message."""

    path = ""

    def __str__(self) -> str:
        return (f"the catalog database {self.path} is locked: another process has held a write transaction on it "
                f"for more than {BUSY_SECONDS} s (a sqlite3 shell or database browser with a change not yet "
                "committed, or a stuck listwatch command). Finish or close that process, then run the command "
                "again. Nothing captured is lost: WARC files wait in the spool until they reach the store (with the "
                "next crawl or `listwatch archive sync`), and the next crawl reports what changed")


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_SECONDS, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let us issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # read-only sessions (Catalog.read_session) take no write lock: lookups never queue behind crawls
        read_only = connection.get_execution_options().get("listwatch_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> BaseException | None:
        if "database is locked" not in str(context.original_exception):
            return None
        busy = CatalogBusy(context.statement, context.parameters, context.original_exception)
        busy.path = path or url
        return busy

    return engine


class Catalog:
    """An engine plus a session factory; ``with catalog.session() as s:`` commits or rolls back."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for queries only: on SQLite a deferred ``BEGIN`` (no write lock); rolled back at the end."""
        with self.engine.connect().execution_options(listwatch_read_only=True) as connection, \
                Session(connection, expire_on_commit=False) as session:
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command  # only needed to migrate; keeps command start-up light
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.connect() as connection:
            postgres = connection.dialect.name == "postgresql"
            if postgres:   # several processes (scheduler, workers) may start at once on a new database: one migrates
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_KEY})
                connection.commit()
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            finally:
                if postgres:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATE_KEY})
                    connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def open_catalog(url: str, migrate: bool = True) -> Catalog:
    catalog = Catalog(url)
    if migrate:
        catalog.migrate()
    return catalog
