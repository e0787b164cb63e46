#!/usr/bin/env bash
# Install the Debian packages the grid needs and make sure a PostgreSQL server answers.
# Idempotent: installs only what is missing. Needs root for apt; otherwise lists what to install.
set -euo pipefail

# the grid's runtime packages (shared with the container image: docker/Dockerfile), then what a box builds and
# tests with
mapfile -t PACKAGES < <(sed 's/#.*//' "$(dirname "$0")/packages-runtime.txt" | tr -s ' \t' '\n' | grep -v '^$')
PACKAGES+=(
  gcc libc6-dev      # the loopback bind shim for XRootD
  swig libssl-dev    # build M2Crypto for the fts3 client used by the tests
  chromium chromium-driver fonts-dejavu-core  # headless browser tests of the dashboard and the WebUI
  docker.io mmdebstrap  # the container images and the Swarm deployment (docs/deploy.md)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  # Debian starts its own squid on :3128 when it can; the grid runs its own Squids with their own configs
  # (and its own nginx on :80): the grid runs its own, bound to 127.0.0.1
  for svc in squid nginx; do
    if [[ " ${missing[*]} " == *" $svc "* ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
fi

# PostgreSQL: use the machine's server when it answers; else install and start one.
PG_URL="${JUNO_DCS_PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
if ! psql "$PG_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: no PostgreSQL answers at $PG_URL; start one or set JUNO_DCS_PG_ADMIN_URL" >&2
    exit 1
  fi
  echo "setup: no PostgreSQL at $PG_URL: installing and starting the Debian server"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >/dev/null
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # the grid connects over loopback as a superuser that only local processes can reach
  grep -q 'juno-dcs' "$hba" || sed -i '1i host all postgres 127.0.0.1/32 trust # juno-dcs' "$hba"
  sed -i "s/^#\?listen_addresses.*/listen_addresses = '127.0.0.1'/" "/etc/postgresql/$version/main/postgresql.conf"
  pg_ctlcluster --skip-systemctl-redirect "$version" main restart || pg_ctlcluster "$version" main start
  for _ in $(seq 1 30); do psql "$PG_URL" -Atqc 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
  psql "$PG_URL" -Atqc 'SELECT 1' >/dev/null || { echo "setup: PostgreSQL still does not answer at $PG_URL" >&2; exit 1; }
fi

# MariaDB (condition data): use the machine's server when it answers; else install and start one.
MARIADB_HOST=127.0.0.1 MARIADB_PORT=3306
if ! mariadb -h "$MARIADB_HOST" -P "$MARIADB_PORT" -u root -e 'SELECT 1' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: no MariaDB answers at $MARIADB_HOST:$MARIADB_PORT (root, no password); start one" >&2
    exit 1
  fi
  echo "setup: no MariaDB at $MARIADB_HOST:$MARIADB_PORT: installing and starting the Debian server"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mariadb-server >/dev/null
  # loopback only; root over TCP from 127.0.0.1 without a password, as the grid's admin account
  printf '[mysqld]\nbind-address = 127.0.0.1\n' > /etc/mysql/mariadb.conf.d/99-juno-dcs.cnf
  if command -v systemctl >/dev/null 2>&1 && systemctl restart mariadb 2>/dev/null; then :; else
    (mysqld_safe >/dev/null 2>&1 &)
  fi
  for _ in $(seq 1 30); do mariadb -u root -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
  mariadb -u root -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" \
    || { echo "setup: MariaDB still does not answer" >&2; exit 1; }
fi

# PostgreSQL's connection slots: a grid holds about 40 connections and may open up to 96 (its connection
# budget, which `juno-dcs up` checks: docs/admin.md), and the test suite runs a second grid beside the first,
# perhaps beside a developer's own; the default of 100 leaves no room for that. Raise it to 400 where this
# machine's cluster can be restarted.
PG_MIN_CONNECTIONS=400
current=$(psql "$PG_URL" -Atqc 'SHOW max_connections')
if [ "$current" -lt "$PG_MIN_CONNECTIONS" ]; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ "$(id -u)" -eq 0 ] && [ -n "$version" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "setup: PostgreSQL allows $current connections; raising it to $PG_MIN_CONNECTIONS (restarts the server)"
    psql "$PG_URL" -Atqc "ALTER SYSTEM SET max_connections = $PG_MIN_CONNECTIONS" >/dev/null
    pg_ctlcluster --skip-systemctl-redirect "$version" main restart
    for _ in $(seq 1 30); do psql "$PG_URL" -Atqc 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
  else
    echo "setup: PostgreSQL allows $current connections; a grid and the tests need $PG_MIN_CONNECTIONS:" >&2
    echo "  ALTER SYSTEM SET max_connections = $PG_MIN_CONNECTIONS; then restart the server" >&2
  fi
fi
