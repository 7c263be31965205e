#!/usr/bin/env bash
# Instructions the bridge executes per relayed message, counted by valgrind's callgrind: a
# low-noise figure to compare two builds where CPU time per message moves by a third from one run
# to the next on a small VM (docs/performance.md, "Instructions per message").
#
#   scripts/instructions-per-message.sh BRIDGE_BINARY [SCENARIO [RATE]]
#
# Runs `xdm-bench SCENARIO` (inbound-e2e by default, 10 customers, RATE messages a second, 20 by
# default: the bridge runs ~50 times slower under valgrind) with the bridge under callgrind, zeroes
# the counters WARM seconds (5) after the bridge's first delivered message, counts WINDOW seconds
# (8), and divides the user-space instructions of every bridge thread by the messages delivered in
# that window (the bridge's INFO line per delivered DM or reply). Kernel time, cache misses and
# waits are not counted: pair it with the CPU figures of xdm-bench. Needs valgrind (`apt install
# valgrind`) and a release build of xdm-bench (`cargo build --release -p xdm-bench`). Under
# valgrind the sha2 crate finds no SHA instructions and hashes in software: the HMAC of each
# webhook counts ~90,000 instructions more than it costs on the real CPU (the same in both builds
# compared).
set -euo pipefail

bridge=$(realpath "${1:?usage: $0 BRIDGE_BINARY [SCENARIO [RATE]]}")
scenario=${2:-inbound-e2e}
rate=${3:-20}
warm=${WARM:-5}
window=${WINDOW:-8}
bench=${XDM_BENCH:-target/release/xdm-bench}
command -v callgrind_control > /dev/null || { echo "valgrind is not installed" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/bridge" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$dir/out.%p "$bridge" "\$@" 2>>$dir/bridge.log
EOF
chmod +x "$dir/bridge"

"$bench" "$scenario" --customers 10 --rate "$rate" --duration $((warm + window + 4)) \
    --bridge-bin "$dir/bridge" > "$dir/bench.log" 2>&1 &
bench_pid=$!
# Under valgrind the bridge takes a while to start and to open the chats (longer on a busy
# machine): the warm-up counts from its first delivered message, not from its start.
delivered='message delivered to the chat|delivered to the customer on X'
for _ in $(seq 600); do
    grep -qE "$delivered" "$dir/bridge.log" 2> /dev/null && break
    kill -0 "$bench_pid" 2> /dev/null || break
    sleep 0.2
done
sleep "$warm"
pid=$(pgrep -f "callgrind-out-file=$dir/" | head -1)
callgrind_control -z "$pid" > /dev/null
from=$(date -u +%Y-%m-%dT%H:%M:%S.%N)
sleep "$window"
to=$(date -u +%Y-%m-%dT%H:%M:%S.%N)
callgrind_control -d "$pid" > /dev/null
wait "$bench_pid" || { cat "$dir/bench.log" >&2; exit 1; }

instructions=$(grep -h "^summary:" "$dir"/out.*.1 | awk "{print \$2}")
messages=$(awk -v from="$from" -v to="$to" -v pattern="$delivered" \
    '$1 >= from && $1 <= to && $0 ~ pattern' \
    "$dir/bridge.log" | wc -l)
if [ "$messages" -eq 0 ]; then
    echo "no message delivered in the window (see the bench's output below)" >&2
    cat "$dir/bench.log" >&2
    exit 1
fi
echo "$scenario at $rate/s: $instructions instructions, $messages messages," \
    "$((instructions / messages)) instructions per message"
