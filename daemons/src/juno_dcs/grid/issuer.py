"""The grid's token issuer (B+33, HTTPS with the grid's certificate): juno_dcs.issuer under gunicorn.

    home/etc/issuer.yaml                the issuer's URL and files (juno_dcs.issuer.registry.IssuerConfig)
    home/secrets/issuer-key.pem         its ES256 signing key (0600), made once
    home/secrets/issuer-clients.yaml    its clients: account or service, subject, groups, scopes (0600)
    home/secrets/clients/<client>       each client's secret (0600), for the programs that use it
    home/secrets/idpsecrets.json        the Rucio daemons' client, in Rucio's own format ([oidc] idpsecrets)
    home/secrets/issuer-codes.sqlite    the pending authorization codes of logins (0600; juno_dcs.issuer.codes)

Every account of the topology is a client of its own (client id = account), with the scopes its role gives:
the raw-data service writes /raw, production /mc, /rec and /calib, a user /user/<name>, a group /group/<name>,
root everything; every member reads everything. The services are clients too: `rucio` (the conveyor's and the
reaper's per-transfer tokens, and the `fts` scope), `pilot` (the dispatcher's pilot calls), `probes`, `dashboard`
and `fts` (the transfer service, which exchanges and refreshes its jobs' tokens).
Secrets derive from the grid's `token_secret` (grid.json, 0600) by HMAC, so `up` writes the same ones every time.

People log in at the issuer (the WebUI's OIDC login, through Rucio): every account of the topology with its Rucio
password (`root_password`, `account_passwords` of grid.json), kept in the clients file as a PBKDF2 hash; the
login's `sub` is the account, as for the account's own client, so Rucio's identity `SUB=<account>, ISS=<issuer>`
(grid/apply.py) names it. Only `rucio` may log people in, and only back to the WebUI's `/auth/oidc_code`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from juno_dcs.grid import pki
from juno_dcs.grid.health import Health
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import Program, venv_bin
from juno_dcs.grid.render import digest
from juno_dcs.issuer.registry import Client, ClientsFile, IssuerConfig, User, password_digest, secret_digest
from juno_dcs.settings import GridSettings
from juno_dcs.tokens.config import ClientAuth, ServiceAuth
from juno_dcs.tokens.fetch import Credentials
from juno_dcs.tokens.sealed import ensure_key
from juno_dcs.topology.models import Topology

# audiences of the grid's services (docs/security.md)
STORAGE_AUDIENCE = "localhost"  # Rucio asks for the davs hostname of an RSE's protocols (grid/storage.py)
FTS_AUDIENCE = "127.0.0.1"  # Rucio asks for the transfer service's hostname (its `fts` RSE attribute)
WMS_AUDIENCE = "juno-wms"
RUCIO_AUDIENCE = "rucio"
FTS_CLIENT = "fts"  # the transfer service's own client (token exchange)
USER_AUDIENCES = (STORAGE_AUDIENCE, FTS_AUDIENCE, WMS_AUDIENCE, RUCIO_AUDIENCE)
MEMBERS = "/juno"
ADMINS = "/juno/admin"
PRODUCTION = "/juno/production"
PILOTS = "/juno/pilots"
OPS = "/juno/ops"  # operators' tools (probes, dashboard): read everything, change nothing of others
COMPUTE = ["compute.create", "compute.read", "compute.modify", "compute.cancel"]
OIDC = ["openid", "profile", "offline_access"]
SERVICE_CLIENTS = ("rucio", "pilot", "probes", "dashboard")
RUCIO_ISSUER_ID = "juno"  # the key of Rucio's idpsecrets.json and its [oidc] admin_issuer
ISSUER_WORKERS = 2


def _writes(*areas: str) -> list[str]:
    return [f"storage.{action}:{area}" for area in areas for action in ("create", "modify")]


@dataclass(frozen=True)
class IssuerLayout:
    config: Path
    key: Path
    clients: Path
    secrets: Path
    idpsecrets: Path
    ca_file: Path  # the grid CA's certificate, beside the host certificate: what clients check the issuer with
    port: int
    webui_port: int  # the WebUI's nginx: where a login comes back to (Rucio's /auth/oidc_code on its origin)
    external: str | None = None  # a site's IAM in the grid's place (settings.token_issuer)

    @property
    def codes(self) -> Path:
        """The pending authorization codes (SQLite, 0600)."""
        return self.secrets / "issuer-codes.sqlite"

    @property
    def login_redirect_uri(self) -> str:
        """Where the issuer sends a browser back after a login: Rucio's `/auth/oidc_code` on the WebUI's origin
        (nginx hands that one path to the WebUI, which finishes the login; docs/webui.md)."""
        return f"https://localhost:{self.webui_port}/auth/oidc_code"

    @property
    def url(self) -> str:
        """The issuer's identifier (`iss`) and discovery base; Rucio wants the trailing slash."""
        return self.external or f"https://127.0.0.1:{self.port}/"

    @property
    def issuer_ca(self) -> Path | None:
        """What the issuer's certificate is checked against: the grid CA, or the system's store for an IAM."""
        return None if self.external else self.ca_file

    @property
    def fts_token_key(self) -> Path:
        """The transfer service's key for the tokens its jobs carry (juno_dcs.tokens.sealed)."""
        return self.secrets / "fts-token-key"

    def secret_file(self, client_id: str) -> Path:
        return self.secrets / "clients" / client_id


