#!/usr/bin/env bash
# Creates ./.venv with the Python tools of scripts/requirements-test.txt, once per change of
# that file. Prints nothing when the venv is already up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

req=scripts/requirements-test.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up .venv (Python test tools: $(grep -v '^#' "$req" | xargs))"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
