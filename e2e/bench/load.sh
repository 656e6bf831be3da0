#!/usr/bin/env bash
# Load run: the data plane (auth, routing, usage extraction, traces on) against
# the mock provider in --fast mode, beside the same load straight at the mock
# and through a plain nginx reverse proxy. Prints a markdown table, with the
# CPU time each process behind the target used per request (from
# /proc/<pid>/stat: the proxy, the control plane storing traces, the mock).
#
#   e2e/bench/load.sh            # release build, 10 s per cell
#   DURATION=5 e2e/bench/load.sh
#   STREAMS=1 CONNS=1 TARGETS="nginx data-plane" SKIP_BUILD=1 e2e/bench/load.sh
#   TARGETS="data-plane limits" REDIS=1 e2e/bench/load.sh
#
# Target `limits` is the same data plane with a key that has every limit
# (rps, rpm, tokens per minute and day, cost per day and month, concurrent),
# each far above the load: what enforcing a budget costs (reserve before
# forwarding, settle after). REDIS=1 starts a redis-server and gives
# the data plane REDIS_URL, so those budgets are kept in Redis.
#
# Needs wrk and nginx (apt-get install wrk nginx-light). Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
STREAMS="${STREAMS:-0 1}"
CONNS="${CONNS:-1 64}"
TARGETS="${TARGETS:-mock nginx data-plane}"
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y wrk nginx-light" >&2; exit 1; }
done
cd "$ROOT"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --workspace >&2
BIN="$ROOT/target/release"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# shellcheck source=stack.sh
. "$ROOT/e2e/bench/stack.sh"
start_stack
start dp env AIGW_LISTEN=127.0.0.1:0 AIGW_STATE_DIR="$WORK/dp" RUST_LOG=warn "$BIN/data-plane"; DP_ADDR=$ADDR; DP_PID=${PIDS[-1]}
for _ in $(seq 1 100); do curl -fs "http://$DP_ADDR/readyz" >/dev/null && break; sleep 0.1; done

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
sed -e "s#__DIR__#$WORK/nginx#g" -e "s#__MOCK_PORT__#${MOCK_ADDR##*:}#" -e "s#__PORT__#$NGINX_PORT#" \
  "$ROOT/e2e/bench/nginx.conf.tmpl" >"$WORK/nginx/nginx.conf"
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx.err" &
PIDS+=($!); NGINX_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break; sleep 0.05; done
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
TICK=$(getconf CLK_TCK)

# run TARGET_URL STREAM CONNS KEY NAME=PID... -> "rps p50 p99 non2xx cpu"
# cpu: each named process's CPU time per request over the cell, in µs
# (the proxy, the control plane storing traces, the mock behind them).
run() {
  local url="$1" stream="$2" conns="$3" key="$4" out
  shift 4
  local -a before=()
  for np in "$@"; do before+=("$(ticks "${np#*=}")"); done
  out=$(STREAM="$stream" AIGW_KEY="$key" wrk -t"$(( conns < THREADS ? conns : THREADS ))" -c"$conns" -d"${DURATION}s" --latency \
    -s "$ROOT/e2e/bench/chat.lua" "$url/v1/chat/completions")
  local rps p50 p99 non2xx total cpu="" i=0
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  for np in "$@"; do
    local used=$(( $(ticks "${np#*=}") - before[i] ))
    cpu+="${cpu:+, }${np%%=*} $(awk -v u="$used" -v t="$TICK" -v n="${total:-0}" 'BEGIN { printf "%.0f", (n > 0 ? u * 1e6 / t / n : 0) }')"
    i=$((i + 1))
  done
  echo "$rps $p50 $p99 ${non2xx:-0} $cpu"
}

echo "| mode | conns | target | req/s | p50 | p99 | non-2xx | CPU µs/request |"
echo "|---|---|---|---|---|---|---|---|"
for stream in $STREAMS; do
  mode=$([ "$stream" = 1 ] && echo streaming || echo non-streaming)
  for c in $CONNS; do
    for target in $TARGETS; do
      case $target in
        mock) url="http://$MOCK_ADDR"; procs=("mock=$MOCK_PID") ;;
        nginx) url="http://127.0.0.1:$NGINX_PORT"; procs=("nginx=$NGINX_WORKER" "mock=$MOCK_PID") ;;
        data-plane|limits) url="http://$DP_ADDR"; procs=("dp=$DP_PID" "cp=$CP_PID" "mock=$MOCK_PID") ;;
      esac
      key=$([ "$target" = limits ] && echo sk-bench-limited || echo sk-bench)
      read -r rps p50 p99 bad cpu < <(run "$url" "$stream" "$c" "$key" "${procs[@]}")
      echo "| $mode | $c | $target | $rps | $p50 | $p99 | $bad | $cpu |"
    done
  done
done
