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
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
