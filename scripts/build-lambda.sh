#!/usr/bin/env bash
# Builds the AWS Lambda package of xdm-connect for the provided.al2023 runtime:
#
#   target/lambda/xdm-connect-<arch>.zip   one executable file, `bootstrap` (the xdm-connect binary,
#                                           which runs as a Lambda function when its file name is
#                                           `bootstrap`)
#   target/lambda/xdm-connect.zip          a copy of the zip just built: the file that
#                                           deploy/template.yaml's CodeUri names
#
# usage: scripts/build-lambda.sh [--arch x86_64|arm64] [--pgo]      (default x86_64)
#
# --pgo (x86_64 on an x86_64 Linux host only): the bootstrap is the production binary optimised
#   with a profile of its own hot paths, the four functions' included (scripts/build-pgo.sh
#   --production: two release builds and a few minutes of training on loopback; it also sets up
#   ./.venv). docs/performance.md has what it saves.
#
# x86_64 on an x86_64 Linux host: a plain `cargo build --release`; the binary links glibc
#   dynamically, so it is checked to need no glibc symbol newer than 2.34 (what Amazon Linux 2023,
#   and so provided.al2023, has). Nothing is installed.
# arm64 (or x86_64 on any other host): cargo-lambda, from PyPI into ./.venv (it brings zig, which
#   cross-links against an old glibc and compiles the C dependencies), plus the Rust standard
#   library of the target (`rustup target add`, done here when rustup is present).
#
# The deployed function's architecture must match the zip: deploy with
# `--parameter-overrides Architecture=<arch>` (the script prints the command).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LAMBDA_VERSION=1.9.2 # PyPI package `cargo-lambda` (brings `ziglang`)
MAX_GLIBC=2.34             # glibc of Amazon Linux 2023

arch=x86_64
pgo=false
while [ $# -gt 0 ]; do
  case "$1" in
    --pgo) pgo=true; shift ;;
    --arch) arch="${2:-}"; shift 2 || { echo "--arch needs a value: x86_64 or arm64" >&2; exit 2; } ;;
    --arch=*) arch="${1#--arch=}"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (usage: scripts/build-lambda.sh [--arch x86_64|arm64] [--pgo])" >&2; exit 2 ;;
  esac
done
case "$arch" in
  x86_64 | amd64 | x86-64) arch=x86_64; triple=x86_64-unknown-linux-gnu ;;
  arm64 | aarch64) arch=arm64; triple=aarch64-unknown-linux-gnu ;;
  *) echo "--arch must be x86_64 or arm64, not '$arch'" >&2; exit 2 ;;
esac

target_dir="${CARGO_TARGET_DIR:-target}"
out_dir="$target_dir/lambda"
mkdir -p "$out_dir"

# The highest GLIBC_x.y version a dynamically linked ELF file needs ("" when none).
max_glibc() {
  local bin=$1
  {
    if command -v objdump >/dev/null 2>&1; then
      objdump -T "$bin" 2>/dev/null
    elif command -v readelf >/dev/null 2>&1; then
      readelf -W --dyn-syms -V "$bin" 2>/dev/null
    else
      # No binutils: the version names are plain strings in the dynamic string table.
      python3 - "$bin" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
for m in set(re.findall(rb"GLIBC_[0-9]+\.[0-9]+(?:\.[0-9]+)?", data)):
    print(m.decode())
PY
    fi
  } | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1
}

native=false
[ "$arch" = x86_64 ] && [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] && native=true
if $pgo && ! $native; then
  echo "--pgo builds the x86_64 package on an x86_64 Linux host only: the profile comes from running" >&2
  echo "the binary here" >&2
  exit 2
fi

