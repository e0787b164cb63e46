"""benchmarks/scale.py's dispatcher side: the dispatcher (`juno-wms serve`, its own throwaway database on the
local PostgreSQL, tokens off: benchmarks/wms.py measures what tokens cost) with N jobs of past productions in its
tables, then what producers, pilots and people do with it:

    submit_10k_s        one 10,000-job task posted to POST /v1/tasks
    getjob_per_s        50 pilots taking those 10,000 jobs (once activated by the agent)
    jsub_status_10k_s   `jsub status` of a 10,000-job task, its dispatcher side (juno_dcs.jsub.tasks.status on the
                        task's registry record): the counts by state and the failed jobs
    jsub_status_jobs_10k_s   the same with --jobs (every job's row, in pages)
    prod_status_s       what `juno-prod status NAME` asks it for a production of 4 steps: per step's task its counts
                        by state and its failed jobs (4 past tasks; with no past jobs, the new task once)

The N jobs are written by SQL into the dispatcher's own schema: tasks of 10,000 jobs, each job a copy of a job the
dispatcher itself made from a real submission (its spec, resources, brokered site and queue), 95 % finished and
5 % failed with a classified error, with their history rows (defined, then the final state).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.wms import getjob_once, specs, submit_once
from tests.integration.wms_helpers import Server, agent_for, throwaway_database, truncate, write_config

from juno_dcs.jsub.registry import SubJobRecord, TaskRecord
from juno_dcs.jsub.tasks import dispatcher_jobs, status
from juno_dcs.wms.client import WmsClient

TASK_JOBS = 10_000

FILL_SQL = """
INSERT INTO wms.tasks (name, kind, owner, priority, created)
SELECT 'past-' || t, 'production', 'production', 0, now() - interval '30 days'
FROM generate_series(1, %(tasks)s) t;
INSERT INTO wms.jobs (task_id, key, spec, cores, memory_mb, walltime_s, max_attempts, priority, pinned_site, state,
                      attempt, site, queue, output_rse, broker_reason, pilot_id, finished_by, exit_code, error_code,
                      error_class, error_diag, created, modified)
SELECT t.task_id, 'j' || g, jsonb_set(tpl.spec, '{args,3}', to_jsonb(g::text)), tpl.cores, tpl.memory_mb,
       tpl.walltime_s, tpl.max_attempts, tpl.priority, tpl.pinned_site,
       CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'finished' END, 1, tpl.site, tpl.queue, tpl.output_rse,
       tpl.broker_reason, 'pilot-past', 'pilot-past', CASE WHEN g %% 20 = 0 THEN 65 ELSE 0 END,
       CASE WHEN g %% 20 = 0 THEN 1305 END, CASE WHEN g %% 20 = 0 THEN 'payload' END,
       CASE WHEN g %% 20 = 0 THEN 'the payload exited 65' END, t.created, t.created + interval '1 hour'
FROM wms.tasks t CROSS JOIN generate_series(0, %(per_task)s - 1) g
CROSS JOIN (SELECT * FROM wms.jobs WHERE task_id = %(template)s ORDER BY job_id LIMIT 1) tpl
WHERE t.name LIKE 'past-%%';
INSERT INTO wms.job_history (job_id, attempt, state, time, reason)
SELECT job_id, 1, s.state, j.created, 'past production'
FROM wms.jobs j CROSS JOIN LATERAL (VALUES ('defined'), (j.state)) s(state) WHERE j.pilot_id = 'pilot-past';
DELETE FROM wms.tasks WHERE task_id = %(template)s;
"""


def fill_jobs(url: str, server_url: str, agent: Any, jobs: int) -> float:
    """`jobs` past jobs in the dispatcher's tables; seconds taken."""
    start = time.perf_counter()
    if jobs:
        submit_once(server_url, specs(10), "template", None)
        while agent.run_once().full:
            pass
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT task_id FROM wms.tasks WHERE name = 'template'").fetchone()
            assert row is not None
            params = {"tasks": jobs // TASK_JOBS, "per_task": TASK_JOBS, "template": row[0]}
            for statement in FILL_SQL.split(";"):
                if statement.strip():
                    conn.execute(statement, {k: v for k, v in params.items() if f"%({k})s" in statement})
            conn.execute("VACUUM ANALYZE wms.tasks")
            conn.execute("VACUUM ANALYZE wms.jobs")
            conn.execute("VACUUM ANALYZE wms.job_history")
    return time.perf_counter() - start


def _timed(fn: Any, runs: int = 3) -> float:
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        took.append(time.perf_counter() - start)
    return round(statistics.median(took), 3)


def jobs_point(jobs: int, pilots: int = 50, workers: int = 2) -> dict[str, Any]:
    """Every dispatcher figure with `jobs` past jobs in its tables."""
    if jobs % TASK_JOBS:
        raise ValueError(f"{jobs} jobs: the dispatcher is filled in tasks of {TASK_JOBS:,} jobs")
    with tempfile.TemporaryDirectory(prefix="scale-wms-") as tmp, throwaway_database("wms_scale") as url:
        config = write_config(Path(tmp), url, agent_bulk=5000, pool_size=12)
        with agent_for(config) as agent, Server(config, workers=workers) as server:
            truncate(url)
            fill_s = fill_jobs(url, server.url, agent, jobs)
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM wms.jobs").fetchone()
                size = conn.execute("SELECT pg_total_relation_size('wms.jobs') + "
                                    "pg_total_relation_size('wms.job_history')").fetchone()
            assert row is not None
            assert size is not None
            submit_s = submit_once(server.url, specs(TASK_JOBS), "scale-now", None)
            while agent.run_once().full:
                pass
            client = WmsClient(server.url, timeout=300)
            task_id = next(int(t["task_id"]) for t in client.tasks() if t["name"] == "scale-now")
            record = _record(task_id, client)
            jsub_s = _timed(lambda: status(record, client, subjobs=False))
            jsub_jobs_s = _timed(lambda: status(record, client, subjobs=True))
            steps = [int(t["task_id"]) for t in client.tasks() if t["name"].startswith("past-")][:4] or [task_id]
            prod_s = _timed(lambda: [(client.task(t), dispatcher_jobs(client, t, state="failed")) for t in steps])
            getjob = getjob_once(server.url, pilots, TASK_JOBS, lambda: None)
            client.close()
    return {"jobs": jobs, "jobs_in_tables": int(row[0]), "fill_s": round(fill_s, 1),
            "wms_table_bytes": int(size[0]), "submit_10k_s": round(submit_s, 3), "getjob_per_s": round(getjob, 1),
            "jsub_status_10k_s": jsub_s, "jsub_status_jobs_10k_s": jsub_jobs_s, "prod_status_s": prod_s}


def _record(task_id: int, client: WmsClient) -> TaskRecord:
    """The registry record `jsub submit` would have kept for that dispatcher task."""
    jobs = dispatcher_jobs(client, task_id)
    spec = specs(1)[0]
    return TaskRecord(id=1, uid="scale", name="scale-now", created="", task_file="", task_text="",
                      backend="dispatcher", account="production", scope="user.production", output_dataset="",
                      log_dataset="", dispatcher_task="scale-now", task_id=task_id, submitted=True,
                      subjobs=[SubJobRecord(jobid=i + 1, vars={}, script="", spec=spec, job_id=int(j["job_id"]))
                               for i, j in enumerate(jobs)])
