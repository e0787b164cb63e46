"""A grid's home: the one directory holding its configs, data, logs, pid files and secrets.

`grid.json` remembers what `up` chose (base port, database, generated passwords) so that later commands
need only `--home`. It is written atomically and readable by its owner only.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from juno_dcs.errors import ConfigError, GridStateError
from juno_dcs.grid.ports import PortMap

STATE_FILE = "grid.json"
# Where the files of the service users (xrootd, proxy, www-data) go when they cannot enter the home
# (juno_dcs.grid.access); HOME/service-area links to the directory chosen.
SERVICE_AREA = Path("/var/lib/juno-dcs")
SERVICE_LINK = "service-area"


class GridState(BaseModel):
    """What a grid remembers between commands."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    base_port: int
    pg_admin_url: str
    db_name: str
    db_user: str
    db_password: str
    root_password: str
    supervisor_password: str
    activemq_password: str
    # the broker account that may only read Rucio's events (the production manager's); saved by the first `up`
    events_password: str = Field(default_factory=lambda: new_secret())
    account_passwords: dict[str, str] = {}
    # condition data on MariaDB: the database (named after db_name), a read-only and a writing account
    conditions_reader_password: str = Field(default_factory=lambda: new_secret())
    conditions_writer_password: str = Field(default_factory=lambda: new_secret())
    # the token issuer's clients' secrets derive from it (grid/issuer.py); saved by the first `up` that sees it
    token_secret: str = Field(default_factory=lambda: new_secret())
    token_issuer: str | None = None  # a site's IAM (settings.token_issuer); None: the grid's own issuer
    # what runs the programs: the box's supervisord, or a Docker Swarm stack on the engine at docker_host
    engine: Literal["supervisor", "swarm"] = "supervisor"
    docker_host: str | None = None
    # where the catalogue and the condition data live: the servers pg_admin_url and mysql_admin_url name, or
    # PostgreSQL and MariaDB services of the grid's own stack (swarm/databases.py), whose superuser password this is
    databases: Literal["servers", "stack"] = "servers"
    db_admin_password: str = Field(default_factory=lambda: new_secret())
    mysql_admin_url: str | None = None  # None: settings.mysql_admin_url

    @property
    def conditions_db(self) -> str:
        return f"{self.db_name}_cond"

    @property
    def conditions_reader(self) -> str:
        return f"{self.db_name}_r"

    @property
    def conditions_writer(self) -> str:
        return f"{self.db_name}_w"

    @property
    def ports(self) -> PortMap:
        return PortMap(self.base_port)

    def with_accounts(self, names: list[str]) -> GridState:
        """A state with a password for every account in `names` (existing passwords kept)."""
        passwords = dict(self.account_passwords)
        for name in names:
            if name == "root":
                passwords[name] = self.root_password
            passwords.setdefault(name, new_secret())
        return self.model_copy(update={"account_passwords": dict(sorted(passwords.items()))})

    def password(self, account: str) -> str:
        if account == "root":
            return self.root_password
        try:
            return self.account_passwords[account]
        except KeyError:
            known = ", ".join(sorted(self.account_passwords)) or "none"
            raise ConfigError(f"unknown account {account!r} (accounts of this grid: {known})") from None


def new_secret() -> str:
    return secrets.token_urlsafe(18)


class GridHome:
    """Paths under one grid's home directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    # --- layout
    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def service_link(self) -> Path:
        return self.root / SERVICE_LINK

    @property
    def service_root(self) -> Path:
        """Where the files of programs running under their own users live: the home itself, or the directory
        that HOME/service-area links to when those users cannot enter the home (juno_dcs.grid.access)."""
        link = self.service_link
        return Path(os.readlink(link)) if link.is_symlink() else self.root

    @property
    def xrootd_etc(self) -> Path:
        return self.service_root / "etc" / "xrootd"

    @property
    def xrootd_pki(self) -> Path:
        """The host certificate and key as the xrootd user reads them."""
        return self.service_root / "pki" / "xrootd"

    @property
    def trust_dir(self) -> Path:
        """A copy of the grid CA's trust directory (X509_CERT_DIR) that every service user can read."""
        return self.service_root / "pki" / "certificates"

    @property
    def squid_root(self) -> Path:
        return self.service_root / "squid"

    @property
    def webui_files(self) -> Path:
        """The WebUI's static and vendor files as nginx's workers read them."""
        return self.service_root / "webui"

    @property
    def rucio_cfg(self) -> Path:
        """The Rucio server's (and the WebUI's, and the schema tools') configuration."""
        return self.etc / "rucio.cfg"

    @property
    def rucio_daemons_cfg(self) -> Path:
        """The Rucio daemons' configuration: the server's, with the smaller pool a one-thread daemon needs."""
        return self.etc / "rucio-daemons.cfg"

    @property
    def rucio_reaper_cfg(self) -> Path:
        """The reaper's: the daemons', without Rucio's cache (grid/cache.py says why)."""
        return self.etc / "rucio-reaper.cfg"

    @property
    def supervisord_conf(self) -> Path:
        return self.etc / "supervisord.conf"

    @property
    def supervisord_pid(self) -> Path:
        return self.run / "supervisord.pid"

    def client_cfg(self, account: str) -> Path:
        return self.etc / "clients" / f"{account}.cfg"

    def rse_dir(self, rse: str) -> Path:
        return self.service_root / "data" / "rses" / rse

    @property
    def secrets(self) -> Path:
        """Keys, client secrets and tokens: mode 0700, files 0600 (grid/issuer.py)."""
        return self.root / "secrets"

    def token_dir(self, account: str) -> Path:
        return self.run / "tokens" / account

    def make_dirs(self) -> None:
        for path in (self.etc / "clients", self.logs, self.logs / "trace", self.run, self.data, self.pki):
            path.mkdir(parents=True, exist_ok=True)
        # the Rucio clients' session tokens (auth_token_file_path): Rucio makes the per-account directories with
        # the umask's mode, so the directory above them is the owner's alone
        tokens = self.run / "tokens"
        tokens.mkdir(mode=0o700, exist_ok=True)
        tokens.chmod(0o700)

    # --- identity
    @property
    def tag(self) -> str:
        """A short stable name for this home, used for its database and role."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:10]

    # --- state
    def exists(self) -> bool:
        return self.state_file.exists()

    def load_state(self) -> GridState:
        if not self.state_file.exists():
            raise GridStateError(f"{self.root}: no grid here (no {STATE_FILE}); run `juno-dcs up --home {self.root}`")
        try:
            return GridState.model_validate(json.loads(self.state_file.read_text()))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise GridStateError(f"{self.state_file}: unreadable grid state: {exc}") from exc

    def save_state(self, state: GridState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(state.model_dump_json(indent=2) + "\n")
        tmp.replace(self.state_file)

    def new_state(self, base_port: int, pg_admin_url: str) -> GridState:
        name = f"juno_dcs_{self.tag}"
        return GridState(
            base_port=base_port,
            pg_admin_url=pg_admin_url,
            db_name=name,
            db_user=name,
            db_password=new_secret(),
            root_password=new_secret(),
            supervisor_password=new_secret(),
            activemq_password=new_secret(),
        )
