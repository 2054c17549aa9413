"""Validate listwatch's outputs with the web-archiving ecosystem's own tools.

Every WARC must pass `warcio check`, index with `cdxj-indexer`, replay in pywb (also in a real browser) and
package as a WACZ that passes `wacz validate`. These helpers run those tools as subprocesses, the way an
archivist would, so a test proves interoperability rather than agreement with our own reader.

Tools are looked up in `LISTWATCH_TOOLS_BIN` (one or more directories, `os.pathsep`-separated) when set,
otherwise in `<repo>/.venv-tools/bin` (pywb, wacz) then `<repo>/.venv/bin` (warcio, cdxj-indexer), which
`bash infra/setup.sh` creates. A missing tool fails the test with a message saying so: it never skips.

pywb replay (checked by tests/test_archive_tools.py, including JavaScript-rendered pages):
- `{base}/{timestamp}/{url}` is the rewritten page. With `framed=False` (the default here,
  `framed_replay: false` in pywb's config.yaml) it is the page itself, so a browser reads its DOM from the main
  frame. With `framed=True` (pywb's default) it is a top frame holding an iframe on `{base}/{timestamp}mp_/{url}`;
  and loading that `mp_` URL at top level makes pywb's client-side script navigate back to the framed URL.
- `{base}/{timestamp}id_/{url}` returns the archived payload unchanged (raw).
- The timestamp need not be exact: pywb serves the nearest capture of each URL, so subresources captured a few
  seconds after the page replay too.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOOL_DIRS = (REPO_ROOT / ".venv-tools" / "bin", REPO_ROOT / ".venv" / "bin")
SETUP_HINT = "run `bash infra/setup.sh` from the repository root"

# Flags that make Debian's chromium work headless here without reaching for the internet.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DEFAULT_CHROMIUM = "/usr/bin/chromium"

PathLike = str | os.PathLike[str]


class ToolMissingError(AssertionError):
    """A validation tool is not installed where the tests look for it."""


# --------------------------------------------------------------------------------------------------------
# Locating and running tools


def tool_dirs() -> list[Path]:
    """Directories searched for tools, in order."""
    override = os.environ.get("LISTWATCH_TOOLS_BIN")
    if override:
        return [Path(d) for d in override.split(os.pathsep) if d]
    return list(DEFAULT_TOOL_DIRS)


def tool_path(name: str) -> Path:
    """Absolute path of tool `name`, or ToolMissingError naming where it was looked for."""
    dirs = tool_dirs()
    for d in dirs:
        candidate = d / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    where = ", ".join(str(d) for d in dirs)
    raise ToolMissingError(f"`{name}` not found in {where} (LISTWATCH_TOOLS_BIN overrides): {SETUP_HINT}")


def run_tool(name: str, *args: PathLike, timeout: float = 120, cwd: PathLike | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run tool `name`; with `check`, raise AssertionError carrying its output when it exits non-zero."""
    argv = [str(tool_path(name)), *(str(a) for a in args)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(argv)} timed out after {timeout} s") from exc
    if check and proc.returncode != 0:
        raise AssertionError(_describe(proc))
    return proc


def _describe(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"{' '.join(map(str, proc.args))} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")


def _paths(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise ValueError("no WARC paths given")
    resolved = [Path(p).resolve() for p in items]
    for p in resolved:
        if not p.is_file():
            raise AssertionError(f"no such file: {p}")
    return resolved


# --------------------------------------------------------------------------------------------------------
# warcio, cdxj-indexer


def warcio_check(paths: PathLike | Sequence[PathLike]) -> None:
    """`warcio check -v`: every record's block and payload digests must verify; plus, for `.gz` files, the
    gzip stream must be complete.

    The second check is ours because warcio check 1.8.1 passes a file cut short (exit 0, "digest pass" for
    every record before the cut; the cut record is silently dropped). Raises AssertionError with the output.
    """
    files = _paths(paths)
    proc = run_tool("warcio", "check", "-v", *files, check=False)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or "digest fail" in output or "Traceback" in output:
        raise AssertionError("warcio check failed:\n" + _describe(proc))
    for f in files:
        if f.suffix == ".gz":
            try:
                with gzip.open(f, "rb") as fh:
                    while fh.read(1 << 20):
                        pass
            except (EOFError, OSError, zlib.error) as exc:
                raise AssertionError(f"warcio check passed but {f} is not a complete gzip stream "
                                     f"(truncated or corrupt): {exc}") from exc


def cdxj_index(paths: PathLike | Sequence[PathLike], sort: bool = True, post_append: bool = False) -> list[str]:
    """CDXJ lines from `cdxj-indexer` (`-s` when `sort`, `-p` when `post_append`).

    cdxj-indexer indexes response/revisit/resource/metadata records, not requests, and skips `conversion`
    records. Its `filename` field is the path as passed, here relative to the first WARC's directory (so a
    bare file name when all WARCs share a directory). With `post_append`, POST captures get pywb's key
    (`...?__wb_method=post&<body as query>`), as `wb-manager add` makes them.
    """
    files = _paths(paths)
    cwd = files[0].parent
    args: list[PathLike] = [os.path.relpath(f, cwd) for f in files]
    flags = (["-s"] if sort else []) + (["-p"] if post_append else [])
    proc = run_tool("cdxj-indexer", *flags, *args, cwd=cwd)
    return [line for line in proc.stdout.splitlines() if line.strip()]


@dataclass(frozen=True)
class CdxjLine:
    surt: str
    timestamp: str
    fields: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.fields["url"])


