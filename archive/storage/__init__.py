"""Storage backends: a local directory (default) or an S3-compatible store, one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.storage.base import (
    InvalidKeyError,
    KeyExistsError,
    ObjectInfo,
    Storage,
    StorageError,
    StorageUnavailable,
    digest_object,
    storage_key,
)
from archive.storage.local import LocalStorage

if TYPE_CHECKING:
    from scheduler.settings import Settings

__all__ = ["InvalidKeyError", "KeyExistsError", "LocalStorage", "ObjectInfo", "Storage", "StorageError",
           "StorageUnavailable", "digest_object", "open_storage", "storage_key"]


def open_storage(settings: Settings) -> Storage:
    """The configured backend; boto3 is imported only when S3 is used."""
    if settings.storage.kind == "s3":
        from archive.storage.s3 import S3Storage

        return S3Storage.from_settings(settings.storage)
    return LocalStorage(settings.store_path, prefix=settings.storage.prefix)
