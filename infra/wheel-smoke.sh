#!/usr/bin/env bash
# The package as users get it: build the wheel, install it WITHOUT extras into a fresh virtual environment,
# then, from an empty directory, run every command's --help, the demo (days 0 and 1) and a webhook delivery
# to a loopback endpoint. Catches runtime imports that sit only in the test extra (httpx once did).
# Usage: bash infra/wheel-smoke.sh   (from the repository; needs .venv from infra/setup.sh and Chromium)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
work=$(mktemp -d /tmp/listwatch-wheel.XXXXXX)
hook_pid=""
cleanup() { [ -n "$hook_pid" ] && kill "$hook_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

.venv/bin/pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$work"/dist/listwatch-*.whl
lw="$work/venv/bin/listwatch"
mkdir "$work/project" && cd "$work/project"

"$lw" --version
# every command's --help, from the installed package (no checkout on sys.path)
"$work/venv/bin/python" - <<'EOF'
import subprocess, sys
from typer.main import get_command
from scheduler.cli import app

def walk(command, path):
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from walk(sub, [*path, name])
    else:
        yield path

lw = sys.executable.rsplit("/", 1)[0] + "/listwatch"
paths = list(walk(get_command(app), []))
for path in paths:
    done = subprocess.run([lw, *path, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "Usage:" in done.stdout, (path, done.stderr[-2000:])
print(f"wheel: --help of {len(paths)} commands ok")
EOF

# a loopback webhook endpoint that appends each POSTed body to received.jsonl
port=$("$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hook_port=$("$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$work/venv/bin/python" - "$hook_port" <<'EOF' &
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open("received.jsonl", "ab") as out:
            out.write(body + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
EOF
hook_pid=$!

"$lw" demo --port "$port" > demo0.out
"$lw" alerts subscribe smoke "http://127.0.0.1:$hook_port/hook" --webhook
"$lw" demo --port "$port" --day 1 > demo1.out
"$lw" programs list --json > programmes.json
"$lw" alerts deliver
test -s received.jsonl || { echo "wheel: no webhook delivery arrived" >&2; exit 1; }
echo "wheel: demo, programmes and $(wc -l < received.jsonl) webhook deliveries ok"
