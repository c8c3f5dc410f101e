#!/usr/bin/env bash
# Prepares what tests/stores/test_omniboard.py compares against, both cached under the repo
# (gitignored) and kept when already working (idempotent):
#   .omniboard/             Omniboard 2.16.1 installed with npm (node_modules/.bin/omniboard)
#   .venv-sacred-mongo/     Sacred 0.8.7 with pymongo, to record the runs Sacred writes
# Directories can be moved with LABBOOK_OMNIBOARD_DIR and LABBOOK_SACRED_MONGO_VENV.
# Exit status 0 when both are ready; otherwise a one-line reason on stderr and status 1.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="${LABBOOK_OMNIBOARD_DIR:-$ROOT/.omniboard}"
VENV="${LABBOOK_SACRED_MONGO_VENV:-$ROOT/.venv-sacred-mongo}"
OMNIBOARD_VERSION="2.16.1"
SACRED_VERSION="0.8.7"

omniboard_ready() {
    [ -x "$DIR/node_modules/.bin/omniboard" ] && node -e '
        const v = require(process.argv[1] + "/node_modules/omniboard/package.json").version;
        process.exit(v === process.argv[2] ? 0 : 1)' "$DIR" "$OMNIBOARD_VERSION" 2>/dev/null
}

sacred_ready() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$SACRED_VERSION" <<'EOF' 2>/dev/null
import sys
import pymongo  # noqa: F401  (Sacred's MongoObserver needs it)
import sacred
from sacred.observers import MongoObserver  # noqa: F401
sys.exit(0 if sacred.__version__ == sys.argv[1] else 1)
EOF
}

if ! omniboard_ready; then
    for tool in node npm; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "setup_omniboard: $tool is not installed (Omniboard runs on Node.js)" >&2
            exit 1
        }
    done
    rm -rf "$DIR"
    mkdir -p "$DIR"
    npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error \
        "omniboard@$OMNIBOARD_VERSION" >"$DIR/npm.log" 2>&1 || {
        echo "setup_omniboard: npm install omniboard@$OMNIBOARD_VERSION failed" \
             "(see $DIR/npm.log)" >&2
        exit 1
    }
    omniboard_ready || {
        echo "setup_omniboard: omniboard@$OMNIBOARD_VERSION installed but not runnable" >&2
        exit 1
    }
fi

if ! sacred_ready; then
    PY="${LABBOOK_SACRED_BASE_PYTHON:-$(command -v python3.11 || command -v python3)}"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || { echo "setup_omniboard: '$PY -m venv $VENV' failed" >&2; exit 1; }
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "sacred==$SACRED_VERSION" "setuptools<81" numpy pymongo \
        >/dev/null 2>"$VENV/pip-error.log" || {
        echo "setup_omniboard: pip install sacred==$SACRED_VERSION pymongo failed" \
             "(see $VENV/pip-error.log)" >&2
        exit 1
    }
    sacred_ready || { echo "setup_omniboard: Sacred installed but cannot be imported" >&2; exit 1; }
fi
