#!/usr/bin/env bash
# A release build of xdm-connect optimised with a profile of its own hot paths (profile-guided
# optimisation, PGO): about a fifth less CPU per message. docs/performance.md, "A build optimised
# with a profile of the bridge", has the measurements.
#
#   scripts/build-pgo.sh [--production] [OUT_DIR]          (default: target/pgo)
#
# --production: the optimised build is the production binary (`-p xdm-app --no-default-features`:
# no demo, no sandbox), the one `serve` runs in production and the x86_64 Lambda package is made
# of (`scripts/build-lambda.sh --pgo`). It is then also the binary instrumented and trained —
# built alone, without the sandbox, it unifies its dependencies' features differently, and a
# profile of the default-feature program would not fit it — and the training adds the four Lambda
# functions (below).
#
# 1. Builds the bridge and the load generator instrumented (`-Cprofile-generate`), in a target
#    folder of their own (target/pgo-generate; with --production the bridge and the generator in
#    two invocations, so that each keeps its own features, and also a debug build with the
#    sandbox and the Python tools of ./.venv for the Lambda training).
# 2. Trains: runs the load generator's scenarios against the instrumented bridge, on loopback,
#    with the sandbox emulators and SQLite — DMs into open chats and agent replies at 100 a second
#    and as fast as they go, webhook acknowledgements — the paths a contact center runs all day.
#    Each bridge is stopped with SIGTERM (the generator kills its wrapper; the bridge gets the
#    parent-death signal) so that it exits and writes its profile. With --production, then the
#    four Lambda functions (webhook, worker, outbound, sweeper) on DMs and replies, each bootstrap
#    behind a local Lambda Runtime API with DynamoDB, SQS and SNS emulated (scripts/lambda-cost.py,
#    which stops them with SIGTERM).
# 3. Merges the profiles with `llvm-profdata` (rustup's `llvm-tools` component, added if missing).
# 4. Builds again with `-Cprofile-use` (target/pgo-use) and copies `xdm-connect` to OUT_DIR.
#
# Two release builds (~16 min each on 2 cores) and 2-6 min of training. Code the training does not
# run (media, X Chat, operator commands) is compiled as usual but laid out as cold: it works the
# same, a little slower. Needs rustup (for llvm-tools) and `setpriv` (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

# What is built instrumented (step 1) and then optimised (step 4): the bridge, and the generator
# with it in one invocation unless the bridge is the production binary.
production=false
packages=(-p xdm-app -p xdm-bench)
if [ "${1:-}" = --production ]; then
    production=true
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
instrumented() {
    RUSTFLAGS="-Cprofile-generate=$data/generator" build "$generate_dir" "$@"
}
instrumented "${packages[@]}"
if $production; then
    instrumented -p xdm-bench
    # The Lambda training's emulators: the sandbox (a debug build with it, target/debug, as the
    # tests use) and moto (./.venv).
    cargo build --locked -p xdm-app
    ./scripts/venv.sh
fi

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
expected=5
if $production; then
    # Two passes of four functions: eight bootstraps, each writing its profile when stopped.
    expected=$((expected + 8))
    echo "lambda-cost.py (the four Lambda functions)" | tee -a "$data/training.log"
    LLVM_PROFILE_FILE="$data/bridge/%p.profraw" python3 scripts/lambda-cost.py --messages 200 \
        --bootstrap "$bin" --sandbox-bin "$PWD/target/debug/xdm-connect" >> "$data/training.log" 2>&1 ||
        { tail -40 "$data/training.log" >&2; exit 1; }
fi
profiles=$(find "$data/bridge" -name '*.profraw' | wc -l)
[ "$profiles" -ge "$expected" ] || { echo "only $profiles bridge profiles were written" >&2; exit 1; }

echo "== 3/4 merging $profiles profiles"
"$profdata" merge -o "$data/merged.profdata" "$data/bridge"
# Cargo rebuilds a registry crate when its flags change, not when the file a flag names does: a
# profile named by its content makes a new profile rebuild every crate with it.
profile="$data/merged-$(sha256sum "$data/merged.profdata" | cut -c1-16).profdata"
mv "$data/merged.profdata" "$profile"

echo "== 4/4 optimised build"
RUSTFLAGS="-Cprofile-use=$profile" build "$use_dir" "${packages[@]}"
mkdir -p "$out"
cp "$use_dir/$host/release/xdm-connect" "$out/xdm-connect"
echo "built $out/xdm-connect (profile: $profile)"
