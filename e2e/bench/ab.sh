#!/usr/bin/env bash
# A/B load run: two data planes side by side on one control plane and one
# mock provider, the same wrk cells alternated between them, so a noisy host
# moves both alike. Prints, per round and cell: req/s, p50, p99 and the CPU
# per request of each data plane and of the control plane.
#
#   BIN_A=/tmp/data-plane-old e2e/bench/ab.sh          # two builds
#   ENV_B="SOME_SWITCH=1" e2e/bench/ab.sh               # one build, two settings
#   NICE_B=19 e2e/bench/ab.sh                           # control plane reniced during B's cells
#   IDLE_B=1 e2e/bench/ab.sh                            # ... or SCHED_IDLE during B's cells
#   STOPCP_B=1 e2e/bench/ab.sh                          # control plane stopped during B's cells
#   DPNICE_B=10 e2e/bench/ab.sh                         # B's non-serving threads reniced
#   STATE_B=/dev/shm/dpb e2e/bench/ab.sh                # B's state directory elsewhere
#   CP_BIN=/tmp/control-plane-old e2e/bench/ab.sh       # another control plane (stack.sh)
#
# Uses the release build (cargo build --release --workspace first), wrk,
# loopback only. ROUNDS (3), DURATION (5 s), CELLS ("stream:conns ...").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$ROOT/target/release"
BIN_A="${BIN_A:-$BIN/data-plane}"; BIN_B="${BIN_B:-$BIN/data-plane}"
ENV_A="${ENV_A:-X_A=1}"; ENV_B="${ENV_B:-X_B=1}"
DURATION="${DURATION:-5}"; ROUNDS="${ROUNDS:-3}"; CELLS="${CELLS:-0:1 0:64 1:1 1:64}"
WORK="$(mktemp -d)"; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# shellcheck source=stack.sh
. "$ROOT/e2e/bench/stack.sh"
start_stack
start dpa env $ENV_A AIGW_LISTEN=127.0.0.1:0 AIGW_STATE_DIR="$WORK/dpa" RUST_LOG=warn "$BIN_A"; A_ADDR=$ADDR; A_PID=${PIDS[-1]}
start dpb env $ENV_B AIGW_LISTEN=127.0.0.1:0 AIGW_STATE_DIR="${STATE_B:-$WORK/dpb}" RUST_LOG=warn "$BIN_B"; B_ADDR=$ADDR; B_PID=${PIDS[-1]}
for a in $A_ADDR $B_ADDR; do for _ in $(seq 1 100); do curl -fs "http://$a/readyz" >/dev/null && break; sleep 0.1; done; done
TICK=$(getconf CLK_TCK)
run() { local addr=$1 pid=$2 stream=$3 c=$4 b0 c0 out
  b0=$(ticks $pid); c0=$(ticks $CP_PID)
  out=$(STREAM=$stream AIGW_KEY=sk-bench wrk -t$(( c < 2 ? c : 2 )) -c$c -d${DURATION}s --latency -s $ROOT/e2e/bench/chat.lua http://$addr/v1/chat/completions)
  local total=$(awk '/requests in/ {print $1}' <<<"$out")
  local du=$(( $(ticks $pid) - b0 )) cu=$(( $(ticks $CP_PID) - c0 ))
  printf "rps=%s p50=%s p99=%s dpcpu=%s cpcpu=%s\n" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk -v u=$du -v t=$TICK -v n=$total 'BEGIN{printf "%.0f", u*1e6/t/n}')" "$(awk -v u=$cu -v t=$TICK -v n=$total 'BEGIN{printf "%.0f", u*1e6/t/n}')"
}
for r in $(seq 1 $ROUNDS); do
  for cell in $CELLS; do s=${cell%%:*}; c=${cell##*:}
    [ -n "${NICE_B:-}" ] && for t in /proc/$CP_PID/task/*; do renice -n 0 -p ${t##*/} >/dev/null; done
    [ -n "${IDLE_B:-}" ] && for t in /proc/$CP_PID/task/*; do chrt -o -p 0 ${t##*/} >/dev/null; done
    echo "round $r stream=$s c=$c A: $(run $A_ADDR $A_PID $s $c)"
    [ -n "${NICE_B:-}" ] && for t in /proc/$CP_PID/task/*; do renice -n $NICE_B -p ${t##*/} >/dev/null; done
    [ -n "${IDLE_B:-}" ] && for t in /proc/$CP_PID/task/*; do chrt -i -p 0 ${t##*/} >/dev/null; done
    # DPNICE_B=N: B's threads other than its serving ones (background
    # runtime, spool writer) at nice N for good.
    [ -n "${DPNICE_B:-}" ] && for t in /proc/$B_PID/task/*; do
      case "$(cat "$t/comm")" in serve-*) ;; *) renice -n "$DPNICE_B" -p "${t##*/}" >/dev/null ;; esac; done
    [ -n "${STOPCP_B:-}" ] && kill -STOP $CP_PID
    echo "round $r stream=$s c=$c B: $(run $B_ADDR $B_PID $s $c)"
    [ -n "${STOPCP_B:-}" ] && kill -CONT $CP_PID
  done
done
