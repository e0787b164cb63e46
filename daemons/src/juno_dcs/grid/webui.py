"""The Rucio WebUI behind nginx with TLS (B+61) on one origin with the Rucio REST API.

Wiring of the grid (`juno-dcs up`): `layout` names the files and ports, `render_configs` returns the config
files by path, `programs` the supervised programs, `check` the health check that `up` waits for and `status`
reports, `services` its URLs in `status --json`.

    webui   gunicorn with rucio-webui 41.5.1 (the Flask UI) on 127.0.0.1:B+62, the server's rucio.cfg
    nginx   TLS on 127.0.0.1:B+61 with the grid's host certificate: /proxy/<path> and /auth/<path> to the Rucio
            server (B+0), /static/ from the package, /vendor/ from npm packages, the rest to the app

The UI's pages call `https://<their host>/proxy/...` (static/rucio.js), so the API must sit on their origin.
The UI itself reads the Rucio database (token validation, account lookup) through Rucio's gateway, which is why
it runs with the server's configuration. docs/webui.md has the routes and the login flow.

Two logins: Rucio userpass, and OpenID Connect through the grid's token issuer. The UI's login-method page is the
grid's own (data/webui/select_login_method.html: no X509), and the end of an OIDC login, `/auth/oidc_code`, is
handled here (`finish_oidc_login`): Rucio 41 would show the browser a code to paste into a terminal instead.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import requests

from juno_dcs.errors import ConfigError
from juno_dcs.grid.health import Health
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import RUCIO_SERVER_POOL, Program, venv_bin
from juno_dcs.grid.render import digest, render
from juno_dcs.settings import GridSettings
from juno_dcs.topology.models import Topology

logger = logging.getLogger(__name__)

NGINX = Path("/usr/sbin/nginx")
# The CDN files that the UI's templates load, by "<host>/<path>" as the pages name them, and the file (or, for a
# trailing slash, the directory) of an npm package (package.json) that nginx serves at /vendor/<host>/<path>.
# The nearest versions npm has: jQuery UI 1.12.1 for 1.11, Foundation 5.5.3 for 5.4.4, DataTables 1.10.16 for
# 1.10.2, jQuery 2.1.1 for 3.2.1 (the login-method page uses none of its features).
VENDOR: dict[str, str] = {
    "code.jquery.com/jquery-2.1.1.min.js": "jquery/dist/jquery.min.js",
    "code.jquery.com/ui/1.11.1/jquery-ui.min.js": "jquery-ui-dist/jquery-ui.min.js",
    "code.jquery.com/ui/1.11.3/themes/smoothness/jquery-ui.css": "jquery-ui-dist/jquery-ui.min.css",
    "code.jquery.com/ui/1.11.3/themes/smoothness/images/": "jquery-ui-dist/images/",
    "cdnjs.cloudflare.com/ajax/libs/jquery/3.2.1/jquery.min.js": "jquery/dist/jquery.min.js",
    "cdnjs.cloudflare.com/ajax/libs/jquery-cookie/1.4.1/jquery.cookie.min.js": "jquery.cookie/jquery.cookie.js",
    "cdnjs.cloudflare.com/ajax/libs/modernizr/2.8.3/modernizr.min.js": "foundation-sites/js/vendor/modernizr.js",
    "cdnjs.cloudflare.com/ajax/libs/normalize/3.0.1/normalize.min.css": "normalize.css/normalize.css",
    "cdn.jsdelivr.net/foundation/5.4.4/css/foundation.min.css": "foundation-sites/css/foundation.min.css",
    "cdn.jsdelivr.net/foundation/5.4.4/js/foundation.min.js": "foundation-sites/js/foundation.min.js",
    # the login-method page: its style only (its Bootstrap script runs before its jQuery and needs it)
    "maxcdn.bootstrapcdn.com/bootstrap/4.0.0/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    **{f"cdn.datatables.net/{version}/{path}": target for version, min_ in (("1.10.16", ""), ("1.10.2", ".min"))
       for path, target in ((f"js/jquery.dataTables{min_}.js", "datatables.net/js/jquery.dataTables.js"),
                            (f"css/jquery.dataTables{min_}.css", "datatables.net-dt/css/jquery.dataTables.css"),
                            ("images/", "datatables.net-dt/images/"))},
}
# Hosts whose URLs the pages' HTML gets rewritten to /vendor/: the CDNs above, and those the UI loads but the
# grid does not serve (Font Awesome of the login-method page, Google Analytics): they answer 404 on the grid's
# own origin instead of leaving the machine.
CDN_HOSTS: tuple[str, ...] = tuple(sorted(
    {key.split("/", 1)[0] for key in VENDOR} | {"use.fontawesome.com", "www.google-analytics.com"}
))


@dataclass(frozen=True)
class WebuiLayout:
    port: int  # nginx, TLS
    app_port: int  # gunicorn with the Flask UI
    rucio_port: int  # the Rucio server (plain http on loopback)
    nginx_conf: Path
    ca_file: Path  # a copy of the grid CA's certificate: what check() trusts
    cert: Path
    key: Path
    run: Path
    logs: Path

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/"  # the host certificate names localhost and 127.0.0.1


def layout(home: GridHome, state: GridState) -> WebuiLayout:
    return WebuiLayout(
        port=state.ports.port("webui"), app_port=state.ports.port("webui_app"), rucio_port=state.ports.rucio,
        nginx_conf=home.etc / "nginx" / "nginx.conf", ca_file=home.etc / "nginx" / "ca.pem",
        cert=home.pki / "hostcert.pem", key=home.pki / "hostkey.pem", run=home.run, logs=home.logs,
    )


def webui_static() -> Path:
    """The static directory of the installed rucio-webui package (found without importing the UI)."""
    spec = importlib.util.find_spec("rucio")
    if spec is None or spec.origin is None:
        raise ConfigError("the rucio package is not installed; run `make setup`")
    static = Path(spec.origin).parent / "web" / "ui" / "static"
    if not (static / "rucio.js").exists():
        raise ConfigError(f"{static}: no rucio-webui here; run `make setup` (it installs rucio-webui)")
    return static


def vendor_locations(node_modules: Path, vendor: Mapping[str, str] = VENDOR) -> str:
    """nginx `location` blocks serving each CDN file from its npm package (exact match for files, prefix for
    directories)."""
    blocks = []
    for url, target in sorted(vendor.items()):
        exact = "" if url.endswith("/") else "= "
        blocks.append(f"        location {exact}/vendor/{url} {{\n            alias {node_modules / target}"
                      f"{'/' if target.endswith('/') else ''};\n        }}")
    return "\n".join(blocks)


def cdn_rewrites(hosts: Iterable[str] = CDN_HOSTS) -> list[tuple[str, str]]:
    """What nginx replaces in the UI's HTML: `"https://HOST/` and `"//HOST/` (and the same after a single quote)
    become `"/vendor/HOST/`, a path on the page's own origin. The quote keeps https:// and // apart."""
    return [(f"{quote}{prefix}{host}/", f"{quote}/vendor/{host}/")
            for host in hosts for quote in ('"', "'") for prefix in ("https://", "//")]