if $native; then
  if $pgo; then
    echo "== scripts/build-pgo.sh --production $target_dir/pgo-production ($triple, native)"
    ./scripts/build-pgo.sh --production "$target_dir/pgo-production"
    bin="$target_dir/pgo-production/xdm-connect"
  else
    echo "== cargo build --release -p xdm-app --no-default-features --locked ($triple, native)"
    cargo build --release -p xdm-app --no-default-features --locked
    bin="$target_dir/release/xdm-connect"
  fi
  need=$(max_glibc "$bin")
  if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]; then
    echo "the binary needs glibc $need, but provided.al2023 has $MAX_GLIBC: build on an older distribution" >&2
    echo "(Debian 12, Ubuntu 22.04, Amazon Linux 2023) or use cargo-lambda: it is what --arch arm64 uses." >&2
    exit 1
  fi
  echo "highest glibc symbol version needed: ${need:-none} (provided.al2023 has $MAX_GLIBC)"
else
  # cargo-lambda from PyPI: a prebuilt binary plus zig, into the project's venv (nothing global).
  if [ ! -x .venv/bin/cargo-lambda ] || ! .venv/bin/cargo-lambda lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    echo "== installing cargo-lambda $CARGO_LAMBDA_VERSION into .venv (PyPI)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
  fi
  # The target's standard library.
  if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
      echo "== rustup target add $triple"
      rustup target add "$triple" || {
        echo "could not install the Rust standard library for $triple (rustup target add $triple):" >&2
        echo "it is downloaded from the Rust distribution server; install it where that is reachable." >&2
        exit 1
      }
    fi
  elif ! rustc --print sysroot >/dev/null 2>&1 || [ ! -d "$(rustc --print sysroot)/lib/rustlib/$triple" ]; then
    echo "the Rust standard library for $triple is not installed and rustup is absent:" >&2
    echo "install a toolchain that includes it (e.g. with rustup: rustup target add $triple)." >&2
    exit 1
  fi
  flag=--x86-64
  [ "$arch" = arm64 ] && flag=--arm64
  echo "== cargo lambda build --release $flag -p xdm-app --no-default-features --locked ($triple, cross-linked by zig)"
  # cargo-lambda finds zig (ziglang from PyPI) through the venv's python; put the venv first.
  PATH="$PWD/.venv/bin:$PATH" .venv/bin/cargo-lambda lambda build --release "$flag" -p xdm-app --no-default-features --bin xdm-connect --locked
  bin="$target_dir/lambda/xdm-connect/bootstrap"
  [ -x "$bin" ] || bin="$target_dir/$triple/release/xdm-connect"
  need=$(max_glibc "$bin")
  echo "highest glibc symbol version needed: ${need:-none} (provided.al2023 has $MAX_GLIBC)"
fi

# The zip: Python's zipfile (the zip tool may be missing), `bootstrap` with mode 0755.
zip_path="$out_dir/xdm-connect-$arch.zip"
python3 - "$bin" "$zip_path" <<'PY'
import os, sys, time, zipfile
src, dst = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("bootstrap", date_time=time.localtime(os.path.getmtime(src))[:6])
info.external_attr = (0o100755 << 16)  # regular file, rwxr-xr-x
info.create_system = 3                 # Unix, so that the mode bits are honoured
info.compress_type = zipfile.ZIP_DEFLATED
tmp = dst + ".tmp"
with open(src, "rb") as f, zipfile.ZipFile(tmp, "w") as z:
    z.writestr(info, f.read(), compresslevel=9)
os.replace(tmp, dst)
PY
cp -f "$zip_path" "$out_dir/xdm-connect.zip"

size() { stat -c %s "$1" 2>/dev/null || wc -c <"$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
bin_size=$(size "$bin")
zip_size=$(size "$zip_path")
echo
echo "bootstrap ($arch): $bin_size bytes ($(mib "$bin_size"))"
echo "$zip_path: $zip_size bytes ($(mib "$zip_size")); copied to $out_dir/xdm-connect.zip"
echo "deploy it with the stack parameter Architecture=$arch (docs/aws.md)"
