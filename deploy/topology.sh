#!/usr/bin/env bash
# docker-compose.yml's two-region topology without a container engine:
# network namespaces and veth links on this machine, the services as
# processes inside them (see deploy/topology.py for the layout).
#
#   deploy/topology.sh up            # as root; builds nothing: run `cargo build --workspace` first
#   deploy/topology.sh status
#   deploy/topology.sh link eu down  # cut eu from the control plane; `link eu up` restores it
#   deploy/topology.sh kill data-plane-eu-1; deploy/topology.sh start data-plane-eu-1
#   deploy/topology.sh ports         # compose's published ports on 127.0.0.1 (+10000), foreground
#   deploy/topology.sh down          # everything stopped, namespaces and state removed
#
# Needs: iproute2, postgresql, redis-server, openssl, python3 with PyYAML
# (installed here when missing), and the binaries in target/debug (or AIGW_BIN_DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "topology.sh: run as root (network namespaces)" >&2; exit 1; }
# shellcheck source=apt.sh
. "$ROOT/deploy/apt.sh"
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
PYTHON="$ROOT/e2e/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
"$PYTHON" -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
apt_install "${missing[@]}"
exec "$PYTHON" "$ROOT/deploy/topology.py" "$@"
