"""The grid's local certificate authority and the host certificates it signs.

`make setup` creates the CA once per checkout (settings.pki_dir: `ca.key` and `ca.pem`); each grid gets a
host certificate for localhost/127.0.0.1 under its home. The subdirectory `certificates/` holds only the CA
certificate and its OpenSSL hash link (`<hash>.0`): it is the X509_CERT_DIR of gfal2, XRootD and curl
--capath, and XRootD's TPC handler reads every file in it, so no key may live there.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import secrets
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CERT_DIR = "certificates"


def cert_dir(directory: Path) -> Path:
    """The trust directory (X509_CERT_DIR) of the CA in `directory`."""
    return directory / CERT_DIR
VALIDITY = dt.timedelta(days=3650)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_ca(directory: Path) -> bool:
    """Create the CA in `directory` unless it is there; return True when it was created."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        _ensure_hash_link(directory)
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JUNO DCS local grid"),
        # a subject of its own: CAs of two checkouts in one trust directory (their OpenSSL subject-hash links) or
        # in one browser must not be taken for each other
        x509.NameAttribute(NameOID.COMMON_NAME, f"JUNO DCS local CA {secrets.token_hex(4)}"),
    ])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _ensure_hash_link(directory)
    logger.info("created the grid CA in %s", directory)
    return True


def _ensure_hash_link(directory: Path) -> None:
    """Make certificates/ca.pem and `<subject hash>.0 -> ca.pem`, the name OpenSSL's CApath lookup uses."""
    trust = cert_dir(directory)
    trust.mkdir(parents=True, exist_ok=True)
    trust.chmod(0o755)
    pem = (directory / CA_CERT).read_bytes()
    if not (trust / CA_CERT).exists() or (trust / CA_CERT).read_bytes() != pem:
        (trust / CA_CERT).write_bytes(pem)
    (trust / CA_CERT).chmod(0o644)
    out = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(trust / CA_CERT)],
        check=True, capture_output=True, text=True,
    )
    link = trust / f"{out.stdout.strip()}.0"
    if not link.exists():
        link.symlink_to(CA_CERT)
    for stale in directory.glob("*.0"):  # links from before the trust directory existed
        stale.unlink()


def copy_trust(ca_dir: Path, target: Path) -> bool:
    """Copy the CA's trust directory (its certificate and hash link) to `target`, world-readable: programs that
    run under their own users read it there, wherever the checkout holding the CA is. True when it changed."""
    source = cert_dir(ca_dir)
    target.mkdir(mode=0o755, parents=True, exist_ok=True)
    target.chmod(0o755)
    changed = False
    wanted = {entry.name for entry in source.iterdir()}
    for entry in source.iterdir():
        dest = target / entry.name
        if entry.is_symlink():
            if not dest.is_symlink() or os.readlink(dest) != os.readlink(entry):
                dest.unlink(missing_ok=True)
                dest.symlink_to(os.readlink(entry))
                changed = True
        elif not dest.exists() or dest.read_bytes() != entry.read_bytes():
            dest.write_bytes(entry.read_bytes())
            changed = True
        if not dest.is_symlink():
            dest.chmod(0o644)
    for stale in target.iterdir():
        if stale.name not in wanted:
            stale.unlink()
            changed = True
    return changed


def issue_host_cert(ca_dir: Path, cert_path: Path, key_path: Path, names: tuple[str, ...] = ("localhost",)) -> bool:
    """Sign a server certificate for `names` and 127.0.0.1 unless a valid one from this CA exists."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / CA_CERT).read_bytes())
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if current.issuer == ca_cert.subject and current.not_valid_after_utc > dt.datetime.now(dt.UTC):
            return False
    ca_key = serialization.load_pem_private_key((ca_dir / CA_KEY).read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{ca_dir / CA_KEY}: not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True
