# The stack's MariaDB for the condition data (swarm/databases.py): Debian 12's MariaDB 10.11 on the grid's base
# image, a layer of its own. The entrypoint initialises the named volume on its first start, with the root
# password from the stack's Docker secret. Built by `juno-dcs images build`.
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends mariadb-server \
 && rm -rf /var/lib/apt/lists/* /var/lib/mysql/* \
 && install -d -o mysql -g mysql -m 0700 /var/lib/juno-dcs/mariadb
COPY mariadb-entrypoint.sh /usr/local/bin/juno-dcs-mariadb
ENTRYPOINT ["/usr/local/bin/juno-dcs-mariadb"]
