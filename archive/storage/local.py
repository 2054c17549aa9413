"""A local directory as the store (the embedded default)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from archive.storage.base import CHUNK, KeyExistsError, ObjectInfo, StorageError, check_key


class LocalStorage:
    """Keys are paths under ``root``. Writes go to a temporary name, then ``os.link`` to the final
    name, which fails if it exists: a key is never overwritten, even by two writers at once."""

    def __init__(self, root: Path, prefix: str = "") -> None:
        self.root = root.resolve()
        self.prefix = prefix.strip("/")   # part of every key (storage_key); kept for listing and reindexing

    def describe(self) -> str:
        return f"local:{self.root}"

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise StorageError(f"key {key!r} resolves outside {self.root}")
        return path

    def put_file(self, key: str, path: Path, *, sha256: str) -> ObjectInfo:
        final = self._path(key)
        if final.exists():
            raise KeyExistsError(f"{key} already exists in {self.describe()}")
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        try:
            with path.open("rb") as src, temp.open("xb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
            try:
                os.link(temp, final)
            except FileExistsError:
                raise KeyExistsError(f"{key} already exists in {self.describe()}") from None
            _fsync_dir(final.parent)
        except OSError as exc:
            raise StorageError(f"cannot write {key} to {self.describe()}: {exc.strerror or exc}") from None
        finally:
            temp.unlink(missing_ok=True)
        return ObjectInfo(key, final.stat().st_size, sha256)

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return ObjectInfo(key, path.stat().st_size) if path.is_file() else None

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as fh:
                fh.seek(offset)
                data = fh.read(length)
        except FileNotFoundError:
            raise StorageError(f"{key} is missing from {self.describe()}") from None
        if len(data) != length:
            raise StorageError(f"{key} is shorter than expected: wanted {length} bytes at {offset}, got {len(data)}")
        return data

    def iter_bytes(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        try:
            with self._path(key).open("rb") as fh:
                while block := fh.read(chunk):
                    yield block
        except FileNotFoundError:
            raise StorageError(f"{key} is missing from {self.describe()}") from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (a string prefix, as on S3)."""
        folder, _, _ = prefix.rpartition("/")
        base = self._path(folder) if folder else self.root
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.endswith(".part"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield ObjectInfo(key, path.stat().st_size)

    def delete(self, key: str) -> None:
        """Remove an object (tests and operators only: the archive never deletes)."""
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path:
        """Where a key lives on disk (pywb reads local stores directly)."""
        return self._path(key)


def _fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (the link above), where the OS allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
