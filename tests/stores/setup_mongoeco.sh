#!/usr/bin/env bash
# Creates .venv-mongoeco: Python >= 3.13 with mongoeco (a MongoDB wire-protocol server in pure
# Python) and pymongo, which mongoeco needs to complete a client's handshake. The MongoDB store
# tests start the server from it. Idempotent: an existing, working venv is kept.
#
# Python 3.13 is looked for in $LABBOOK_PYTHON313, then python3.13 on PATH, then pyenv.
# Exit status 0 when the venv is ready; otherwise a one-line reason on stderr and status 1.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${LABBOOK_MONGOECO_VENV:-$ROOT/.venv-mongoeco}"
MONGOECO_VERSION="4.11.0"

ready() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$MONGOECO_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
import pymongo  # noqa: F401  (mongoeco's handshake needs it)
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer  # noqa: F401
sys.exit(0 if version("mongoeco") == sys.argv[1] else 1)
EOF
}

if ready; then
    exit 0
fi

usable() {
    # a pyenv shim exists on PATH even when its version is not selected: run it to be sure
    [ -n "$1" ] && [ -x "$1" ] \
        && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in "${LABBOOK_PYTHON313:-}" "$(command -v python3.13 2>/dev/null)"; do
        if usable "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/3.1[3-9]*/bin/python3.1[3-9]; do
            if usable "$candidate"; then
                echo "$candidate"
                return 0
            fi
        done
    fi
    return 1
}

PY="$(find_python)" || {
    echo "setup_mongoeco: no Python >= 3.13 found (set LABBOOK_PYTHON313 or install python3.13)" >&2
    exit 1
}

rm -rf "$VENV"
"$PY" -m venv "$VENV" || { echo "setup_mongoeco: '$PY -m venv $VENV' failed" >&2; exit 1; }
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "mongoeco==$MONGOECO_VERSION" pymongo >/dev/null 2>"$VENV/pip-error.log" || {
    echo "setup_mongoeco: pip install mongoeco==$MONGOECO_VERSION pymongo failed" \
         "(see $VENV/pip-error.log)" >&2
    exit 1
}
ready || { echo "setup_mongoeco: mongoeco installed but cannot be imported" >&2; exit 1; }
