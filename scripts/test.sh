#!/usr/bin/env bash
# Install everything the tests need (Debian packages, the pinned dependencies of requirements-test.lock)
# and run the whole suite.
# SQLite by default; set TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres
# to run the same suite against PostgreSQL (a throw-away database is created and dropped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh all
bash scripts/install.sh test
.venv/bin/ruff check .
# axe-core for the browser tests' accessibility checks (tests/browser/axe.py injects it into each page).
(cd tests/browser/js && npm ci --no-audit --no-fund --silent)
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
