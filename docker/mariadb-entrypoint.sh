#!/bin/sh
# The stack's MariaDB: initialise the named volume on the first start (root over TCP only with the password from
# the Docker secret; root on the socket only for the container's own root), then run the server on the grid's
# loopback port.
set -eu
data=/var/lib/juno-dcs/mariadb/data
port="${JUNO_DCS_DB_PORT:?the grid's MariaDB port}"
if [ ! -d "$data/mysql" ]; then
    install -d -o mysql -g mysql -m 0700 "$data"
    mariadb-install-db --user=mysql --datadir="$data" --skip-test-db >/dev/null
    password=$(cat /run/secrets/db-admin)
    mariadbd --user=mysql --datadir="$data" --bootstrap --skip-networking >/dev/null <<SQL
FLUSH PRIVILEGES;
CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
SQL
fi
install -d -o mysql -g mysql /run/mysqld
exec mariadbd --user=mysql --datadir="$data" --bind-address=127.0.0.1 --port="$port" \
    --socket=/run/mysqld/mysqld.sock --skip-name-resolve --max-connections="${JUNO_DCS_DB_MAX_CONNECTIONS:-600}"
