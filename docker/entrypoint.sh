#!/usr/bin/env bash
# Start PostgreSQL, bring the grid up in /var/lib/juno-dcs, follow its supervisor log; stop it cleanly.
set -euo pipefail
version=$(ls /etc/postgresql)
pg_ctlcluster "$version" main start
export JUNO_DCS_HOME=${JUNO_DCS_HOME:-/var/lib/juno-dcs}
cd /opt/juno-dcs
.venv/bin/juno-dcs up
trap '.venv/bin/juno-dcs down; pg_ctlcluster "$version" main stop; exit 0' TERM INT
tail -F "$JUNO_DCS_HOME/logs/supervisord.log" &
wait $!
