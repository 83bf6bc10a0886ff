-- Webhooks: endpoints a tenant's admins register, and deliveries made from the change log.
--
-- Fan-out (atrium.webhook_fanout) follows the change log with the horizon proof of migration
-- 011: it turns the changes after one shared cursor, up to a settled horizon, into delivery
-- rows for the enabled endpoints of their tenants and moves the cursor, in one transaction
-- that one server at a time holds. A change therefore becomes exactly one delivery per
-- endpoint, whichever server fans out, and writes pay nothing for webhooks. Deliveries point at their change (the payload is built from the
-- change row, so retries send the same body); a test delivery carries its own payload.
--
-- Delivery (atrium.claim_webhook_deliveries) is claimed with FOR UPDATE SKIP LOCKED, so any
-- number of servers share the work. A claim is a lease: it stamps a lease id and when it runs
-- out (columns no index holds, so the update is HOT and touches no index); the outcome is
-- recorded only with that lease id. A server
-- that dies mid-delivery leaves the lease to run out, and the delivery is claimed again then
-- (at least once: the receiver may see it twice, with the same webhook-id).

CREATE TABLE atrium.webhooks (
    tenant_id             uuid        NOT NULL,
    webhook_id            uuid        NOT NULL,
    url                   text        NOT NULL,
    description           text        NOT NULL DEFAULT '',
    events                text[]      NOT NULL,
    collections           text[],
    enabled               boolean     NOT NULL DEFAULT true,
    ordered               boolean     NOT NULL DEFAULT false,
    secret                text        NOT NULL,
    previous_secret       text,
    previous_secret_until timestamptz,
    after_position        bigint      NOT NULL,
    disabled_reason       text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhooks_pkey PRIMARY KEY (tenant_id, webhook_id),
    CONSTRAINT webhooks_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT webhooks_events_check CHECK (events <@ ARRAY['record.created', 'record.updated', 'record.deleted'] AND cardinality(events) > 0),
    CONSTRAINT webhooks_url_check CHECK (length(url) <= 2048),
    CONSTRAINT webhooks_description_check CHECK (length(description) <= 500)
);
CREATE UNIQUE INDEX webhooks_webhook_id_key ON atrium.webhooks (webhook_id);
COMMENT ON TABLE atrium.webhooks IS 'Webhook endpoints of a tenant (admins manage them): where record changes are POSTed, signed per Standard Webhooks. Goes with its tenant.';
COMMENT ON COLUMN atrium.webhooks.tenant_id IS 'The owning tenant.';
COMMENT ON COLUMN atrium.webhooks.webhook_id IS 'The endpoint.';
COMMENT ON COLUMN atrium.webhooks.url IS 'Where deliveries are POSTed (https, a public address unless ATRIUM_WEBHOOKS_ALLOW_PRIVATE=1).';
COMMENT ON COLUMN atrium.webhooks.description IS 'Free text for the admins.';
COMMENT ON COLUMN atrium.webhooks.events IS 'Event types sent: record.created, record.updated, record.deleted.';
COMMENT ON COLUMN atrium.webhooks.collections IS 'Collections whose changes are sent; NULL for every collection.';
COMMENT ON COLUMN atrium.webhooks.enabled IS 'Whether changes are fanned out and deliveries sent; a 410 Gone answer turns it off.';
COMMENT ON COLUMN atrium.webhooks.ordered IS 'Deliver one at a time in change order (a failing delivery holds back the later ones until it succeeds or fails for good).';
COMMENT ON COLUMN atrium.webhooks.secret IS 'Signing secret (whsec_ + base64); shown to the admin once, needed in clear to sign.';
COMMENT ON COLUMN atrium.webhooks.previous_secret IS 'The secret before the last rotation; deliveries are signed with both until previous_secret_until.';
COMMENT ON COLUMN atrium.webhooks.previous_secret_until IS 'End of the rotation overlap.';
COMMENT ON COLUMN atrium.webhooks.after_position IS 'Where the endpoint starts: changes at or below this position (made before it was created or enabled) are not sent to it.';
COMMENT ON COLUMN atrium.webhooks.disabled_reason IS 'Why the server disabled the endpoint (e.g. it answered 410 Gone); NULL when an admin did, or when enabled.';
COMMENT ON COLUMN atrium.webhooks.created_at IS 'Creation time.';
COMMENT ON COLUMN atrium.webhooks.updated_at IS 'Last change to the endpoint.';
ALTER TABLE atrium.webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.webhooks
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
COMMENT ON POLICY tenant_isolation ON atrium.webhooks IS 'Rows are visible and writable only within their own tenant scope.';
CREATE POLICY definer_access ON atrium.webhooks TO atrium_definer USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.webhooks TO atrium_app;
GRANT SELECT, UPDATE ON atrium.webhooks TO atrium_definer;

