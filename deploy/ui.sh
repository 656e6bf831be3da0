# Sourced by deploy/local.sh and e2e/run-tests.sh. Node.js is a build tool
# only: it builds the admin UI into admin-web/ui/dist, which cargo embeds
# into the admin-web binary (admin-web/build.rs).
#
#   npm_ci_if_changed DIR   npm ci in DIR unless node_modules matches its lock file
#   build_ui ROOT           installs the UI's packages and builds it

npm_ci_if_changed() {
  local dir=$1 stamp want
  command -v npm >/dev/null || {
    printf 'npm not found: install Node.js 20.19 or newer\n' >&2
    return 1
  }
  stamp="$dir/node_modules/.lock.sha256"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    printf '==> npm ci in %s\n' "$dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error </dev/null) || return 1
    echo "$want" >"$stamp"
  fi
}

build_ui() {
  local root=$1
  npm_ci_if_changed "$root/admin-web/ui" || return 1
  printf '==> building the admin UI\n'
  (cd "$root/admin-web/ui" && npm run --silent build </dev/null >/dev/null) || return 1
}
