"""What a user sees: help as plain text with examples, loudness options everywhere, errors naming the valid
choices, tables that fit 80 columns without cutting ids, library chatter only at debug."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from archive.cdx import QueryError, iso_digits, pad_timestamp
from scheduler import logs
from scheduler.cli import app, programs
from scheduler.cli.common import fit

runner = CliRunner()


def _all_commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(get_command(app), [])
    return found


def test_version() -> None:
    done = runner.invoke(app, ["--version"])
    assert done.exit_code == 0 and re.fullmatch(r"listwatch \S+\n", done.output)


@pytest.mark.parametrize("path", _all_commands(), ids=" ".join)
def test_help_is_plain_text_with_an_example_and_the_loudness_options(path: list[str]) -> None:
    done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert done.exit_code == 0, done.output
    text = done.output
    assert "``" not in text and not re.search(r"<(str|int|bool|float|list|Path)[^>]*>", text), text
    assert "Example" in text, f"listwatch {' '.join(path)} --help has no example"
    for option in ("-v, --verbose", "-q, --quiet", "--log-level", "--log-format"):
        assert option in text


def _one_source(tmp_path: Any, data_dir: Any) -> dict[str, str]:
    """Settings in ``tmp_path`` with one source file, ``ministry``, whose site is never reached."""
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "ministry.yaml").write_text(
        "id: ministry\nname: M\nstart_urls: ['http://127.0.0.1:9/']\nitems: {selector: li, fields: {url: a}}\n",
        encoding="utf-8")
    return {"LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"),
            "LISTWATCH_SOURCES_DIR": str(tmp_path / "sources")}


def test_bad_choices_name_what_was_typed_and_what_is_valid(tmp_path: Any) -> None:
    env = _one_source(tmp_path, tmp_path)
    gone = runner.invoke(app, ["programs", "list", "--status", "gone"], env=env)
    assert gone.exit_code == 2 and "'gone'" in gone.output and "active, missing, removed" in gone.output
    typo = runner.invoke(app, ["programs", "list", "--source", "minstry"], env=env)
    assert typo.exit_code == 2 and "did you mean 'ministry'" in typo.output
    export = runner.invoke(app, ["export", "--source", "minstry", "-o", str(tmp_path / "x.wacz")], env=env)
    assert export.exit_code == 2 and "unknown source 'minstry'" in export.output
    crawl = runner.invoke(app, ["crawl", "minstry"], env=env)
    assert crawl.exit_code == 2 and "did you mean 'ministry'" in crawl.output
    level = runner.invoke(app, ["status", "--log-level", "loud"], env=env)
    assert level.exit_code == 2 and "debug, info, warning, error" in level.output
    when = runner.invoke(app, ["captures", "http://127.0.0.1:9/*", "--from", "2026-11-31"], env=env)
    assert when.exit_code == 2 and "2026-11-31" in when.output


def test_bad_paths_and_ports_are_named_and_an_empty_answer_says_so(tmp_path: Any) -> None:
    env = _one_source(tmp_path, tmp_path / "data")
    into = tmp_path / "exports"
    into.mkdir()
    export = runner.invoke(app, ["export", "--source", "ministry", "-o", str(into)], env=env)
    assert export.exit_code == 2 and "is a directory" in export.output and str(into / "ministry.wacz") in export.output
    assert "Traceback" not in export.output and list(tmp_path.glob("*.part")) == []
    empty = runner.invoke(app, ["captures", "http://127.0.0.1:9/nothing"], env=env)
    assert empty.exit_code == 0 and "no captures of http://127.0.0.1:9/nothing" in empty.output
    port = runner.invoke(app, ["replay", "--port", "99999"], env=env)
    assert port.exit_code == 2 and "--port" in port.output


def test_next_hints_name_listwatch_the_way_the_user_can_type_it(tmp_path: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.cli.common import command_name

    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "listwatch").write_text("#!/bin/sh\n", encoding="utf-8")
    (bin_dir / "listwatch").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [".venv/bin/listwatch", "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")             # right after set-up: not on PATH
    assert command_name() == ".venv/bin/listwatch"
    assert command_name(absolute=True) == str(bin_dir / "listwatch")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin")       # an activated venv or an installed package
    assert command_name() == "listwatch"
    monkeypatch.setattr("sys.argv", ["/x/scheduler/__main__.py"])
    assert command_name() == "listwatch"


def test_sources_check_says_what_it_found_in_words(tmp_path: Any) -> None:
    env = {"LISTWATCH_DATA_DIR": str(tmp_path / "data"), "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml")}
    source = tmp_path / "ministry.yaml"
    source.write_text("id: ministry\nname: M\nstart_urls: ['http://127.0.0.1:9/']\n"
                      "items: {selector: li, fields: {url: a}}\n", encoding="utf-8")
    checked = runner.invoke(app, ["sources", "check", str(source)], env=env)
    assert checked.exit_code == 0 and "ministry (static pages, no paging)" in checked.output

def test_iso_dates_become_cdx_timestamps() -> None:
    assert iso_digits("2026-11-30") == "20261130"
    assert iso_digits("2026-11") == "202611"
    assert iso_digits("2026-11-30T08:15:00Z") == "20261130081500"
    assert iso_digits("2026-11-30T08:15+08:00") == "202611300015"
    assert iso_digits("20261130") == "20261130"
    assert pad_timestamp("2026-11-30", upper=True, name="to") == "20261130235959"
    with pytest.raises(QueryError, match="2026-13-01"):
        pad_timestamp("2026-13-01", upper=False, name="from")


def test_programme_table_fits_80_columns_and_never_cuts_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(width=80, record=True, color_system=None)
    monkeypatch.setattr(programs, "console", console)
    key = "http://127.0.0.1:8765/mofcom/detail/1019.html?from=a-very-long-query-string-that-goes-on"
    row = SimpleNamespace(source_id="demo-academy-api", status="missing", last_seen=datetime(2026, 11, 30),
                          title="关于举办2026年发展中国家杂交水稻技术培训班的通知" * 3, key=key)
    programs._table([row], "1 programme(s)")  # type: ignore[list-item]
    lines = console.export_text().splitlines()
    assert any(line.strip() == key for line in lines)
    assert "demo-academy-api" in lines[2] and lines[2].rstrip().endswith("…")
    assert all(len(line) <= 80 for line in lines if key not in line)
    assert fit("abc", 5) == "abc  " and fit("数字经济", 5) == "数字…"


def test_library_chatter_only_at_debug() -> None:
    def shown(name: str, level: int, handler_level: int) -> bool:
        record = logging.LogRecord(name, level, __file__, 1, "x", None, None)
        return logs.ChatterFilter(handler_level).filter(record)

    assert not shown("scrapy.middleware", logging.INFO, logging.INFO)
    assert not shown("alembic.runtime.plugins", logging.INFO, logging.INFO)
    assert shown("scrapy.middleware", logging.INFO, logging.DEBUG)
    assert shown("scrapy.core.scraper", logging.WARNING, logging.WARNING)
    assert shown("scheduler.daemon", logging.INFO, logging.INFO)


def test_init_writes_every_setting_and_an_example_per_shape(tmp_path: Any) -> None:
    import yaml

    from crawlers.sources import load_sources
    from scheduler.settings import Settings, load_settings

    project = tmp_path / "watch"
    done = runner.invoke(app, ["init", str(project)])
    assert done.exit_code == 0, done.output
    text = (project / "listwatch.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text) is None   # all commented: the defaults hold
    for name, field in Settings.model_fields.items():
        assert re.search(rf"^# {name}:", text, re.MULTILINE) and (field.description or "") in text, name
    assert load_settings(project / "listwatch.yaml") == Settings()
    shapes = {s.pagination.kind for s in load_sources(project / "sources" / "examples").values()}
    assert shapes >= {"template", "reverse_numbered", "next_link", "param", "none"}
    (project / "listwatch.yaml").write_text("data_dir: mine\n", encoding="utf-8")
    again = runner.invoke(app, ["init", str(project)])
    assert again.exit_code == 0 and (project / "listwatch.yaml").read_text(encoding="utf-8") == "data_dir: mine\n"
