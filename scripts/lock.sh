#!/usr/bin/env bash
# Refresh the pinned dependency lock files from pyproject.toml (run after changing a dependency there,
# or to take newer versions; commit the result after the tests pass):
#   requirements.lock        the service's dependencies (the Docker image, `make run`)
#   requirements-test.lock   the same plus the test extras (`make test`, .ci/run)
# Resolved for Python 3.11 on every platform with uv (installed into .venv-tools/ on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=${UV_VERSION:-0.13.8}
if [ ! -x .venv-tools/bin/uv ]; then
  "${PYTHON:-python3}" -m venv .venv-tools
  .venv-tools/bin/python -m pip install -q "uv==$UV_VERSION"
fi
compile() {
  .venv-tools/bin/uv pip compile pyproject.toml --python-version 3.11 --universal --quiet \
    --annotation-style line --custom-compile-command "bash scripts/lock.sh" "$@"
}
compile -o requirements.lock
compile --extra test -o requirements-test.lock
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) pins) and requirements-test.lock ($(grep -c '==' requirements-test.lock) pins)"
