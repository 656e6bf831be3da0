#!/usr/bin/env bash
# Runs the whole test suite: the Rust tests, then the end-to-end suite
# (e2e/tests, pytest) against the real binaries, on SQLite and on a throwaway
# Postgres cluster started here, with nginx and an openssl test CA between
# the gateway and the mock where users have them.
#
# Works on a fresh Debian machine with Rust, Python 3.11 and Node, as root or
# as a user with passwordless sudo; reads no stdin. Installs what is missing
# (apt: postgresql, redis-server, libpq-dev, nginx, openssl, chromium; pip:
# e2e/requirements.txt into e2e/.venv; npm ci: the admin UI, its browser
# tests, the coding CLIs and TypeScript SDKs of e2e/clients and the OAuth
# server of e2e/oauth, each pinned by its package-lock.json). Builds the
# admin UI before the workspace (admin-web embeds it). Exits non-zero on any
# failure.
#
# Arguments are passed to pytest (e.g. `-k spine -x`).
# E2E_ONLY=1 skips the Rust unit/integration tests (for iterating on e2e).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E="$ROOT/e2e"
VENV="$E2E/.venv"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'run-tests: %s\n' "$*" >&2; exit 1; }

# shellcheck source=../deploy/apt.sh
. "$ROOT/deploy/apt.sh"
# shellcheck source=../deploy/ui.sh
. "$ROOT/deploy/ui.sh"

# ---------------------------------------------------------------- system packages
pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

missing=()
PG_BIN="$(pg_bin_dir)"
{ [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; } || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
# Third-party software the suite puts between the gateway and the mock:
# nginx as a strict upstream front, openssl for the test CA.
{ command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
[ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev) # see ensure_build_deps
command -v make >/dev/null || missing+=(make) # jemalloc is built from source
command -v cc >/dev/null || missing+=(gcc)
# promtool (Debian's prometheus) checks every /metrics; iproute2 builds the
# namespace topology (deploy/topology.py).
command -v promtool >/dev/null || missing+=(prometheus)
command -v ip >/dev/null || missing+=(iproute2)
PYTHON="$(command -v python3.11 || command -v python3 || true)"
[ -n "$PYTHON" ] || die "python3 not found"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# The admin UI's browser tests drive Debian's Chromium (never a downloaded one).
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}" || die "cannot install ${missing[*]}"
  PG_BIN="$(pg_bin_dir)"
  [ -x "$PG_BIN/initdb" ] || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
fi

# ---------------------------------------------------------------- python env
if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
want="$(sha256sum "$E2E/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" != "$want" ]; then
  step "installing e2e/requirements.txt"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$E2E/requirements.txt"
  echo "$want" >"$VENV/.requirements.sha256"
fi

# ---------------------------------------------------------------- node packages
# The admin UI, built first (admin-web embeds admin-web/ui/dist), and the npm
# packages the e2e suites drive: e2e/ui (playwright-core, axe-core and
# oauth2-mock-server for the UI's tests), e2e/clients (the coding CLIs and
# TypeScript SDKs, test_clients.py), e2e/oauth (oauth2-mock-server for OAuth
# accounts).
build_ui "$ROOT" || die "the admin UI did not build"
step "admin UI unit tests (npm test in admin-web/ui)"
(cd "$ROOT/admin-web/ui" && npm test </dev/null) || die "the admin UI's unit tests failed"
for dir in ui clients oauth; do
  npm_ci_if_changed "$E2E/$dir" || die "npm ci in e2e/$dir failed"
done

# ---------------------------------------------------------------- build + Rust tests
# A first build (a fresh clone, as in CI) gains nothing from incremental
# compilation, whose caches would add gigabytes beside the artifacts: a CI
# run on a clean clone once stopped with "No space left on device" while
# linking the test binaries. Later runs in the same tree keep cargo's default.
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ -z "${CARGO_INCREMENTAL+set}" ] && [ ! -d "$TARGET_DIR/debug" ]; then
  export CARGO_INCREMENTAL=0
fi
step "disk free for $TARGET_DIR"
df -h "$(dirname "$TARGET_DIR")" || true
step "cargo build --workspace"
cargo build --workspace

