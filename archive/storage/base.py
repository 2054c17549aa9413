"""The storage interface every backend implements, and its errors.

Errors (one tree)::

    StorageError                 anything a backend could not do, in words an operator understands
    ├── StorageUnavailable       the store cannot be reached now (retry later; nothing is lost)
    ├── KeyExistsError           refusing to overwrite an existing key
    └── InvalidKeyError          a key that is absolute, climbs out with '..', or has odd characters
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

CHUNK = 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9._\-][A-Za-z0-9._\-/]*$")


class StorageError(Exception):
    """A storage operation failed."""


class StorageUnavailable(StorageError):
    """The store cannot be reached; keep the spool and retry later."""


class KeyExistsError(StorageError):
    """The key already exists: stored objects are never overwritten."""


class InvalidKeyError(StorageError, ValueError):
    """The key is not a safe relative path."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None      # hex, when the store keeps it (our metadata or a checksum)


def check_key(key: str) -> str:
    parts = key.split("/")
    if not _KEY.match(key) or any(p in ("", ".", "..") for p in parts):
        raise InvalidKeyError(f"unsafe storage key {key!r}: use a relative path without '..' or empty parts")
    return key


def storage_key(prefix: str, source_id: str, moment: datetime, name: str) -> str:
    """``<prefix>/<source>/<yyyy>/<mm>/<name>``: the same layout on every backend."""
    parts = [p for p in prefix.strip("/").split("/") if p] + [source_id, f"{moment:%Y}", f"{moment:%m}", name]
    return check_key("/".join(parts))


class Storage(Protocol):
    """Where closed WARC files and their ``.cdxj`` indexes are kept."""

    def describe(self) -> str:
        """For messages: ``local:/path`` or ``s3://bucket/prefix`` (never credentials)."""
        ...

    def put_file(self, key: str, path: Path, *, sha256: str) -> ObjectInfo:
        """Store ``path`` under a new ``key``; KeyExistsError if it exists."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        ...

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``offset`` with one ranged read."""
        ...

    def iter_bytes(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The whole object, streamed in chunks (for hashing and copying)."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        ...


def digest_object(storage: Storage, key: str, chunk: int = CHUNK) -> tuple[int, str]:
    """(size, SHA-256 hex) of a stored object, read back in full."""
    digest = hashlib.sha256()
    size = 0
    for block in storage.iter_bytes(key, chunk):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()
