"""``listwatch worker --check`` (the worker containers' healthcheck) against a real worker and real PostgreSQL.

No worker on this machine → exit 1 saying so; a real ``listwatch worker`` beating → 0; the same worker frozen
(SIGSTOP: alive but silent, like a hung worker) past ``distributed.stalled_after`` → 1, naming it and how late;
thawed → 0 again; the catalog unreachable → 1 in one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from daemon_support import ROOT, DaemonProcess, wait_for

from tests import postgres
from tests.archive_tools import free_port
from tests.postgres import postgres_url  # noqa: F401  (fixture)


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scheduler", "worker", "--check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _failing(env: dict[str, str]) -> subprocess.CompletedProcess[str] | None:
    done = _check(env)
    return done if done.returncode == 1 else None


def test_worker_check_follows_the_heartbeat(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    postgres.reset_database(postgres_url)
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(tmp_path / "w"), "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"),
           "LISTWATCH_CATALOG_URL": postgres_url, "LISTWATCH_DISTRIBUTED__ENABLED": "true",
           "LISTWATCH_DISTRIBUTED__HEARTBEAT": "1", "LISTWATCH_DISTRIBUTED__STALLED_AFTER": "5"}
    before = _check(env)
    assert before.returncode == 1 and "no listwatch worker has ever started" in before.stderr, before.stderr

    worker = DaemonProcess(env, tmp_path / "w.log", "worker")
    try:
        wait_for(lambda: _check(env).returncode == 0, 120, "the check to pass with a beating worker")
        os.kill(worker.proc.pid, signal.SIGSTOP)
        try:
            late = wait_for(lambda: _failing(env), 60, "the check to fail on a silent worker")
        finally:
            os.kill(worker.proc.pid, signal.SIGCONT)
        message = " ".join(late.stderr.split())
        assert f"worker pid {worker.proc.pid} last beat" in message and "stalled_after 5 s" in message, message
        wait_for(lambda: _check(env).returncode == 0, 60, "the check to pass again once the worker beats")
        assert worker.terminate(120) == 0
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    gone = _check(env)
    assert gone.returncode == 1 and "no running listwatch worker of this machine" in gone.stderr, gone.stderr

    nowhere = _check({**env, "LISTWATCH_CATALOG_URL": f"postgresql+psycopg://listwatch@127.0.0.1:{free_port()}/x"})
    assert nowhere.returncode == 1 and "cannot read the catalog" in nowhere.stderr, nowhere.stderr
    assert "Traceback" not in nowhere.stderr and len(nowhere.stderr.strip().splitlines()) <= 2, nowhere.stderr
