-- Rows in every table of release 0.1's PostgreSQL schemas (postgresql.sql), as its services wrote them: jobs
-- that failed with the pilot's old error codes (1137 memory, 1200 stageout, 1300 lost, 1400 killed) and their
-- history, probe runs in schema monitor. Test fixture of tests/integration/test_migrations.py.
INSERT INTO fts.jobs (job_id, job_state, vo_name, user_dn, priority, params, verify_checksum, overwrite, retry,
                      retry_delay)
VALUES ('job-1', 'FINISHED', 'juno', '/CN=root', 3, '{}', 'both', false, 2, 0),
       ('job-2', 'ACTIVE', 'juno', '/CN=root', 3, '{"archive_timeout": 60}', 'both', true, 0, 0);
INSERT INTO fts.files (job_id, file_index, file_state, source_surl, dest_surl, source_se, dest_se, archive_metadata)
VALUES ('job-1', 0, 'FINISHED', 'root://a//f1', 'root://b//f1', 'root://a', 'root://b', NULL),
       ('job-2', 0, 'SUBMITTED', 'root://a//f2', 'root://c//f2', 'root://a', 'root://c', '{"collocation": "x"}');
INSERT INTO fts.link_limits VALUES ('root://a', 'root://b', 7);
INSERT INTO fts.optimizer_decisions (source_se, dest_se, previous, active_limit, queued, reason)
VALUES ('root://a', 'root://b', 5, 7, 12, 'throughput rising');

INSERT INTO wms.tasks (name, kind, owner, priority) VALUES ('task-a', 'production', 'root', 10);
INSERT INTO wms.jobs (task_id, key, spec, cores, memory_mb, walltime_s, max_attempts, priority, state, error_code,
                      error_class, error_diag)
VALUES (1, 'j-memory', '{}', 1, 250, 600, 3, 10, 'failed', 1137, 'memory', 'RSS over 250 MB'),
       (1, 'j-stageout', '{}', 1, 250, 600, 3, 10, 'failed', 1200, 'stageout', 'upload refused'),
       (1, 'j-lost', '{}', 1, 250, 600, 3, 10, 'failed', 1300, 'lost', 'lease ended'),
       (1, 'j-killed', '{}', 1, 250, 600, 3, 10, 'cancelled', 1400, 'killed', ''),
       (1, 'j-payload', '{}', 1, 250, 600, 3, 10, 'failed', 1150, 'payload', 'exit 3'),
       (1, 'j-walltime', '{}', 1, 250, 600, 3, 10, 'failed', 1152, 'walltime', 'over 600 s'),
       (1, 'j-stagein', '{}', 1, 250, 600, 3, 10, 'failed', 1099, 'stagein', 'no replica'),
       (1, 'j-done', '{}', 1, 250, 600, 3, 10, 'finished', NULL, NULL, NULL);
INSERT INTO wms.job_history (job_id, attempt, state, reason)
VALUES (1, 1, 'failed', 'pilot p1: error 1137 (memory) RSS over 250 MB'),
       (1, 2, 'activated', 'error 1137 (memory): rule 2 says retry_more_memory: memory 250 -> 500 MB, attempt 2'),
       (2, 1, 'failed', 'pilot p1: error 1200 (stageout) upload refused'),
       (3, 1, 'failed', 'error 1300 (lost): lease ended'),
       (4, 1, 'cancelled', 'killed by command'),
       (8, 1, 'finished', 'pilot p2: 1 outputs');
INSERT INTO wms.pilots (pilot_id, site, queue, last_job) VALUES ('p1', 'IHEP', 'IHEP_PROD', 3);

INSERT INTO prodsys.productions (name, steering, state, jobs, rule_ids)
VALUES ('prod-1', '{"steps": ["detsim"]}', 'running', 4, '["r1"]');
INSERT INTO prodsys.steps (production_id, step, position, task_id) VALUES (1, 'detsim', 0, 1);
INSERT INTO prodsys.jobs (production_id, step, job_number, job_id, input) VALUES (1, 'detsim', 0, 1, NULL);
INSERT INTO prodsys.history (production_id, action, detail) VALUES (1, 'submit', '4 jobs');

INSERT INTO dashboard.sample (series, key, slot, value) VALUES ('running', 'IHEP', '2026-12-01 10:00+00', 4);

INSERT INTO monitor.probe_run (probe, status, message, perfdata, details, started_at, duration_s)
VALUES ('rucio', 0, 'OK: the server answers', '{"rtt": "0.1s"}', '{}', '2026-12-01 10:00+00', 0.2),
       ('tpc', 2, 'CRITICAL: 1 of 2 copies failed', '{}', '{"failed": []}', '2026-12-01 10:01+00', 4.0);
INSERT INTO monitor.tpc_attempt (run_id, source, destination, mode, ok, duration_s, throughput_mb_s, error, at)
VALUES (2, 'IHEP_DISK', 'JINR_DISK', 'pull', true, 1.5, 30.0, NULL, '2026-12-01 10:01+00'),
       (2, 'IHEP_DISK', 'CNAF_DISK', 'push', false, 2.5, NULL, 'timeout', '2026-12-01 10:01+00');
INSERT INTO monitor.schedule_slot (slot, next_run) VALUES ('default/rucio', '2026-12-01 10:01+00');
