#!/usr/bin/env bash
# Configuration at scale: applies a file of KEYS client keys (100,000 by
# default) to a control plane with two data planes, then measures what one
# key change costs. Prints a markdown table:
#   - apply -f of the whole file (wall clock, parse to exit)
#   - until both data planes serve the new version
#   - the bytes pushed to each data plane, whole and as deltas
#   - one new key: from `apply` of a one-key file to both data planes
#     serving it (median and worst of ROUNDS)
#   - the control plane's compile times (its debug log)
#   - a data plane's RSS before and after the keys, and after the deltas,
#     and its peak (VmHWM) while receiving them and while restarting
#
#   e2e/bench/scale.sh                      # release build, SQLite
#   KEYS=20000 ROUNDS=5 SKIP_BUILD=1 e2e/bench/scale.sh
#   DATABASE_URL=postgres://... e2e/bench/scale.sh
#   DP_BIN=/path/to/older/data-plane e2e/bench/scale.sh   # another data plane
#
# Loopback only; needs python3 (standard library) and curl.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
KEYS="${KEYS:-100000}"
ROUNDS="${ROUNDS:-10}"
cd "$ROOT"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p control-plane -p data-plane -p aigw-e2e >&2
BIN="${BIN:-$ROOT/target/release}"
DP_BIN="${DP_BIN:-$BIN/data-plane}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ "${KEEP:-0}" = 1 ] && echo "kept $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

# shellcheck source=stack.sh
. "$ROOT/e2e/bench/stack.sh"
now_ms() { date +%s%3N; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# The most it was resident at any time (while a whole snapshot is decoded).
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# metric URL NAME: a data plane's metric (summed over labels), 0 if absent.
metric() { curl -fs "$1/metrics" | awk -v n="$2" '$1==n || index($1, n"{")==1 {s+=$NF} END {print s+0}'; }
# wait_keys URL N: until the data plane holds N client keys.
wait_keys() {
  for _ in $(seq 1 6000); do
    [ "$(metric "$1" aigw_snapshot_client_keys)" = "$2" ] && return 0
    sleep 0.01
  done
  echo "data plane $1 never held $2 keys" >&2; exit 1
}

start mock "$BIN/mock-provider" --listen 127.0.0.1:0 --fast; MOCK_ADDR=$ADDR
export AIGW_MASTER_KEY=$(python3 -c 'import secrets;print(secrets.token_hex(32))')
export AIGW_ADMIN_TOKEN=bench-admin AIGW_NODE_TOKEN=bench-node
start cp env NO_COLOR=1 DATABASE_URL="${DATABASE_URL:-sqlite://$WORK/cp.db}" AIGW_GRPC_ADDR=127.0.0.1:0 \
  RUST_LOG=info,control_plane::compile=debug "$BIN/control-plane"; CP_ADDR=$ADDR
export AIGW_CONTROL_PLANE="http://$CP_ADDR"

python3 - "$WORK" "$MOCK_ADDR" "$KEYS" <<'PY'
import sys
work, mock, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
head = f"""providers:
  - name: mock
    kind: openai-compatible
    base_url: http://{mock}
    models: ["gpt-4o*"]
    health_check: {{ interval_secs: 0 }}
    keys: [{{ name: k1, secret: sk-upstream-bench }}]
pricing:
  - {{ model: gpt-4o-mini, input: 0.15, output: 0.6, cached_input: 0.075 }}
client_keys:
  - {{ name: bench, key: sk-bench-0123456789 }}
"""
with open(f"{work}/small.yaml", "w") as f:
    f.write(head)
with open(f"{work}/big.yaml", "w") as f:
    f.write(head)
    for i in range(n):
        limits = ", limits: { rpm: 600 }" if i % 4 == 0 else ""
        f.write(f"  - {{ name: app-{i:07d}, key: sk-bench-{i:07d}-0123456789{limits} }}\n")
PY
"$BIN/control-plane" apply -f "$WORK/small.yaml" >/dev/null
start dp1 env NO_COLOR=1 AIGW_LISTEN=127.0.0.1:0 AIGW_STATE_DIR="$WORK/dp1" AIGW_NODE_ID=bench-1 RUST_LOG=info "$DP_BIN"
DP1="http://$ADDR"; DP1_PID=$PID
start dp2 env NO_COLOR=1 AIGW_LISTEN=127.0.0.1:0 AIGW_STATE_DIR="$WORK/dp2" AIGW_NODE_ID=bench-2 RUST_LOG=info "$DP_BIN"
DP2="http://$ADDR"
wait_keys "$DP1" 1; wait_keys "$DP2" 1
RSS_BEFORE=$(rss_kib "$DP1_PID")

T0=$(now_ms)
"$BIN/control-plane" apply -f "$WORK/big.yaml" >"$WORK/apply.out"
T1=$(now_ms)
wait_keys "$DP1" $((KEYS + 1)); wait_keys "$DP2" $((KEYS + 1))
T2=$(now_ms)
CREATED=$(grep -c '^created client_key' "$WORK/apply.out" || true)
[ "$CREATED" = "$KEYS" ] || { echo "apply created $CREATED keys, not $KEYS" >&2; exit 1; }
sleep 1
RSS_KEYS=$(rss_kib "$DP1_PID"); HWM_KEYS=$(hwm_kib "$DP1_PID")

# One new key per round, applied alone (no --prune: the others stay).
LAT=()
for r in $(seq 1 "$ROUNDS"); do
  printf 'client_keys:\n  - { name: late-%d, key: sk-bench-late-%d-0123456789 }\n' "$r" "$r" >"$WORK/one.yaml"
  s=$(now_ms)
  "$BIN/control-plane" apply -f "$WORK/one.yaml" >/dev/null
  for dp in "$DP1" "$DP2"; do
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer sk-bench-late-$r-0123456789" "$dp/v1/models")" = 200 ]; do :; done
  done
  LAT+=($(( $(now_ms) - s )))
