"""The Rucio WebUI of the grid: nginx with TLS from the grid's CA in front of rucio-webui 41.5.1, on one origin
with the Rucio REST API (/proxy/ and /auth/), logged into by a headless Chromium with userpass and with OIDC through
the grid's token issuer. The first tests need no grid: the rendered nginx config passes `nginx -t`, and every CDN
asset of the UI's templates is served."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests

from juno_dcs.grid import pki
from juno_dcs.grid import webui as webui_part
from juno_dcs.grid.home import GridHome
from juno_dcs.settings import GridSettings
from juno_dcs.topology import load_topology
from tests.conftest import CHECKOUT, Grid
from tests.integration.browser import chromium

CA = str(CHECKOUT / "var" / "pki" / "certificates" / "ca.pem")
# the pages load jQuery and DataTables from these npm packages (package.json); without them the RSE list is empty
VENDOR_PACKAGES = ("jquery", "jquery.cookie", "datatables.net", "datatables.net-dt", "foundation-sites",
                   "jquery-ui-dist", "normalize.css", "bootstrap")


@pytest.fixture
def nginx_installed() -> None:
    if shutil.which("nginx") is None and not webui_part.NGINX.exists():
        pytest.fail("nginx is not installed: run `make setup` (scripts/setup-system.sh installs it)")


@pytest.mark.usefixtures("nginx_installed")
def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    pki.ensure_ca(pki_dir)
    home = GridHome(tmp_path / "home")
    home.make_dirs()
    pki.issue_host_cert(pki_dir, home.pki / "hostcert.pem", home.pki / "hostkey.pem")
    state = home.new_state(25000, "postgresql://postgres@127.0.0.1:5432/postgres")
    settings = GridSettings(home=home.root, pki_dir=pki_dir)
    where = webui_part.layout(home, state)
    files = webui_part.render_configs(where, home, state, settings, load_topology(settings.topology_file))
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # the static files and nginx's temp directory, as `up` makes them
    assert webui_part.publish_files(home, GridSettings().node_modules) > 0
    assert (home.webui_files / "static" / "rucio.js").is_file()
    conf = files[where.nginx_conf]
    assert "listen 127.0.0.1:25061 ssl;" in conf
    assert "server 127.0.0.1:25000;" in conf
    assert "server 127.0.0.1:25062;" in conf
    assert "${" not in conf
    assert files[where.ca_file] == (pki_dir / "ca.pem").read_text()
    proc = subprocess.run([shutil.which("nginx") or str(webui_part.NGINX), "-t", "-e", str(tmp_path / "err.log"),
                           "-c", str(where.nginx_conf)], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    names = [p.name for p in webui_part.programs(where, home, state, settings, files, {"RUCIO_CONFIG": "x"})]
    assert names == ["webui", "nginx"]


def test_every_cdn_asset_of_the_ui_is_served_or_kept_on_the_origin() -> None:
    """Each script and style that the installed UI's templates load from a CDN becomes a /vendor/ path: one that
    VENDOR serves from an installed npm file, or one of the hosts the grid leaves unserved (404, never outside)."""
    templates = webui_part.webui_static().parent / "flask" / "templates"
    rewrites = webui_part.cdn_rewrites()
    unserved = {"use.fontawesome.com", "www.google-analytics.com", "maxcdn.bootstrapcdn.com"}
    seen = 0
    for template in sorted(templates.glob("*.html")):
        html = template.read_text()
        for old, new in rewrites:
            html = html.replace(old, new)
        assert not re.search(r"""(src|href)=["'](https:)?//(?!/)[^"']*\.(js|css)\b""", html), template.name
        for url in re.findall(r"""(?:src|href)=["']/vendor/([^"'?]+)""", html):
            seen += 1
            host = url.split("/", 1)[0]
            if url not in webui_part.VENDOR:
                assert host in unserved, f"{template.name}: {url} is neither served nor a known unserved host"
    assert seen > 10
    assert webui_part.missing_vendor_files(GridSettings().node_modules) == [], "run `make setup` (npm packages)"


def test_request_uri_is_set_from_gunicorns_raw_uri() -> None:
    got: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        got.update(environ)
        return []

    webui_part.with_request_uri(app)({"RAW_URI": "/rses?x=1", "PATH_INFO": "/rses"}, lambda *a: None)
    assert got["REQUEST_URI"] == "/rses?x=1"
    webui_part.with_request_uri(app)({"REQUEST_URI": "/kept", "RAW_URI": "/other"}, lambda *a: None)
    assert got["REQUEST_URI"] == "/kept"


@pytest.fixture(scope="module")
def status(grid: Grid) -> dict[str, object]:
    return grid.status()


@pytest.fixture(scope="module")
def webui(status: dict[str, object]) -> str:
    services = status["services"]
    assert isinstance(services, dict)
    return str(services["webui"]).rstrip("/")


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def rse_names(grid: Grid) -> set[str]:
    """The grid's RSEs as the stock CLI lists them."""
    return {line.strip() for line in grid.rucio("rse", "list").stdout.splitlines() if line.strip()}


def test_status_names_the_webui(status: dict[str, object], grid: Grid) -> None:
    services, health, processes = status["services"], status["health"], status["processes"]
    assert isinstance(services, dict)
    assert isinstance(health, dict)
    assert isinstance(processes, dict)
    assert services["webui"] == f"https://localhost:{grid.base_port + 61}/"
    assert health["webui"]["ok"], health["webui"]
    assert processes["nginx"]["state"] == "RUNNING"
    assert processes["webui"]["state"] == "RUNNING"


def test_tls_with_the_grids_host_certificate(webui: str, grid: Grid, http: requests.Session) -> None:
    page = http.get(f"{webui}/", verify=CA, timeout=10)
    assert page.status_code == 200
    assert "Login" in page.text
    # the system's trust store does not know the grid's CA: the certificate is the grid's, not a public one
    with pytest.raises(requests.exceptions.SSLError):
        http.get(f"{webui}/", verify=ssl.get_default_verify_paths().cafile or True, timeout=10)
    port = urlsplit(webui).port
    assert port is not None
    served = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))
    assert served == ssl.PEM_cert_to_DER_cert((grid.home / "pki" / "hostcert.pem").read_text())


