#!/usr/bin/env bash
# System packages for the real-traffic lab (tests/lab): a throwaway MariaDB server, real clients,
# loopback capture. Idempotent: installs with apt only what is missing (one `apt-get update` first,
# only when something is missing) and says what it did.
#
#   mariadb-server     mariadbd, mariadb-install-db, auth_ed25519 / auth_pam (+ auth_pam_tool)
#   mariadb-client     the `mariadb` CLI (libmariadb client plugins: client_ed25519, dialog, ...)
#   tcpdump            loopback capture (tests/lab/capture.py)
#   tshark             peer-tool comparisons
#   libmariadb-dev     mariadb_config / headers: pip builds mysqlclient and MariaDB Connector/Python
#   pkg-config, gcc    the same builds, mysqlwire's own C extension (mysqlwire/capture/_walk.c),
#                      and the LD_PRELOAD TLS key-log shim (tests/lab/sslkeylog.c)
#   libpam-modules     pam_exec / pam_permit for the lab's PAM service (PAM dialog / cleartext)
#   libpam-runtime     /etc/pam.d
#   openssl            certificate tooling (the lab makes its certificates with `cryptography`)
# and the lab's non-Python clients (tests/lab/extclients.py):
#   golang-go + golang-github-go-sql-driver-mysql-dev   Go's go-sql-driver/mysql (GOPATH build)
#   nodejs (+ npm when no npm came with it)             node `mysql` and `mysql2`, installed with
#                                                       `npm ci` into tests/lab/node/ (package-lock.json)
#   php-cli php-mysql                                   PHP mysqlnd: PDO_mysql and mysqli
#   libdbd-mariadb-perl libdbd-mysql-perl               Perl DBD::MariaDB, DBD::mysql (on libmariadb)
#   ruby-mysql2                                         Ruby mysql2 (on libmariadb)
#   libmariadb-java default-jre-headless                MariaDB Connector/J
#
# Run as root (CI is root). Without root and with packages missing it says what to run and exits 0,
# so the rest of the suite still runs; the lab tests then skip with a loud reason (fail under CI).
set -euo pipefail

PACKAGES=(
  mariadb-server
  mariadb-client
  tcpdump
  tshark
  libmariadb-dev
  pkg-config
  gcc
  libc6-dev
  libpam-modules
  libpam-runtime
  openssl
  ca-certificates
  golang-go
  golang-github-go-sql-driver-mysql-dev
  nodejs
  php-cli
  php-mysql
  libdbd-mariadb-perl
  libdbd-mysql-perl
  ruby-mysql2
  libmariadb-java
  default-jre-headless
)
NODE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/lab/node"

# node `mysql`/`mysql2` for the lab, pinned by tests/lab/node/package-lock.json (idempotent)
node_packages() {
  if [ -f "$NODE_DIR/node_modules/mysql/package.json" ] && [ -f "$NODE_DIR/node_modules/mysql2/package.json" ]; then
    say "node mysql/mysql2 present in $NODE_DIR"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      say "MISSING: npm (Debian npm); run: sudo bash scripts/lab_setup.sh"
      return 0
    fi
    say "apt-get install npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/tmp/lab_setup.npm.log 2>&1 || {
      say "apt-get install npm failed (log /tmp/lab_setup.npm.log)"
      return 1
    }
  fi
  say "npm ci in $NODE_DIR"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) || {
    say "npm ci failed"
    return 1
  }
}

say() { echo "lab_setup: $*"; }

# shellcheck source=scripts/apt_common.sh
. "$(dirname "$0")/apt_common.sh"

if ! command -v dpkg-query >/dev/null 2>&1; then
  say "not a Debian/Ubuntu system (no dpkg): install by hand: ${PACKAGES[*]}"
  exit 0
fi

find_missing

if [ "${#missing[@]}" -eq 0 ]; then
  say "all lab packages present (${PACKAGES[*]})"
  node_packages
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  say "MISSING: ${missing[*]}"
  say "not root: cannot install them. Run:  sudo bash scripts/lab_setup.sh"
  say "(until then the real-traffic lab tests in tests/lab skip with this reason; with CI set they fail)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture: answer no, without a prompt
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true

# Keep the package scripts from starting a system MariaDB (the lab runs its own throwaway servers).
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# temporary, scripts/lab_setup.sh: do not start services during install\nexit 101\n' \
    >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

install_missing lab_setup
say "installed: ${missing[*]}"
node_packages