def sub_filters(rewrites: Iterable[tuple[str, str]]) -> str:
    """nginx `sub_filter` lines, each string in the quote that it does not contain."""
    lines = []
    for old, new in rewrites:
        wrap = "'" if '"' in old else '"'
        lines.append(f"            sub_filter {wrap}{old}{wrap} {wrap}{new}{wrap};")
    return "\n".join(lines)


def missing_vendor_files(node_modules: Path) -> list[str]:
    """The npm files of VENDOR that are not installed (the pages then lack jQuery and show nothing)."""
    return sorted({target for target in VENDOR.values() if not (node_modules / target).exists()})


def render_configs(where: WebuiLayout, home: GridHome, state: GridState, settings: GridSettings,
                   topo: Topology) -> dict[Path, str]:
    """nginx.conf and the CA certificate that check() verifies nginx's certificate with."""
    ca_pem = settings.pki_dir / "ca.pem"
    try:
        ca = ca_pem.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(f"{ca_pem}: the grid CA is missing (`juno-dcs up` creates it)") from exc
    missing = missing_vendor_files(settings.node_modules)
    if missing:
        logger.warning("the WebUI's pages will show no data: npm files missing from %s (JUNO_DCS_NODE_MODULES): %s "
                       "(juno-dcs install-assets node)", settings.node_modules, ", ".join(missing))
    conf = render(settings.template("nginx.conf"), {
        "home": home.root, "run": where.run, "logs": where.logs, "port": where.port, "app_port": where.app_port,
        "rucio_port": where.rucio_port, "cert": where.cert, "key": where.key, "static": home.webui_files / "static",
        "vendor_locations": vendor_locations(home.webui_files / "vendor"), "sub_filters": sub_filters(cdn_rewrites()),
        "temp": home.webui_files / "temp",
    })
    return {where.nginx_conf: conf, where.ca_file: ca}


