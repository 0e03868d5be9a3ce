#!/usr/bin/env bash
# Create/refresh the interop Python venv (interop/.venv) and print its python.
#
# Idempotent: the venv is created once with the machine's python3 ($PYTHON to
# override) and requirements are (re)installed only when
# interop/python/requirements.txt or the interpreter version changed (stamp
# file inside the venv). Progress goes to stderr; the LAST (and only) line on
# stdout is the absolute path of the venv's python, so callers can do
#   PY="$(scripts/setup-python.sh)"
# Works from any cwd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/interop/.venv"
REQ="$ROOT/interop/python/requirements.txt"
STAMP="$VENV/.requirements.stamp"
LOCKDIR="$ROOT/interop/.cache"

log() { printf 'setup-python: %s\n' "$*" >&2; }

[ -f "$REQ" ] || { log "missing $REQ"; exit 1; }

# Serialize concurrent runs (e.g. parallel test processes), when flock exists.
mkdir -p "$LOCKDIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCKDIR/setup-python.lock"
    flock 9
fi

# (Re)create the venv if it is missing or its interpreter no longer runs.
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating venv $VENV with $(command -v "$PYTHON") ($("$PYTHON" --version 2>&1))"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

want="$(
    {
        sha256sum "$REQ" | cut -d' ' -f1
        "$VENV/bin/python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
)"
have="$(cat "$STAMP" 2>/dev/null || true)"

if [ "$want" != "$have" ]; then
    log "installing $REQ"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --disable-pip-version-check \
        --no-input --requirement "$REQ" >&2
    printf '%s\n' "$want" > "$STAMP"
else
    log "requirements up to date"
fi

printf '%s\n' "$VENV/bin/python"
