"""The grid's storage elements: one XRootD server per RSE (root:// and davs on one port, HTTP-TPC, adler32),
or, as an explicit option for unit tests, plain directories through Rucio's posix protocol.

XRootD refuses to run as root: it runs as the `xrootd` user, so each RSE's directory and the TLS key are
given to that user; they live in the home's service root (the home, or a service area the user can reach:
juno_dcs.grid.access), with its configuration and a copy of the CA's trust directory. XRootD 5.5 cannot
choose the address it listens on: the LD_PRELOAD shim built by `make setup` (daemons/native/bind_loopback.c)
keeps it on 127.0.0.1.

Every SE authorizes every request with XRootD's SciTokens plugin (Debian xrootd-scitokens-plugins): tokens of the
grid's issuer for the storage audience, scopes relative to the SE's root, and nothing without a token. The plugin
keeps the issuer's keys in a cache under XDG_CACHE_HOME (the admin directory), which `up` fills
(juno_dcs.grid.scitokens: the plugin's own fetch could not check the issuer's certificate).
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path
from typing import Any

from juno_dcs.errors import ConfigError
from juno_dcs.grid import assets, pki, scitokens
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.render import render
from juno_dcs.settings import GridSettings

XROOTD_USER = "xrootd"
XROOTD_BIN = Path("/usr/bin/xrootd")
SCITOKENS_LIB = Path("/usr/lib/x86_64-linux-gnu/libXrdAccSciTokens-5.so")
POSIX_IMPL = "rucio.rse.protocols.posix.Default"
GFAL_IMPL = "rucio.rse.protocols.gfal.Default"
# Rucio's gfal protocol, putting the client's token into root:// URLs too (gfal2 sends it only over HTTP)
GFAL_ROOT_IMPL = "juno_rucio_policy.gfal_tokens.Default"
RSE_PORT_OFFSET = 10
MAX_RSES = 20


def admin_dir(home: GridHome) -> Path:
    """XRootD's admin directory (its unix sockets): short, because a socket path may not exceed 107 bytes,
    so it lives in /tmp under the home's tag rather than in the home; `down --purge` removes it."""
    return Path("/tmp") / f"jdcs-{home.tag}"  # noqa: S108 - a fixed name per home, owned by xrootd


def rse_port(state: GridState, index: int) -> int:
    if index >= MAX_RSES:
        raise ConfigError(f"at most {MAX_RSES} RSEs fit in a grid's port range")
    return state.base_port + RSE_PORT_OFFSET + index


def rse_ports(state: GridState, rses: list[str]) -> dict[str, int]:
    """Each RSE's XRootD port, by its place in the topology's order (stable as long as the order is)."""
    return {name: rse_port(state, i) for i, name in enumerate(rses)}


def protocols(home: GridHome, settings: GridSettings, rse: str, port: int | None) -> list[dict[str, Any]]:
    """The RSE protocols Rucio gets: davs first for reads, writes and third-party copy; root second for reads,
    writes and deletions (what the pilots ask for by name: XRootD 5.5.3's HTTPS front end stops accepting under
    the churn of many short davs sessions, root:// multiplexes them over one connection), never for TPC."""
    if settings.storage == "posix" or port is None:
        rw = {"read": 1, "write": 1, "delete": 1}
        return [{
            "scheme": "file", "hostname": "localhost", "port": 0, "prefix": f"{home.rse_dir(rse)}/",
            "impl": POSIX_IMPL, "domains": {"lan": dict(rw), "wan": dict(rw)},
        }]
    davs_wan = {"read": 1, "write": 1, "delete": 1, "third_party_copy_read": 1, "third_party_copy_write": 1}
    # None, not 0, marks an operation a protocol does not do: Rucio 41's upload client sorts a 0 before a 1
    root_wan = {"read": 2, "write": 2, "delete": 2, "third_party_copy_read": None, "third_party_copy_write": None}
    return [
        {"scheme": "davs", "hostname": "localhost", "port": port, "prefix": "/", "impl": GFAL_IMPL,
         "domains": {"lan": {"read": 1, "write": 1, "delete": 1}, "wan": davs_wan}},
        {"scheme": "root", "hostname": "localhost", "port": port, "prefix": "//", "impl": GFAL_ROOT_IMPL,
         "domains": {"lan": {"read": 2, "write": 2, "delete": 2}, "wan": root_wan}},
    ]


def _xrootd_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(XROOTD_USER)
    except KeyError:
        raise ConfigError(f"no `{XROOTD_USER}` user: install xrootd-server (`make setup`)") from None
    return entry.pw_uid, entry.pw_gid


def prepare_xrootd(home: GridHome, settings: GridSettings, rses: list[str]) -> None:
    """Directories and key copies for every RSE's XRootD, owned by the xrootd user."""
    if not XROOTD_BIN.exists():
        raise ConfigError(f"{XROOTD_BIN} is missing: install xrootd-server (`make setup`)")
    if not SCITOKENS_LIB.exists():
        raise ConfigError(f"{SCITOKENS_LIB} is missing: install xrootd-scitokens-plugins (`make setup`)")
    assets.require_shim(settings)
    uid, gid = _xrootd_ids()
    xrd_pki = home.xrootd_pki
    xrd_pki.mkdir(mode=0o755, parents=True, exist_ok=True)
    pki.copy_trust(settings.pki_dir, home.trust_dir)
    for name in ("hostcert.pem", "hostkey.pem"):
        target = xrd_pki / name
        if not target.exists() or target.read_bytes() != (home.pki / name).read_bytes():
            shutil.copyfile(home.pki / name, target)
        os.chown(target, uid, gid)
        os.chmod(target, 0o600 if name.endswith("key.pem") else 0o644)
    admin = admin_dir(home)
    admin.mkdir(mode=0o755, exist_ok=True)
    os.chown(admin, uid, gid)
    for rse in rses:
        data = home.rse_dir(rse)
        data.mkdir(parents=True, exist_ok=True)
        os.chown(data, uid, gid)


def seed_key_cache(home: GridHome, issuer_url: str, ca_file: Path | None) -> bool:
    """The issuer's keys into the SEs' SciTokens key cache (one for every SE of the grid); True when changed."""
    return scitokens.seed(admin_dir(home), issuer_url, scitokens.fetch_jwks(issuer_url, ca_file), _xrootd_ids())


def scitokens_config(home: GridHome) -> Path:
    """The SciTokens plugin's configuration, one for every SE of the grid."""
    return home.xrootd_etc / "scitokens.cfg"


def render_scitokens(home: GridHome, settings: GridSettings, issuer_url: str, audience: str) -> str:
    return render(settings.template("scitokens.cfg"), {"home": home.root, "issuer": issuer_url,
                                                        "audience": audience})


def render_xrootd(home: GridHome, settings: GridSettings, rse: str, port: int) -> str:
    xrd_pki = home.xrootd_pki
    return render(settings.template("xrootd.cfg"), {
        "rse": rse, "home": home.root, "admin_dir": admin_dir(home), "data_dir": home.rse_dir(rse), "port": port,
        "cert": xrd_pki / "hostcert.pem", "key": xrd_pki / "hostkey.pem", "ca_dir": home.trust_dir,
        "scitokens_cfg": scitokens_config(home),
    })


def xrootd_command(home: GridHome, rse: str) -> list[str]:
    return [str(XROOTD_BIN), "-R", XROOTD_USER, "-I", "v4", "-n", rse, "-c", str(home.xrootd_etc / f"{rse}.cfg")]
