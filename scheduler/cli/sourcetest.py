"""``listwatch sources test FILE``: a source's first listing page and first details, as a table, archiving nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crawlers.sources import SourceError, load_source
from scheduler.cli.common import console, err


def sources_test(
    file: Annotated[Path, typer.Argument(help="The source YAML file to try.")],
    details: Annotated[int, typer.Option(min=0, max=20, help="How many detail pages to follow.")] = 3,
) -> None:
    """Fetch a source's first listing page and first detail pages without archiving; print the items and every
    problem. Example: ``listwatch sources test sources/mofcom.yaml``. Exits 1 when the listing gave no item."""
    from crawlers.trial import try_source

    try:
        source = load_source(file)
    except SourceError as exc:
        err.print(f"[red]error[/] {exc}")
        raise typer.Exit(2) from None
    trial = try_source(source, details)
    columns = list(dict.fromkeys(name for item in trial.items for name in item))
    table = Table(title=f"{source.id}: {len(trial.items)} items from {trial.url} ({trial.pages} pages fetched)")
    for column in columns:
        table.add_column(column, overflow="fold")
    for item in trial.items:
        table.add_row(*(str(item.get(c, "")) if item.get(c) is not None else "" for c in columns))
    console.print(table)
    if trial.problems:
        console.print(f"[yellow]{len(trial.problems)} problem(s):[/]")
        for problem in trial.problems:
            console.print(f"  {problem}", markup=False, highlight=False)
    else:
        console.print("[green]no problems[/]")
    raise typer.Exit(0 if trial.ok and trial.items else 1)
