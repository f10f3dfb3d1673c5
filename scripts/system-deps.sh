#!/usr/bin/env bash
# Debian packages of the service and of its tests.
#   bash scripts/system-deps.sh runtime   Japanese fonts only (IPAex, IPAmj明朝): what `make run` and the image need
#   bash scripts/system-deps.sh [all]     also poppler (pdftotext/pdftoppm for PDF checks), Chromium with its
#                                         driver (browser tests), pcscd with vsmartcard's virtual reader driver
#                                         (card bridge tests), swig + libpcsclite-dev to build pyscard, and npm
#                                         for the browser tests' axe-core (`npm ci --prefix tests/browser/js`):
#                                         what `make test` and .ci/run install; and Korean and Chinese
#                                         fonts so the screenshots of the resident pages show 한국어 / 简体中文
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=(fonts-ipaexfont fonts-ipamj-mincho)
TEST=(poppler-utils chromium chromium-driver pcscd vsmartcard-vpcd libpcsclite-dev swig fonts-nanum fonts-wqy-microhei)
case "${1:-all}" in
  runtime) PACKAGES=("${RUNTIME[@]}"); WANT_NPM=0 ;;
  all | test) PACKAGES=("${RUNTIME[@]}" "${TEST[@]}"); WANT_NPM=1 ;;
  *) echo "usage: $0 [runtime|all]" >&2; exit 2 ;;
esac
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$WANT_NPM" = 1 ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)  # any npm will do (Debian's, or Node's own install)
fi
install_axe() {
  if [ "$WANT_NPM" = 1 ] && [ ! -f tests/browser/js/node_modules/axe-core/axe.min.js ]; then
    npm ci --prefix tests/browser/js --no-audit --no-fund --silent
  fi
}
if [ ${#missing[@]} -eq 0 ]; then
  install_axe
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "missing Debian packages (${missing[*]}); install them as root" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
install_axe
