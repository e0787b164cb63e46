"""The grid CA in the machine's CA store, for the programs that read no other.

XRootD's SciTokens plugin (libscitokens 0.7) fetches the token issuer's discovery document and keys with libcurl
and gives it no CA of its own: libcurl checks the issuer's certificate against Debian's store only
(/etc/ssl/certs). `make setup` (`juno-dcs install-assets ca`, as root) puts the checkout's CA there as
/usr/local/share/ca-certificates/juno-dcs-<fingerprint>.crt and runs update-ca-certificates; several checkouts'
CAs live there side by side, told apart by name. `juno-dcs up` refuses to start storage elements whose issuer the
store would not trust.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from juno_dcs.errors import ConfigError

LOCAL_CAS = Path("/usr/local/share/ca-certificates")
BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _fingerprint(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()[:16]


def store_name(ca_pem: Path) -> Path:
    """Where the CA of `ca_pem` goes in the system store."""
    return LOCAL_CAS / f"juno-dcs-{_fingerprint(ca_pem.read_bytes())}.crt"


def trusted(ca_pem: Path, bundle: Path = BUNDLE) -> bool:
    """Is the CA in the system bundle libcurl reads?"""
    if not bundle.exists():
        return False
    # the bundle is the PEM files concatenated; compare the base64 bodies (some of the store's certificates are
    # ones `cryptography` warns about, so the bundle is not parsed)
    body = b"".join(line.strip() for line in ca_pem.read_bytes().splitlines() if not line.startswith(b"-----"))
    return body in b"".join(bundle.read_bytes().split())


def install(ca_pem: Path) -> bool:
    """Add the CA to the system store (root only); True when it was added."""
    if trusted(ca_pem):
        return False
    if os.geteuid() != 0:
        raise ConfigError(f"the grid CA {ca_pem} is not in the system's CA store, and adding it needs root: "
                          f"copy it to {store_name(ca_pem)} and run update-ca-certificates (or `make setup` as root)")
    LOCAL_CAS.mkdir(parents=True, exist_ok=True)
    target = store_name(ca_pem)
    target.write_bytes(ca_pem.read_bytes())
    target.chmod(0o644)
    subprocess.run(["update-ca-certificates"], check=True, capture_output=True)
    return True


def require(ca_pem: Path) -> None:
    """ConfigError unless the system store trusts the CA (what the SEs' SciTokens plugin needs)."""
    if not trusted(ca_pem):
        raise ConfigError(f"the system's CA store ({BUNDLE}) does not hold the grid CA {ca_pem}: the storage "
                          "elements could not fetch the token issuer's keys; run `make setup` (as root) or "
                          "`juno-dcs install-assets ca`")
