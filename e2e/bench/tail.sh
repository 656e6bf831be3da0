#!/usr/bin/env bash
# Where the one-connection tail goes: a 5 s wrk run at one connection
# against the data plane (release build, stack.sh's stack), with
# `perf sched record` over 3 s of it; then e2e/bench/sched_gaps.py lists
# the stalls of the request chain (wrk, the data plane's serving threads,
# the mock) longer than 1 ms and which threads held the cores meanwhile.
#
#   cargo build --release --workspace && e2e/bench/tail.sh
#
# Needs perf (Debian's linux-perf) and root. STOPCP=1 stops the control
# plane during the run (traces wait in the spool).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$ROOT/target/release"
WORK="$(mktemp -d)"; PIDS=()
cleanup() { [ -n "${CP_PID:-}" ] && kill -CONT "$CP_PID" 2>/dev/null; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$WORK"; }
trap cleanup EXIT
# shellcheck source=stack.sh
. "$ROOT/e2e/bench/stack.sh"
start_stack >/dev/null 2>&1
start dp env AIGW_LISTEN=127.0.0.1:0 AIGW_STATE_DIR="$WORK/dp" RUST_LOG=warn "$BIN/data-plane"; DP=$ADDR; DP_PID=$PID
for _ in $(seq 1 100); do curl -fs "http://$DP/readyz" >/dev/null && break; sleep 0.1; done
STREAM=0 AIGW_KEY=sk-bench wrk -t1 -c1 -d2s -s "$ROOT/e2e/bench/chat.lua" "http://$DP/v1/chat/completions" >/dev/null
[ "${STOPCP:-0}" = 1 ] && kill -STOP "$CP_PID"
( sleep 1; perf sched record -a -o "$WORK/sched.data" -- sleep 3 >/dev/null 2>&1 ) &
STREAM=0 AIGW_KEY=sk-bench wrk -t1 -c1 -d5s --latency -s "$ROOT/e2e/bench/chat.lua" "http://$DP/v1/chat/completions" | grep -E "50%|99%|Requests/sec"
sleep 0.5
perf sched script -i "$WORK/sched.data" 2>/dev/null > "$WORK/script.txt"
python3 "$ROOT/e2e/bench/sched_gaps.py" "$WORK/script.txt" \
  --dp "$(ls /proc/$DP_PID/task | tr '\n' ,)" --cp "$(ls /proc/$CP_PID/task | tr '\n' ,)" \
  --mock "$(ls /proc/$MOCK_PID/task | tr '\n' ,)"
