#!/usr/bin/env bash
# Debian packages the service and its tests need: Japanese fonts (IPAex, IPAmj明朝), poppler
# (pdftotext/pdftoppm for PDF checks), Chromium with its driver (browser tests) and npm (axe-core for them).
set -euo pipefail
PACKAGES=(fonts-ipaexfont fonts-ipamj-mincho poppler-utils chromium chromium-driver nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
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
