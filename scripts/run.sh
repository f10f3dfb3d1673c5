#!/usr/bin/env bash
# Install the service and start it on its embedded default (SQLite under ./data, the sample
# form definitions). On an empty database it creates the first admin and prints its password.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; then
  bash scripts/system-deps.sh || echo "warning: Japanese fonts not installed; PDFs fall back to built-in CID fonts" >&2
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/kakanai serve "$@"