def layout(home: GridHome, state: GridState) -> IssuerLayout:
    return IssuerLayout(config=home.etc / "issuer.yaml", key=home.secrets / "issuer-key.pem",
                        clients=home.secrets / "issuer-clients.yaml", secrets=home.secrets,
                        idpsecrets=home.secrets / "idpsecrets.json", ca_file=home.pki / "ca.pem",
                        port=state.ports.port("issuer"), webui_port=state.ports.port("webui"),
                        external=state.token_issuer)


def client_secret(state: GridState, client_id: str) -> str:
    """The secret of one client of the grid's own issuer (a site's IAM gives its own: `secret_of`)."""
    return hmac.new(state.token_secret.encode(), f"client:{client_id}".encode(), hashlib.sha256).hexdigest()


def secret_of(where: IssuerLayout, state: GridState, client_id: str) -> str:
    """The secret a program of the grid uses as `client_id`: derived for the grid's issuer; for a site's IAM, the
    one the IAM gave, which the operator put in HOME/secrets/clients/<client> (empty until then)."""
    if where.external is None:
        return client_secret(state, client_id)
    try:
        return where.secret_file(client_id).read_text().strip()
    except OSError:
        return ""


def account_client(state: GridState, name: str, kind: str) -> Client:
    """The client of one account of the topology, with its role's groups and scopes."""
    groups, scopes = [MEMBERS], ["storage.read:/", *COMPUTE, *OIDC]
    if name == "root":
        groups.append(ADMINS)
        scopes += [*_writes("/"), "storage.stage:/", "fts"]
    elif name == "rawdata":
        groups.append("/juno/rawdata")
        scopes += [*_writes("/raw"), "fts"]
    elif name == "production":
        groups.append(PRODUCTION)
        scopes += _writes("/mc", "/rec", "/calib")
    elif kind == "GROUP":
        groups.append(f"/juno/{name}")
        scopes += _writes(f"/group/{name}")
    else:
        scopes += _writes(f"/user/{name}")
    return Client(client_id=name, secret_sha256=secret_digest(client_secret(state, name)), subject=name,
                  groups=groups, scopes=scopes, audiences=list(USER_AUDIENCES))


def service_clients(state: GridState, login_redirect_uris: list[str] | None = None) -> list[Client]:
    def client(client_id: str, **fields: object) -> Client:
        return Client.model_validate({"client_id": client_id, "subject": client_id,
                                      "secret_sha256": secret_digest(client_secret(state, client_id)), **fields})

    return [
        # Rucio's conveyor and reaper: per-transfer tokens for any RSE path, and its own for the transfer service
        # ... and the one client that logs people in (the WebUI's OIDC login), back to Rucio only
        client("rucio", groups=[MEMBERS, ADMINS], audiences=["*"],
               scopes=["storage.read:/", *_writes("/"), "storage.stage:/", "fts", *OIDC],
               redirect_uris=list(login_redirect_uris or [])),
        client("pilot", groups=[PILOTS], audiences=[WMS_AUDIENCE, STORAGE_AUDIENCE],
               scopes=["compute.read", "compute.modify", "storage.read:/"]),
        client("probes", groups=[MEMBERS, OPS], audiences=list(USER_AUDIENCES),
               scopes=["storage.read:/", *_writes("/probes"), "compute.read", "fts"]),
        # the operators' dashboard: reads the transfer service and the dispatcher
        client("dashboard", groups=[OPS], audiences=[FTS_AUDIENCE, WMS_AUDIENCE], scopes=["compute.read", "fts"]),
        # the transfer service: nothing of its own; it exchanges the tokens its jobs carry for refresh tokens and
        # refreshes them, never to more than each token held (juno_dcs.issuer.exchange, transfer/keeper.py)
        client(FTS_CLIENT, exchange=True),
    ]


def clients(state: GridState, topo: Topology, login_redirect_uris: list[str] | None = None) -> list[Client]:
    accounts = [account_client(state, name, account.type) for name, account in sorted(topo.accounts.items())]
    return accounts + service_clients(state, login_redirect_uris)


def users(state: GridState, topo: Topology) -> list[User]:
    """The people who may log in: every account of the topology, with its Rucio password and its client's groups."""
    people = []
    for name, account in sorted(topo.accounts.items()):
        groups = account_client(state, name, account.type).groups
        people.append(User(name=name, subject=name, groups=groups,
                           password_pbkdf2=password_digest(name, state.password(name))))
    return people


def credentials(where: IssuerLayout, state: GridState, client_id: str) -> Credentials:
    ca = where.issuer_ca
    return Credentials(issuer=where.url, client_id=client_id, client_secret=secret_of(where, state, client_id),
                       ca_file=str(ca) if ca else True)


