#!/usr/bin/env bash
# Debian packages the service and its tests need: Japanese fonts (IPAex, IPAmj明朝), poppler
# (pdftotext/pdftoppm for PDF checks), Chromium with its driver (browser tests) and npm for the
# browser tests' axe-core (installed by `npm ci --prefix tests/browser/js` at the end).
set -euo pipefail
PACKAGES=(fonts-ipaexfont fonts-ipamj-mincho poppler-utils chromium chromium-driver)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)  # any npm will do (Debian's, or Node's own install)
install_axe() {
  if [ ! -f tests/browser/js/node_modules/axe-core/axe.min.js ]; then
    (cd "$(dirname "$0")/.." && npm ci --prefix tests/browser/js --no-audit --no-fund --silent)
  fi
}
if [ ${#missing[@]} -eq 0 ]; then
  (cd "$(dirname "$0")/.." && install_axe)
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
(cd "$(dirname "$0")/.." && install_axe)