def test_proxy_and_auth_reach_rucio(webui: str, grid: Grid, http: requests.Session) -> None:
    ping = http.get(f"{webui}/proxy/ping", verify=CA, timeout=10)
    assert ping.status_code == 200
    assert ping.json()["version"] == "41.5.1"
    password = grid.state()["root_password"]
    assert isinstance(password, str)
    auth = http.get(f"{webui}/auth/userpass", verify=CA, timeout=10, headers={
        "X-Rucio-Account": "root", "X-Rucio-Username": "root", "X-Rucio-Password": password})
    assert auth.status_code == 200, auth.text
    token = auth.headers["X-Rucio-Auth-Token"]
    listed = http.get(f"{webui}/proxy/rses/", verify=CA, timeout=30, headers={"X-Rucio-Auth-Token": token})
    assert listed.status_code == 200
    assert {json.loads(line)["rse"] for line in listed.text.splitlines() if line} == rse_names(grid)


def test_plain_http_is_sent_to_https(webui: str, http: requests.Session) -> None:
    plain = webui.replace("https://", "http://")
    reply = http.get(f"{plain}/rses?x=1", allow_redirects=False, timeout=10)
    assert reply.status_code == 301
    assert reply.headers["Location"] == f"{webui}/rses?x=1"


def test_bad_requests_get_clear_answers_and_write_nothing(webui: str, grid: Grid, http: requests.Session) -> None:
    before = rse_names(grid)
    cases: list[tuple[str, str, dict[str, str], set[int]]] = [
        ("GET", "/no/such/page", {}, {404}),  # the UI
        ("GET", "/proxy/no/such/endpoint", {}, {404}),  # Rucio
        ("GET", "/vendor/no-such-cdn/x.js", {}, {404}),
        ("GET", "/static/no-such-file.js", {}, {404}),
        ("GET", "/static/../flask/main.py", {}, {400, 404}),  # no way out of the static directory
        ("DELETE", "/rses", {}, {405}),
        ("PUT", "/login", {}, {405}),
        ("POST", "/static/rucio.js", {}, {405}),
        ("TRACE", "/", {}, {405}),
        # writes without a token or with a bad one: Rucio refuses them
        ("POST", "/proxy/rses/WEBUI_PROBE_RSE", {}, {400}),  # Rucio: "Token must be set."
        ("POST", "/proxy/rses/WEBUI_PROBE_RSE", {"X-Rucio-Auth-Token": "not-a-token"}, {401}),
    ]
    for method, path, headers, expected in cases:
        reply = http.request(method, f"{webui}{path}", headers=headers, verify=CA, timeout=10, data=b"{}")
        assert reply.status_code in expected, (method, path, reply.status_code, reply.text[:300])
        assert "def " not in reply.text  # no Python source leaks
    # a wrong password: the UI says so and sets no token cookie
    failed = http.post(f"{webui}/login", data={"username": "root", "password": "wrong"}, verify=CA, timeout=10)
    assert failed.status_code == 200
    assert "Authentication failed" in failed.text
    assert "x-rucio-auth-token" not in failed.cookies
    empty = http.post(f"{webui}/login", data={}, verify=CA, timeout=10)
    assert "No input credentials were provided" in empty.text
    assert rse_names(grid) == before


