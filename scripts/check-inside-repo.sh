#!/usr/bin/env bash
# Fail when code, tests, benchmarks or scripts name a file outside the repository: the
# sibling "shared" folder (dot-dot) or an absolute path of one machine. A clone with nothing beside it must pass.
# (.ci/run also runs the SQLite suite from a copy of the tree with no sibling folders at all.)
set -euo pipefail
cd "$(dirname "$0")/.."
# Spelled with character classes so that this file does not itself name the paths it looks for.
pattern='(\.\./sh[a]red|parent *(/|\.joinpath\() *"sh[a]red"|"/wor[k]/|/roo[t]/|/hom[e]/[a-z])'
if git ls-files -co --exclude-standard -- '*.py' '*.sh' '*.toml' '*.ini' '*.cfg' 'Makefile' 'Dockerfile' '*.yml' '*.yaml' '.ci/*' \
   | xargs -r grep -nE "$pattern"; then
  echo "error: the lines above read files outside the repository; keep a copy inside it (bench/households/)" >&2
  exit 1
fi
echo "inside-repo check: no reads outside the repository"
