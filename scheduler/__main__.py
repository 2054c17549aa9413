"""``python -m scheduler`` is the ``listwatch`` command."""

from scheduler.cli import app

app(prog_name="listwatch")
