"""The ``listwatch`` command: thin wrappers over the Python API, one example in each docstring.

Each command group lives in its own module and registers here.
"""

from __future__ import annotations

import typer

from scheduler.cli import alerts, archive, crawl

app = typer.Typer(help="Watch programme listings, archive every visit as WARC, report what changed.",
                  no_args_is_help=True, add_completion=False)
app.registered_commands += crawl.app.registered_commands
app.add_typer(crawl.sources_app, name="sources")
app.add_typer(alerts.app, name="alerts", help="Alert subscriptions, delivery and Atom feeds.")
app.add_typer(archive.app, name="archive", help="The stored archive: sync, fixity audits, reindex, status.")
