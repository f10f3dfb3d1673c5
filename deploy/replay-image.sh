#!/usr/bin/env bash
# Replay the Dockerfile's steps without Docker (for a machine that cannot pull images): copy what the
# image copies into a temporary folder, install requirements.lock and the package into a fresh venv,
# then run the image's start command (production settings, PostgreSQL, two workers) on a free loopback
# port and check: /healthz answers, the first admin was created and printed once, that password works,
# /docs is off, a restart does not create another admin. Everything it started is stopped on exit.
#   bash deploy/replay-image.sh postgresql+psycopg://postgres@127.0.0.1:5432/postgres
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER_URL=${1:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}
WORK="$(mktemp -d /tmp/kakanai-image.XXXXXX)"
PID=""
DB="kakanai_image_$$"
stop() {  # the service runs in its own process group: the supervisor, its workers, their helpers
  if [ -n "$PID" ]; then kill -- "-$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  PID=""
}
cleanup() {
  stop
  "$WORK/venv/bin/python" - "$SERVER_URL" "$DB" <<'PY' 2>/dev/null || true
import sys
from sqlalchemy import create_engine, text
e = create_engine(sys.argv[1], isolation_level="AUTOCOMMIT")
with e.connect() as c:
    c.execute(text(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)'))
PY
  rm -rf "$WORK"
}
trap cleanup EXIT

# COPY lines of the Dockerfile, in order.
mkdir -p "$WORK/app" "$WORK/data"
cp requirements.lock pyproject.toml README.md alembic.ini "$WORK/app/"
cp -r app migrations templates form_definitions bench "$WORK/app/"
find "$WORK/app" -name __pycache__ -prune -exec rm -rf {} +
python3.11 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q -r "$WORK/app/requirements.lock"
"$WORK/venv/bin/pip" install -q --no-deps -e "$WORK/app"
echo "installed requirements.lock and the package into $WORK/venv"

"$WORK/venv/bin/python" - "$SERVER_URL" "$DB" <<'PY'
import sys
from sqlalchemy import create_engine, text
e = create_engine(sys.argv[1], isolation_level="AUTOCOMMIT")
with e.connect() as c:
    c.execute(text(f'CREATE DATABASE "{sys.argv[2]}"'))
PY
PORT=$("$WORK/venv/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
# The image's CMD, with 127.0.0.1 and a free port instead of 0.0.0.0:8000.
CMD=$(sed -n 's/^CMD \["sh", "-c", "\(.*\)"\]$/\1/p' Dockerfile | sed 's/\\"/"/g; s/--host 0.0.0.0 --port 8000/--host 127.0.0.1 --port '"$PORT"'/')
[ -n "$CMD" ] || { echo "could not read the CMD of the Dockerfile" >&2; exit 1; }
DBURL=$("$WORK/venv/bin/python" -c "import sys; from sqlalchemy.engine import make_url; print(make_url(sys.argv[1]).set(database=sys.argv[2]).render_as_string(hide_password=False))" "$SERVER_URL" "$DB")
start() {
  (cd "$WORK/app" && exec setsid env -i PATH="$WORK/venv/bin:/usr/bin:/bin" HOME="$WORK" PYTHONUNBUFFERED=1 \
    KAKANAI_ENV=production KAKANAI_DATA_DIR="$WORK/data" KAKANAI_WORKERS=2 KAKANAI_TRUSTED_PROXIES=127.0.0.1 \
    KAKANAI_DATABASE_URL="$DBURL" KAKANAI_SECRET_KEY="$(head -c 48 /dev/urandom | base64 | tr -d '\n')" \
    KAKANAI_ENCRYPTION_KEYS="k1:$(head -c 32 /dev/urandom | base64)" \
    sh -c "$CMD" >"$WORK/log.$1" 2>&1) &
  PID=$!
  for _ in $(seq 1 90); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/log.$1"; echo "the service stopped" >&2; exit 1; }
    sleep 1
  done
  cat "$WORK/log.$1"; echo "the service did not answer /healthz" >&2; exit 1
}
start 1
echo "started: $CMD"
PASSWORD=$(sed -n 's/^  password: //p' "$WORK/log.1")
[ -n "$PASSWORD" ] || { cat "$WORK/log.1"; echo "no first admin password in the log" >&2; exit 1; }
echo "first admin created, its password printed once"
for _ in $(seq 1 30); do [ "$(grep -c 'Started server process' "$WORK/log.1")" -ge 2 ] && break; sleep 1; done
[ "$(grep -c 'Started server process' "$WORK/log.1")" -eq 2 ] || { cat "$WORK/log.1"; echo "expected 2 worker processes" >&2; exit 1; }
echo "2 worker processes (migrated once before they started)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/api/v1/auth/token" \
  -H 'X-Forwarded-Proto: https' -d "username=admin&password=$PASSWORD")
[ "$code" = 200 ] || { echo "login with the printed password answered $code" >&2; exit 1; }
echo "login with the printed password: 200"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/docs")
[ "$code" = 404 ] || { echo "/docs answered $code in production" >&2; exit 1; }
echo "/docs in production: 404"
stop
start 2
if grep -q "password:" "$WORK/log.2"; then echo "a restart printed a new admin password" >&2; exit 1; fi
echo "restart: no second admin, no password printed"
echo "image steps replayed: OK"
