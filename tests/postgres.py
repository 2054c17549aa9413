"""A real PostgreSQL server for tests: a throwaway cluster on a free loopback port.

Uses Debian's PostgreSQL binaries (``/usr/lib/postgresql/*/bin``, installed by ``infra/setup.sh``).
As root, the cluster runs as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.archive_tools import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise AssertionError(f"PostgreSQL's {name} is not installed: run `bash infra/setup.sh`")
    return found[-1]


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Cluster:
    url: str          # SQLAlchemy URL of the ``listwatch`` database
    data: Path        # the cluster's data directory (``postmaster.pid`` names the server's pid)


@contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """A throwaway cluster with a ``listwatch`` database, stopped and deleted on exit (benchmarks use it)."""
    # Not under pytest's tmp_path: those directories are 0700 root, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="listwatch-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(_as_owner([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "listwatch", "-E", "UTF8"]),
                   check=True, capture_output=True)
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
                              "start"]), check=True, capture_output=True)
    try:
        subprocess.run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "listwatch", "listwatch"],
                       check=True, capture_output=True)
        yield Cluster(f"postgresql+psycopg://listwatch@127.0.0.1:{port}/listwatch", data)
    finally:
        subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_cluster() as cluster:
        yield cluster.url


def reset_database(url: str) -> None:
    """Drop every table so each test starts from an empty schema."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


