-- The PostgreSQL schemas of release 0.1 (commit e9a0c23), as its services created them at start-up with
-- CREATE ... IF NOT EXISTS (before migrations). Extracted with `git show e9a0c23:<file>`; test fixture of
-- tests/integration/test_migrations.py: a grid of the last release, to be upgraded.

-- daemons/src/juno_dcs/transfer/db.py
CREATE SCHEMA IF NOT EXISTS fts;
CREATE TABLE IF NOT EXISTS fts.jobs (
    job_id          text PRIMARY KEY,
    job_state       text NOT NULL,
    job_type        text NOT NULL DEFAULT 'N',
    vo_name         text NOT NULL,
    user_dn         text NOT NULL,
    priority        integer NOT NULL,
    params          jsonb NOT NULL,
    job_metadata    jsonb,
    submit_time     timestamptz NOT NULL DEFAULT now(),
    job_finished    timestamptz,
    reason          text,
    canceled        boolean NOT NULL DEFAULT false,
    copy_mode       text,
    verify_checksum text NOT NULL,
    overwrite       boolean NOT NULL,
    retry           integer NOT NULL,
    retry_delay     integer NOT NULL,
    timeout         integer,
    bring_online    integer,
    archive_timeout integer,
    sid             text
);
CREATE TABLE IF NOT EXISTS fts.files (
    file_id          bigserial PRIMARY KEY,
    job_id           text NOT NULL REFERENCES fts.jobs ON DELETE CASCADE,
    file_index       integer NOT NULL,
    source_rank      integer NOT NULL DEFAULT 0,
    file_state       text NOT NULL,
    source_surl      text NOT NULL,
    dest_surl        text NOT NULL,
    source_se        text NOT NULL,
    dest_se          text NOT NULL,
    source_token     text,
    dest_token       text,
    file_metadata    jsonb,
    staging_metadata jsonb,
    filesize         bigint,
    checksum         text,
    activity         text,
    reason           text,
    retry_count      integer NOT NULL DEFAULT 0,
    next_attempt     timestamptz NOT NULL DEFAULT now(),
    start_time       timestamptz,
    finish_time      timestamptz,
    staging_start    timestamptz,
    staging_finished timestamptz,
    archive_start    timestamptz,
    transferred      bigint,
    throughput       double precision,
    copy_mode        text,
    worker           text,
    heartbeat        timestamptz
);
ALTER TABLE fts.files ADD COLUMN IF NOT EXISTS archive_metadata jsonb;  -- tape hints (collocation)
CREATE INDEX IF NOT EXISTS files_by_job ON fts.files (job_id);
CREATE INDEX IF NOT EXISTS files_waiting ON fts.files (file_state, source_se, dest_se, next_attempt);
CREATE TABLE IF NOT EXISTS fts.link_limits (
    source_se    text NOT NULL,
    dest_se      text NOT NULL,
    active_limit integer NOT NULL,
    updated      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_se, dest_se)
);
CREATE TABLE IF NOT EXISTS fts.optimizer_decisions (
    decision_id   bigserial PRIMARY KEY,
    source_se     text NOT NULL,
    dest_se       text NOT NULL,
    decided       timestamptz NOT NULL DEFAULT now(),
    previous      integer NOT NULL,
    active_limit  integer NOT NULL,
    success_rate  double precision,
    throughput    double precision,
    queued        integer NOT NULL,
    reason        text NOT NULL
);

-- daemons/src/juno_dcs/wms/db.py
CREATE SCHEMA IF NOT EXISTS wms;
CREATE TABLE IF NOT EXISTS wms.tasks (
    task_id   bigserial PRIMARY KEY,
    name      text NOT NULL UNIQUE,
    kind      text NOT NULL,
    owner     text NOT NULL,
    priority  integer NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    killed    timestamptz
);
CREATE TABLE IF NOT EXISTS wms.jobs (
    job_id         bigserial PRIMARY KEY,
    task_id        bigint NOT NULL REFERENCES wms.tasks ON DELETE CASCADE,
    key            text NOT NULL,
    spec           jsonb NOT NULL,          -- transformation, args, env, inputs, outputs, log, job priority
    cores          integer NOT NULL,
    memory_mb      integer NOT NULL,
    walltime_s     integer NOT NULL,
    max_attempts   integer NOT NULL,
    priority       integer NOT NULL,        -- the task's priority plus the job's
    pinned_site    text,
    state          text NOT NULL,
    attempt        integer NOT NULL DEFAULT 1,
    site           text,
    queue          text,
    output_rse     text,
    broker_reason  text,
    pilot_id       text,
    lease_until    timestamptz,
    command        text,
    finished_by    text,                    -- pilot_id of the attempt's last finish report (replays)
    exit_code      integer,
    error_code     integer,
    error_class    text,
    error_diag     text,
    output_files   jsonb,
    log_file       jsonb,
    resources      jsonb,
    created        timestamptz NOT NULL DEFAULT now(),
    modified       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_id, key)
);
CREATE INDEX IF NOT EXISTS jobs_ready ON wms.jobs (queue, priority DESC, job_id) WHERE state = 'activated';
CREATE INDEX IF NOT EXISTS jobs_defined ON wms.jobs (priority DESC, job_id) WHERE state = 'defined';
CREATE INDEX IF NOT EXISTS jobs_leased ON wms.jobs (lease_until)
    WHERE state IN ('sent', 'starting', 'running', 'holding');