done
sleep 1
RSS_DELTAS=$(rss_kib "$DP1_PID")
DELTAS=$(metric "$DP1" aigw_snapshot_deltas_total)
# Restarted, data plane 1 loads its disk copy; the control plane has
# nothing new for it.
kill -TERM "$DP1_PID"; wait "$DP1_PID" 2>/dev/null || true
start dp1b env NO_COLOR=1 AIGW_LISTEN=127.0.0.1:0 AIGW_STATE_DIR="$WORK/dp1" AIGW_NODE_ID=bench-1 RUST_LOG=info "$DP_BIN"
DP1="http://$ADDR"; DP1_PID=$PID
wait_keys "$DP1" $((KEYS + 1 + ROUNDS))
sleep 1
RSS_RESTART=$(rss_kib "$DP1_PID"); HWM_RESTART=$(hwm_kib "$DP1_PID")
read -r LAT_MED LAT_MAX < <(printf '%s\n' "${LAT[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)], a[NR]}')

# From the control plane's log: what each push to bench-1 weighed, and the
# compile times (`compiled snapshot ... ms=`).
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# field NAME: the value of NAME=... on each line of stdin.
field() { sed -nE "s/.* $1=\"?([0-9.]+)\"?.*/\1/p"; }
pushes() { grep 'pushed snapshot' "$WORK/cp.err" | grep -E "node_id=\"?bench-1\"? " | grep -E "kind=\"?$1\"?" | field bytes || true; }
WHOLE_BYTES=$(pushes whole | sort -n | tail -1)
DELTA_BYTES=$(pushes delta | median)
# Compiles after the big apply: one key more each time.
COMPILE_MS=$(grep 'compiled snapshot' "$WORK/cp.err" | awk -v k=$((KEYS + 2)) '{for (i=1;i<=NF;i++) if ($i ~ /^keys=/) {split($i, a, "="); if (a[2] >= k) print}}' | field ms | median)
applied() { grep 'applied snapshot' "$WORK/dp1.err" | grep -E "kind=\"?$1\"?" | field ms || true; }
DP_WHOLE_MS=$(applied whole | tail -1)
DP_DELTA_MS=$(applied delta | median)

echo "| what | figure |"
echo "|---|---|"
echo "| keys | $KEYS (+1) |"
echo "| apply -f (parse, send, one transaction, exit) | $(( T1 - T0 )) ms |"
echo "| apply start to both data planes serving them | $(( T2 - T0 )) ms |"
echo "| whole snapshot pushed to each data plane | $WHOLE_BYTES bytes |"
echo "| data plane: whole snapshot applied | ${DP_WHOLE_MS:-?} ms |"
echo "| one new key, apply to both data planes serving it (median / worst of $ROUNDS) | $LAT_MED ms / $LAT_MAX ms |"
echo "| delta pushed per new key (median) | ${DELTA_BYTES:-?} bytes |"
echo "| data plane: delta applied (median) | ${DP_DELTA_MS:-?} ms |"
echo "| deltas applied by data plane 1 | $DELTAS |"
echo "| control plane compile, one key changed (median) | ${COMPILE_MS:-?} ms |"
echo "| data plane RSS: 1 key / $KEYS keys / after $ROUNDS deltas / restarted from its disk copy | $(( RSS_BEFORE / 1024 )) MiB / $(( RSS_KEYS / 1024 )) MiB / $(( RSS_DELTAS / 1024 )) MiB / $(( RSS_RESTART / 1024 )) MiB |"
echo "| data plane peak RSS (VmHWM): receiving the keys / restarting from its disk copy | $(( HWM_KEYS / 1024 )) MiB / $(( HWM_RESTART / 1024 )) MiB |"
