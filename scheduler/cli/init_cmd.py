"""listwatch init: a new project folder with a commented settings file and example sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli.common import command_name, console, err

app = typer.Typer()


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="The project folder (created if missing).")] = Path("."),
) -> None:
    """Start a project: listwatch.yaml naming every setting (commented, with its default and meaning) and
    sources/examples/ with one example source per listing shape. Existing files are kept.

    The examples point at the demo site (listwatch demo --keep-serving serves it); copy one into sources/
    and change its URL and selectors, or start from a URL with listwatch sources new.

    Example: listwatch init ministry-watch && cd ministry-watch && listwatch sources check sources/examples
    """
    from scheduler.project import DEMO_PORT, demo_sources, settings_yaml, write_if_ours

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kept: list[Path] = []
    settings_file = directory / "listwatch.yaml"
    (written if write_if_ours(settings_file, settings_yaml()) else kept).append(settings_file)
    (directory / "sources").mkdir(exist_ok=True)
    for name, text in demo_sources(f"http://127.0.0.1:{DEMO_PORT}").items():
        path = directory / "sources" / "examples" / name.removeprefix("demo-")
        (written if write_if_ours(path, text) else kept).append(path)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    for path in kept:
        err.print(f"kept {path} (not written by listwatch)", highlight=False)
    lw = command_name(absolute=True)
    console.print(f"Next: cd {directory}; copy an example from sources/examples/ into sources/ (guide: "
                  f"crawlers/SOURCES.md), then {lw} sources check and {lw} crawl ID.", highlight=False)