# ---------------------------------------------------------------- throwaway Postgres
PG_TMP=""
PG_AS=()
TOPO_PID=""  # the topology's pytest, run in the background (below)
TOPO_LOG=""
# Waits for the topology run (interrupting it first if asked) and prints its
# report; returns its status.
topology_wait() {
  [ -n "$TOPO_PID" ] || return 0
  [ "${1:-}" = interrupt ] && kill -INT "$TOPO_PID" 2>/dev/null
  local rc=0
  wait "$TOPO_PID" || rc=$?
  TOPO_PID=""
  step "network-namespace topology (pytest tests/test_topology.py)"
  cat "$TOPO_LOG"
  rm -f "$TOPO_LOG"
  return "$rc"
}

cleanup() {
  local rc=$?
  # A Ctrl-C (130) reached the topology's pytest already; anything else
  # ending the script early interrupts it here.
  if [ "$rc" -eq 130 ]; then topology_wait || true; else topology_wait interrupt || true; fi
  if [ -n "$PG_TMP" ] && [ -d "$PG_TMP" ]; then
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting a throwaway Postgres ($PG_BIN)"
PG_TMP="$(mktemp -d /tmp/aigw-e2e-pg.XXXXXX)"
if [ "$(id -u)" -eq 0 ]; then
  # Postgres refuses to run as root.
  chown postgres:postgres "$PG_TMP"
  PG_AS=(runuser -u postgres --)
fi
PG_PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if ! "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres -A trust -E UTF8 --no-sync \
    >"$PG_TMP/initdb.log" 2>&1; then
  cat "$PG_TMP/initdb.log" >&2
  die "initdb failed"
fi
if ! "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_TMP -F -c max_connections=300" start >/dev/null; then
  cat "$PG_TMP/server.log" >&2
  die "postgres did not start"
fi
export AIGW_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
echo "postgres on 127.0.0.1:$PG_PORT"

# Postgres tests must run, not skip: a missing cluster fails them.
export AIGW_TEST_REQUIRE_PG=1
# So must the promtool checks, and (as root) the network-namespace topology.
export AIGW_TEST_REQUIRE_PROMTOOL=1
if [ "$(id -u)" -eq 0 ]; then export AIGW_TEST_REQUIRE_NETNS=1; fi
# Property-based fuzzing (data-plane/tests/fuzz.rs, proto/tests/fuzz.rs):
# cases per property.
export PROPTEST_CASES="${PROPTEST_CASES:-2000}"

# ---------------------------------------------------------------- topology, beside the rest
# The network-namespace topology (e2e/tests/test_topology.py: its own
# Postgres, Redis and addresses) mostly waits on faults (a 30 s link cut,
# restarts), so with no pytest arguments it runs in a pytest of its own,
# beside the Rust tests and the rest of the suite; its report follows
# theirs. Python is started with SIGINT restored (a background job inherits
# it ignored) so an interrupted run still tears the namespaces down.
PYTEST=("$VENV/bin/python" -c 'import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(pytest.main(sys.argv[1:]))' -p no:cacheprovider -v)
if [ "$#" -eq 0 ]; then
  TOPO_LOG="$(mktemp /tmp/aigw-e2e-topology.XXXXXX)"
  step "network-namespace topology (in the background; log: $TOPO_LOG)"
  (cd "$E2E" && AIGW_BIN_DIR="$ROOT/target/debug" exec "${PYTEST[@]}" tests/test_topology.py) \
    >"$TOPO_LOG" 2>&1 </dev/null &
  TOPO_PID=$!
fi

# ---------------------------------------------------------------- Rust tests
if [ "${E2E_ONLY:-0}" != "1" ]; then
  if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace"
    cargo nextest run --workspace --no-fail-fast
    # nextest does not run doctests.
    cargo test --workspace --doc
  else
    step "cargo test --workspace"
    cargo test --workspace --no-fail-fast
  fi
fi

# ---------------------------------------------------------------- e2e suite
step "e2e suite (pytest)"
export AIGW_BIN_DIR="$ROOT/target/debug"
cd "$E2E"
rc=0
if [ -n "$TOPO_PID" ]; then
  "${PYTEST[@]}" --ignore tests/test_topology.py || rc=$?
else
  "${PYTEST[@]}" "$@" || rc=$?
fi
topology_wait || rc=$?
exit "$rc"
