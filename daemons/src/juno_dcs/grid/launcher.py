"""`juno-dcs up | down | status | env`: the life cycle of one grid under its home directory."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shlex
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from juno_dcs.errors import ConfigError, GridStateError, JunoDcsError, ServiceError, ServiceTimeout
from juno_dcs.grid import (
    access,
    assets,
    budget,
    cache,
    conditions,
    dashboard,
    database,
    health,
    issuer,
    kafka,
    pki,
    probes,
    schemas,
    storage,
    webui,
    wms,
)
from juno_dcs.grid.apply import apply_topology
from juno_dcs.grid.clients import load_valid_topology, root_client
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import (
    ACTIVEMQ_HOME,
    FTS_SERVER_POOL,
    FTS_WORKER_POOL,
    RUCIO_DAEMON_POOL,
    RUCIO_SERVER_POOL,
    Program,
    grid_programs,
    rucio_environment,
    watchdog_section,
)
from juno_dcs.grid.render import digest, render, write_if_changed
from juno_dcs.grid.runners import Runner, runner_for
from juno_dcs.grid.supervisor import supervisord_of, terminate
from juno_dcs.settings import DEFAULT_BASE_PORT, GridSettings
from juno_dcs.tokens.fetch import Token, TokenSource, write_token_file
from juno_dcs.topology import Topology

logger = logging.getLogger(__name__)


@dataclass
class UpReport:
    home: Path
    created: bool
    actions: list[str] = field(default_factory=list)
    topology_changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class OpsPart(Protocol):
    """What the parts of the grid that plug in the same way (grid/issuer.py, grid/probes.py, grid/dashboard.py,
    grid/webui.py) provide."""

    __name__: str

    def layout(self, home: GridHome, state: GridState) -> Any: ...
    def render_configs(self, where: Any, home: GridHome, state: GridState, settings: GridSettings,
                       topo: Topology) -> dict[Path, str]: ...
    def programs(self, where: Any, home: GridHome, state: GridState, settings: GridSettings,
                 files: Mapping[Path, str], rucio_env: Mapping[str, str]) -> list[Program]: ...
    def services(self, where: Any) -> dict[str, str]: ...
    def check(self, where: Any) -> health.Health | None: ...


OPS_PARTS: tuple[OpsPart, ...] = (issuer, probes, dashboard, webui)


def grid_ca(settings: GridSettings) -> Path:
    """The grid CA's certificate: what the grid's own HTTPS services are checked against."""
    return pki.cert_dir(settings.pki_dir) / pki.CA_CERT


def _resolve_state(home: GridHome, settings: GridSettings, topo: Topology) -> tuple[GridState, bool]:
    database.check_admin_url(settings.pg_admin_url)
    if home.exists():
        state = home.load_state()
        if settings.base_port is not None and settings.base_port != state.base_port:
            if runner_for(home, state).running():
                raise GridStateError(
                    f"{home.root} runs on base port {state.base_port}; `juno-dcs down` it before moving it to "
                    f"{settings.base_port}"
                )
            state = state.model_copy(update={"base_port": settings.base_port})
        if ("pg_admin_url" in settings.model_fields_set and settings.pg_admin_url != state.pg_admin_url
                and state.databases == "servers"):  # a stack's own databases keep their URLs
            state = state.model_copy(update={"pg_admin_url": settings.pg_admin_url})
        created = False
    else:
        state = home.new_state(settings.base_port or DEFAULT_BASE_PORT, settings.pg_admin_url)
        created = True
    if settings.engine is not None and settings.engine != state.engine:
        if not created and runner_for(home, state).running():
            raise GridStateError(f"{home.root} runs under {state.engine}; `juno-dcs down` it before moving it to "
                                 f"{settings.engine}")
        if state.databases == "stack":
            raise GridStateError(f"the catalogue and condition data of {home.root} are in its stack's own databases "
                                 f"(Docker volumes): it runs under swarm only; a grid under {settings.engine} needs "
                                 "a home of its own")
        state = state.model_copy(update={"engine": settings.engine})
    if created and state.engine == "swarm" and settings.swarm_databases == "stack":
        from juno_dcs.swarm.databases import with_stack_databases

        state = with_stack_databases(state)  # its volumes are checked when the engine answers (swarm/deploy.py)
    elif created:
        found = database.leftovers(state)
        if found:  # the passwords that opened them went with the old grid.json: Rucio would refuse root's login
            raise GridStateError(
                f"PostgreSQL already has the {' and '.join(found)} of an earlier grid at {home.root}, whose "
                f"{home.state_file.name} (with their passwords) is gone. Nothing was started. Put the old "
                f"{home.state_file.name} back, or drop them with `juno-dcs down --purge --home {home.root}` "
                "(its Rucio catalogue and condition data go with them)."
            )
    if "token_issuer" in settings.model_fields_set and settings.token_issuer != state.token_issuer:
        state = state.model_copy(update={"token_issuer": settings.token_issuer})
    state.ports  # noqa: B018 - validates the base port before anything is written
    return state.with_accounts(list(topo.accounts)), created


def write_configs(
    home: GridHome, state: GridState, settings: GridSettings, topo: Topology, rses: list[str], tape_rses: list[str]
) -> tuple[list[str], list[Program]]:
    """Render every config file of the grid and write it; returns the files that changed, and the programs they
    describe."""
    files, readable, programs = render_configs(home, state, settings, topo, rses, tape_rses)
    written = [str(p) for p, text in files.items() if write_if_changed(p, text, 0o644 if p in readable else 0o600)]
    return written, programs


def render_configs(
    home: GridHome, state: GridState, settings: GridSettings, topo: Topology, rses: list[str], tape_rses: list[str]
) -> tuple[dict[Path, str], set[Path], list[Program]]:
    """Every config file of the grid by path, those the service users must read, and the programs; writes
    nothing."""
    host, port = database.pg_host_port(state.pg_admin_url)
    values: dict[str, object] = {
        "home": home.root,
        "tag": home.tag,
        "rucio_url": state.ports.url("rucio"),
        "root_password": state.root_password,
        "db_user": state.db_user,
        "db_password": state.db_password,
        "db_name": state.db_name,
        "pg_host": host,
        "pg_port": port,
        "stomp_port": state.ports.activemq_stomp,
        "activemq_password": state.activemq_password,
        "events_password": state.events_password,
        "supervisor_port": state.ports.supervisor,
        "supervisor_password": state.supervisor_password,
        "migrate_repo": _rucio_migrate_repo(),
        "fts_url": state.ports.url("fts", "https"),
        "default_copy_mode": settings.copy_mode,
        "ca_dir": pki.cert_dir(settings.pki_dir),
        "cache_url": cache.url(home),
        # Rucio's client names its site ROAMING unless SITE_NAME says otherwise; an empty entry per site keeps
        # the server's per-file lookups of these two sections in this file (see the template)
        "client_sites": "\n".join(f"{site} =" for site in ["ROAMING", *sorted(topo.sites)]),
    }
    tpl = settings.template
    rucio_cfg = render(tpl("rucio.cfg"), {**values, **RUCIO_SERVER_POOL.values("Rucio server and WebUI")})
    daemons_cfg = render(tpl("rucio.cfg"), {**values, **RUCIO_DAEMON_POOL.values("Rucio daemons")})
    reaper_cfg = render(tpl("rucio.cfg"), {**values, **RUCIO_DAEMON_POOL.values("Rucio's reaper (no cache)"),
                                           "cache_url": cache.uncached_url(home)})
    files: dict[Path, str] = {
        home.rucio_cfg: rucio_cfg,
        home.rucio_daemons_cfg: daemons_cfg,
        home.rucio_reaper_cfg: reaper_cfg,
        home.etc / "alembic.ini": render(tpl("alembic.ini"), values),
        home.etc / "activemq" / "activemq.xml": render(tpl("activemq.xml"), values),
    }
    tokens_at = issuer.layout(home, state)
    for account in state.account_passwords:
        files[home.client_cfg(account)] = render(
            tpl("rucio-client.cfg"), {**values, "account": account, "password": state.password(account)}
        )
        # the account's token client beside it (the pilots stage a job's data with its owner's: pilot/stager.py)
        files[home.client_cfg(account).with_suffix(".token.yaml")] = yaml.safe_dump(
            issuer.client_auth(tokens_at, account).model_dump(mode="json"), sort_keys=False)
    ports = storage.rse_ports(state, rses) if settings.storage == "xrootd" else {}
    delays = f"{{staging_delay: {settings.tape_delay}, archive_delay: {settings.tape_delay}}}"
    tapes = "".join(f'  "davs://localhost:{ports[rse]}": {delays}\n' for rse in tape_rses if rse in ports) or "  {}\n"
    transfer_yaml = render(tpl("transfer.yaml"), {**values, "tape_endpoints": tapes.rstrip("\n"),
                                                     "issuer_url": tokens_at.url,
                                                     "issuer_ca": tokens_at.issuer_ca or "null",
                                                     "fts_audience": issuer.FTS_AUDIENCE,
                                                     "fts_token_key": tokens_at.fts_token_key,
                                                     "fts_client": issuer.FTS_CLIENT,
                                                     "fts_client_secret": tokens_at.secret_file(issuer.FTS_CLIENT),
                                                     "fts_worker_pool": FTS_WORKER_POOL,
                                                     "fts_server_pool": FTS_SERVER_POOL})
    files[home.etc / "transfer.yaml"] = transfer_yaml
    activemq_xml = files[home.etc / "activemq" / "activemq.xml"]
    digests = {"rucio": digest(rucio_cfg, daemons_cfg, reaper_cfg), "activemq": digest(activemq_xml),
               "fts": digest(transfer_yaml)}
    kafka_files = kafka.render_configs(home, state, settings)
    files.update(kafka_files)
    kafka_etc = kafka.config_dir(home)
    log4j = kafka_files[kafka_etc / "log4j.properties"]
    digests["zookeeper"] = digest(kafka_files[kafka_etc / "zookeeper.properties"], log4j)
    digests["kafka"] = digest(kafka_files[kafka_etc / "server.properties"], log4j)
    ingest_yaml = render(tpl("ingest.yaml"), {
        **values, "kafka_port": state.ports.port("kafka"), "policy_dir": settings.placement_dir.resolve(),
        "topology": settings.topology_file.resolve(), "verify_at_se": str(settings.ingest_verify).lower(),
        "close_grace": settings.ingest_close_grace, "close_quiet": settings.ingest_close_quiet,
        "issuer_url": tokens_at.url, "rawdata_secret": tokens_at.secret_file("rawdata"),
        "issuer_ca": tokens_at.issuer_ca or "null",
    })
    files[home.etc / "ingest.yaml"] = ingest_yaml
    digests["ingest"] = digest(ingest_yaml)
    where = conditions.layout(home, state, topo)
    cond_files = conditions.render_configs(where, state, settings)
    files.update(cond_files)
    digests["conditions"] = digest(cond_files[where.service_config])
    for site, squid in where.homes.items():
        digests[f"squid-{site}"] = digest(cond_files[squid.conf])
    if ports:  # none with posix storage
        scitokens_cfg = storage.render_scitokens(home, settings, tokens_at.url, issuer.STORAGE_AUDIENCE)
        files[storage.scitokens_config(home)] = scitokens_cfg
    for rse, port in ports.items():
        text = storage.render_xrootd(home, settings, rse, port)
        files[home.xrootd_etc / f"{rse}.cfg"] = text
        digests[f"xrootd-{rse}"] = digest(text, scitokens_cfg)
    jobs = wms.layout(home, state)
    wms_files = wms.render_configs(jobs, home, state, settings, topo, where)
    files.update(wms_files)
    digests["wms"] = digest(wms_files[jobs.wms_config])
    digests["pilots"] = digest(wms_files[jobs.factory_config])
    digests["prodsys"] = digest(wms_files[jobs.prodsys_config])
    programs = grid_programs(home, state, settings, digests, rses, list(where.homes.values()), jobs)
    rucio_env = rucio_environment(home, settings, digests)
    for part in OPS_PARTS:  # probes, dashboard, WebUI: each renders its own files and names its programs
        part_where = part.layout(home, state)
        part_files = part.render_configs(part_where, home, state, settings, topo)
        files.update(part_files)
        programs += part.programs(part_where, home, state, settings, part_files, rucio_env)
    supervisord = render(tpl("supervisord.conf"), values) + "".join("\n" + p.section(home) for p in programs) \
        + "\n" + watchdog_section(home, state)
    files[home.supervisord_conf] = supervisord
    # read by the xrootd and proxy (Squid) users; no secrets in them
    readable = {p for p in files if p.parent == home.xrootd_etc} | {s.conf for s in where.homes.values()}
    return files, readable, programs


def _rucio_migrate_repo() -> Path:
    import rucio.db.sqla  # the server's package: only the grid launcher needs it

    return Path(rucio.db.sqla.__file__).parent / "migrate_repo"


def _wait_for(what: str, check: Callable[[], health.Health], timeout: float, sup: Runner) -> health.Health:
    deadline = time.monotonic() + timeout
    result = check()
    while not result.ok and time.monotonic() < deadline:
        _fail_on_fatal(sup)
        time.sleep(0.5)
        result = check()
    if not result.ok:
        raise ServiceTimeout(f"{what} not ready after {timeout:.0f} s: {result.detail}")
    return result


def _fail_on_fatal(sup: Runner) -> None:
    """A program that the supervisor (or the swarm) gave up on will not come back by waiting: say which and why."""
    for proc in sup.processes():
        if proc.state == "FATAL":
            log = sup.home.logs / f"{proc.name}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-6:] if log.exists() else []
            raise ServiceError(f"{proc.name} failed to start: {proc.description} (see {log}):\n  "
                               + "\n  ".join(tail))


@contextlib.contextmanager
def exclusive(home: GridHome) -> Iterator[None]:
    """One `up` or `down` at a time per home; a second one waits for the first."""
    home.run.mkdir(parents=True, exist_ok=True)
    with (home.run / "launcher.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(settings: GridSettings) -> UpReport:
    """Bring the grid to the state the topology and templates describe; safe to repeat, and to run twice
    at once (the second waits for the first, then finds nothing to do)."""
    topo = load_valid_topology(settings)  # validate everything before touching anything
    quotas = grid_quotas(settings, topo)
    if not (ACTIVEMQ_HOME / "bin" / "activemq.jar").exists():
        raise ConfigError(f"ActiveMQ is not installed ({ACTIVEMQ_HOME}); run `make setup`")
    assets.require_kafka(settings)
    home = GridHome(settings.home)
    with exclusive(home):
        return _up_locked(settings, topo, home, quotas)


def grid_quotas(settings: GridSettings, topo: Topology) -> dict[str, dict[str, int]]:
    """Every account's quotas: the topology's, plus user.yaml's default for USER accounts where the topology
    sets none. The policy files are checked against the topology first: a bad policy stops `up`."""
    from juno_dcs.placement.checks import check
    from juno_dcs.placement.loader import PolicyError, load_policies
    from juno_dcs.placement.quotas import default_user_quotas

    policies = load_policies(settings.placement_dir)
    problems = check(policies, topo)
    if problems:
        raise PolicyError(problems)
    quotas = topo.resolved_quotas()
    for account, limits in default_user_quotas(topo, policies.user).items():
        quotas[account] = {**quotas.get(account, {}), **limits}
    return quotas


def _up_locked(settings: GridSettings, topo: Topology, home: GridHome, quotas: dict[str, dict[str, int]]) -> UpReport:
    state, created = _resolve_state(home, settings, topo)
    engine = None
    if state.engine == "swarm":  # the Docker engine answers before anything is written
        from juno_dcs.swarm import engine as docker

        engine = docker.ensure_engine(settings.docker_dir)
        state = state.model_copy(update={"docker_host": engine.host})
    sup = runner_for(home, state)
    running = sup.running()
    orphan = None if running or engine is not None else supervisord_of(home)
    if orphan is not None:  # a supervisord of this home that does not answer with this grid.json's password
        terminate(orphan)
    if not running:
        busy = state.ports.busy()
        if busy:
            raise GridStateError(
                f"ports {', '.join(map(str, busy))} of base port {state.base_port} are in use by something else; "
                "choose another --base-port"
            )
    rses = list(topo.rses)
    tape_rses = [r for r in rses if topo.rse_type(r) == "TAPE"]
    # before anything is written or started: would the grid fit in PostgreSQL's free connection slots?
    programs = render_configs(home, state, settings, topo, rses, tape_rses)[2]
    first: list[str] = []
    built = None  # the images, once the databases' deployment has built them
    if engine is not None and state.databases == "stack":  # the stack's own databases, before they are counted
        from juno_dcs.swarm import deploy

        first, built = deploy.databases_first(settings, topo, home, state, engine, programs, created)
    host, port = database.pg_host_port(state.pg_admin_url)
    counted = programs
    if engine is not None:  # the programs that run twice there count twice
        from juno_dcs.swarm.stack import expanded

        counted = expanded(programs, settings.swarm_replicas)
    budget.check(budget.shares(counted), budget.read_slots(state.pg_admin_url, state.db_user), f"{host}:{port}")
    report = UpReport(home=home.root, created=created)
    report.actions += first
    moved = access.settle_service_root(home)  # before anything starts: where the service users' files go
    if moved:
        report.actions.append(moved)
    home.make_dirs()
    kafka.make_dirs(home)
    home.save_state(state)
    if pki.ensure_ca(settings.pki_dir):
        report.actions.append(f"created the grid CA in {settings.pki_dir}")
    if pki.issue_host_cert(settings.pki_dir, home.pki / "hostcert.pem", home.pki / "hostkey.pem"):
        report.actions.append("issued the host certificate")
    report.actions += issuer.prepare(issuer.layout(home, state), settings)  # the keys, before the configs
    if settings.storage == "xrootd":
        storage.prepare_xrootd(home, settings, rses)
    cache.prepare(home)
    webui.publish_files(home, settings.node_modules)
    written, programs = write_configs(home, state, settings, topo, rses, tape_rses)  # what the programs will read
    report.actions += [f"wrote {f}" for f in written]
    if database.ensure_database(state):
        report.actions.append(f"created database {state.db_name}")
    where = conditions.layout(home, state, topo)
    report.actions += conditions.prepare(where, state, settings)  # its tables are upgraded to head there
    # the project's own schemas, before any program (re)starts; on a running grid the programs that use a schema
    # with pending versions are stopped first, and start_all below starts them again
    report.actions += schemas.upgrade(state, sup if running else None)
    report.actions.append(f"Rucio schema: {database.prepare_schema(home, state)}")
    if engine is not None:
        from juno_dcs.swarm import deploy

        report.actions += deploy.prepare(settings, topo, home, state, engine, programs, built)
    if running:
        report.actions += sup.update()
        sup.start_all()
        _wait_and_apply(settings, topo, home, state, sup, rses, where, quotas, report)
        return report
    sup.start()
    report.actions.append("deployed the stack" if engine is not None else "started the supervisor and every program")
    try:
        _wait_and_apply(settings, topo, home, state, sup, rses, where, quotas, report)
    except BaseException as exc:  # all or nothing: a grid this `up` started does not stay half up
        killed = sup.shutdown()
        logger.error("up failed (%s): stopped every program it had started%s", exc,
                     f", killed {killed}" if killed else "")
        if isinstance(exc, JunoDcsError):
            note = f"{exc}\n`up` stopped every program it had started; fix the cause and run it again"
            try:
                wrapped = type(exc)(note)
            except TypeError:
                raise exc from None
            raise wrapped from exc
        raise
    return report


def _wait_and_apply(settings: GridSettings, topo: Topology, home: GridHome, state: GridState, sup: Runner,
                    rses: list[str], where: conditions.ConditionsLayout, quotas: dict[str, dict[str, int]],
                    report: UpReport) -> None:
    """Wait for every service of a started grid, then apply the topology through Rucio."""
    rucio_url = state.ports.url("rucio")
    _wait_for("the Rucio server", lambda: health.check_rucio(rucio_url), settings.start_timeout, sup)
    _wait_for_part(issuer, home, state, settings, sup)  # the services that check tokens fetch its keys
    if settings.storage == "xrootd":  # the SEs get them from `up` (grid/scitokens.py)
        tokens_at = issuer.layout(home, state)
        if storage.seed_key_cache(home, tokens_at.url, tokens_at.issuer_ca):
            report.actions.append("put the token issuer's keys into the storage elements' key cache")
    _wait_for("ActiveMQ", lambda: health.check_activemq(state), settings.start_timeout, sup)
    _wait_for("Kafka", lambda: health.check_kafka(state), settings.start_timeout, sup)
    report.actions += kafka.ensure_topics(home, state, kafka.grid_topics(settings),
                                         node_modules=settings.node_modules)
    ports = storage.rse_ports(state, rses) if settings.storage == "xrootd" else {}
    if ports:
        _wait_for("the XRootD storage elements", lambda: health.check_ports(ports, grid_ca(settings)),
                  settings.start_timeout, sup)
    _wait_for("the transfer service", lambda: health.check_fts(state.ports.url("fts", "https"), grid_ca(settings)),
              settings.start_timeout, sup)
    _wait_for("the conditions service and its Squids", lambda: conditions.check(where), settings.start_timeout, sup)
    jobs = wms.layout(home, state)
    _wait_for("the dispatcher", lambda: wms.check(jobs), settings.start_timeout, sup)
    for part in OPS_PARTS:
        _wait_for_part(part, home, state, settings, sup)
    protocols = {rse: storage.protocols(home, settings, rse, ports.get(rse)) for rse in rses}
    passwords = {name: state.password(name) for name in topo.accounts}
    # oidc_support: Rucio's conveyor and reaper ask the issuer for tokens for the RSE's davs protocol
    tokens = {"oidc_support": True} if settings.storage == "xrootd" else {}
    attributes = {rse: {**topo.rse_attributes(rse), "fts": state.ports.url("fts", "https"), **tokens} for rse in rses}
    applied = apply_topology(root_client(home, state), topo, protocols, passwords, attributes, quotas,
                             token_issuer=issuer.layout(home, state).url)
    report.topology_changes, report.warnings = applied.changes, applied.warnings
    if applied.changes and cache.flush(home):  # Rucio keeps RSE expressions' answers 10 minutes, uninvalidated
        report.actions.append("emptied Rucio's cache after the topology's changes")


def _wait_for_part(part: OpsPart, home: GridHome, state: GridState, settings: GridSettings, sup: Runner) -> None:
    where = part.layout(home, state)

    def checked() -> health.Health:
        return part.check(where) or health.Health(True, "nothing to check")

    _wait_for(part.__name__.rsplit(".", 1)[-1], checked, settings.start_timeout, sup)


def down(settings: GridSettings, purge: bool = False) -> list[str]:
    home = GridHome(settings.home)
    if not home.exists():  # a home whose `up` never got as far as grid.json, or whose grid.json was deleted
        pid = supervisord_of(home)
        orphan = home.new_state(DEFAULT_BASE_PORT, settings.pg_admin_url)  # its names follow from the path
        found = database.leftovers(orphan) if purge else []
        if pid is None and not found:
            home.load_state()  # raises: no grid here
        done = []
        if pid is not None:
            killed = terminate(pid)
            done.append(f"{home.root} has no {home.state_file.name}: stopped its supervisord (pid {pid}) and its "
                        "programs" + (f"; killed leftover processes {killed}" if killed else ""))
        if purge:
            done += _purge(home, orphan, settings)
        return done
    state = home.load_state()
    with exclusive(home):
        return _down_locked(home, state, purge, settings)


def _down_locked(home: GridHome, state: GridState, purge: bool, settings: GridSettings) -> list[str]:
    sup = runner_for(home, state)
    done = []
    if sup.pid() is not None:
        # a purged grid's data goes with it: its programs are killed at once rather than stopped one by one
        killed = sup.shutdown(graceful=not purge)
        done.append("removed the stack (its images stay)" if state.engine == "swarm"
                    else "killed every program and the supervisor" if purge
                    else "stopped every program and the supervisor")
        if killed and not purge:
            done.append(f"killed leftover processes {killed}")
    else:
        done.append("the grid was not running")
    if purge:
        done += _purge(home, state, settings)
    return done


def _purge(home: GridHome, state: GridState, settings: GridSettings) -> list[str]:
    """Drop what the grid keeps outside its home, then the home. The files outside the home first: if a database
    cannot be dropped, the home (with grid.json) stays for a second `down --purge`, and nothing is left behind
    that no home points to."""
    done = []
    shutil.rmtree(storage.admin_dir(home), ignore_errors=True)
    shutil.rmtree(cache.socket_dir(home), ignore_errors=True)
    area = access.remove_service_area(home)
    if area is not None:
        done.append(f"removed the service area {area}")
    if state.databases == "stack":  # the stack is gone: its databases' volumes go with the grid
        from juno_dcs.swarm import databases
        from juno_dcs.swarm.engine import Engine
        from juno_dcs.swarm.runner import stack_name

        removed = databases.remove_volumes(Engine(state.docker_host or ""), stack_name(home))
        shutil.rmtree(home.root, ignore_errors=True)
        done.append(f"removed the databases' volumes ({', '.join(removed) or 'none left'}) and {home.root}")
        return done
    database.drop_database(state)
    conditions.purge(settings, state)
    shutil.rmtree(home.root, ignore_errors=True)
    done.append(f"dropped databases {state.db_name} (PostgreSQL), {state.conditions_db} (MariaDB) and removed "
                f"{home.root}")
    return done


def status(settings: GridSettings) -> dict[str, Any]:
    home = GridHome(settings.home)
    state = home.load_state()
    sup = runner_for(home, state)
    host, port = database.pg_host_port(state.pg_admin_url)
    rucio_url = state.ports.url("rucio")
    running = sup.running()
    runner = "swarm" if state.engine == "swarm" else "supervisor"
    processes = {p.name: {"state": p.state, "pid": p.pid, "description": p.description} for p in sup.processes()} \
        if running else {}
    # each storage element's port, as its XRootD config recorded it
    se_ports = {rse: _xrootd_port(home, rse) for rse in (p.removeprefix("xrootd-") for p in processes
                                                          if p.startswith("xrootd-"))}
    checks = {
        runner: health.Health(running, "running" if running else "not running"),
        "postgresql": health.check_postgresql(state),
        "rucio": health.check_rucio(rucio_url) if running else health.Health(False, "grid stopped"),
        "activemq": health.check_activemq(state) if running else health.Health(False, "grid stopped"),
        "fts": health.check_fts(state.ports.url("fts", "https"), grid_ca(settings)) if running
        else health.Health(False, "grid stopped"),
        "kafka": health.check_kafka(state) if running else health.Health(False, "grid stopped"),
    }
    cond = conditions.running_layout(home, state)
    if "conditions" in processes:
        checks["conditions"] = conditions.check(cond)
        for site in cond.squids:  # each Squid on its own line of `status`
            checks[f"squid-{site}"] = conditions.check_squid(cond, site)
    jobs = wms.layout(home, state)
    if "wms-server" in processes:
        checks["dispatcher"] = wms.check(jobs)
    if se_ports:
        checks["storage"] = health.check_ports(se_ports, grid_ca(settings))
    ops_services: dict[str, str] = {}
    for part in OPS_PARTS:
        part_where = part.layout(home, state)
        services = part.services(part_where)
        # the check is reported under the part's service name (the dashboard is `dashboard`)
        name = next(iter(services)) if len(services) == 1 else part.__name__.rsplit(".", 1)[-1]
        if running:
            checked = part.check(part_where)
            if checked is not None:
                checks[name] = checked
        ops_services.update(services)
    # programs that should run and do not (FATAL, BACKOFF, EXITED, STOPPED, ...), and Rucio daemons that run but
    # have stopped beating: the alarm of `status`
    down = {name: f"{p['state']}: {p['description']}" for name, p in sorted(processes.items())
            if p["state"] != "RUNNING"}
    if running:
        for name, why in health.stale_heartbeats(state).items():
            down.setdefault(name, why)
    return {
        "home": str(home.root),
        "base_port": state.base_port,
        "engine": state.engine,
        "running": running,
        "healthy": running and all(h.ok for h in checks.values()) and not down,
        "down": down,
        "services": {
            "rucio": rucio_url,
            "activemq": state.ports.url("activemq_stomp", "stomp"),
            "fts": state.ports.url("fts", "https"),
            "kafka": state.ports.url("kafka", "kafka"),
            "conditions": cond.service_url,
            **{f"squid-{site}": cond.squid_url(site) for site in cond.squids},
            "dispatcher": jobs.dispatcher_url,
            **ops_services,
            **({} if state.engine == "swarm" else {"supervisor": state.ports.url("supervisor")}),
            "postgresql": f"postgresql://{state.db_user}@{host}:{port}/{state.db_name}",
        },
        "storage": {rse: f"davs://localhost:{p}/" for rse, p in sorted(se_ports.items())},
        "health": {name: h.as_dict() for name, h in checks.items()},
        "processes": processes,
    }


def _xrootd_port(home: GridHome, rse: str) -> int:
    for line in (home.xrootd_etc / f"{rse}.cfg").read_text().splitlines():
        if line.startswith("xrd.port "):
            return int(line.split()[1])
    raise GridStateError(f"{home.xrootd_etc / (rse + '.cfg')}: no xrd.port line")


def env_exports(settings: GridSettings, account: str) -> str:
    home = GridHome(settings.home)
    state = home.load_state()
    state.password(account)  # unknown account -> ConfigError naming the known ones
    exports = {
        "RUCIO_CONFIG": str(home.client_cfg(account)),
        "RUCIO_ACCOUNT": account,
        "X509_CERT_DIR": str(pki.cert_dir(settings.pki_dir)),
        "JUNO_DCS_HOME": str(home.root),
        "JUNO_WMS_URL": wms.layout(home, state).dispatcher_url,  # jsub, juno-wms
        "JUNO_PROD_CONFIG": str(wms.layout(home, state).prodsys_config),  # juno-prod
    }
    where = issuer.layout(home, state)
    try:  # WLCG Bearer Token Discovery: gfal2, davix, curl wrappers, jsub and juno-prod read the token there
        exports["BEARER_TOKEN_FILE"] = str(write_account_token(home, state, account))
        exports["JUNO_DCS_ISSUER"] = where.url
        # the stock rucio CLI: with auth_type oidc it reads the token by the same discovery, sends it to Rucio's
        # REST API and, being a JWT, hands it to gfal2 for uploads and downloads (docs/security.md, "Rucio")
        exports["RUCIO_AUTH_TYPE"] = "oidc"
    except JunoDcsError as exc:
        logger.warning("no token for %s: %s", account, exc)
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items())


def account_token(home: GridHome, state: GridState, account: str, audience: str = "", scope: str = "") -> Token:
    """A token for `account` from the grid's issuer, with the account's own client: by default for every
    service of the grid (issuer.USER_AUDIENCES) and with every scope its role allows."""
    state.password(account)  # unknown account -> ConfigError naming the known ones
    where = issuer.layout(home, state)
    source = TokenSource(issuer.credentials(where, state, account))
    return source.get(audience or " ".join(issuer.USER_AUDIENCES), scope)


def write_account_token(home: GridHome, state: GridState, account: str) -> Path:
    path = home.secrets / "tokens" / account
    write_token_file(path, account_token(home, state, account).value)
    return path
