"""One-shot set-up of a shared deployment: the store's bucket exists and the catalog is migrated.

    python infra/bootstrap.py        (the `bootstrap` service of infra/compose.yaml runs it)

Reads the same settings as `listwatch` (LISTWATCH_* variables, LISTWATCH_SETTINGS file). Safe to re-run:
an existing bucket is kept, migrations already applied are skipped. It runs once before the scheduler and
the workers start, because several processes opening an empty database at once would all try to migrate it.
Exit 0 on success; 1 with one line saying what failed (no secret in it) otherwise.
"""

from __future__ import annotations

import sys

from archive.catalog import open_catalog
from archive.storage.base import StorageError
from archive.storage.s3 import S3Storage
from scheduler.alerts.redact import redact_text, scrub
from scheduler.settings import Settings, SettingsError, load_settings


def ensure_bucket(settings: Settings) -> str:
    """Create the S3 bucket unless it exists; returns what was done, for the log."""
    if settings.storage.kind != "s3":
        return "store: local directory, nothing to create"
    storage = S3Storage.from_settings(settings.storage)
    names = {bucket["Name"] for bucket in storage.client.list_buckets().get("Buckets", [])}
    if storage.bucket in names:
        return f"store: bucket {storage.bucket!r} already exists at {storage.describe()}"
    kwargs: dict[str, object] = {"Bucket": storage.bucket}
    if settings.storage.object_lock_days:
        kwargs["ObjectLockEnabledForBucket"] = True   # retention can only be had on a bucket created with it
    storage.client.create_bucket(**kwargs)
    return f"store: created bucket {storage.bucket!r} at {storage.describe()}"


def _secrets(settings: Settings) -> list[str]:
    key = settings.storage.secret_access_key
    return [s for s in (key.get_secret_value() if key else None, settings.storage.access_key_id) if s]


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"bootstrap: {exc}", file=sys.stderr)
        return 1
    try:
        print(ensure_bucket(settings), flush=True)
        open_catalog(settings.catalog).engine.dispose()
    except Exception as exc:  # boto3, psycopg, SQLAlchemy: one line, URLs and keys redacted
        first = (str(exc).splitlines() or [""])[0][:300]
        kind = "" if isinstance(exc, StorageError) else f"{type(exc).__name__}: "
        print(f"bootstrap: {kind}{scrub(redact_text(first), _secrets(settings))}", file=sys.stderr)
        return 1
    print("catalog: migrated to the newest schema", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
