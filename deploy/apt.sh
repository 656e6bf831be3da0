# Sourced by deploy/local.sh and e2e/run-tests.sh: installs Debian packages
# that are missing, as root or through passwordless sudo, without prompts.
#
#   apt_install PKG...

apt_install() {
  [ "$#" -gt 0 ] || return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      printf 'cannot install %s: not root and no sudo\n' "$*" >&2
      return 1
    }
    sudo=(sudo -n)
  fi
  printf '==> installing %s\n' "$*"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# diesel's Postgres backend links libpq: every build of the workspace needs it.
ensure_build_deps() {
  [ -f /usr/include/postgresql/libpq-fe.h ] || apt_install libpq-dev
  # The data plane's allocator (jemalloc) is built from source: make and a C compiler.
  { command -v make >/dev/null && command -v cc >/dev/null; } || apt_install make gcc
}
