"""listwatch settings: one YAML file plus ``LISTWATCH_*`` environment variables (which win).

The file is ``listwatch.yaml`` in the working directory, or the path in ``LISTWATCH_SETTINGS``.
Nested settings use ``__`` in environment names: ``LISTWATCH_STORAGE__BUCKET=archive``.
Every setting is declared here once with its default and help.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from crawlers.sources import describe_errors


class SettingsError(ValueError):
    """The settings file or environment is invalid; the message names the file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StorageSettings(_Section):
    """Where closed WARCs are kept: a local directory (default) or an S3-compatible bucket."""

    kind: Literal["local", "s3"] = Field("local", description="local or s3.")
    path: Path | None = Field(None, description="Local store root (default: DATA_DIR/archive).")
    endpoint_url: str | None = Field(None, description="S3 endpoint, e.g. http://127.0.0.1:9000 (None = AWS).")
    bucket: str = Field("", description="S3 bucket.")
    prefix: str = Field("", description="Key prefix inside the bucket or directory.")
    region: str = Field("us-east-1", description="S3 region name.")
    access_key_id: str | None = Field(None, description="S3 access key (default: the AWS environment/config).")
    secret_access_key: SecretStr | None = Field(None, description="S3 secret key (never logged).")
    addressing_style: Literal["path", "virtual", "auto"] = Field("path", description="S3 addressing style.")
    checksums: Literal["when_required", "when_supported"] = Field(
        "when_required", description="boto3 request/response checksum mode; when_required suits most S3 clones.")
    conditional_writes: bool = Field(True, description="Send If-None-Match: * so a key is never overwritten.")
    multipart_threshold: int = Field(64 * 1024 * 1024, ge=5 * 1024 * 1024, description="Multipart above this.")
    object_lock_days: int | None = Field(None, ge=1, description="S3 Object Lock retention (COMPLIANCE) in days.")
    verify: Literal["checksum", "read-back"] = Field(
        "read-back", description="How an upload is verified: stored SHA-256 checksum, or reading it back.")


class ApiSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the HTTP API binds to.")
    port: int = Field(8470, ge=0, le=65535, description="Port of the HTTP API.")
    token: SecretStr | None = Field(None, description="Bearer token the API requires.")
    require_token: bool = Field(True, description="Refuse reading without the token or a signed link (401); false "
                                "opens reading on a trusted network (changes always need the token).")
    public_url: str = Field("http://127.0.0.1:8470", description="Base URL used in alert links.")
    link_secret: SecretStr | None = Field(
        None, description="Key signing evidence links and web sessions (default: generated once into a PostgreSQL "
                    "catalog, the same for every machine; with SQLite, into DATA_DIR).")
    link_ttl: int = Field(365 * 86400, ge=60, description="Seconds a signed evidence link stays valid (alert "
                          "links: from the event's time).")
    session_ttl: int = Field(12 * 3600, ge=60, description="Seconds a web sign-in (with the token) lasts.")


class ReplaySettings(_Section):
    tools_bin: Path | None = Field(None, description="Directory holding pywb's `wayback` (default .venv-tools/bin).")
    port: int = Field(8480, ge=0, le=65535, description="Port of `listwatch replay`.")
    public_url: str = Field("http://127.0.0.1:8480", description="Base URL of replay, used in alert links.")
    index: Literal["api", "file"] = Field(
        "api", description="api: pywb reads the catalog's CDX endpoint of `listwatch serve` (cdx+http); file: a "
                           "CDXJ of every capture, rewritten every --refresh seconds.")
    index_url: str | None = Field(
        None, description="Where pywb reaches `listwatch serve` (default http://<api.host>:<api.port>).")


class SchedulerSettings(_Section):
    max_crawls: int = Field(
        8, ge=1, description="Crawls running at once (static ones share the crawl hosts; see process_crawls).")
    process_crawls: int = Field(
        2, ge=1, description="Of those, crawls in a process of their own at once: browser sources (each starts a "
        "Chromium), a retry alone, every crawl when crawl_hosts is 0.")
    crawl_timeout: int = Field(1800, ge=10, description="Hard time limit of one crawl, seconds.")
    crawl_memory_mb: int = Field(
        2048, ge=128, description="Resident-memory limit (MB) of one crawl process tree (browser included), or of "
        "one crawl host's tree.")
    crawl_hosts: int = Field(
        2, ge=0, description="Long-lived crawl host processes that run the scheduled crawls of static (non-browser) "
        "sources, many per process (about one per core); 0 = one process per crawl.")
    host_crawls: int = Field(8, ge=1, description="Crawls one crawl host runs at once.")
    host_jobs: int = Field(
        500, ge=1, description="Crawls a crawl host runs before it is replaced by a fresh one (bounds slow leaks).")
    jitter: int = Field(30, ge=0, description="Random delay added to each scheduled run, seconds.")
    quick_interval: int = Field(900, ge=10, description="Default seconds between cheap checks of a source.")
    full_interval: int = Field(21600, ge=60, description="Default seconds between full sweeps of a source.")
    failures_alert: int = Field(3, ge=1, description="Alert when a source fails this many runs in a row.")
    silent_after: int = Field(172800, ge=60, description="Alert when no complete crawl for this many seconds.")
    missing_runs_to_remove: int = Field(2, ge=1, description="Complete crawls without a programme before removal.")
    metrics_port: int | None = Field(None, description="Serve Prometheus metrics on this port (None = off).")
    stop_grace: int = Field(60, ge=0, description="On SIGTERM/SIGINT, seconds running crawls get to finish.")
    kill_grace: int = Field(15, ge=1, description="Seconds between SIGTERM and SIGKILL of a crawl process.")
    deliver_interval: float = Field(5.0, gt=0, description="Seconds between alert delivery passes of `run`.")
    deliver_budget: float = Field(
        120.0, ge=1, description="Seconds one subscription may take in one delivery pass; its other messages wait "
                                 "for the next pass, so a slow endpoint delays only its own alerts.")
    deliver_threads: int = Field(8, ge=1, le=64, description="Subscriptions served side by side in one delivery pass.")
    deliver_passes: int = Field(
        3, ge=1, le=16, description="Delivery passes of `run` that may overlap: a pass held up by a slow endpoint "
                                    "does not keep the other subscriptions' alerts waiting.")
    deliver_lease: float = Field(
        300.0, gt=30, description="Seconds a message being sent stays reserved for its sender; after a crash it is "
                                  "retried once this has passed. Must exceed the 30 s send timeout, or a slow send "
                                  "could be sent twice.")
    maintenance_interval: float = Field(
        60.0, gt=0, description="Seconds between `run`'s housekeeping: health, spool sync retry, source reload.")


