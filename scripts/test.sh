#!/usr/bin/env bash
# The whole test suite, from a clean clone: formatting, lints, and every test of every crate.
# Installs nothing globally; anything it needs beyond the Rust toolchain goes under ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests talk to emulators on loopback only; never to AWS or X.
export AWS_EC2_METADATA_DISABLED=true
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A one-off run of the whole suite gains nothing from incremental compilation, and its caches
# double the size of target/ (3 GB more on a clean clone); set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Nor from line tables in ~30 test binaries of 100+ MB each (a quarter of their size): panics
# still name file and line.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"

step() { printf '\n== %s\n' "$*"; }

step "Python test tools (.venv)"
./scripts/venv.sh

step "cfn-lint deploy/template.yaml"
.venv/bin/cfn-lint deploy/template.yaml

step "cargo fmt --check"
cargo fmt --all -- --check

step "no import cycle between the source files of any crate"
python3 scripts/module_cycles.py crates/*/src

step "cargo clippy (all targets, warnings are errors)"
# With the counting allocator of the load generator's builds, so that its code and tests are
# checked too (the same single pass; the production build is checked below).
cargo clippy --workspace --all-targets --locked --features xdm-app/count-allocations -- -D warnings

step "the production build carries no sandbox (cargo features)"
cargo clippy -p xdm-app --no-default-features --locked -- -D warnings
if cargo tree -e normal -p xdm-app --no-default-features --locked --prefix none \
  | grep -E '^(rsa|rcgen|xdm-sandbox) '; then
  echo "the crates above reach the production build (xdm-app --no-default-features)" >&2
  exit 1
fi

step "cargo test"
# The crash test runs on its own, after the rest, with its per-round counts shown.
cargo test --workspace --locked -- --skip crash::kill_9

step "crash test: kill -9 the bridge 10 times during a steady stream"
# Always --workspace: a `-p` selection resolves features differently and rebuilds half the
# dependency graph for nothing.
cargo test --workspace --test it --locked -- crash::kill_9 --show-output

step "the web demo in a real browser (Debian's Chromium, playwright-core)"
./scripts/e2e-browser.sh

step "the load generator's allocation counting (cargo feature count-allocations)"
cargo test --workspace --locked --features xdm-app/count-allocations --lib --test it -- allocations

step "all tests passed"
