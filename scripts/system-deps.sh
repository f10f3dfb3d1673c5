#!/usr/bin/env bash
# Debian packages of the service and of its tests.
#   bash scripts/system-deps.sh runtime   Japanese fonts only (IPAex, IPAmj明朝): what `make run` and the image need
#   bash scripts/system-deps.sh [all]     also poppler (pdftotext/pdftoppm for PDF checks) and Chromium with its
#                                         driver (browser tests), pcscd with vsmartcard's virtual reader driver
#                                         (card bridge tests) and swig + libpcsclite-dev to build pyscard:
#                                         what `make test` and .ci/run install
set -euo pipefail
RUNTIME=(fonts-ipaexfont fonts-ipamj-mincho)
TEST=(poppler-utils chromium chromium-driver pcscd vsmartcard-vpcd libpcsclite-dev swig)
case "${1:-all}" in
  runtime) PACKAGES=("${RUNTIME[@]}") ;;
  all | test) PACKAGES=("${RUNTIME[@]}" "${TEST[@]}") ;;
  *) echo "usage: $0 [runtime|all]" >&2; exit 2 ;;
esac
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
