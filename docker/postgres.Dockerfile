# The stack's PostgreSQL (swarm/databases.py): Debian 12's PostgreSQL 15 on the grid's base image, a layer of its
# own. No cluster is made at build time: the entrypoint initialises the named volume on its first start, with the
# superuser password from the stack's Docker secret. Built by `juno-dcs images build`.
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/juno-dcs.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 0700 /var/lib/juno-dcs/postgres
COPY postgres-entrypoint.sh /usr/local/bin/juno-dcs-postgres
ENTRYPOINT ["/usr/local/bin/juno-dcs-postgres"]
