"""The documentation stays true: README's commands, every CLI command documented, every setting described."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from scheduler.cli import app
from scheduler.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_test_command_is_what_ci_runs() -> None:
    first_lines = README.split("```sh", 1)[1].split("```", 1)[0].strip().splitlines()
    assert first_lines[0].startswith("bash infra/setup.sh && .venv/bin/listwatch demo")
    test_command = first_lines[1].split("&&", 1)[1].split("#", 1)[0].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(test_command)}$", ci, re.MULTILINE), "README's test command is not in .ci/run"


def _commands() -> list[tuple[str, object]]:
    found = [(c.name or c.callback.__name__, c.callback) for c in app.registered_commands]  # type: ignore[union-attr]
    for group in app.registered_groups:
        typer_app = group.typer_instance
        found += [(f"{group.name} {c.name or c.callback.__name__}", c.callback)  # type: ignore[union-attr]
                  for c in typer_app.registered_commands]
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    for name, callback in _commands():
        assert (callback.__doc__ or "").strip(), f"`listwatch {name}` has no help text"
        top = name.split()[0]
        assert f"listwatch {top}" in README, f"`listwatch {top}` is not documented in README.md"


def test_every_setting_is_described() -> None:
    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
            else:
                assert field.description, f"setting {prefix}{name} has no description"

    walk(Settings, "")


def test_example_settings_file_names_every_top_level_setting() -> None:
    example = (ROOT / "infra" / "listwatch.example.yaml").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert re.search(rf"^#?\s*{name}:", example, re.MULTILINE), f"{name} missing from infra/listwatch.example.yaml"


def test_sources_guide_is_generated_from_the_schema() -> None:
    from crawlers.guide import fields_without_example, render

    assert not fields_without_example(), (
        f"source fields without an example: {fields_without_example()}; set them in a repository source file "
        "or add one to crawlers/guide.py EXAMPLES")
    committed = (ROOT / "crawlers" / "SOURCES.md").read_text(encoding="utf-8")
    assert committed == render(), "crawlers/SOURCES.md is stale: python -m crawlers.guide > crawlers/SOURCES.md"


def test_cookbook_names_files_that_exist() -> None:
    cookbook = (ROOT / "crawlers" / "COOKBOOK.md").read_text(encoding="utf-8")
    named = re.findall(r"`((?:crawlers|tests)/[\w/.-]+\.yaml)`", cookbook)
    assert len(named) >= 8 and all((ROOT / path).exists() for path in named), named