CREATE TABLE atrium.webhook_deliveries (
    tenant_id       uuid        NOT NULL,
    delivery_id     uuid        NOT NULL,
    webhook_id      uuid        NOT NULL,
    position        bigint,
    event_type      text        NOT NULL,
    payload         text,
    status          text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease           uuid,
    lease_until     timestamptz,
    last_attempt_at timestamptz,
    response_status integer,
    response_body   text,
    duration_ms     integer,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (tenant_id, delivery_id),
    CONSTRAINT webhook_deliveries_webhook_fkey FOREIGN KEY (tenant_id, webhook_id) REFERENCES atrium.webhooks (tenant_id, webhook_id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('pending', 'succeeded', 'failed')),
    CONSTRAINT webhook_deliveries_source_check CHECK ((position IS NULL) <> (payload IS NULL)),
    CONSTRAINT webhook_deliveries_body_check CHECK (length(response_body) <= 1024),
    CONSTRAINT webhook_deliveries_lease_check CHECK ((lease IS NULL) = (lease_until IS NULL))
) WITH (fillfactor = 80);
CREATE INDEX webhook_deliveries_due_idx ON atrium.webhook_deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON atrium.webhook_deliveries (tenant_id, webhook_id, created_at DESC, delivery_id DESC);
CREATE INDEX webhook_deliveries_done_idx ON atrium.webhook_deliveries (completed_at) WHERE status <> 'pending';
COMMENT ON TABLE atrium.webhook_deliveries IS 'One delivery of one change (or test) to one endpoint, with its attempts so far and the last outcome. Finished ones are kept for the change retention.';
COMMENT ON COLUMN atrium.webhook_deliveries.tenant_id IS 'The owning tenant.';
COMMENT ON COLUMN atrium.webhook_deliveries.delivery_id IS 'The delivery; sent as webhook-id (msg_ + hex), the same on every attempt.';
COMMENT ON COLUMN atrium.webhook_deliveries.webhook_id IS 'The endpoint.';
COMMENT ON COLUMN atrium.webhook_deliveries.position IS 'The change delivered (record_changes.position); NULL for a test delivery.';
COMMENT ON COLUMN atrium.webhook_deliveries.event_type IS 'record.created, record.updated, record.deleted or webhook.test.';
COMMENT ON COLUMN atrium.webhook_deliveries.payload IS 'The body of a test delivery; NULL when it is built from the change.';
COMMENT ON COLUMN atrium.webhook_deliveries.status IS 'pending (waiting, or in flight while its lease lasts), succeeded, failed (gave up, or the endpoint is gone).';
COMMENT ON COLUMN atrium.webhook_deliveries.attempts IS 'Attempts made so far.';
COMMENT ON COLUMN atrium.webhook_deliveries.next_attempt_at IS 'When it is due (first, or after a failed attempt).';
COMMENT ON COLUMN atrium.webhook_deliveries.lease IS 'The claim of the attempt in flight; only its holder records the outcome.';
COMMENT ON COLUMN atrium.webhook_deliveries.lease_until IS 'When the claim runs out (its holder died): then it may be claimed again. Not indexed, so a claim is a HOT update.';
COMMENT ON COLUMN atrium.webhook_deliveries.last_attempt_at IS 'When the last attempt began.';
COMMENT ON COLUMN atrium.webhook_deliveries.response_status IS 'HTTP status of the last answer; NULL when none came.';
COMMENT ON COLUMN atrium.webhook_deliveries.response_body IS 'The first 1 KiB of the last answer''s body.';
COMMENT ON COLUMN atrium.webhook_deliveries.duration_ms IS 'How long the last attempt took.';
COMMENT ON COLUMN atrium.webhook_deliveries.error IS 'Why the last attempt failed when no answer came (timeout, refused address, connection error).';
COMMENT ON COLUMN atrium.webhook_deliveries.created_at IS 'When the change was fanned out (or the test asked for).';
COMMENT ON COLUMN atrium.webhook_deliveries.completed_at IS 'When it succeeded or failed for good.';
ALTER TABLE atrium.webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.webhook_deliveries
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
COMMENT ON POLICY tenant_isolation ON atrium.webhook_deliveries IS 'Rows are visible and writable only within their own tenant scope.';
CREATE POLICY definer_access ON atrium.webhook_deliveries TO atrium_definer USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON atrium.webhook_deliveries TO atrium_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.webhook_deliveries TO atrium_definer;

