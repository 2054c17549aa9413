"""The ``listwatch`` command: thin wrappers over the Python API, one example in each docstring.

Each command group lives in its own module and registers here.
"""

from __future__ import annotations

import typer

from scheduler.alerts.redact import install_log_redaction
from scheduler.cli import alerts, archive, crawl, events, programs, retrieve
from scheduler.cli import daemon as daemon_cli
from scheduler.cli import demo as demo_cli

install_log_redaction()   # every command, the crawl subprocess included: no password or token in a log line
app = typer.Typer(help="Watch programme listings, archive every visit as WARC, report what changed.",
                  no_args_is_help=True, add_completion=False)
app.registered_commands += crawl.app.registered_commands
app.registered_commands += retrieve.app.registered_commands
app.registered_commands += daemon_cli.app.registered_commands
app.registered_commands += demo_cli.app.registered_commands
app.registered_commands += events.app.registered_commands
app.add_typer(crawl.sources_app, name="sources")
app.add_typer(alerts.app, name="alerts", help="Alert subscriptions, delivery and Atom feeds.")
app.add_typer(archive.app, name="archive", help="The stored archive: sync, fixity audits, reindex, status.")
app.add_typer(programs.app, name="programs", help="Programme records: list, search, history, export, reprocess.")
