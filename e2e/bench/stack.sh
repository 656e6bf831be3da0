# Sourced by load.sh, ab.sh and scale.sh: the processes load runs stand on.
#   start NAME CMD...   runs CMD in the background, waits (20 s at most)
#                       for its "listening on" line, sets ADDR and PID (and
#                       appends to PIDS)
#   ticks PID           CPU time (user + system) the process used, in ticks
#   start_stack         REDIS=1: a redis-server (REDIS_URL exported); the
#                       mock provider (--fast) and a control plane on SQLite
#                       with the bench config applied: sets MOCK_ADDR,
#                       MOCK_PID, CP_ADDR, CP_PID; exports what a data plane
#                       needs to join (AIGW_CONTROL_PLANE, the node token);
#                       CP_BIN: another control-plane binary
# Needs ROOT, BIN, WORK and the PIDS array from the caller (which kills
# PIDS on exit).

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# start NAME CMD...: runs CMD in the background, waits for its "listening on"
# line and sets ADDR. Not called in $(...): the PID must reach PIDS here, or
# the cleanup would leave the process running.
start() {
  local name="$1"; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 400); do
    if grep -q "listening on" "$WORK/$name.out" 2>/dev/null; then
      ADDR=$(grep -m1 "listening on" "$WORK/$name.out" | awk '{print $NF}')
      return 0
    fi
    sleep 0.05
  done
  echo "$name did not start" >&2; cat "$WORK/$name.err" >&2; exit 1
}

start_stack() {
if [ "${REDIS:-0}" = 1 ]; then
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
fi

start mock "$BIN/mock-provider" --listen 127.0.0.1:0 --fast; MOCK_ADDR=$ADDR; MOCK_PID=${PIDS[-1]}
export AIGW_MASTER_KEY=$(python3 -c 'import secrets;print(secrets.token_hex(32))')
export AIGW_ADMIN_TOKEN=bench-admin NODE_TOKEN=bench-node AIGW_NODE_TOKEN=bench-node
start cp env DATABASE_URL="sqlite://$WORK/cp.db" AIGW_GRPC_ADDR=127.0.0.1:0 "${CP_BIN:-$BIN/control-plane}"; CP_ADDR=$ADDR; CP_PID=${PIDS[-1]}
export AIGW_CONTROL_PLANE="http://$CP_ADDR"
cat >"$WORK/bench.yaml" <<YAML
providers:
  - name: mock
    kind: openai-compatible
    base_url: http://$MOCK_ADDR
    models: ["gpt-4o*"]
    keys: [{ name: k1, secret: sk-upstream-bench }]
pricing:
  - { model: gpt-4o-mini, input: 0.15, output: 0.6, cached_input: 0.075 }
client_keys:
  - { name: bench, key: sk-bench }
  - name: bench-limited
    key: sk-bench-limited
    limits: { rps: 1000000000, rpm: 1000000000, tokens_per_minute: 1000000000000, tokens_per_day: 1000000000000, cost_per_day: 1000000000, cost_per_month: 1000000000, concurrent: 100000 }
YAML
"${CP_BIN:-$BIN/control-plane}" apply -f "$WORK/bench.yaml" >&2
}

# ticks PID: CPU time (user + system, every thread) the process has used, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
