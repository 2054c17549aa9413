"""Real S3-compatible servers on loopback for tests: ``rclone serve s3`` and ``moto_server``.

- rclone: real SigV4 signatures, data on disk under ``server.data_dir/<bucket>/<key>`` (flip bytes there to
  simulate rot), ignores ``If-None-Match`` on PUT, keeps user metadata in memory only. ``stop()`` /
  ``start()`` restart it on the same port and directory (outage tests).
- moto: S3 semantics (412 on conditional PUT, Object Lock, multipart rules), no auth, memory only.

Use the fixtures by importing them into a test module::

    from tests.servers import moto_s3, rclone_s3  # noqa: F401  (pytest fixtures)

    def test_x(rclone_s3: S3Server) -> None:
        bucket = rclone_s3.make_bucket()
        storage = rclone_s3.storage(bucket, multipart_threshold=5 * 2**20)

or, outside pytest, ``with rclone_server(tmp_dir) as server: ...`` / ``with moto_server() as server: ...``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.archive_tools import STARTUP, free_port, stop_process

if TYPE_CHECKING:
    from archive.storage.s3 import S3Storage

BIN = Path(sys.executable).parent
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_counter = itertools.count(1)


def executable(name: str) -> str:
    found = BIN / name
    if found.is_file():
        return str(found)
    which = shutil.which(name)
    if which is None:
        raise AssertionError(f"`{name}` not found in {BIN} or PATH: run `bash infra/setup.sh`")
    return which


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True   # any HTTP answer means the server is up
    except OSError:
        return False


@dataclass
class S3Server:
    """One server process; ``endpoint`` is ``http://127.0.0.1:PORT``."""

    kind: str                       # rclone | moto
    port: int
    log_path: Path
    data_dir: Path | None = None    # rclone only
    access_key: str = "listwatch-test-key"
    secret_key: str = "listwatch-test-secret"
    startup_timeout: float = STARTUP
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        if self.kind == "rclone":
            assert self.data_dir is not None
            return [executable("rclone"), "serve", "s3", "--addr", f"127.0.0.1:{self.port}",
                    "--auth-key", f"{self.access_key},{self.secret_key}", str(self.data_dir)]
        return [executable("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self) -> None:
        """Start (or restart) the server on its port and directory; returns once it answers HTTP."""
        if self.running:
            return
        env = {**os.environ, "RCLONE_CONFIG": str(self.log_path.with_suffix(".rclone.conf"))}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.01
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.kind} exited {self.proc.returncode} on start:\n{self.log()}")
            if _answers(self.endpoint + "/"):
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        self.stop()
        raise AssertionError(f"{self.kind} did not answer on {self.endpoint} within {self.startup_timeout} s:\n"
                             f"{self.log()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    # -- clients ----------------------------------------------------------------------------------------------

    def client(self) -> Any:
        """A plain boto3 client with the settings S3 clones need."""
        import boto3
        from botocore.config import Config

        config = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                        request_checksum_calculation="when_required", response_checksum_validation="when_required",
                        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, config=config)

    def make_bucket(self, name: str | None = None, *, object_lock: bool = False) -> str:
        """Create a bucket with a fresh name (or ``name``); ``object_lock`` needs moto (or real S3)."""
        name = name or f"lw-{next(_counter)}-{uuid.uuid4().hex[:8]}"
        kwargs: dict[str, Any] = {"Bucket": name}
        if object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        self.client().create_bucket(**kwargs)
        return name

    def storage(self, bucket: str, **options: Any) -> S3Storage:
        from archive.storage.s3 import S3Storage

        options.setdefault("conditional_writes", True)
        return S3Storage(bucket, endpoint_url=self.endpoint, access_key_id=self.access_key,
                         secret_access_key=self.secret_key, **options)

    def settings_env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """``LISTWATCH_STORAGE__*`` variables pointing listwatch at this server and bucket."""
        return {"LISTWATCH_STORAGE__KIND": "s3", "LISTWATCH_STORAGE__ENDPOINT_URL": self.endpoint,
                "LISTWATCH_STORAGE__BUCKET": bucket, "LISTWATCH_STORAGE__PREFIX": prefix,
                "LISTWATCH_STORAGE__ACCESS_KEY_ID": self.access_key,
                "LISTWATCH_STORAGE__SECRET_ACCESS_KEY": self.secret_key}

    def object_path(self, bucket: str, key: str) -> Path:
        """Where rclone keeps an object on disk."""
        if self.data_dir is None:
            raise AssertionError("only rclone keeps objects on disk")
        return self.data_dir / bucket / key


@contextlib.contextmanager
def _serving(kind: str, data_dir: Path | None = None) -> Iterator[S3Server]:
    """A ``kind`` server on a free loopback port; its log (and rclone's data, unless ``data_dir`` is given) in a
    temporary directory removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"listwatch-{kind}-"))
    data = (data_dir or root / "data") if kind == "rclone" else None
    if data is not None:
        data.mkdir(parents=True, exist_ok=True)
    server = S3Server(kind, free_port(), root / f"{kind}.log", data_dir=data)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def rclone_server(data_dir: Path | None = None) -> contextlib.AbstractContextManager[S3Server]:
    """``rclone serve s3`` over ``data_dir`` (a temporary directory by default) on a free loopback port."""
    return _serving("rclone", data_dir)


def moto_server() -> contextlib.AbstractContextManager[S3Server]:
    """``moto_server`` on a free loopback port (in memory)."""
    return _serving("moto")


@pytest.fixture
def rclone_s3(tmp_path: Path) -> Iterator[S3Server]:
    """A fresh rclone S3 server per test (≈ 0.1 s), data under ``tmp_path/rclone-data``."""
    with rclone_server(tmp_path / "rclone-data") as server:
        yield server


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    """One moto server for the session (≈ 0.7 s to start); use ``make_bucket()`` for isolation."""
    with moto_server() as server:
        yield server


# --------------------------------------------------------------------------------------------------------
# One storage backend under test, whichever it is


@dataclass
class StoreUnderTest:
    """A Storage of one kind (local, rclone, moto) with ways to damage it, for fixity tests."""

    kind: str
    storage: Any
    server: S3Server | None = None
    bucket: str = ""

    def corrupt(self, key: str, at: int = 100) -> None:
        """Flip one byte of a stored object (on disk for local and rclone; rewritten for moto)."""
        if self.kind == "local":
            _flip(self.storage.local_path(key), at)
        elif self.kind == "rclone":
            assert self.server is not None
            _flip(self.server.object_path(self.bucket, key), at)
        else:
            assert self.server is not None
            data = bytearray(b"".join(self.storage.iter_bytes(key)))
            data[at] ^= 0xFF
            self.server.client().put_object(Bucket=self.bucket, Key=key, Body=bytes(data))

    def remove(self, key: str) -> None:
        self.storage.delete(key)


def _flip(path: Path, at: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0xFF]))


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> StoreUnderTest:
    """A fresh, empty store of ``kind`` (``local``, ``rclone`` or ``moto``); S3 options go to S3Storage."""
    if kind == "local":
        from archive.storage.local import LocalStorage

        return StoreUnderTest("local", LocalStorage(tmp_path / "store", prefix=options.get("prefix", "")))
    server: S3Server = request.getfixturevalue("rclone_s3" if kind == "rclone" else "moto_s3")
    bucket = server.make_bucket(object_lock=bool(options.pop("object_lock", False)))
    return StoreUnderTest(kind, server.storage(bucket, **options), server, bucket)


@pytest.fixture(params=["local", "rclone", "moto"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    """Each backend in turn: the local directory, rclone (real signatures, disk) and moto (S3 semantics)."""
    return make_store(str(request.param), request, tmp_path)
