#!/usr/bin/env bash
# Install everything the tests need and run the whole suite.
# SQLite by default; set TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres
# to run the same suite against PostgreSQL (a throw-away database is created and dropped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/ruff check .
# axe-core for the browser tests' accessibility checks (tests/browser/axe.py injects it into each page).
(cd tests/browser/js && npm ci --no-audit --no-fund --silent)
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