-- How far fan-out has gone, for every endpoint at once.
CREATE TABLE atrium.webhook_fanout_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    after_position bigint  NOT NULL
);
INSERT INTO atrium.webhook_fanout_state (after_position)
    VALUES (coalesce(pg_sequence_last_value('atrium.record_changes_position_seq'), 0));
ALTER TABLE atrium.webhook_fanout_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.webhook_fanout_state FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.webhook_fanout_state TO atrium_definer USING (true) WITH CHECK (true);
GRANT SELECT, UPDATE ON atrium.webhook_fanout_state TO atrium_definer;
COMMENT ON TABLE atrium.webhook_fanout_state IS 'One row: changes at or below after_position have been fanned out into webhook deliveries. Reached only through atrium.webhook_fanout, whose caller holds the row.';
COMMENT ON COLUMN atrium.webhook_fanout_state.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN atrium.webhook_fanout_state.after_position IS 'The fan-out cursor in the change log.';

-- A queue: every delivery is inserted, leased and finished, three row versions in a few
-- seconds; vacuum it as soon as a few thousand are dead, or claims wade through them.
ALTER TABLE atrium.webhook_deliveries SET (
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000, autovacuum_vacuum_cost_delay = 0
);

CREATE FUNCTION atrium.webhooks_enabled() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM atrium.webhooks w WHERE w.enabled)
$$;
COMMENT ON FUNCTION atrium.webhooks_enabled() IS 'Whether any tenant has an enabled endpoint (servers skip fan-out otherwise).';

CREATE FUNCTION atrium.webhook_fanout(p_through bigint, p_writers text[], p_limit integer) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lowest bigint;
    upto bigint;
    made integer;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'atrium.webhook_fanout needs READ COMMITTED (a fresh snapshot per statement)' USING ERRCODE = '25000';
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'relation' AND l.relation = 'atrium.record_changes'::regclass
          AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
          AND l.granted AND l.virtualtransaction = ANY (p_writers)
    ) THEN
        RETURN -1;
    END IF;
    -- Every statement below takes its snapshot after that check (see migration 011, step 4).
    -- One server fans out at a time; the others skip, they do not wait.
    SELECT f.after_position INTO lowest FROM atrium.webhook_fanout_state f FOR UPDATE SKIP LOCKED;
    IF NOT FOUND OR lowest >= p_through THEN
        RETURN 0;
    END IF;
    -- Changes before every enabled endpoint's start go to none: skip them.
    lowest := greatest(lowest, coalesce((SELECT min(e.after_position) FROM atrium.webhooks e WHERE e.enabled), p_through));
    upto := least(p_through, lowest + p_limit);
    -- Only the new changes are read (by position), each matched to its tenant's endpoints.
    INSERT INTO atrium.webhook_deliveries (tenant_id, delivery_id, webhook_id, position, event_type)
    SELECT c.tenant_id, gen_random_uuid(), e.webhook_id, c.position, k.event_type
    FROM atrium.record_changes c
    CROSS JOIN LATERAL (SELECT 'record.' || CASE c.operation WHEN 'create' THEN 'created' WHEN 'update' THEN 'updated' ELSE 'deleted' END AS event_type) k
    JOIN atrium.webhooks e ON e.tenant_id = c.tenant_id AND e.enabled AND c.position > e.after_position
    WHERE c.position > lowest AND c.position <= upto
      AND k.event_type = ANY (e.events)
      AND (e.collections IS NULL OR c.collection_name = ANY (e.collections))
    ORDER BY c.position;
    GET DIAGNOSTICS made = ROW_COUNT;
    UPDATE atrium.webhook_fanout_state SET after_position = upto;
    RETURN made;
