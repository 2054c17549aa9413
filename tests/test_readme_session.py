"""README's "A first session", run as a script from a clean copy of the repository, judged on what a user sees.

The copy holds the tracked files only (no var/, no listwatch.yaml, no sources/) with this checkout's .venv and
.venv-tools linked in, so `.venv/bin/listwatch` runs exactly as README shows. Set-up (`infra/setup.sh`) is
left out: CI runs it before the suite. Each command must exit 0 without a traceback, write fewer than 20
lines to stderr at the default level, and never cut an id (source ids, record ids) at 80 columns. The
long-running `replay` is started, seen answering, then stopped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
CUT_ID = re.compile(r"(demo-[\w-]*|urn:uuid:[\w-]*|https?://\S*)…")


def session_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## A first session", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.strip().splitlines() if line.strip()]


def _clean_copy(target: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for env in (".venv", ".venv-tools"):
        (target / env).symlink_to(ROOT / env)


def _judge(command: str, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    for stream in (done.stdout, done.stderr):
        assert "Traceback" not in stream, (command, stream[-3000:])
        assert not CUT_ID.search(stream), (command, CUT_ID.search(stream))
    assert len(done.stderr.splitlines()) < 20, (command, done.stderr)


@pytest.mark.slow
@pytest.mark.browser
def test_first_session_from_the_readme(tmp_path: Path) -> None:
    commands = session_commands()
    assert commands[0] == ".venv/bin/listwatch demo" and any("--day 4" in c for c in commands)
    checkout = tmp_path / "listwatch"
    _clean_copy(checkout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTWATCH_")}
    # the checkout's code, not the editable install's; a free port for the demo (others may use 8765)
    env |= {"COLUMNS": "80", "PYTHONPATH": str(checkout), "LISTWATCH_DEMO_PORT": str(free_port())}
    for command in commands:
        args = shlex.split(command)
        if args[1] == "replay":
            _replay(args, checkout, env)
            continue
        done = subprocess.run(args, cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
        _judge(command, done)
        if args[1:] == ["demo"]:
            assert (checkout / "listwatch.yaml").exists() and (checkout / "sources" / "demo-mofcom.yaml").exists()
        if "programs" in args:
            assert "programme(s)" in done.stdout
    assert (checkout / "mofcom.wacz").stat().st_size > 0


def _replay(args: list[str], checkout: Path, env: dict[str, str]) -> None:
    port = free_port()
    args = [*args[:-1], str(port)] if "--port" in args else [*args, "--port", str(port)]
    proc = subprocess.Popen(args, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status < 500
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError(f"replay did not answer on {port}: {proc.poll()}")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
    assert "Traceback" not in out + err and len(err.splitlines()) < 20, err[-3000:]
