"""`juno-probe rucio`: the Rucio server answers /ping quickly and accepts a userpass login."""

from __future__ import annotations

import time

import requests

from juno_probes.nagios import Result, Status, threshold, worst


def check(url: str, account: str, password: str, warning_s: float = 1.0, critical_s: float = 5.0,
          timeout: float = 10.0) -> Result:
    started = time.monotonic()
    try:
        ping = requests.get(f"{url}/ping", timeout=timeout)
        ping.raise_for_status()
        version = ping.json()["version"]
        elapsed = time.monotonic() - started
        auth = requests.get(
            f"{url}/auth/userpass",
            headers={"X-Rucio-Account": account, "X-Rucio-Username": account, "X-Rucio-AppID": "juno-probe",
                     "X-Rucio-Password": password},
            timeout=timeout,
        )
    except (requests.RequestException, ValueError, KeyError) as exc:
        return Result(Status.CRITICAL, f"Rucio at {url} does not answer: {exc.__class__.__name__}: {exc}")
    perf = {"ping_time": f"{elapsed:.3f}s;{warning_s};{critical_s}"}
    if auth.status_code != 200 or "X-Rucio-Auth-Token" not in auth.headers:
        return Result(Status.CRITICAL, f"Rucio {version} up, but login as {account} failed: HTTP {auth.status_code}",
                      perf)
    status = worst(Status.OK, threshold(elapsed, warning_s, critical_s))
    return Result(status, f"Rucio {version} at {url}, login as {account} ok, ping {elapsed:.3f} s", perf)
