-- The first schema: catalogue, budget history, count chunks, freeze state, delivery
-- bookkeeping and the audit log. Tables are created unqualified: the store's
-- search_path names the schema. Times are timestamptz, always written in UTC.

-- SLODefinitions and SLAPolicies as last seen in the cluster (or `sla apply`).
-- An invalid document is kept with its validation error so the API can show why an
-- object is not evaluated.
CREATE TABLE catalogue (
    kind             text        NOT NULL CHECK (kind IN ('SLODefinition', 'SLAPolicy')),
    namespace        text        NOT NULL,
    name             text        NOT NULL,
    source           text        NOT NULL,
    generation       bigint      NOT NULL,
    labels           jsonb       NOT NULL DEFAULT '{}',
    document         jsonb       NOT NULL,
    validation_error text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, namespace, name)
);

-- One row per SLO per evaluation time. The primary key's index serves both reads:
-- the history of one SLO is a range scan on (slo, evaluated_at), and the latest
-- snapshot of an SLO is a backward scan of that range stopping at the first row.
-- The snapshot itself is JSON kept as text: it is written by the model, read back
-- whole and never queried inside (the figures queries need have columns), and
-- parsing it into jsonb on every write cost a third of the write time.
CREATE TABLE budget_snapshots (
    slo          text             NOT NULL,
    evaluated_at timestamptz      NOT NULL,
    status       text             NOT NULL,
    remaining    double precision,
    consumed     double precision,
    sli          double precision,
    snapshot     text             NOT NULL,
    PRIMARY KEY (slo, evaluated_at)
);
-- Retention deletes by age across every SLO.
CREATE INDEX budget_snapshots_evaluated_at ON budget_snapshots (evaluated_at);

-- Good and total events of closed, grid-aligned chunks. The key starts with the
-- indicator and datasource so a window's chunks are one range scan.
CREATE TABLE count_chunks (
    indicator_key text               NOT NULL,
    datasource    text               NOT NULL,
    chunk_seconds integer            NOT NULL CHECK (chunk_seconds > 0),
    chunk_start   timestamptz        NOT NULL,
    good          double precision   NOT NULL CHECK (good >= 0),
    total         double precision   NOT NULL CHECK (total >= 0),
    slice_good    double precision[],
    slice_total   double precision[],
    absent        boolean            NOT NULL DEFAULT false,
    read_at       timestamptz        NOT NULL,
    revisited     boolean            NOT NULL DEFAULT false,
    PRIMARY KEY (indicator_key, datasource, chunk_seconds, chunk_start),
    CHECK ((slice_good IS NULL) = (slice_total IS NULL))
);
CREATE INDEX count_chunks_chunk_start ON count_chunks (chunk_start);

-- The freeze decision in force per policy and scope. A decision older (by
-- sequence) than the one stored is ignored: events arrive in any order.
CREATE TABLE freeze_state (
    policy        text        NOT NULL,
    scope         text        NOT NULL,
    state         text        NOT NULL CHECK (state IN ('frozen', 'lifted')),
    decision_seq  bigint      NOT NULL,
    decided_at    timestamptz NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    details       jsonb       NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (policy, scope)
);

-- Cluster objects the system has frozen, with every freeze holding them and the
-- state they had before the first one (restored when the last holder lets go).
CREATE TABLE frozen_objects (
    api_group    text        NOT NULL,
    kind         text        NOT NULL,
    namespace    text        NOT NULL,
    name         text        NOT NULL,
    holders      text[]      NOT NULL,
    prior_state  jsonb       NOT NULL,
    frozen_since timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_group, kind, namespace, name)
);
CREATE INDEX frozen_objects_holders ON frozen_objects USING gin (holders);

-- Freeze events as published; the id is the CloudEvent id, so a repeat is a no-op.
CREATE TABLE freeze_events (
    id          text        PRIMARY KEY,
    type        text        NOT NULL,
    policy      text        NOT NULL,
    scope       text        NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL
);
CREATE INDEX freeze_events_policy ON freeze_events (policy, occurred_at);

-- Delivered CloudEvents (source, id) with the answer given, so a redelivery gets
-- the same reply and its outgoing events are posted again with the same ids.
-- A row with processed_at NULL is a claim held until claimed_until.
CREATE TABLE processed_events (
    source        text        NOT NULL,
    id            text        NOT NULL,
    claimed_until timestamptz,
    processed_at  timestamptz,
    reply         jsonb,
    outgoing      jsonb       NOT NULL DEFAULT '[]',
    PRIMARY KEY (source, id)
);
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);

-- Manual overrides set through the API: one in force per policy at a time.
CREATE TABLE manual_overrides (
    policy     text        PRIMARY KEY,
    action     text        NOT NULL CHECK (action IN ('force', 'lift')),
    expires_at timestamptz NOT NULL,
    reason     text        NOT NULL,
    actor      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every decision with its inputs and reasons.
CREATE TABLE audit_log (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL,
    actor    text        NOT NULL,
    kind     text        NOT NULL,
    subject  text        NOT NULL,
    inputs   jsonb       NOT NULL DEFAULT '{}',
    outcome  text        NOT NULL,
    reasons  text[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
CREATE INDEX audit_log_at ON audit_log (at);
