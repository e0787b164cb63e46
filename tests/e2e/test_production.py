"""A Monte Carlo production, as the production manager tells it: a locked conditions tag, a steering file, `juno-prod
submit`; the grid's pilots run detsim, then elecsim, cal and rec as each previous output appears in Rucio; the
production ends done, every output registered, and the final dataset's rules OK at its destinations, where the
files read back with Rucio's checksums; a job's log comes back with the stock rucio CLI."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.e2e.shell import adler32, downloaded, replicas, rules, table
from tests.e2e.stories import MonteCarloProduction

pytestmark = [pytest.mark.grid, pytest.mark.e2e]

STEPS = ["detsim", "elecsim", "cal", "rec"]


# 12 jobs one after another per job number: 1 to 3 minutes on an idle 2-core machine, then the final rules' copies
@pytest.mark.timeout(1200)
def test_a_production_runs_its_four_steps_on_the_pilots_and_its_final_rules_are_ok(
        production: MonteCarloProduction, tmp_path: Path) -> None:
    prod, manager = production, production.manager
    assert f"{prod.name} submitted: {prod.jobs} detsim jobs" in prod.submitted, prod.submitted
    report = prod.wait()
    assert report["state"] == "done", report
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == STEPS
    for step in steps.values():
        assert step["jobs_by_state"] == {"finished": prod.jobs}, step
        assert (step["files"], step["closed"], step["failures"]) == (prod.jobs, True, []), step
    text = manager.out("juno-prod", "status", prod.name)  # what the manager reads
    assert f"{prod.name} ({prod.campaign}): done" in text, text

    # every job was run by a pilot of the site the dispatcher chose, which staged its output out to Rucio
    for name, step in steps.items():
        listing = manager.out("juno-wms", "jobs", "--task-id", str(step["task_id"]))
        job_ids = [int(line.split()[0]) for line in listing.splitlines() if line.strip()]
        assert len(job_ids) == prod.jobs, listing
        for job_id in job_ids:
            job = manager.json("juno-wms", "job", str(job_id))
            number = int(job["key"].split(".")[1])
            history = [h["state"] for h in job["history"]]
            assert history[-5:] == ["sent", "starting", "running", "holding", "finished"], job["history"]
            sent = next(h for h in job["history"] if h["state"] == "sent")
            assert sent["reason"].startswith(f"to pilot {job['site']}-"), sent
            assert [o["name"] for o in job["output_files"]] == [f"{prod.container}.{name}.{number:06d}.root"]
            assert job["output_files"][0]["rse"] == job["output_rse"]

    # Rucio: the container holds the steps' datasets; the final files are at every destination
    content = {row["SCOPE:NAME"] for row in table(manager.out("rucio", "did", "content", "list",
                                                                f"mc:{prod.container}"))}
    assert {f"mc:{prod.container}.{s}" for s in STEPS} <= content, content
    final_rules = rules(manager, prod.final)
    assert sorted(r["rse_expression"] for r in final_rules) == sorted(prod.destinations)
    assert {r["state"] for r in final_rules} == {f"OK[{prod.jobs}/0/0]"}
    found = replicas(manager, prod.final)
    names = [f"{prod.container}.rec.{n:06d}.root" for n in range(1, prod.jobs + 1)]
    assert sorted(found) == names
    for rse in ("IHEP_DISK", "CNAF_DISK"):
        assert all(rse in found[n]["rses"] for n in names), (rse, found)
        where = tmp_path / rse
        manager.run("rucio", "download", "--rses", rse, "--dir", str(where), prod.final)
        got = downloaded(where)
        assert sorted(got) == names
        assert {n: adler32(p) for n, p in got.items()} == {n: found[n]["adler32"] for n in names}

    # a job's log, as the manager fetches it: the payload's own report of the rec step
    log = f"{prod.container}.rec.{prod.jobs:06d}.log.tgz"
    manager.run("rucio", "download", "--dir", str(tmp_path / "logs"), f"mc:{log}")
    with tarfile.open(downloaded(tmp_path / "logs")[log]) as tar:
        stdout = next(m for m in tar.getmembers() if m.name.endswith("payload.stdout"))
        text = tar.extractfile(stdout).read().decode()  # type: ignore[union-attr]
    assert '"step": "rec"' in text, text

