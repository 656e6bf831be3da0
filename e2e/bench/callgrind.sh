#!/usr/bin/env bash
# The data plane's instructions per request, by function: one release data
# plane (one serving thread) under callgrind, warmed up, then SECS seconds
# of wrk at one connection with the counters zeroed first. Instruction
# counts do not depend on what else the machine runs, so two builds compare
# on a noisy host where wall-clock figures cannot.
#
#   e2e/bench/callgrind.sh                   # writes $OUT (/tmp/callgrind.dp.out.1)
#   STREAM=1 SECS=20 OUT=/tmp/cg e2e/bench/callgrind.sh
#   DP_BIN=/tmp/data-plane-old e2e/bench/callgrind.sh   # another build
#   callgrind_annotate --inclusive=yes /tmp/callgrind.dp.out.1 | less
#
# Divide a function's count by the requests wrk printed. memcpy's count is
# inflated (valgrind counts each byte `rep movsb` moves as an instruction).
# Needs valgrind, wrk and the release build.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$ROOT/target/release"
OUT="${OUT:-/tmp/callgrind.dp.out}"
WORK="$(mktemp -d)"; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# shellcheck source=stack.sh
. "$ROOT/e2e/bench/stack.sh"
start_stack
rm -f "$OUT" "$OUT".*
start dp env AIGW_LISTEN=127.0.0.1:0 AIGW_STATE_DIR="$WORK/dp" AIGW_SERVE_THREADS=1 RUST_LOG=warn \
  valgrind --tool=callgrind --callgrind-out-file="$OUT" "${DP_BIN:-$BIN/data-plane}"
DP_ADDR=$ADDR; DP_PID=$PID
for _ in $(seq 1 300); do curl -fs "http://$DP_ADDR/readyz" >/dev/null && break; sleep 0.1; done
lua="$ROOT/e2e/bench/chat.lua"; url="http://$DP_ADDR/v1/chat/completions"
STREAM="${STREAM:-0}" AIGW_KEY=sk-bench wrk -t1 -c1 -d3s -s "$lua" "$url" >/dev/null
callgrind_control -z "$DP_PID" >/dev/null
STREAM="${STREAM:-0}" AIGW_KEY=sk-bench wrk -t1 -c1 -d"${SECS:-15}s" -s "$lua" "$url" | grep "requests in"
callgrind_control -d "$DP_PID" >/dev/null
echo "profile: $OUT.1"
