"""What every command shares: consoles and settings loading with operator-readable errors."""

from __future__ import annotations

import typer
from rich.console import Console

from scheduler.settings import Settings, SettingsError, load_settings

console = Console()
err = Console(stderr=True)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]settings:[/] {exc}")
        raise typer.Exit(2) from None
