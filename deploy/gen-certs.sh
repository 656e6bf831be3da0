#!/usr/bin/env bash
# Makes the certificates docker-compose.yml uses for TLS between the planes:
# a private CA, a server certificate for the control plane (names
# `control-plane` and `localhost`), and one client certificate each for the
# data planes and admin-web (mTLS: the control plane accepts only clients
# this CA signed). Run once before `docker compose up`:
#
#   deploy/gen-certs.sh            # writes deploy/certs/
#
# Existing files are kept; delete deploy/certs/ to make new ones (then
# restart every service). The CA key (600) stays here: keep it safe or
# delete it once the certificates are made. The services' keys are made
# readable (644) because the containers run as their own unprivileged user
# and read them through a bind mount; on a shared host, chown them to that
# user (uid 10001, see deploy/Dockerfile) and chmod 600 instead.
set -euo pipefail
DIR="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/certs}"
DAYS="${CERT_DAYS:-825}"
command -v openssl >/dev/null || { echo "gen-certs.sh: openssl is needed" >&2; exit 1; }
umask 077
mkdir -p "$DIR"
chmod 755 "$DIR"
cd "$DIR"

if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.pem -days "$DAYS" -subj "/CN=aigw private CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# leaf NAME USAGE SANS
leaf() {
  local name=$1 usage=$2 sans=$3
  [ -f "$name.pem" ] && return 0
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=critical,CA:FALSE\n' \
    "$sans" "$usage" >"$name.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$name.key" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$name.pem" -days "$DAYS" -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
leaf control-plane serverAuth "DNS:control-plane,DNS:localhost,IP:127.0.0.1"
leaf data-plane clientAuth "DNS:data-plane"
leaf admin-web clientAuth "DNS:admin-web"
chmod 644 ./*.pem ./*.key
chmod 600 ca.key
echo "certificates in $DIR"
