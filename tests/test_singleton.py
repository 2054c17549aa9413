"""Exactly one scheduler per catalog, with real ``listwatch run`` processes.

For a SQLite catalog (lock file) and a real throwaway PostgreSQL cluster (advisory lock): while one scheduler runs,
a second refuses with exit 1 naming the holder's host, pid and start time; a ``--standby`` one waits and takes over
once the first stops; after a kill -9 of the holder a new scheduler starts (the lock died with the process).
``listwatch status`` names the running scheduler, and says when none runs.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_support import ROOT, DaemonProcess, env_for, status_json, wait_for

from tests import postgres
from tests.postgres import postgres_url  # noqa: F401  (fixture)

RUNNING = "scheduler running"


def _log_says(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(encoding="utf-8", errors="replace")


def _second_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scheduler", "run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def _terminate_lock_backend(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        cut = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name LIKE 'listwatch-run %'")).all()
    engine.dispose()
    assert cut == [(True,)], cut


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_second_scheduler_refuses_and_standby_takes_over(tmp_path: Path, backend: str,
                                                         request: pytest.FixtureRequest) -> None:
    data_dir = tmp_path / "data"
    (tmp_path / "sources").mkdir()
    env = env_for(data_dir, tmp_path / "sources", "http://127.0.0.1:9", maintenance_interval=1)
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        postgres.reset_database(url)
        env["LISTWATCH_CATALOG_URL"] = url
    first = DaemonProcess(env, tmp_path / "first.log")
    try:
        wait_for(lambda: _log_says(first.log, RUNNING), 60, "the first scheduler to start")
        refused = _second_run(env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        message = " ".join(refused.stderr.split())
        assert f"host {socket.gethostname()}, pid {first.proc.pid}, since 20" in message, message
        assert "Traceback" not in refused.stderr
        assert f"pid {first.proc.pid}, since 20" in status_json(env)["scheduler"]   # status names it too
    except BaseException:
        first.kill()
        raise
    spare_log = tmp_path / "spare.log"
    with spare_log.open("ab") as handle:
        spare = subprocess.Popen([sys.executable, "-m", "scheduler", "run", "--standby"], cwd=ROOT, env=env,
                                 stdout=handle, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _log_says(spare_log, f"pid {first.proc.pid}"), 60, "the spare to say who it waits for")
        assert not _log_says(spare_log, RUNNING)
        assert first.terminate() == 0
        wait_for(lambda: _log_says(spare_log, RUNNING), 60, "the spare to take over")
        assert _second_run(env).returncode == 1   # the spare now holds the lock

        spare.kill()            # kill -9: the kernel (file lock) or PostgreSQL (session ends) drops the lock
        spare.wait(10)
        third = DaemonProcess(env, tmp_path / "third.log")
        wait_for(lambda: _log_says(third.log, RUNNING), 60, "a scheduler to start after a kill -9 of the holder")
        if backend == "postgresql":
            # the lock's connection is cut (as by a database restart): the scheduler stops with exit 1
            _terminate_lock_backend(env["LISTWATCH_CATALOG_URL"])
            assert third.proc.wait(60) == 1
            assert _log_says(third.log, "lost the one-scheduler lock")
            third.handle.close()
        else:
            assert third.terminate() == 0
        assert status_json(env)["scheduler"] is None
    finally:
        if first.proc.poll() is None:
            first.kill()
        if spare.poll() is None:
            spare.kill()
            spare.wait(10)
