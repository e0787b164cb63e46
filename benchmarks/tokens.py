"""What tokens cost, on a running grid: the issuer's grants, a service's checks, and the transfer service's
authenticated calls beside unauthenticated ones, in one run.

    .venv/bin/python benchmarks/tokens.py --home DIR [--grants 300] [--checks 2000] [--calls 300]

Prints one JSON object:
- `grants_per_s` (one client asking in turn, as Rucio's conveyor does for each transfer without memcached) and
  `grants_per_s_4_threads`;
- `verify_per_s` (a signature check against the issuer's keys) and `verify_cached_per_s` (a token seen before:
  every call of a client after its first);
- `fts_open_ms` (`GET /`, no token) and `fts_auth_ms` (`GET /whoami`, a token), medians over `--calls`, taken
  alternately so that the machine's noise falls on both;
- `exchange_ms` and `refresh_ms`: medians over `--exchanges` of what the transfer service's keeper pays, once per
  distinct token a job brings (an exchange of Rucio's storage token for a refresh token) and once per copy that
  would outlive its token (a refresh), with the grid's `fts` client.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import stamp

from juno_dcs.grid import issuer
from juno_dcs.grid.home import GridHome
from juno_dcs.tokens.config import IdentityCache
from juno_dcs.tokens.fetch import TokenSource, token_endpoint
from juno_dcs.tokens.verify import Verifier


def grants(where: issuer.IssuerLayout, state: Any, n: int, threads: int) -> float:
    creds = issuer.credentials(where, state, "rucio")
    endpoint = token_endpoint(creds.issuer, creds.ca_file)
    session = requests.Session()

    def one(_: int) -> None:
        reply = session.post(endpoint, data={"grant_type": "client_credentials", "audience": "localhost",
                                             "scope": "storage.read:/ offline_access"},
                             auth=(creds.client_id, creds.client_secret), verify=creds.ca_file, timeout=30)
        reply.raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return n / (time.perf_counter() - start)


def keeper_costs(home: Path, where: issuer.IssuerLayout, state: Any, n: int) -> dict[str, float]:
    """The keeper's exchange and refresh at the issuer, as the transfer service's processes make them."""
    import tempfile

    import yaml

    from juno_dcs.tokens.config import ClientAuth
    from juno_dcs.tokens.sealed import Sealer, ensure_key
    from juno_dcs.transfer.keeper import TokenKeeper

    exchange = ClientAuth(**yaml.safe_load((home / "etc" / "transfer.yaml").read_text())["exchange"])
    creds = issuer.credentials(where, state, "rucio")
    endpoint = token_endpoint(creds.issuer, creds.ca_file)
    subject = requests.post(endpoint, data={"grant_type": "client_credentials", "audience": "localhost",
                                            "scope": "storage.read:/raw offline_access"},
                            auth=(creds.client_id, creds.client_secret), verify=creds.ca_file, timeout=30)
    subject.raise_for_status()
    token = subject.json()["access_token"]
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        ensure_key(key)
        keeper = TokenKeeper(Sealer(key), exchange)
        refresh = keeper._exchange(token)  # the warm-up (the keeper's own calls, timed)
        timed: dict[str, list[float]] = {"exchange": [], "refresh": []}
        for _ in range(n):
            t0 = time.perf_counter()
            refresh = keeper._exchange(token)
            t1 = time.perf_counter()
            keeper._refresh(refresh)
            timed["exchange"].append(t1 - t0)
            timed["refresh"].append(time.perf_counter() - t1)
    return {f"{k}_ms": round(statistics.median(v) * 1000, 1) for k, v in timed.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a running grid's home")
    parser.add_argument("--grants", type=int, default=300)
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--exchanges", type=int, default=100)
    args = parser.parse_args()
    home = GridHome(args.home)
    state = home.load_state()
    where = issuer.layout(home, state)
    result: dict[str, Any] = {"benchmark": "tokens"}
    grants(where, state, 20, 1)  # warm-up: discovery, TLS sessions, the workers' first requests
    result["grants_per_s"] = round(grants(where, state, args.grants, 1), 1)
    result["grants_per_s_4_threads"] = round(grants(where, state, args.grants, 4), 1)

    source = TokenSource(issuer.credentials(where, state, "root"))
    token = source.get(issuer.FTS_AUDIENCE, "fts").value
    verifier = Verifier(where.url, (issuer.FTS_AUDIENCE,), ca_file=str(where.ca_file))
    verifier.verify(token)  # the keys, once
    start = time.perf_counter()
    for _ in range(args.checks):
        verifier.verify(token)
    result["verify_per_s"] = round(args.checks / (time.perf_counter() - start), 1)
    cache = IdentityCache(verifier)
    start = time.perf_counter()
    for _ in range(args.checks * 10):
        cache.identify(token)
    result["verify_cached_per_s"] = round(args.checks * 10 / (time.perf_counter() - start), 1)

    fts = state.ports.url("fts", "https")
    session = requests.Session()
    ca = str(where.ca_file)  # per request: requests lets REQUESTS_CA_BUNDLE override a session's own
    headers = {"Authorization": f"Bearer {token}"}
    opened: list[float] = []
    authed: list[float] = []
    for _ in range(args.calls):
        for path, sink, sent in (("/", opened, {}), ("/whoami", authed, headers)):
            t0 = time.perf_counter()
            reply = session.get(f"{fts}{path}", headers=sent, timeout=30, verify=ca)
            sink.append(time.perf_counter() - t0)
            reply.raise_for_status()
    result["fts_open_ms"] = round(statistics.median(opened) * 1000, 2)
    result["fts_auth_ms"] = round(statistics.median(authed) * 1000, 2)
    result["fts_auth_overhead_ms"] = round(result["fts_auth_ms"] - result["fts_open_ms"], 2)
    result |= keeper_costs(args.home, where, state, args.exchanges)
    print(json.dumps(stamp(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
