#!/usr/bin/env bash
# Start the service on its embedded default (SQLite under ./data, the sample form definitions).
# On an empty database it creates the first admin and prints its password once.
#   make run                          http://127.0.0.1:8000
#   make run HOST=0.0.0.0 PORT=8080   (or KAKANAI_HOST / KAKANAI_PORT in the environment)
#   bash scripts/run.sh --workers 2   other `kakanai serve` options are passed on
# Installs only what is missing: the Japanese fonts (Debian, when root or sudo is available) and the
# pinned Python dependencies when pyproject.toml or requirements.lock changed (scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; then
  bash scripts/system-deps.sh runtime || echo "warning: Japanese fonts not installed; PDFs fall back to built-in CID fonts" >&2
fi
bash scripts/install.sh runtime
exec .venv/bin/kakanai serve --host "${KAKANAI_HOST:-127.0.0.1}" --port "${KAKANAI_PORT:-8000}" "$@"