def read_rses(page: Any, webui: str, shot: Path) -> tuple[set[str], str]:
    """The RSE names of the UI's RSE list and the account the UI says it uses."""
    page.goto(f"{webui}/rses")
    page.wait_for_selector("#resulttable tbody tr a", timeout=30_000)
    names = set(page.locator("#resulttable tbody tr td:first-child a").all_inner_texts())
    current = page.inner_text("#current_account").strip()
    page.screenshot(path=str(shot), full_page=True)
    return names, current


def login_methods(page: Any) -> list[str]:
    """The login buttons of the login-method page (every page of the UI shows it to a browser not logged in)."""
    page.wait_for_selector("#login_methods a")
    return [text.strip() for text in page.locator("#login_methods a").all_inner_texts()]


def login_and_list_rses(webui: str, account: str, password: str, shot: Path) -> tuple[set[str], str]:
    """Log in through the UI's pages as a person would and read the RSE list page; returns the RSE names and
    the account the UI says it uses."""
    with chromium() as browser:
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 720})
        try:
            page = context.new_page()
            page.goto(f"{webui}/rses")
            assert login_methods(page) == ["Rucio Userpass", "OIDC: JUNO token issuer"]
            page.click("#login_userpass")
            page.wait_for_url("**/login*")
            page.fill("#username", account)
            page.fill("#password", password)
            page.click("#login_button")
            page.wait_for_load_state()
            return read_rses(page, webui, shot)
        finally:
            context.close()


def test_the_login_page_offers_userpass_and_oidc_only(webui: str, http: requests.Session) -> None:
    with chromium() as browser:
        context = browser.new_context(ignore_https_errors=True)
        try:
            page = context.new_page()
            for path in ("/", "/rses"):
                page.goto(f"{webui}{path}")
                assert login_methods(page) == ["Rucio Userpass", "OIDC: JUNO token issuer"], path
                assert "X509" not in page.content()
                assert "certificate" not in page.content().lower()
        finally:
            context.close()
    assert http.get(f"{webui}/x509", verify=CA, timeout=10).status_code == 404


@contextlib.contextmanager
def issuer_login(webui: str, account: str, password: str) -> Iterator[tuple[Any, Any, Any]]:
    """A browser on the UI, sent by its OIDC button to the issuer's form, which it fills in; yields the browser
    context, the page and the issuer's reply to the form."""
    with chromium() as browser:
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 720})
        try:
            page = context.new_page()
            page.goto(f"{webui}/rses")
            page.click("#login_oidc_juno")
            page.wait_for_selector("#account")  # the issuer's form
            webui_port = urlsplit(webui).port
            assert webui_port is not None
            assert urlsplit(page.url).port == webui_port - 61 + 33, page.url
            page.fill("#account", account)
            page.fill("#password", password)
            with page.expect_response(lambda r: r.request.method == "POST" and "/authorize" in r.url) as posted:
                page.click("#submit")
            yield context, page, posted.value
        finally:
            context.close()


