"""The catalog database (SQLite by default, PostgreSQL by URL)."""

from archive.catalog.db import Catalog, open_catalog

__all__ = ["Catalog", "open_catalog"]