def client_auth(where: IssuerLayout, client_id: str) -> ClientAuth:
    """What a program's configuration says to act as `client_id` (its secret stays in its 0600 file)."""
    return ClientAuth(issuer=where.url, client_id=client_id, secret_file=where.secret_file(client_id),
                      ca_file=where.issuer_ca)


def service_auth(where: IssuerLayout, *audiences: str) -> ServiceAuth:
    """What a service's configuration says to check tokens of this grid's issuer for `audiences`."""
    return ServiceAuth(issuer=where.url, audiences=list(audiences), ca_file=where.issuer_ca,
                       admin_group=ADMINS, reader_groups=[ADMINS, OPS])


def prepare(where: IssuerLayout, settings: GridSettings) -> list[str]:
    """The secrets directory (0700), the grid CA's certificate in the home, and the signing key, made once."""
    where.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    where.secrets.chmod(0o700)
    (where.secrets / "clients").mkdir(mode=0o700, exist_ok=True)
    ca = (pki.cert_dir(settings.pki_dir) / pki.CA_CERT).read_bytes()
    if not where.ca_file.exists() or where.ca_file.read_bytes() != ca:
        where.ca_file.write_bytes(ca)
    made = [f"made the transfer service's token key {where.fts_token_key}"] if ensure_key(where.fts_token_key) else []
    if where.key.exists():
        return made
    key = ec.generate_private_key(ec.SECP256R1())
    pki._write_private(where.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return [*made, f"made the token issuer's signing key {where.key}"]


def idpsecret(where: IssuerLayout, state: GridState) -> dict[str, object]:
    """The issuer's entry in Rucio's idpsecrets.json. The server (rucio.core.oidc, validating users' tokens)
    makes two pyoidc clients of it, the second from "SCIM", and loads none when either lacks a client_id; the
    daemons ask for tokens with the top-level client."""
    rucio = {"issuer": where.url, "client_id": "rucio", "client_secret": secret_of(where, state, "rucio")}
    # the login (rucio.core.oidc.get_auth_oidc): back to the one redirect URI with "auth/oidc_code"; pyoidc checks
    # the ID token's signature algorithm against `id_token_signed_response_alg` (its default: RS256)
    return {**rucio, "redirect_uris": [where.login_redirect_uri], "id_token_signed_response_alg": "ES256",
            "SCIM": dict(rucio)}


def render_configs(where: IssuerLayout, home: GridHome, state: GridState, settings: GridSettings,
                   topo: Topology) -> dict[Path, str]:
    files = {
        where.idpsecrets: json.dumps({RUCIO_ISSUER_ID: idpsecret(where, state)}, indent=2) + "\n",
    }
    if where.external is not None:  # a site's IAM: its clients and secrets are the IAM's (docs/security.md)
        return files
    config = IssuerConfig(issuer=where.url, key_file=where.key, clients_file=where.clients, codes_file=where.codes)
    registered = ClientsFile(clients=clients(state, topo, [where.login_redirect_uri]), users=users(state, topo))
    files[where.config] = ("# The token issuer. Written by `juno-dcs up`; edits are overwritten "
                           "(docs/security.md).\n" + yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    files[where.clients] = ("# The issuer's clients (secrets as SHA-256) and people (passwords as PBKDF2). Written "
                            "by `juno-dcs up` from the topology.\n"
                            + yaml.safe_dump(registered.model_dump(mode="json"), sort_keys=False))
    for client in registered.clients:
        files[where.secret_file(client.client_id)] = client_secret(state, client.client_id) + "\n"
    return files


def programs(where: IssuerLayout, home: GridHome, state: GridState, settings: GridSettings,
             files: Mapping[Path, str], rucio_env: Mapping[str, str]) -> list[Program]:
    if where.external is not None:
        return []
    env = {"JUNO_ISSUER_CONFIG": str(where.config),
           "JUNO_DCS_CONFIG_DIGEST": digest(files.get(where.config, ""), files.get(where.clients, ""))}
    return [Program(
        name="issuer", priority=140, environment=env,
        command=[venv_bin("gunicorn"), "--bind", f"127.0.0.1:{where.port}", "--workers", str(ISSUER_WORKERS),
                 "--certfile", str(home.pki / "hostcert.pem"), "--keyfile", str(home.pki / "hostkey.pem"),
                 "--access-logfile", "-", "--error-logfile", "-", "--log-level", "info",
                 "juno_dcs.issuer.app:create_app()"],
    )]


def services(where: IssuerLayout) -> dict[str, str]:
    return {"issuer": where.url}


def check(where: IssuerLayout, timeout: float = 3.0) -> Health:
    """The issuer answers its discovery document over HTTPS, checked against the grid's CA."""
    ca = where.issuer_ca
    try:
        with requests.get(f"{where.url}.well-known/openid-configuration", timeout=timeout,
                          verify=str(ca) if ca else True) as reply:
            reply.raise_for_status()
            issuer = reply.json()["issuer"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        return Health(False, f"issuer: no answer ({exc.__class__.__name__})")
    return Health(issuer == where.url, f"issuer {issuer} answers its discovery document")