def test_browser_logs_in_with_oidc_through_the_issuer(webui: str, grid: Grid, tmp_path: Path) -> None:
    passwords = grid.state()["account_passwords"]
    assert isinstance(passwords, dict)
    with issuer_login(webui, "alice", passwords["alice"]) as (context, page, reply):
        assert reply.status == 302
        page.wait_for_url(f"{webui}/rses*", timeout=60_000)  # back through Rucio's /auth/oidc_code to the page
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        assert cookies["x-rucio-auth-type"] == "OIDC"
        names, current = read_rses(page, webui, tmp_path / "webui-rses-oidc.png")
    assert current == "alice"
    assert names == rse_names(grid)
    # the UI's token is the issuer's access token for Rucio: alice's, audience rucio, validated by Rucio
    token = unquote(cookies["x-rucio-auth-token"])
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    issuer = f"https://127.0.0.1:{grid.base_port + 33}/"
    assert (claims["sub"], claims["aud"], claims["iss"]) == ("alice", "rucio", issuer)
    whoami = requests.get(f"{webui}/proxy/accounts/whoami", headers={"X-Rucio-Auth-Token": token}, verify=CA,
                          timeout=10)
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["account"] == "alice"


def test_a_wrong_password_at_the_issuer_is_refused(webui: str, grid: Grid) -> None:
    with issuer_login(webui, "alice", "not-her-password") as (context, page, reply):
        assert reply.status == 401
        assert page.inner_text("#error").strip() == "Wrong account name or password."
        assert page.locator("#password").count() == 1  # the form again, nowhere else
        assert "x-rucio-auth-token" not in {c["name"] for c in context.cookies()}


@pytest.mark.parametrize(("change", "phrase"), [
    ({"redirect_uri": "https://evil.example/auth/oidc_code"}, "is not supported by client"),
    ({"client_id": "mallory"}, "The client does not exist"),
    ({"client_id": "alice"}, "is not supported by client"),  # an account's client logs nobody in
])
def test_the_issuer_refuses_unknown_clients_and_redirect_uris(grid: Grid, webui: str, http: requests.Session,
                                                              change: dict[str, str], phrase: str) -> None:
    base = f"https://127.0.0.1:{grid.base_port + 33}"
    query = {"response_type": "code", "client_id": "rucio", "scope": "openid profile", "state": "s", "nonce": "n",
             "redirect_uri": f"{webui}/auth/oidc_code", **change}
    assert http.get(f"{base}/.well-known/openid-configuration", verify=CA, timeout=10).json()[
        "authorization_endpoint"] == f"{base}/authorize"
    passwords = grid.state()["account_passwords"]
    assert isinstance(passwords, dict)
    for method in ("GET", "POST"):
        form = {"account": "alice", "password": passwords["alice"]} if method == "POST" else None
        reply = http.request(method, f"{base}/authorize", params=query, data=form, verify=CA, timeout=10,
                             allow_redirects=False)
        assert reply.status_code == 400, (method, reply.status_code, reply.text)
        assert "Location" not in reply.headers
        assert phrase in reply.text
        assert "login request is refused" in reply.text


@pytest.mark.parametrize("account", ["root", "alice"])
def test_browser_logs_in_with_userpass_and_lists_the_rses(webui: str, grid: Grid, tmp_path: Path,
                                                          account: str) -> None:
    missing = [p for p in VENDOR_PACKAGES if not (CHECKOUT / "node_modules" / p / "package.json").exists()]
    assert not missing, f"npm packages missing from node_modules (package.json): {missing}"
    passwords = grid.state()["account_passwords"]
    assert isinstance(passwords, dict)
    shot = tmp_path / f"webui-rses-{account}.png"
    names, current = login_and_list_rses(webui, account, passwords[account], shot)
    assert names == rse_names(grid)
    assert current == account
    assert shot.stat().st_size > 10_000
