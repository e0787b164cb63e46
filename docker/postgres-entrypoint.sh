#!/bin/sh
# The stack's PostgreSQL: initialise the named volume on the first start (password logins only, the superuser's
# password from the Docker secret), then run the server on the grid's loopback port as the postgres user.
set -eu
data=/var/lib/juno-dcs/postgres/data
bin=/usr/lib/postgresql/15/bin
port="${JUNO_DCS_DB_PORT:?the grid's PostgreSQL port}"
if [ ! -s "$data/PG_VERSION" ]; then
    install -d -o postgres -g postgres -m 0700 "$data"
    pwfile=$(mktemp)
    cp /run/secrets/db-admin "$pwfile"
    chown postgres "$pwfile"
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin/initdb" -D "$data" -U postgres \
        --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
fi
install -d -o postgres -g postgres -m 0775 /var/run/postgresql
exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin/postgres" -D "$data" \
    -c listen_addresses=127.0.0.1 -c port="$port" -c max_connections="${JUNO_DCS_DB_MAX_CONNECTIONS:-600}" \
    -c unix_socket_directories=/var/run/postgresql -c dynamic_shared_memory_type=mmap \
    -c shared_buffers="${JUNO_DCS_DB_SHARED_BUFFERS:-256MB}"
