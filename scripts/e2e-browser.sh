#!/usr/bin/env bash
# The web demo in a real browser: `xdm-connect demo --web` driven by tests/browser/demo.mjs in
# Debian's Chromium through playwright-core (from the npm registry; no browser download).
# Installs what it needs: the `chromium` package (as root, or with sudo) and tests/browser's
# node_modules. Screenshots go to $SCREENSHOTS (default target/browser-screenshots); the README's
# come from `SCREENSHOTS=docs/images scripts/e2e-browser.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SCREENSHOTS="${SCREENSHOTS:-target/browser-screenshots}"

if [ ! -x "$CHROMIUM" ]; then
  echo "installing Debian's chromium (for the browser test)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo -n); else
    echo "no $CHROMIUM, and neither root nor sudo to install it: apt-get install chromium, or set CHROMIUM" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get install -y -q chromium >/dev/null \
    || { "${SUDO[@]}" apt-get update -q >/dev/null && "${SUDO[@]}" apt-get install -y -q chromium >/dev/null; }
fi
command -v node >/dev/null || { echo "the browser test needs Node.js (node) for playwright-core" >&2; exit 1; }
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)

# --workspace, as the test command builds: the same features, so nothing is built twice.
cargo build --locked -q --workspace --bins
out="$(mktemp)"
RUST_LOG= ./target/debug/xdm-connect demo --web >"$out" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; rm -f "$out"' EXIT
url=""
for _ in $(seq 1 600); do
  url="$(grep -o 'open http://127\.0\.0\.1:[0-9]*/' "$out" | grep -o 'http.*' || true)"
  # The URL line comes first; wait for the sandbox line after it too.
  [ -n "$url" ] && grep -q 'sandbox ' "$out" && break
  kill -0 "$demo" 2>/dev/null || { cat "$out" >&2; echo "demo --web exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$out" >&2; echo "demo --web printed no URL within 60 s" >&2; exit 1; }
admin="$(grep -o 'operator page http://127\.0\.0\.1:[0-9]*/' "$out" | grep -o 'http.*' || true)"
token="$(grep -o 'admin token: [^)]*' "$out" | sed 's/admin token: //' || true)"
sandbox="$(grep -o 'sandbox  *http://127\.0\.0\.1:[0-9]*' "$out" | grep -o 'http.*' || true)"
if [ -z "$admin" ] || [ -z "$token" ] || [ -z "$sandbox" ]; then
  cat "$out" >&2; echo "demo --web did not print its operator page, token and sandbox" >&2; exit 1
fi
echo "  demo --web at $url (operator page $admin)"
XDM_OPERATOR_URL="$admin" XDM_ADMIN_TOKEN="$token" XDM_SANDBOX_URL="$sandbox" \
  node tests/browser/demo.mjs "$url" "$SCREENSHOTS"