def publish_files(home: GridHome, node_modules: Path) -> int:
    """Copy the UI's static files and the npm files of VENDOR where nginx's workers (www-data) can read them: the
    home's service root, not the checkout (which may sit in a private directory). Returns the files copied."""
    target = home.webui_files
    pairs = [(webui_static(), target / "static")]
    pairs += [(node_modules / name, target / "vendor" / name) for name in sorted(set(VENDOR.values()))
              if (node_modules / name).exists()]
    copied = 0
    for source, dest in pairs:
        for path in [source] if source.is_file() else sorted(source.rglob("*")):
            if path.is_dir():
                continue
            out = dest if source.is_file() else dest / path.relative_to(source)
            if out.exists() and out.stat().st_size == path.stat().st_size and out.read_bytes() == path.read_bytes():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
            out.chmod(0o644)
            copied += 1
    (target / "temp").mkdir(exist_ok=True)  # nginx's master makes its workers' buffer directories in it
    for directory in [target, target / "temp", *(p for p in target.glob("*/**") if p.is_dir())]:
        directory.chmod(0o755)
    return copied


def programs(where: WebuiLayout, home: GridHome, state: GridState, settings: GridSettings,
             files: Mapping[Path, str], rucio_env: Mapping[str, str]) -> list[Program]:
    """gunicorn with the UI (the server's environment: it restarts with rucio.cfg) and nginx in front of it."""
    nginx = shutil.which("nginx") or str(NGINX)
    nginx_digest = digest(files[where.nginx_conf], where.cert.read_text() if where.cert.exists() else "")
    return [
        Program(
            # the UI calls Rucio's API layer in-process, with the server's rucio.cfg and pool
            name="webui", priority=450, environment=dict(rucio_env), pg_connections=2 * RUCIO_SERVER_POOL.cap,
            command=[
                venv_bin("gunicorn"), "--bind", f"127.0.0.1:{where.app_port}", "--workers", "2",
                "--timeout", "120", "--access-logfile", str(where.logs / "webui-access.log"),
                # paths without their query: /auth/oidc_code?code=...&state=... ends every OIDC login
                "--config", "python:juno_dcs.grid.webui_gunicorn",
                "--error-logfile", "-", "juno_dcs.grid.webui:wsgi_app()",
            ],
        ),
        Program(
            name="nginx", priority=460, environment={"JUNO_DCS_CONFIG_DIGEST": nginx_digest},
            command=[nginx, "-e", str(where.logs / "nginx-error.log"), "-c", str(where.nginx_conf),
                     "-g", "daemon off;"],
        ),
    ]


def services(where: WebuiLayout) -> dict[str, str]:
    """URLs for `juno-dcs status --json` under `services`."""
    return {"webui": where.url}


