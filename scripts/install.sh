#!/usr/bin/env bash
# Create .venv and install the pinned dependencies from the lock file, then the package itself (editable).
#   bash scripts/install.sh runtime   requirements.lock        (make run)
#   bash scripts/install.sh test      requirements-test.lock   (make test, .ci/run)
# Nothing is installed when pyproject.toml, the lock file and the Python version are unchanged since the
# last install (a stamp in .venv/ holds their hash). Refresh the locks with `bash scripts/lock.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-runtime}" in
  runtime) LOCK=requirements.lock ;;
  test) LOCK=requirements-test.lock ;;
  *) echo "usage: $0 [runtime|test]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
STAMP=".venv/.kakanai-${1:-runtime}.stamp"
WANT="$({ cat pyproject.toml "$LOCK"; .venv/bin/python -V; } | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x .venv/bin/kakanai ]; then
  echo "dependencies unchanged ($LOCK): nothing to install"
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q -r "$LOCK"
.venv/bin/python -m pip install -q --no-deps -e .
echo "$WANT" > "$STAMP"
echo "installed the pinned dependencies of $LOCK"