class RetentionSettings(_Section):
    """How long the catalog keeps every row of checks that changed nothing (``archive/retention.py``); their
    WARCs always stay in the store."""

    unchanged_days: int = Field(
        30, ge=0, description="Days after which the catalog rows of complete quick checks that changed nothing are "
        "deleted (the first and last check of each day stay; a daily count and the WARC list are kept; "
        "`archive reindex` restores the rows from the WARCs); 0 keeps them all.")
    interval: int = Field(3600, ge=1, description="Seconds between the scheduler's retention passes.")


class DistributedSettings(_Section):
    """Several machines: ``listwatch run`` queues crawl jobs in PostgreSQL (Procrastinate) and any number of
    ``listwatch worker`` processes run them (each with ``scheduler.max_crawls`` crawls at once)."""

    enabled: bool = Field(False, description="Distributed mode: `listwatch run` queues crawls for `listwatch "
                          "worker` processes instead of running them (needs a PostgreSQL catalog_url).")
    heartbeat: float = Field(10.0, gt=0, description="Seconds between a worker's heartbeats.")
    stalled_after: float = Field(
        60.0, gt=0, description="A worker silent for this many seconds is lost: its crawls are closed as "
                                "interrupted and its jobs retried on another worker.")
    max_attempts: int = Field(3, ge=1, description="Tries of one crawl job (a lost or stopped worker's job is "
                              "retried elsewhere).")
    poll_interval: float = Field(5.0, gt=0, description="Seconds between a worker's polls of the queue (new jobs "
                                 "also wake it at once through PostgreSQL LISTEN/NOTIFY).")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LISTWATCH_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(Path("var"), description="Spool, crawl runs, the local store and the catalog live here.")
    sources_dir: Path = Field(Path("sources"), description="One YAML file per watched source.")
    catalog_url: str | None = Field(None, description="SQLAlchemy URL (default sqlite:///DATA_DIR/catalog.sqlite).")
    operator: str = Field("", description="Who runs this crawler (name and contact), written to warcinfo.")
    user_agent: str = Field(
        "listwatch/0.1 (+https://example.org/listwatch)",
        description="Default HTTP User-Agent; include a contact address. Sources may override it.")
    chromium: str = Field("/usr/bin/chromium", description="Chromium executable for rendered sources.")
    warc_max_size: int = Field(1_000_000_000, ge=1_000_000, description="Roll WARC files over past this size.")
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR.")
    log_json: bool = Field(False, description="Write logs as JSON lines.")
    storage: StorageSettings = StorageSettings()
    api: ApiSettings = ApiSettings()
    replay: ReplaySettings = ReplaySettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    distributed: DistributedSettings = DistributedSettings()
    retention: RetentionSettings = RetentionSettings()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings

    @property
    def catalog(self) -> str:
        return self.catalog_url or f"sqlite:///{(self.data_dir / 'catalog.sqlite').resolve()}"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def store_path(self) -> Path:
        return self.storage.path or self.data_dir / "archive"


def catalog_backend(settings: Settings) -> str:
    """The catalog's database kind, read from its URL: ``sqlite`` or ``postgresql``."""
    return settings.catalog.split(":", 1)[0].split("+", 1)[0]


def require_distributed(settings: Settings, command: str) -> None:
    """Raise SettingsError unless distributed mode can work: enabled, with a PostgreSQL catalog."""
    backend = catalog_backend(settings)
    if not settings.distributed.enabled:
        raise SettingsError(f"`{command}` needs distributed mode: set `distributed: {{enabled: true}}` in the settings "
                            "file (or LISTWATCH_DISTRIBUTED__ENABLED=true) and a PostgreSQL catalog_url")
    if backend != "postgresql":
        raise SettingsError(f"distributed mode needs a PostgreSQL catalog (its job queue lives there), but "
                            f"catalog_url is {backend}: set catalog_url to postgresql+psycopg://USER@HOST/DB or set"
                            " distributed.enabled to false")


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
        data = loaded
    try:
        return Settings(**{**data, **overrides})
    except ValidationError as exc:
        where = path if path.exists() else "environment"
        raise SettingsError(f"{where}: {describe_errors(exc)}") from None
