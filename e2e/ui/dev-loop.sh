#!/usr/bin/env bash
# Developer loop for the UI tests: rebuild the UI and admin-web, then run
# one browser test through pytest. Usage: e2e/ui/dev-loop.sh [pytest -k expr]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
(cd "$ROOT/admin-web/ui" && npm run build >/dev/null)
(cd "$ROOT" && cargo build -q -p admin-web)
cd "$ROOT/e2e"
AIGW_BIN_DIR="$ROOT/target/debug" .venv/bin/python -m pytest -p no:cacheprovider -x -q tests/test_ui.py -k "${1:-admin_journey}"
