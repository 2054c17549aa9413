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

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

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
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.endswith(".part"):
                yield ObjectInfo(path.relative_to(self.root).as_posix(), path.stat().st_size)

    def local_path(self, key: str) -> Path:
        """Where a key lives on disk (pywb reads local stores directly)."""
        return self._path(key)
