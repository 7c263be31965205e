#!/usr/bin/env bash
# Fuzzes the parsers with cargo-fuzz (libFuzzer): every target in fuzz/ for SECONDS each
# (default 60), one after the other. Stops at the first crash and prints its reproducer.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 10 text_split
#
# Needs nightly Rust (`rustup toolchain install nightly`). cargo-fuzz is installed into ./.tools
# on first use (nothing global). The fuzz crate is not part of the workspace and builds into
# fuzz/target, so it never competes with the workspace's target dir. Too slow for CI: the first
# build takes 10-20 minutes on 2 cores, then SECONDS × 8 (rebuilds take seconds); see
# docs/fuzzing.md.
#
# Environment:
#   FUZZ_SANITIZER  none (default: our crates forbid unsafe code, and it runs faster) or address,
#                   to also catch memory errors in dependencies' unsafe code (built in
#                   fuzz/target/address, so switching does not rebuild the other)
#   FUZZ_JOBS       parallel libFuzzer workers per target (default 1; the machine has 2 cores)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a crash (default 10)
#   FUZZ_ARGS       extra libFuzzer flags, e.g. "-max_len=65536"
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-60}"
shift || true
SANITIZER="${FUZZ_SANITIZER:-none}"
JOBS="${FUZZ_JOBS:-1}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

case "$SECONDS_PER_TARGET" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

step() { printf '\n== %s\n' "$*"; }

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "nightly Rust is needed: rustup toolchain install nightly" >&2
    exit 1
fi

TOOLS="$PWD/.tools"
export PATH="$TOOLS/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "installing cargo-fuzz into .tools"
    cargo install --locked --root "$TOOLS" cargo-fuzz
fi

FUZZ="$PWD/fuzz"
BUILD=(--fuzz-dir "$FUZZ" --sanitizer "$SANITIZER")
if [ "$SANITIZER" != none ]; then BUILD+=(--target-dir "$FUZZ/target/$SANITIZER"); fi
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo +nightly fuzz list --fuzz-dir "$FUZZ")
fi

# Which dictionary helps which target.
dict_for() {
    case "$1" in
        x_webhook_payload | sns_envelope | sns_verify | sns_chat_item) echo "$FUZZ/dict/json.dict" ;;
        sandbox_oauth_header) echo "$FUZZ/dict/oauth.dict" ;;
        text_split | text_render) echo "$FUZZ/dict/text.dict" ;;
    esac
}

step "building the fuzz targets (nightly, sanitizer: $SANITIZER)"
cargo +nightly fuzz build "${BUILD[@]}"

LOGS="$FUZZ/target/fuzz-logs"
mkdir -p "$LOGS"
SUMMARY=()

for t in "${TARGETS[@]}"; do
    step "$t: ${SECONDS_PER_TARGET}s"
    mkdir -p "$FUZZ/corpus/$t" "$FUZZ/artifacts/$t"
    args=(-max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -print_final_stats=1)
    dict="$(dict_for "$t")"
    if [ -n "$dict" ]; then args+=(-dict="$dict"); fi
    if [ "$JOBS" -gt 1 ]; then args+=(-fork="$JOBS"); fi
    # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags on purpose
    args+=(${FUZZ_ARGS:-})
    log="$LOGS/$t.log"
    # New inputs go to fuzz/corpus/$t (git-ignored except the seed-* files), crashes to
    # fuzz/artifacts/$t. Progress: libFuzzer's start, power-of-two pulses and end lines.
    set +e +o pipefail
    cargo +nightly fuzz run "${BUILD[@]}" "$t" -- "${args[@]}" 2>&1 \
        | tee "$log" | grep --line-buffered -E '^#[0-9]+ +(INITED|pulse|DONE)'
    status="${PIPESTATUS[0]}"
    set -e -o pipefail

    runs="$(grep -E '^stat::number_of_executed_units:' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)"
    if [ -z "$runs" ]; then
        runs="$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)"
    fi
    cov="$(grep -oE ' cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+' || true)"
    ft="$(grep -oE ' ft: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+' || true)"
    corpus="$(find "$FUZZ/corpus/$t" -type f | wc -l)"
    crashes=0
    if [ "$status" -ne 0 ]; then crashes=1; fi
    SUMMARY+=("$(printf '%-22s runs=%-10s cov=%-6s ft=%-6s corpus=%-6s crashes=%s' \
        "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes")")
    if [ "$status" -ne 0 ]; then
        step "$t failed (exit $status); from fuzz/target/fuzz-logs/$t.log:"
        # The panic (or sanitizer report) with its stack, then libFuzzer's account of the input.
        awk '/panicked at|==[0-9]+== *ERROR|^ALARM|out-of-memory/ {on=1}
             on && n < 100 {print; n++}
             on && /^Base64:/ {exit}' "$log"
        artifact="$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/^Test unit written to //' || true)"
        step "summary"
        printf '%s\n' "${SUMMARY[@]}"
        if [ -n "$artifact" ]; then
            echo
            echo "reproducer: $artifact"
            echo "replay:     PATH=\"\$PWD/.tools/bin:\$PATH\" cargo +nightly fuzz run ${BUILD[*]} $t $artifact"
            echo "minimise:   PATH=\"\$PWD/.tools/bin:\$PATH\" cargo +nightly fuzz tmin ${BUILD[*]} -r 5000 $t $artifact"
        fi
        exit 1
    fi
done

step "summary (${SECONDS_PER_TARGET}s per target, $(date -u +%Y-%m-%dT%H:%MZ))"
printf '%s\n' "${SUMMARY[@]}"
echo "no crashes"
