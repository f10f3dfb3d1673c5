#!/usr/bin/env bash
# End-to-end check of the proxy configurations on loopback (needs Debian's nginx, caddy and openssl):
# the service in production mode (two workers) behind deploy/nginx/kakanai.conf and behind
# deploy/caddy/Caddyfile (tls internal), each with its listen addresses and upstream changed to free
# loopback ports. Prints: http→https redirect, a login over https with the Secure session cookie,
# /metrics refused at the proxy, the certificate issuer of Caddy's internal CA. Stops all it started.
#   bash deploy/check-proxies.sh
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$T"; }
trap cleanup EXIT
free() { python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }
P1=$(free); P2=$(free); P3=$(free); P4=$(free)
mkdir -p "$T/data" "$T/logs" "$T/conf"
setsid env KAKANAI_ENV=production KAKANAI_DATA_DIR="$T/data" KAKANAI_SECRET_KEY="$(head -c 48 /dev/urandom | base64 -w0)" \
  KAKANAI_ENCRYPTION_KEYS="k1:$(openssl rand -base64 32)" FORWARDED_ALLOW_IPS=127.0.0.1 \
  .venv/bin/kakanai serve --host 127.0.0.1 --port "$P1" --workers 2 > "$T/app.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do curl -fs "http://127.0.0.1:$P1/healthz" >/dev/null && break; sleep 1; done
PW=$(sed -n 's/^  password: //p' "$T/app.log")
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
sed -e "s#/etc/kakanai/tls/#$T/#" -e "s#server 127.0.0.1:8000;#server 127.0.0.1:$P1;#" \
    -e "s#listen 80;#listen 127.0.0.1:$P3;#" -e "/listen \[::\]/d" -e "s#listen 443 ssl http2;#listen 127.0.0.1:$P2 ssl http2;#" \
    -e "s#return 301 https://\$host\$request_uri;#return 301 https://\$host:$P2\$request_uri;#" \
    deploy/nginx/kakanai.conf > "$T/conf/kakanai.conf"
printf 'daemon off;\npid %s/nginx.pid;\nerror_log %s/logs/error.log;\nevents {}\nhttp {\n access_log off;\n include %s/conf/kakanai.conf;\n}\n' "$T" "$T" "$T" > "$T/nginx.conf"
setsid nginx -p "$T" -c "$T/nginx.conf" &
PIDS+=($!)
sleep 1
login() {  # $1 = https base URL
  local jar="$T/jar.$RANDOM"
  local form; form=$(curl -sk -c "$jar" "$1/login")
  local csrf; csrf=$(printf '%s' "$form" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
  curl -sk -b "$jar" -c "$jar" -o /dev/null -w '%{http_code} %{redirect_url}\n' -X POST "$1/login" \
    --data-urlencode "username=admin" --data-urlencode "password=$PW" --data-urlencode "csrf_token=$csrf" --data-urlencode "next=/counter"
  grep -c kakanai_session "$jar" | sed 's/^/session cookies: /'
  curl -sk -b "$jar" -o /dev/null -w 'GET /counter with the session: %{http_code}\n' "$1/counter"
}
echo "--- nginx: http redirect"; curl -s -o /dev/null -w '%{http_code} -> %{redirect_url}\n' "http://127.0.0.1:$P3/login"
echo "--- nginx: login over https"; login "https://127.0.0.1:$P2"
echo "--- nginx: /metrics"; curl -sk -o /dev/null -w '%{http_code}\n' "https://127.0.0.1:$P2/metrics"
echo "--- direct http to the app (production): login"; login "http://127.0.0.1:$P1" | head -1 || true
# Caddy: the repository's Caddyfile with the upstream, the site and the bind changed for loopback.
{ printf '{\n\tadmin off\n\tauto_https disable_redirects\n\tdefault_bind 127.0.0.1\n\tstorage file_system %s/caddy\n}\n' "$T"
  sed -n '/^{\$KAKANAI_HOSTNAME/,$p' deploy/caddy/Caddyfile | sed "s#reverse_proxy app:8000#reverse_proxy 127.0.0.1:$P1#"; } > "$T/Caddyfile"
setsid env KAKANAI_HOSTNAME="localhost:$P4" KAKANAI_TLS=internal HOME="$T" caddy run --adapter caddyfile --config "$T/Caddyfile" > "$T/caddy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 20); do curl -sk -o /dev/null "https://localhost:$P4/healthz" && break; sleep 1; done
echo "--- caddy (tls internal): login over https"; login "https://localhost:$P4"
echo "--- caddy: /metrics"; curl -sk -o /dev/null -w '%{http_code}\n' "https://localhost:$P4/metrics"
echo "--- caddy: issuer"; curl -skv "https://localhost:$P4/healthz" 2>&1 | grep -i "issuer" | head -1
