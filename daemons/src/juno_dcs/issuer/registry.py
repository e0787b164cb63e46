"""The issuer's configuration, its registered clients and the people who may log in, read from YAML files that only
the issuer's user can read. A client's secret is kept as its SHA-256 only, a person's password as a PBKDF2 hash."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from juno_dcs.errors import ConfigError
from juno_dcs.tokens.scopes import ANY_AUDIENCE, Scope, ScopeError, parse_scope
from juno_dcs.yamlconfig import load_model


def _scope_list(values: list[str]) -> list[str]:
    for value in values:
        try:
            parse_scope(value)
        except ScopeError as exc:
            raise ValueError(str(exc)) from None
    return values


class Client(BaseModel):
    """One client of the issuer: an account of the topology or a service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    secret_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    subject: Annotated[str, Field(min_length=1)]  # the token's `sub`: the Rucio account it acts for
    groups: list[str] = []  # `wlcg.groups`, e.g. /juno, /juno/production, /juno/admin, /juno/pilots
    scopes: Annotated[list[str], AfterValidator(_scope_list)] = []  # what it may ask for; storage paths cover below
    audiences: list[str] = []  # what `aud` may be; "*" any
    lifetime: Annotated[int, Field(gt=0, le=86400)] = 3600  # seconds
    # may exchange other subjects' tokens for refresh tokens and refresh them (issuer/exchange.py): the transfer
    # service, which copies with the tokens its jobs carry long after they were handed to it
    exchange: bool = False
    # where a login (the authorization-code grant) may send the browser back to; none: no logins for this client
    redirect_uris: list[Annotated[str, Field(pattern=r"^https://")]] = []

    @property
    def logs_in(self) -> bool:
        """Whether this client may use the authorization-code grant (it has registered redirect URIs)."""
        return bool(self.redirect_uris)

    def check_secret(self, secret: str) -> bool:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return hmac.compare_digest(digest, self.secret_sha256)

    def allowed_scopes(self) -> list[Scope]:
        return [parse_scope(s) for s in self.scopes]

    def audience_allowed(self, audience: str) -> bool:
        return "*" in self.audiences or audience in self.audiences or audience == ANY_AUDIENCE


PBKDF2_ROUNDS = 100_000


def password_digest(name: str, password: str, rounds: int = PBKDF2_ROUNDS) -> str:
    """PBKDF2-HMAC-SHA256 of a person's password, salted with the person's name (stable, so `up` rewrites the same
    file; the grid's passwords are random, so the salt needs no secrecy)."""
    salt = f"juno-dcs-issuer-user:{name}".encode()
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds).hex()


class User(BaseModel):
    """One person who may log in at the issuer's form: a Rucio account and its password."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]  # what the person types: the account
    subject: Annotated[str, Field(min_length=1)]  # the ID token's `sub`: Rucio's identity SUB=<subject>, ISS=<iss>
    groups: list[str] = []  # `wlcg.groups` of the access token
    password_pbkdf2: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

    def get_user_id(self) -> str:
        """What Authlib puts in an access token's `sub`."""
        return self.subject

    def check_password(self, password: str) -> bool:
        return hmac.compare_digest(password_digest(self.name, password), self.password_pbkdf2)


class ClientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clients: list[Client]
    users: list[User] = []


class IssuerConfig(BaseModel):
    """etc/issuer.yaml of a grid."""

    model_config = ConfigDict(extra="forbid")

    issuer: Annotated[str, Field(pattern=r"^https://")]  # the `iss` claim and the discovery base, ending with /
    key_file: Path  # PEM, ES256 (P-256)
    clients_file: Path
    # how long a refresh token from a token exchange lasts (issuer/exchange.py): longer than a transfer job waits
    refresh_lifetime: Annotated[int, Field(gt=0, le=30 * 86400)] = 4 * 86400
    codes_file: Path | None = None  # SQLite: the pending authorization codes (logins); none: no logins


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def load_config(path: Path) -> IssuerConfig:
    return load_model(path, IssuerConfig, "issuer's configuration", ConfigError)


def load_registry(path: Path) -> tuple[dict[str, Client], dict[str, User]]:
    """The clients file, read once: its clients by client id and its people by the name they log in with."""
    data = load_model(path, ClientsFile, "issuer's clients", ConfigError)
    clients: dict[str, Client] = {}
    for client in data.clients:
        if client.client_id in clients:
            raise ConfigError(f"{path}: client {client.client_id!r} is registered twice")
        clients[client.client_id] = client
    users: dict[str, User] = {}
    for user in data.users:
        if user.name in users:
            raise ConfigError(f"{path}: user {user.name!r} is listed twice")
        users[user.name] = user
    return clients, users
