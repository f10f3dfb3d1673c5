#!/usr/bin/env bash
# Translations of the resident page and the waiting-room board (gettext catalogs, Babel).
#   bash scripts/i18n.sh           extract the Japanese source strings, update every catalog, compile
#   bash scripts/i18n.sh compile   only compile the .po files into the .mo files the app loads
# Languages (catalog directories under app/i18n/): ja ja_EASY en zh_Hans ko vi pt_BR.
# A new language: add it to LANGS and to app/i18n/__init__.py LANGUAGES, run this script, translate
# the new app/i18n/<lang>/LC_MESSAGES/messages.po, run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
DIR=app/i18n
LANGS="ja ja_EASY en zh_Hans ko vi pt_BR"

if [ "${1:-all}" != "compile" ]; then
  "$PYBABEL" -q extract -F "$DIR/babel.cfg" -o "$DIR/messages.pot" --no-wrap --sort-by-file \
    --project=kakanai --copyright-holder="kakanai contributors" --msgid-bugs-address="" .
  for lang in $LANGS; do
    if [ -f "$DIR/$lang/LC_MESSAGES/messages.po" ]; then
      "$PYBABEL" -q update -i "$DIR/messages.pot" -d "$DIR" -l "$lang" --no-wrap --no-fuzzy-matching
    else
      "$PYBABEL" -q init -i "$DIR/messages.pot" -d "$DIR" -l "$lang" --no-wrap
    fi
  done
fi
"$PYBABEL" compile -d "$DIR" --statistics