END
$$;
COMMENT ON FUNCTION atrium.webhook_fanout(bigint, text[], integer) IS 'Turns settled changes (horizon from atrium.change_horizon) into deliveries for the enabled endpoints of their tenants, at most p_limit positions per call; -1 while a writer of the horizon still runs, else the number of deliveries made (0 also when another server is fanning out).';

CREATE FUNCTION atrium.claim_webhook_deliveries(
    p_lease interval, p_limit integer, p_per_endpoint integer, p_per_tenant integer,
    p_busy_webhooks uuid[], p_busy_webhook_counts integer[], p_busy_tenants uuid[], p_busy_tenant_counts integer[])
    RETURNS TABLE (d_tenant uuid, d_delivery uuid, d_webhook uuid, d_url text, d_secret text, d_previous_secret text,
                   d_attempt integer, d_event_type text, d_payload text, d_lease uuid, d_position bigint,
                   c_position bigint, c_tenant uuid, c_occurred_at timestamptz, c_collection_id uuid, c_collection_name text,
                   c_record_id uuid, c_operation text, c_version bigint, c_actor_id uuid, c_actor_kind text,
                   c_created_at timestamptz, c_created_by uuid, c_created_by_kind text, c_updated_at timestamptz,
                   c_read_role text, c_read_own boolean, c_fields text[], c_data text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH busy_webhook AS (
        SELECT * FROM unnest(p_busy_webhooks, p_busy_webhook_counts) AS b(webhook_id, n)
    ), busy_tenant AS (
        SELECT * FROM unnest(p_busy_tenants, p_busy_tenant_counts) AS b(tenant_id, n)
    ), room AS (
        -- What each enabled endpoint may take on this server: its cap (1 for ordered ones) less
        -- what this server has in flight for it and for its tenant.
        SELECT e.tenant_id, e.webhook_id, e.ordered,
               CASE WHEN e.ordered THEN 1 ELSE p_per_endpoint END - coalesce(bw.n, 0) AS free,
               p_per_tenant - coalesce(bt.n, 0) AS tenant_free
        FROM atrium.webhooks e
        LEFT JOIN busy_webhook bw ON bw.webhook_id = e.webhook_id
        LEFT JOIN busy_tenant bt ON bt.tenant_id = e.tenant_id
        WHERE e.enabled
    ), candidates AS (
        -- Per endpoint, the deliveries due first, through its index; for an ordered one its
        -- lowest pending position, and only if that one is due and not in flight on any
        -- server (one at a time everywhere).
        SELECT x.tenant_id, x.delivery_id, r.tenant_free,
               row_number() OVER (PARTITION BY r.tenant_id ORDER BY x.next_attempt_at, random()) AS tenant_rank
        FROM room r
        CROSS JOIN LATERAL (
            (SELECT d.tenant_id, d.delivery_id, d.next_attempt_at, d.lease, d.lease_until
             FROM atrium.webhook_deliveries d
             WHERE NOT r.ordered AND d.webhook_id = r.webhook_id AND d.status = 'pending' AND d.next_attempt_at <= now()
               AND (d.lease IS NULL OR d.lease_until <= now())
             ORDER BY d.next_attempt_at
             LIMIT greatest(r.free, 0))
            UNION ALL
            (SELECT d.tenant_id, d.delivery_id, d.next_attempt_at, d.lease, d.lease_until
             FROM atrium.webhook_deliveries d
             WHERE r.ordered AND d.webhook_id = r.webhook_id AND d.status = 'pending'
             ORDER BY d.position NULLS FIRST
             LIMIT 1)
        ) x
        WHERE r.free > 0 AND r.tenant_free > 0 AND x.next_attempt_at <= now() AND (x.lease IS NULL OR x.lease_until <= now())
    ), picked AS (
        SELECT d.tenant_id, d.delivery_id
        FROM atrium.webhook_deliveries d
        WHERE (d.tenant_id, d.delivery_id) IN (
            SELECT c.tenant_id, c.delivery_id FROM candidates c WHERE c.tenant_rank <= c.tenant_free
            ORDER BY random() LIMIT p_limit
        )
          AND d.status = 'pending' AND d.next_attempt_at <= now() AND (d.lease IS NULL OR d.lease_until <= now())
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE atrium.webhook_deliveries d
        SET attempts = d.attempts + 1, lease = gen_random_uuid(), lease_until = now() + p_lease, last_attempt_at = now()
        FROM picked
        WHERE d.tenant_id = picked.tenant_id AND d.delivery_id = picked.delivery_id
        RETURNING d.tenant_id, d.delivery_id, d.webhook_id, d.attempts, d.event_type, d.payload, d.lease, d.position
    )
    SELECT l.tenant_id, l.delivery_id, l.webhook_id, e.url, e.secret,
           CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END,
           l.attempts, l.event_type, l.payload, l.lease, l.position,
           c.position, c.tenant_id, c.occurred_at, c.collection_id, c.collection_name, c.record_id, c.operation,
           c.version, c.actor_id, c.actor_kind, c.created_at, c.created_by, c.created_by_kind, c.updated_at,
           c.read_role, c.read_own, c.fields, c.data::text
    FROM leased l
    JOIN atrium.webhooks e ON e.tenant_id = l.tenant_id AND e.webhook_id = l.webhook_id
    LEFT JOIN atrium.record_changes c ON c.tenant_id = l.tenant_id AND c.position = l.position;
END
$$;
COMMENT ON FUNCTION atrium.claim_webhook_deliveries(interval, integer, integer, integer, uuid[], integer[], uuid[], integer[]) IS 'Leases up to p_limit due deliveries for this server (FOR UPDATE SKIP LOCKED), at most p_per_endpoint per endpoint and p_per_tenant per tenant in flight on this server (its attempts in flight given as p_busy_*), one at a time on every server for ordered endpoints, in position order; with what is needed to send them. c_* columns are NULL for a test delivery and for a change pruned meanwhile.';

CREATE FUNCTION atrium.complete_webhook_deliveries(p_outcomes jsonb) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    found_webhook uuid;
    recorded integer := 0;
    disabled integer := 0;
BEGIN
    -- One update by key per outcome: each a cached plan and an index lookup, whatever the
    -- table's size.
    FOR o IN
        SELECT * FROM jsonb_to_recordset(p_outcomes) AS x(
            tenant_id uuid, delivery_id uuid, lease uuid, status text, retry_in float8, gone boolean,
            response_status integer, response_body text, duration_ms integer, error text)
    LOOP
        UPDATE atrium.webhook_deliveries d SET
            status = o.status, lease = NULL, lease_until = NULL,
            next_attempt_at = CASE WHEN o.status = 'pending' THEN now() + o.retry_in * interval '1 second' ELSE d.next_attempt_at END,
            completed_at = CASE WHEN o.status = 'pending' THEN NULL ELSE now() END,
            response_status = o.response_status, response_body = left(o.response_body, 1024), duration_ms = o.duration_ms,
            error = left(o.error, 500)
        WHERE d.tenant_id = o.tenant_id AND d.delivery_id = o.delivery_id AND d.lease = o.lease
        RETURNING d.webhook_id INTO found_webhook;
        CONTINUE WHEN NOT FOUND;
        recorded := recorded + 1;
        IF o.gone THEN
            UPDATE atrium.webhooks e SET enabled = false, disabled_reason = 'the endpoint answered 410 Gone', updated_at = now()
            WHERE e.tenant_id = o.tenant_id AND e.webhook_id = found_webhook AND e.enabled;
            IF FOUND THEN
                disabled := disabled + 1;
            END IF;
        END IF;
    END LOOP;
    IF disabled > 0 THEN
        PERFORM pg_notify('atrium_webhooks', '');
    END IF;
    RETURN recorded;
END
$$;
COMMENT ON FUNCTION atrium.complete_webhook_deliveries(jsonb) IS 'Records the outcomes of attempts, [{tenant_id, delivery_id, lease, status, retry_in, gone, response_status, response_body, duration_ms, error}], each only if its lease is still the delivery''s; "gone" disables the endpoint. Returns how many were recorded.';
CREATE FUNCTION atrium.prune_webhook_deliveries(p_retention interval, p_batch integer) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM atrium.webhook_deliveries d
        WHERE (d.tenant_id, d.delivery_id) IN (
            SELECT o.tenant_id, o.delivery_id FROM atrium.webhook_deliveries o
            WHERE o.status <> 'pending' AND o.completed_at < now() - p_retention
            LIMIT p_batch
        )
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION atrium.prune_webhook_deliveries(interval, integer) IS 'Deletes up to p_batch finished deliveries older than the retention; returns how many.';

CREATE VIEW atrium_admin.webhook_backlog AS
    SELECT t.slug AS tenant, w.tenant_id, w.webhook_id, w.url, w.enabled, w.disabled_reason,
           count(d.delivery_id) FILTER (WHERE d.status = 'pending') AS pending,
           count(d.delivery_id) FILTER (WHERE d.status = 'failed') AS failed,
           min(d.created_at) FILTER (WHERE d.status = 'pending') AS oldest_pending
    FROM atrium.webhooks w
    JOIN atrium.tenants t ON t.tenant_id = w.tenant_id
    LEFT JOIN atrium.webhook_deliveries d ON d.tenant_id = w.tenant_id AND d.webhook_id = w.webhook_id
    GROUP BY t.slug, w.tenant_id, w.webhook_id, w.url, w.enabled, w.disabled_reason;
COMMENT ON VIEW atrium_admin.webhook_backlog IS 'Every webhook endpoint with its pending and failed deliveries (no secrets, no payloads); e.g. ORDER BY pending DESC.';
COMMENT ON COLUMN atrium_admin.webhook_backlog.tenant IS 'Tenant slug.';
COMMENT ON COLUMN atrium_admin.webhook_backlog.tenant_id IS 'Tenant id.';
COMMENT ON COLUMN atrium_admin.webhook_backlog.webhook_id IS 'The endpoint.';
COMMENT ON COLUMN atrium_admin.webhook_backlog.url IS 'Where it delivers.';
COMMENT ON COLUMN atrium_admin.webhook_backlog.enabled IS 'Whether it is enabled.';
COMMENT ON COLUMN atrium_admin.webhook_backlog.disabled_reason IS 'Why the server disabled it, if it did.';
COMMENT ON COLUMN atrium_admin.webhook_backlog.pending IS 'Deliveries waiting or in flight.';
COMMENT ON COLUMN atrium_admin.webhook_backlog.failed IS 'Deliveries given up (kept for the change retention).';
COMMENT ON COLUMN atrium_admin.webhook_backlog.oldest_pending IS 'When the oldest waiting delivery was made.';
ALTER VIEW atrium_admin.webhook_backlog OWNER TO atrium_definer;
GRANT SELECT ON atrium_admin.webhook_backlog TO atrium_admin;

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'atrium.webhooks_enabled()', 'atrium.webhook_fanout(bigint, text[], integer)',
        'atrium.claim_webhook_deliveries(interval, integer, integer, integer, uuid[], integer[], uuid[], integer[])', 'atrium.complete_webhook_deliveries(jsonb)',
        'atrium.prune_webhook_deliveries(interval, integer)'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
END
$$;

-- Changes to endpoints and their secrets are access events: they go to the audit of auth events.
ALTER TABLE atrium.auth_events DROP CONSTRAINT auth_events_kind_check;
ALTER TABLE atrium.auth_events ADD CONSTRAINT auth_events_kind_check CHECK (kind IN (
    'signup', 'login_succeeded', 'login_failed', 'login_throttled', 'logout', 'logout_all',
    'password_changed', 'tenant_switched', 'refresh_token_reused', 'role_changed', 'member_removed',
    'api_key_created', 'api_key_revoked', 'invitation_created', 'invitation_revoked',
    'invitation_accepted', 'tenant_created', 'tenant_deleted', 'user_disabled', 'user_enabled',
    'sessions_revoked', 'webhook_created', 'webhook_updated', 'webhook_deleted', 'webhook_secret_rotated'
));
