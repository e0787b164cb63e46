"""An issuer's OpenID Connect discovery document and key set, over HTTPS: the one place every part of the
project (services checking tokens, clients asking for them, the storage elements' key cache) reads them."""

from __future__ import annotations

from typing import Any

import requests

from juno_dcs.errors import ServiceError


def document(issuer: str, ca_file: str | bool = True, timeout: float = 10.0) -> dict[str, Any]:
    """`/.well-known/openid-configuration` of `issuer`, checked against `ca_file` (True: the system's CAs)."""
    try:
        with requests.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", verify=ca_file,
                          timeout=timeout) as reply:
            reply.raise_for_status()
            meta = reply.json()
    except (requests.RequestException, ValueError) as exc:
        raise ServiceError(f"the token issuer {issuer} does not answer its discovery document "
                           f"({exc.__class__.__name__})") from None
    if not isinstance(meta, dict):
        raise ServiceError(f"the token issuer {issuer}'s discovery document is not a JSON object")
    return meta


def endpoint(issuer: str, name: str, ca_file: str | bool = True, timeout: float = 10.0) -> str:
    """One URL of the discovery document (`token_endpoint`, `jwks_uri`, ...)."""
    url = document(issuer, ca_file, timeout).get(name)
    if not isinstance(url, str) or not url:
        raise ServiceError(f"the token issuer {issuer}'s discovery document names no {name}")
    return url


def key_set(issuer: str, ca_file: str | bool = True, timeout: float = 10.0) -> dict[str, Any]:
    """The issuer's published keys (a JWKS with at least one key)."""
    uri = endpoint(issuer, "jwks_uri", ca_file, timeout)
    try:
        with requests.get(uri, verify=ca_file, timeout=timeout) as reply:
            reply.raise_for_status()
            jwks = reply.json()
    except (requests.RequestException, ValueError) as exc:
        raise ServiceError(f"the token issuer {issuer}'s keys at {uri} are out of reach "
                           f"({exc.__class__.__name__})") from None
    if not isinstance(jwks, dict) or not jwks.get("keys"):
        raise ServiceError(f"the token issuer {issuer} publishes no keys")
    return jwks