def check(where: WebuiLayout, timeout: float = 3.0) -> Health:
    """nginx answers over TLS with a certificate the grid's CA verifies, serves the UI and reaches Rucio."""
    if not where.ca_file.exists():
        return Health(False, f"{where.ca_file} missing")
    try:
        with requests.Session() as session:  # verify= per request: REQUESTS_CA_BUNDLE overrides session.verify
            ca = str(where.ca_file)
            ping = session.get(f"{where.url}proxy/ping", timeout=timeout, verify=ca)
            # the userpass login page (one of the two logins of the login-method page every other page shows)
            page = session.get(f"{where.url}login", timeout=timeout, allow_redirects=False, verify=ca)
    except requests.exceptions.SSLError as exc:
        return Health(False, f"TLS: {exc.__class__.__name__}")
    except requests.RequestException as exc:
        return Health(False, f"no answer: {exc.__class__.__name__}")
    if ping.status_code != 200:
        return Health(False, f"/proxy/ping answered HTTP {ping.status_code}")
    try:
        version = ping.json()["version"]
    except (ValueError, KeyError, TypeError):
        return Health(False, "/proxy/ping answered something that is not Rucio's ping")
    if page.status_code != 200:
        return Health(False, f"the WebUI's login page answered HTTP {page.status_code}")
    return Health(True, f"TLS, WebUI and /proxy to Rucio {version}")


def templates_dir() -> Path:
    """The grid's own templates of the UI (the login-method page), put before the package's."""
    return Path(str(resources.files("juno_dcs") / "data" / "webui"))


def finish_oidc_login() -> Any:
    """The end of an OIDC login (the issuer sends the browser to `/auth/oidc_code?code=...&state=...`): Rucio
    redeems the code at the issuer (`get_token_oidc`: ID token, nonce, identity SUB=<sub>, ISS=<iss>), keeps the
    access token under a one-time fetch code, and the UI logs in with that token as after any login."""
    from flask import render_template, request
    from rucio.gateway.authentication import get_token_oidc, redirect_auth_oidc
    from rucio.web.ui.flask.common.utils import finalize_auth

    if "code" not in request.args:  # the issuer sent an error back (e.g. access_denied)
        reason = request.args.get("error_description") or request.args.get("error") or "no authorization code"
        return render_template("problem.html", msg=f"The login at the token issuer did not complete: {reason}"), 401
    result = get_token_oidc(request.query_string.decode(), request.remote_addr)
    if result and result.get("polling"):  # a Rucio client's browser login: the client fetches the token itself
        return render_template("problem.html", msg="Logged in: the Rucio client now fetches its token.")
    token = redirect_auth_oidc(str(result["fetchcode"]), fetchtoken=True) if result and "fetchcode" in result else None
    if not token:
        logger.warning("OIDC login: Rucio did not accept the issuer's answer (see the WebUI's log)")
        return render_template("problem.html", msg="The OIDC login failed: Rucio did not accept the issuer's "
                                                   "answer, or the identity is not an account's."), 401
    if not request.cookies.get("rucio-requested-path"):  # no page waiting: the home page, not this callback again
        request.environ["REQUEST_URI"] = "/"
    return finalize_auth(token, "OIDC")


def with_request_uri(app: Callable[..., Any]) -> Callable[..., Any]:
    """WSGI middleware: the UI remembers the page to return to after login from REQUEST_URI, which Apache's
    mod_wsgi sets and gunicorn does not (it has RAW_URI, the same request target)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ.setdefault("REQUEST_URI", environ.get("RAW_URI") or environ.get("PATH_INFO", "/"))
        return app(environ, start_response)

    return wrapped


def wsgi_app() -> Callable[..., Any]:
    """The WebUI application as gunicorn runs it (`juno_dcs.grid.webui:wsgi_app()`): Rucio's Flask UI behind
    nginx (client address and scheme from its X-Forwarded-* headers), with REQUEST_URI set."""
    from jinja2 import ChoiceLoader, FileSystemLoader
    from rucio.web.ui.flask.main import application  # reads rucio.cfg: only in the UI's own process
    from werkzeug.middleware.proxy_fix import ProxyFix

    application.wsgi_app = ProxyFix(application.wsgi_app, x_for=1, x_proto=1, x_host=1)
    package_loader = application.jinja_loader
    application.jinja_loader = ChoiceLoader([FileSystemLoader(templates_dir()),
                                             *([package_loader] if package_loader else [])])
    application.add_url_rule("/auth/oidc_code", "juno_oidc_code", finish_oidc_login, methods=["GET"])
    return with_request_uri(application)
