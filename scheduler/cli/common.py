"""What every command shares: consoles, settings loading and choice checks with operator-readable errors."""

from __future__ import annotations

import difflib
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from scheduler.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from archive.catalog import Catalog
    from archive.storage import Storage

console = Console()
err = Console(stderr=True)


def command_name(absolute: bool = False) -> str:
    """How to type listwatch again in a "Next:" hint: ``listwatch`` when that is on PATH, else the path the user
    started it by (``.venv/bin/listwatch`` right after set-up, where a bare ``listwatch`` is not found);
    ``absolute`` when the hint changes directory first."""
    typed = sys.argv[0] if sys.argv and sys.argv[0] else "listwatch"
    if Path(typed).name != "listwatch":         # python -m scheduler, a test runner
        return "listwatch"
    found = shutil.which("listwatch")
    if found and Path(found).resolve() == Path(typed).resolve():
        return "listwatch"
    return str(Path(typed).absolute()) if absolute else typed


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]settings:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


def opened_catalog(settings: Settings, migrate: bool = True) -> Catalog:
    """The catalog the settings name, migrated to the current schema (unless ``migrate`` is False: a health check
    only reads)."""
    from archive.catalog import open_catalog  # imported on use: commands that need no catalog start faster

    return open_catalog(settings.catalog, migrate=migrate)


def opened_archive(settings: Settings) -> tuple[Catalog, Storage]:
    """The catalog and the WARC store; exit 2 with the store's own explanation when it cannot be opened."""
    from archive.storage import StorageError, open_storage

    catalog = opened_catalog(settings)
    try:
        return catalog, open_storage(settings)
    except StorageError as exc:
        catalog.dispose()
        raise fail("store", str(exc)) from None


def valid_list(known: Iterable[str]) -> str:
    names = sorted(known)
    return ", ".join(names) if names else "none"


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' for a close match among known, else ''."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fail(what: str, message: str, code: int = 2) -> typer.Exit:
    """Print what: message on stderr and return the Exit to raise."""
    err.print(f"[red]{what}:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def check_choice(option: str, value: str | None, known: Iterable[str]) -> None:
    """Exit 2 naming the option, the value typed and the valid ones when value is not among known."""
    choices = list(known)
    if value is not None and value not in choices:
        raise fail(option, f"{value!r} is not valid{did_you_mean(value, choices)}; valid: {valid_list(choices)}")


def known_source_ids(settings: Settings) -> set[str]:
    """Source ids in the sources directory and in the catalog (a source may be archived but retired)."""
    from sqlalchemy import select

    from archive.catalog.models import Source as SourceRow
    from crawlers.source_checks import ID_PATTERN
    from crawlers.sources import SourceError, load_sources

    found: set[str] = set()
    try:
        found |= set(load_sources(settings.sources_dir)) if settings.sources_dir.is_dir() else set()
    except SourceError:
        import re

        found |= {p.stem for p in settings.sources_dir.glob("*.y*ml") if re.match(ID_PATTERN, p.stem)}
    with opened_catalog(settings).read_session() as session:
        found |= set(session.scalars(select(SourceRow.id)))
    return found


def check_source(settings: Settings, source_id: str | None, option: str = "--source") -> None:
    """Exit 2 when source_id is neither in the sources directory nor in the catalog."""
    if source_id is None:
        return
    known = known_source_ids(settings)
    if source_id not in known:
        raise fail(option, f"unknown source {source_id!r}{did_you_mean(source_id, known)}; "
                           f"known: {valid_list(known)}")


def fit(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` terminal cells with … (CJK characters count as two)."""
    from rich.cells import cell_len, set_cell_size

    flat = " ".join(str(text).split())
    if cell_len(flat) <= width:
        return set_cell_size(flat, width)
    return set_cell_size(flat, max(0, width - 1)).rstrip() + "…"   # a wide character may leave a pad space


def print_json(data: object) -> None:
    import json

    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