CREATE INDEX IF NOT EXISTS jobs_by_state ON wms.jobs (state, queue);
CREATE TABLE IF NOT EXISTS wms.job_history (
    id       bigserial PRIMARY KEY,
    job_id   bigint NOT NULL REFERENCES wms.jobs ON DELETE CASCADE,
    attempt  integer NOT NULL,
    state    text NOT NULL,
    time     timestamptz NOT NULL DEFAULT now(),
    reason   text NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_job ON wms.job_history (job_id, id);
CREATE TABLE IF NOT EXISTS wms.pilots (
    pilot_id   text PRIMARY KEY,
    site       text NOT NULL,
    queue      text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    last_job   bigint
);

-- daemons/src/juno_dcs/prodsys/db.py
CREATE SCHEMA IF NOT EXISTS prodsys;
CREATE TABLE IF NOT EXISTS prodsys.productions (
    production_id bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    steering      jsonb NOT NULL,
    state         text NOT NULL,
    jobs          integer NOT NULL,
    rule_ids      jsonb,
    created       timestamptz NOT NULL DEFAULT now(),
    updated       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS prodsys.steps (
    production_id bigint NOT NULL REFERENCES prodsys.productions ON DELETE CASCADE,
    step          text NOT NULL,
    position      integer NOT NULL,
    task_id       bigint,
    closed        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (production_id, step)
);
CREATE TABLE IF NOT EXISTS prodsys.jobs (
    production_id bigint NOT NULL,
    step          text NOT NULL,
    job_number    integer NOT NULL,
    job_id        bigint NOT NULL,
    input         text,
    created       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (production_id, step, job_number),
    FOREIGN KEY (production_id, step) REFERENCES prodsys.steps ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS prodsys.history (
    production_id bigint NOT NULL REFERENCES prodsys.productions ON DELETE CASCADE,
    time          timestamptz NOT NULL DEFAULT now(),
    action        text NOT NULL,
    detail        text NOT NULL DEFAULT ''
);

-- daemons/src/juno_dcs/dashboard/db.py
CREATE SCHEMA IF NOT EXISTS dashboard;
CREATE TABLE IF NOT EXISTS dashboard.sample (
    series text NOT NULL,
    key text NOT NULL,
    slot timestamptz NOT NULL,
    value double precision NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series, key, slot)
);
CREATE INDEX IF NOT EXISTS sample_series_slot ON dashboard.sample (series, slot);

-- probes/src/juno_probes/store.py
CREATE SCHEMA IF NOT EXISTS monitor;
CREATE TABLE IF NOT EXISTS monitor.probe_run (
    id bigserial PRIMARY KEY,
    probe text NOT NULL,
    status smallint NOT NULL,
    message text NOT NULL,
    perfdata jsonb NOT NULL DEFAULT '{}',
    details jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz NOT NULL,
    duration_s double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS probe_run_probe_started ON monitor.probe_run (probe, started_at);
CREATE TABLE IF NOT EXISTS monitor.tpc_attempt (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES monitor.probe_run (id) ON DELETE CASCADE,
    source text NOT NULL,
    destination text NOT NULL,
    mode text NOT NULL,
    ok boolean NOT NULL,
    duration_s double precision NOT NULL,
    throughput_mb_s double precision,
    error text,
    at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS tpc_attempt_link ON monitor.tpc_attempt (source, destination, mode, at);
CREATE INDEX IF NOT EXISTS tpc_attempt_at ON monitor.tpc_attempt (at);
CREATE TABLE IF NOT EXISTS monitor.schedule_slot (
    slot text PRIMARY KEY,
    next_run timestamptz NOT NULL,
    claimed_by text,
    claimed_at timestamptz
);
