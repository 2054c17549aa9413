"""``listwatch replay``: pywb (in its own environment, ``.venv-tools``) over the archive, reading from the store.

pywb gets one collection, ``archive`` (see ``archive/links.py``), with

- ``index_paths``: by default (``replay.index: api``) the catalog's own CDX endpoint on ``listwatch serve``
  (``cdx+http://…/replay-index/<key>/cdx``, ``scheduler/web/replayindex.py``): every lookup is one indexed
  query, so new crawls appear at once and nothing is rewritten at millions of captures. With
  ``replay.index: file``, one SURT-sorted CDXJ regenerated from the catalog (every capture in a stored WARC),
  with ``filename`` = the WARC's storage key, rewritten atomically every ``refresh`` seconds while pywb runs;
- ``archive_paths``: the store root, ``<dir>/`` for a local store or ``s3://<bucket>/`` for S3, where pywb
  reads WARCs with ranged reads (boto3 in pywb's environment, ``AWS_ENDPOINT_URL`` and credentials passed in
  its environment, never written to the config file).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import Capture, WarcFile
from archive.indexer import cdxj_lines
from archive.links import REPLAY_COLLECTION
from scheduler.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
READABLE_STATES = ("stored", "verified")


class ReplayError(RuntimeError):
    """pywb cannot be started (not installed, or the store is not readable by it)."""


@dataclass(frozen=True)
class ReplaySetup:
    root: Path              # pywb's working directory (config.yaml)
    index: Path             # the merged CDXJ
    env: dict[str, str]     # extra environment for pywb (S3 endpoint and credentials)


def wayback_path(settings: Settings) -> Path:
    bin_dir = settings.replay.tools_bin or REPO_ROOT / ".venv-tools" / "bin"
    path = bin_dir / "wayback"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ReplayError(f"pywb's `wayback` not found in {bin_dir}: run `bash infra/setup.sh` "
                          "or set replay.tools_bin")
    return path


def iter_index_lines(catalog: Catalog) -> Iterator[str]:
    """CDXJ lines for every capture in a stored WARC, SURT-sorted, ``filename`` = storage key."""
    cols = [Capture.url, Capture.surt, Capture.timestamp, Capture.status, Capture.mime, Capture.payload_digest,
            Capture.record_type, Capture.offset, Capture.length, WarcFile.key]
    stmt = (select(*cols).join(WarcFile, WarcFile.id == Capture.warc_file_id)
            .where(WarcFile.state.in_(READABLE_STATES)).order_by(Capture.surt, Capture.timestamp))
    with catalog.read_session() as session:
        batch: list[str] = []
        for row in session.execute(stmt).yield_per(5000):
            data = dict(row._mapping)
            batch += cdxj_lines([data], data["key"])
        yield from sorted(batch)


def write_index(catalog: Catalog, target: Path) -> int:
    """Rewrite the merged index atomically; returns the number of lines."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    count = 0
    with temp.open("w", encoding="utf-8") as fh:
        for line in iter_index_lines(catalog):
            fh.write(line + "\n")
            count += 1
    temp.replace(target)
    return count


def index_source(settings: Settings) -> str:
    """pywb's ``cdx+http://`` index source: the replay-index route of ``listwatch serve`` (scheduler/web)."""
    from scheduler.web.signing import replay_index_key

    host = settings.api.host if settings.api.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    base = (settings.replay.index_url or f"http://{host}:{settings.api.port}").rstrip("/")
    return f"cdx+{base}/replay-index/{replay_index_key(settings)}/cdx"


def prepare(settings: Settings, catalog: Catalog, root: Path | None = None) -> ReplaySetup:
    """Write pywb's config.yaml (and, with ``replay.index: file``, the merged index) under ``root``
    (default DATA_DIR/replay)."""
    root = (root or settings.data_dir / "replay").resolve()
    index = root / "index" / "archive.cdxj"
    if settings.replay.index == "file":
        write_index(catalog, index)
        index_paths = str(index)
    else:
        root.mkdir(parents=True, exist_ok=True)
        index_paths = index_source(settings)
    env: dict[str, str] = {}
    storage = settings.storage
    if storage.kind == "s3":
        archive_paths = f"s3://{storage.bucket}/"
        if storage.endpoint_url:
            env["AWS_ENDPOINT_URL"] = storage.endpoint_url
        if storage.access_key_id:
            env["AWS_ACCESS_KEY_ID"] = storage.access_key_id
        if storage.secret_access_key:
            env["AWS_SECRET_ACCESS_KEY"] = storage.secret_access_key.get_secret_value()
        env["AWS_DEFAULT_REGION"] = storage.region
    else:
        archive_paths = f"{settings.store_path.resolve()}/"
    config = (
        "# written by `listwatch replay`; regenerated on every start\n"
        "collections:\n"
        f"  {REPLAY_COLLECTION}:\n"
        f"    index_paths: {index_paths}\n"
        f"    archive_paths: {archive_paths}\n"
        "framed_replay: false\n"
        "enable_memento: true\n"
    )
    (root / "config.yaml").write_text(config, encoding="utf-8")
    return ReplaySetup(root, index, env)


def start(settings: Settings, setup: ReplaySetup, *, host: str = "127.0.0.1", port: int | None = None,
          log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start pywb's ``wayback`` in ``setup.root``; the caller stops it."""
    argv = [str(wayback_path(settings)), "-b", host, "-p", str(port if port is not None else settings.replay.port)]
    env = {**os.environ, **setup.env}
    out = (log or setup.root / "wayback.log").open("ab")
    try:
        return subprocess.Popen(argv, cwd=setup.root, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    finally:
        out.close()


def serve(settings: Settings, catalog: Catalog, *, host: str = "127.0.0.1", port: int | None = None,
          refresh: float = 60.0) -> int:
    """Run pywb until it exits or Ctrl-C, refreshing the index every ``refresh`` seconds (0 = never)."""
    setup = prepare(settings, catalog)
    proc = start(settings, setup, host=host, port=port)
    signal.signal(signal.SIGTERM, _raise_interrupt)   # stop pywb too when we are terminated
    last = time.monotonic()
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            if refresh and settings.replay.index == "file" and time.monotonic() - last >= refresh:
                write_index(catalog, setup.index)
                last = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    return proc.returncode or 0


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
