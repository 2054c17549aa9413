"""``listwatch worker`` stopped with SIGTERM mid-crawl: real PostgreSQL, real processes, the demo site.

The worker takes no new job, gives its crawl ``stop_grace`` seconds, stops it, hands the job back to the queue
and exits 0; another worker then runs the check to completion (the job's second attempt, a new run). And the
settings refuse distributed mode without a PostgreSQL catalog, in the operator's words.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from daemon_support import ROOT, DaemonProcess, demo_source, distributed_env, open_warc, runs, wait_for
from sqlalchemy import create_engine, text

from archive.catalog import open_catalog
from crawlers.demo.site import DemoSite
from tests import postgres
from tests.postgres import postgres_url  # noqa: F401  (fixture)

SOURCE = "demo-slowstop"


def _job(url: str) -> tuple[str, int] | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT status::text, attempts FROM procrastinate_jobs "
                                    "WHERE queueing_lock = :c"), {"c": f"full:{SOURCE}"}).first()
    finally:
        engine.dispose()
    return (row[0], row[1]) if row else None


def test_worker_sigterm_hands_its_crawl_back(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    postgres.reset_database(postgres_url)
    sources = tmp_path / "sources"
    sources.mkdir()
    text_ = demo_source("mofcom.yaml", SOURCE, politeness="{delay: 0.4, concurrency: 1}")
    (sources / "slow.yaml").write_text(text_ + "schedule: {full: 1h, jitter: 0}\n", encoding="utf-8")
    with DemoSite(bench_pages=20) as site:
        env = {name: distributed_env(tmp_path / name, sources, site.url, postgres_url, stop_grace=1, kill_grace=5)
               for name in ("sched", "wa", "wb")}
        procs = [DaemonProcess(env["sched"], tmp_path / "sched.log", "run"),
                 DaemonProcess(env["wa"], tmp_path / "wa.log", "worker")]
        try:
            catalog = open_catalog(postgres_url)
            [first] = wait_for(lambda: [r for r in runs(catalog, SOURCE) if r.status == "running"], 120,
                               "the worker's crawl")
            wait_for(lambda: open_warc(tmp_path / "wa" / "spool", first.id, 5000), 120, "the crawl writing")
            assert procs[1].terminate(60) == 0
            assert procs[1].says("stopping: no new job")
            [run] = [r for r in runs(catalog, SOURCE) if r.id == first.id]
            assert run.status == "interrupted", (run.status, run.reason)
            assert _job(postgres_url) == ("todo", 1), "the job was not handed back to the queue"

            procs.append(DaemonProcess(env["wb"], tmp_path / "wb.log", "worker"))
            wait_for(lambda: _job(postgres_url) == ("succeeded", 2), 180, "another worker to run the check")
            done = [r for r in runs(catalog, SOURCE) if r.id != first.id]
            assert [r.status for r in done] == ["complete"]
            assert procs[2].terminate(120) == 0 and procs[0].terminate(120) == 0
        finally:
            for proc in procs:
                if proc.proc.poll() is None:
                    proc.kill()
    assert not list((tmp_path / "wa" / "spool").rglob("*.warc.gz.open")), "the stopped crawl left an open WARC"


def test_distributed_mode_needs_postgresql(tmp_path: Path) -> None:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(tmp_path), "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"),
           "LISTWATCH_DISTRIBUTED__ENABLED": "true"}
    for command in ("run", "worker"):
        done = subprocess.run([sys.executable, "-m", "scheduler", command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60, check=False)
        message = " ".join(done.stderr.split())
        assert done.returncode == 2 and "distributed mode needs a PostgreSQL catalog" in message, done.stderr
        assert "catalog_url is sqlite" in message and "Traceback" not in done.stderr
    env.pop("LISTWATCH_DISTRIBUTED__ENABLED")
    done = subprocess.run([sys.executable, "-m", "scheduler", "worker"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2 and "needs distributed mode" in " ".join(done.stderr.split()), done.stderr
