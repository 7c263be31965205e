#!/usr/bin/env bash
# A release build of xdm-connect optimised with a profile of its own hot paths (profile-guided
# optimisation, PGO): about a fifth less CPU per message. docs/performance.md, "A build optimised
# with a profile of the bridge", has the measurements.
#
#   scripts/build-pgo.sh [--production] [OUT_DIR]          (default: target/pgo)
#
# --production: the optimised build is the production binary (`-p xdm-app --no-default-features`:
# no demo, no sandbox) instead of the default features the load generator's figures are of. The
# profile is of the default-feature program and fits it less well: it saves less so far
# (docs/performance.md).
#
# 1. Builds the bridge and the load generator instrumented (`-Cprofile-generate`), in a target
#    folder of their own (target/pgo-generate).
# 2. Trains: runs the load generator's scenarios against the instrumented bridge, on loopback,
#    with the sandbox emulators and SQLite — DMs into open chats and agent replies at 100 a second
#    and as fast as they go, webhook acknowledgements — the paths a contact center runs all day.
#    Each bridge is stopped with SIGTERM (the generator kills its wrapper; the bridge gets the
#    parent-death signal) so that it exits and writes its profile.
# 3. Merges the profiles with `llvm-profdata` (rustup's `llvm-tools` component, added if missing).
# 4. Builds again with `-Cprofile-use` (target/pgo-use) and copies `xdm-connect` to OUT_DIR.
#
# Two release builds (~16 min each on 2 cores) and ~2 min of training. Code the training does not
# run (media, X Chat, operator commands) is compiled as usual but laid out as cold: it works the
# same, a little slower. Needs rustup (for llvm-tools) and `setpriv` (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the optimised build is made of (step 4).
packages=(-p xdm-app -p xdm-bench)
if [ "${1:-}" = --production ]; then
    packages=(-p xdm-app --no-default-features)
    shift
fi
out=${1:-target/pgo}
host=$(rustc -vV | sed -n 's/^host: //p')
generate_dir=target/pgo-generate
use_dir=target/pgo-use
data=$(realpath -m target/pgo-profiles)
command -v setpriv > /dev/null || { echo "setpriv (util-linux) is needed" >&2; exit 2; }

sysroot=$(rustc --print sysroot)
profdata="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
    rustup component add llvm-tools
fi
[ -x "$profdata" ] || { echo "llvm-profdata not found under $sysroot" >&2; exit 2; }

# --target keeps RUSTFLAGS off build scripts and proc macros: only the programs are instrumented.
build() {
    local dir=$1
    shift
    cargo build --release --locked --target "$host" --target-dir "$dir" "$@"
}

echo "== 1/4 instrumented build"
rm -rf "$data"
mkdir -p "$data/bridge" "$data/generator"
RUSTFLAGS="-Cprofile-generate=$data/generator" build "$generate_dir" -p xdm-app -p xdm-bench

echo "== 2/4 training"
bin=$(realpath "$generate_dir/$host/release/xdm-connect")
bench=$(realpath "$generate_dir/$host/release/xdm-bench")
wrapper="$data/bridge.sh"
cat > "$wrapper" <<EOF
#!/bin/sh
# Not exec: the generator stops the bridge with SIGKILL, which would leave no profile; killed,
# this shell makes the kernel send the bridge SIGTERM, and the bridge exits and writes it.
LLVM_PROFILE_FILE="$data/bridge/%p.profraw" setpriv --pdeathsig TERM -- "$bin" "\$@"
EOF
chmod +x "$wrapper"
train() {
    # The generator's own profile is not wanted: it goes to a folder of its own.
    echo "xdm-bench $*" | tee -a "$data/training.log"
    LLVM_PROFILE_FILE="$data/generator/%p.profraw" "$bench" "$@" --bridge-bin "$wrapper" \
        >> "$data/training.log" 2>&1 || { tail -40 "$data/training.log" >&2; exit 1; }
    # Wait for the bridge to finish writing its profile before the next scenario starts one.
    for _ in $(seq 300); do
        pgrep -f "$bin" > /dev/null || return 0
        sleep 0.1
    done
    echo "the instrumented bridge did not exit after SIGTERM" >&2
    exit 1
}
train inbound-e2e --rate 100 --duration 15
train inbound-e2e --duration 10
train outbound-e2e --rate 100 --duration 15
train outbound-e2e --duration 10
train acks --rate 3000 --duration 8
profiles=$(find "$data/bridge" -name '*.profraw' | wc -l)
[ "$profiles" -ge 5 ] || { echo "only $profiles bridge profiles were written" >&2; exit 1; }

echo "== 3/4 merging $profiles profiles"
"$profdata" merge -o "$data/merged.profdata" "$data/bridge"

echo "== 4/4 optimised build"
RUSTFLAGS="-Cprofile-use=$data/merged.profdata" build "$use_dir" "${packages[@]}"
mkdir -p "$out"
cp "$use_dir/$host/release/xdm-connect" "$out/xdm-connect"
echo "built $out/xdm-connect (profile: $data/merged.profdata)"
