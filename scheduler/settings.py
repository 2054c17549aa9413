"""listwatch settings: one YAML file plus ``LISTWATCH_*`` environment variables (which win).

The file is ``listwatch.yaml`` in the working directory, or the path in ``LISTWATCH_SETTINGS``.
Every setting is declared here once with its default and help; ``listwatch settings`` prints them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from crawlers.sources import describe_errors


class SettingsError(ValueError):
    """The settings file or environment is invalid; the message names the file and field."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LISTWATCH_", extra="forbid")

    data_dir: Path = Field(Path("var"), description="Spool, crawl runs and the catalog live here.")
    sources_dir: Path = Field(Path("sources"), description="One YAML file per watched source.")
    operator: str = Field("", description="Who runs this crawler (name and contact), written to warcinfo.")
    user_agent: str = Field(
        "listwatch/0.1 (+https://example.org/listwatch)",
        description="Default HTTP User-Agent; include a contact address. Sources may override it.")
    chromium: str = Field("/usr/bin/chromium", description="Chromium executable for rendered sources.")
    warc_max_size: int = Field(1_000_000_000, ge=1_000_000, description="Roll WARC files over past this size.")
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR.")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings


def settings_path() -> Path:
    return Path(os.environ.get("LISTWATCH_SETTINGS", "listwatch.yaml"))


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``path`` (default ``settings_path()``; optional) under the environment."""
    path = path or settings_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping of settings")
        data = {k: v for k, v in loaded.items() if f"LISTWATCH_{k.upper()}" not in os.environ}
    try:
        return Settings(**{**data, **overrides})
    except ValidationError as exc:
        raise SettingsError(f"{path if path.exists() else 'environment'}: {describe_errors(exc)}") from None