def parse_cdxj(line: str) -> CdxjLine:
    """Split a CDXJ line `SURT TIMESTAMP {json}`."""
    surt, timestamp, blob = line.split(" ", 2)
    return CdxjLine(surt, timestamp, json.loads(blob))


# --------------------------------------------------------------------------------------------------------
# WACZ


def wacz_validate(path: PathLike) -> None:
    """`wacz validate -f PATH`; AssertionError with the output when the WACZ is invalid."""
    proc = run_tool("wacz", "validate", "-f", Path(path).resolve(), check=False)
    if proc.returncode != 0:
        raise AssertionError("wacz validate failed:\n" + _describe(proc))


def wacz_create_and_validate(warc_paths: PathLike | Sequence[PathLike], out_path: PathLike,
                             pages_jsonl: Path | None = None) -> Path:
    """Package WARCs with `wacz create`, then `wacz validate` the result; returns the WACZ path.

    Pages come from `pages_jsonl` (`-p`, a `json-pages-1.0` file) when given, otherwise from wacz's own
    detection (`-d -t`), which finds rendered captures poorly.
    """
    out = Path(out_path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    pages = ["-p", Path(pages_jsonl).resolve()] if pages_jsonl is not None else ["-d", "-t"]
    run_tool("wacz", "create", "-o", out, *pages, *_paths(warc_paths))
    if not out.is_file():
        raise AssertionError(f"wacz create exited 0 but wrote no {out}")
    wacz_validate(out)
    return out


# --------------------------------------------------------------------------------------------------------
# pywb


# How long a server process gets to answer after it starts. A ceiling, reached only when something is wrong (the wait
# ends as soon as it answers): Python servers took 27-30 s to start at load 14 on this 2-core machine, past the
# 30 s allowed before.
STARTUP = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# urllib without any proxy from the environment: these are loopback requests.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """GET `url` directly (no proxy); returns (status, headers, body) for any HTTP status. (The timeout is a
    ceiling for a loaded machine: a replay's first answer builds its indexes.)"""
    try:
        with _DIRECT.open(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def replay_url(base: str, timestamp: str, url: str, modifier: str = "") -> str:
    """`{base}/{timestamp}{modifier}/{url}`; modifier `id_` for raw bytes, `mp_` for the framed content."""
    return f"{base.rstrip('/')}/{timestamp}{modifier}/{url}"


@contextlib.contextmanager
def pywb_replay(warc_paths: PathLike | Sequence[PathLike], *, framed: bool = False,
                startup_timeout: float = STARTUP) -> Iterator[str]:
    """Serve WARCs with pywb on a free loopback port; yields the collection's base URL.

    Builds a temporary collection (`wb-manager init coll` + `wb-manager add coll WARC...`, which copies and
    indexes the files, POST captures included), writes `config.yaml` with `framed_replay: <framed>`, starts
    `wayback -b 127.0.0.1 -p PORT` there, polls until the collection answers, and stops it on exit.
    """
    files = _paths(warc_paths)
    root = Path(tempfile.mkdtemp(prefix="listwatch-pywb-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        run_tool("wb-manager", "init", "coll", cwd=root)
        run_tool("wb-manager", "add", "coll", *files, cwd=root)
        (root / "config.yaml").write_text(
            f"framed_replay: {'true' if framed else 'false'}\nenable_memento: true\n", encoding="utf-8")
        wayback = tool_path("wayback")
        log_path = root / "wayback.log"
        for _attempt in range(3):  # the free port can be taken between probing and binding it
            port = free_port()
            base = f"http://127.0.0.1:{port}/coll"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen([str(wayback), "-b", "127.0.0.1", "-p", str(port)], cwd=root,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            if _wait_until_up(proc, base + "/", startup_timeout):
                break
            log_text = log_path.read_text(errors="replace")
            stop_process(proc)
            proc = None
            if "Address already in use" not in log_text:
                raise AssertionError(f"pywb did not come up on {base} within {startup_timeout} s:\n{log_text}")
        else:
            raise AssertionError("pywb could not bind a free loopback port in 3 attempts")
        yield base
    finally:
        if proc is not None:
            stop_process(proc)
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            status, _, _ = http_get(url, timeout=2)
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    return False


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------------------
# Browser


def chromium_executable() -> str:
    path = os.environ.get("LISTWATCH_CHROMIUM", DEFAULT_CHROMIUM)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ToolMissingError(f"chromium not found at {path} (LISTWATCH_CHROMIUM overrides): {SETUP_HINT}")
    return path


@contextlib.contextmanager
def chromium_page(*, user_agent: str | None = None) -> Iterator[Page]:
    """A Playwright sync `Page` in Debian's chromium (headless, no background networking)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(user_agent=user_agent) if user_agent else browser.new_context()
            page = context.new_page()
            yield page
            context.close()
        finally:
            browser.close()
