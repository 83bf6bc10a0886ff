-- The change log: every record write appends one row per record in the same transaction, so
-- what is announced was committed and what was committed is announced. Live feeds (SSE) and
-- webhooks read it; a consumer resumes from a position.
--
-- Positions come from a sequence, and sequences hand out numbers in the order transactions
-- ask, not the order they commit: position 7 can commit after position 8 has been read. A
-- reader must never move past a position whose transaction may still commit. The proof used
-- here (atrium.change_horizon, atrium.change_feed):
--   1. a transaction takes a position only inside an INSERT into record_changes, so it holds
--      a RowExclusiveLock on the table from before it takes the position until it ends;
--   2. the reader reads the sequence's last value L, and only then lists the transactions
--      holding that lock (pg_locks, in this database): W;
--   3. a transaction holding a position <= L took it before step 2: it is in W, or it had
--      already ended (committed, and then visible to any later snapshot, or rolled back);
--   4. once no transaction of W holds the lock any more, every row at a position <= L is
--      final: read them all with a snapshot taken after that check (one taken before could
--      miss a writer that committed in between), move the cursor to L, and nothing below L
--      can appear later.
-- Only transactions that write changes in this database hold the feed back (not every long
-- transaction of the cluster, as the xmin horizon would); one left open holds it back until
-- it ends, which is why the service's transactions are short and bounded by its deadlines.

CREATE SEQUENCE atrium.record_changes_position_seq AS bigint CACHE 1;
COMMENT ON SEQUENCE atrium.record_changes_position_seq IS 'Positions of the change log (CACHE 1: its last value is the highest position handed out, on which the horizon proof relies).';

CREATE TABLE atrium.record_changes (
    tenant_id       uuid        NOT NULL,
    position        bigint      NOT NULL DEFAULT nextval('atrium.record_changes_position_seq'),
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    collection_id   uuid        NOT NULL,
    collection_name text        NOT NULL,
    record_id       uuid        NOT NULL,
    operation       text        NOT NULL,
    version         bigint      NOT NULL,
    actor_id        uuid        NOT NULL,
    actor_kind      text        NOT NULL,
    created_at      timestamptz NOT NULL,
    created_by      uuid        NOT NULL,
    created_by_kind text        NOT NULL,
    updated_at      timestamptz NOT NULL,
    read_role       text        NOT NULL,
    read_own        boolean     NOT NULL,
    fields          text[]      NOT NULL,
    data            jsonb,
    CONSTRAINT record_changes_pkey PRIMARY KEY (tenant_id, position),
    CONSTRAINT record_changes_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT record_changes_operation_check CHECK (operation IN ('create', 'update', 'delete')),
    CONSTRAINT record_changes_data_check CHECK ((operation = 'delete') = (data IS NULL))
);
CREATE INDEX record_changes_position_idx ON atrium.record_changes (position);
COMMENT ON TABLE atrium.record_changes IS 'Every record write, one row per record, appended in the writing transaction; read by the live event feed and webhooks, kept for the change retention (default 7 days). Goes with its tenant.';
COMMENT ON COLUMN atrium.record_changes.tenant_id IS 'The owning tenant.';
COMMENT ON COLUMN atrium.record_changes.position IS 'Order of the log; consumers resume after a position (see the horizon proof in migration 011).';
COMMENT ON COLUMN atrium.record_changes.occurred_at IS 'When the writing transaction began.';
COMMENT ON COLUMN atrium.record_changes.collection_id IS 'The collection.';
COMMENT ON COLUMN atrium.record_changes.collection_name IS 'Its name at the time.';
COMMENT ON COLUMN atrium.record_changes.record_id IS 'The record.';
COMMENT ON COLUMN atrium.record_changes.operation IS 'create, update or delete.';
COMMENT ON COLUMN atrium.record_changes.version IS 'The record''s version after the write (for a delete: the version deleted).';
COMMENT ON COLUMN atrium.record_changes.actor_id IS 'User or API key that wrote.';
COMMENT ON COLUMN atrium.record_changes.actor_kind IS 'user or apikey.';
COMMENT ON COLUMN atrium.record_changes.created_at IS 'The record''s creation time.';
COMMENT ON COLUMN atrium.record_changes.created_by IS 'The record''s creator: read rules with "own" are checked against it, deletes included.';
COMMENT ON COLUMN atrium.record_changes.created_by_kind IS 'user or apikey.';
COMMENT ON COLUMN atrium.record_changes.updated_at IS 'The record''s update time after the write.';
COMMENT ON COLUMN atrium.record_changes.read_role IS 'The collection''s read rule at the write (used once the collection is gone).';
COMMENT ON COLUMN atrium.record_changes.read_own IS 'Whether that rule limited readers to their own records.';
COMMENT ON COLUMN atrium.record_changes.fields IS 'Names of the fields the write changed.';
COMMENT ON COLUMN atrium.record_changes.data IS 'The record''s fields after the write; NULL for a delete.';

ALTER TABLE atrium.record_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.record_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.record_changes
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
COMMENT ON POLICY tenant_isolation ON atrium.record_changes IS 'Rows are visible and writable only within their own tenant scope.';
CREATE POLICY definer_access ON atrium.record_changes TO atrium_definer USING (true) WITH CHECK (true);
GRANT SELECT, INSERT ON atrium.record_changes TO atrium_app;
GRANT SELECT, DELETE ON atrium.record_changes TO atrium_definer;
GRANT USAGE ON SEQUENCE atrium.record_changes_position_seq TO atrium_app;
GRANT SELECT ON SEQUENCE atrium.record_changes_position_seq TO atrium_definer;

-- What has been pruned: a consumer asking to resume from below it has missed changes.
CREATE TABLE atrium.change_log_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through bigint  NOT NULL DEFAULT 0
);
INSERT INTO atrium.change_log_state DEFAULT VALUES;
ALTER TABLE atrium.change_log_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.change_log_state FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.change_log_state TO atrium_definer USING (true) WITH CHECK (true);
GRANT SELECT, UPDATE ON atrium.change_log_state TO atrium_definer;
COMMENT ON TABLE atrium.change_log_state IS 'One row: the highest position pruned from record_changes (a resume from below it gets a reset). Reached only through atrium.change_pruned_through and atrium.prune_changes.';
COMMENT ON COLUMN atrium.change_log_state.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN atrium.change_log_state.pruned_through IS 'Every change at or below this position may have been deleted by retention.';

CREATE FUNCTION atrium.change_horizon(OUT through bigint, OUT writers text[])
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END INTO through FROM atrium.record_changes_position_seq s;
    -- After the sequence was read: the transactions that may still hold a position <= through.
    SELECT coalesce(array_agg(l.virtualtransaction), '{}') INTO writers
    FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.relation = 'atrium.record_changes'::regclass
      AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
      AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid();
END
$$;
COMMENT ON FUNCTION atrium.change_horizon() IS 'Steps 2-3 of the horizon proof: positions up to "through" are final once none of "writers" (virtual transaction ids) holds its lock on record_changes.';

CREATE FUNCTION atrium.change_feed(p_after bigint, p_through bigint, p_writers text[], p_limit integer)
    RETURNS TABLE (settled boolean, "position" bigint, tenant_id uuid, occurred_at timestamptz, collection_id uuid,
                   collection_name text, record_id uuid, operation text, version bigint, actor_id uuid, actor_kind text,
                   created_at timestamptz, created_by uuid, created_by_kind text, updated_at timestamptz,
                   read_role text, read_own boolean, fields text[], data text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'atrium.change_feed needs READ COMMITTED (a fresh snapshot per statement)' USING ERRCODE = '25000';
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'relation' AND l.relation = 'atrium.record_changes'::regclass
          AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
          AND l.granted AND l.virtualtransaction = ANY (p_writers)
    ) THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::uuid, NULL::text, NULL::uuid, NULL::text,
            NULL::bigint, NULL::uuid, NULL::text, NULL::timestamptz, NULL::uuid, NULL::text, NULL::timestamptz,
            NULL::text, NULL::boolean, NULL::text[], NULL::text;
        RETURN;
    END IF;
    -- A new statement, so a new snapshot, taken after every writer of the horizon had ended
    -- (a snapshot taken before the check could miss a writer that committed in between).
    RETURN QUERY
        SELECT true, c.position, c.tenant_id, c.occurred_at, c.collection_id, c.collection_name, c.record_id, c.operation,
               c.version, c.actor_id, c.actor_kind, c.created_at, c.created_by, c.created_by_kind, c.updated_at,
               c.read_role, c.read_own, c.fields, c.data::text
        FROM atrium.record_changes c
        WHERE c.position > p_after AND c.position <= p_through
        ORDER BY c.position
        LIMIT p_limit;
    IF NOT FOUND THEN
        RETURN QUERY SELECT true, NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::uuid, NULL::text, NULL::uuid, NULL::text,
            NULL::bigint, NULL::uuid, NULL::text, NULL::timestamptz, NULL::uuid, NULL::text, NULL::timestamptz,
            NULL::text, NULL::boolean, NULL::text[], NULL::text;
    END IF;
END
$$;
COMMENT ON FUNCTION atrium.change_feed(bigint, bigint, text[], integer) IS 'Step 4 of the horizon proof, for every tenant: one row (settled = false) while a transaction of p_writers is still running; then the changes after p_after up to p_through (at most p_limit), read with a snapshot taken after the check (one row of NULLs with settled = true when there are none).';

CREATE FUNCTION atrium.change_pruned_through() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pruned_through FROM atrium.change_log_state
$$;
COMMENT ON FUNCTION atrium.change_pruned_through() IS 'The highest position retention may have deleted.';

-- Retention deletes old changes in small batches from the oldest position; it touches no row a
-- write touches, and two servers never prune at once (an advisory lock, tried, not waited for).
CREATE FUNCTION atrium.prune_changes(p_retention interval, p_batch integer)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := now() - p_retention;
    upper bigint;
    removed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('atrium.prune_changes')) THEN
        RETURN 0;
    END IF;
    SELECT max(o.position) INTO upper FROM (
        SELECT r.position, r.occurred_at FROM atrium.record_changes r ORDER BY r.position LIMIT p_batch
    ) o WHERE o.occurred_at < cutoff;
    IF upper IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM atrium.record_changes r WHERE r.position <= upper;
    GET DIAGNOSTICS removed = ROW_COUNT;
    UPDATE atrium.change_log_state SET pruned_through = greatest(pruned_through, upper);
    RETURN removed;
END
$$;
COMMENT ON FUNCTION atrium.prune_changes(interval, integer) IS 'Deletes up to p_batch of the oldest changes older than p_retention; returns how many.';

-- EventSource cannot send an Authorization header: a client trades its token for a ticket
-- (60 s, one use) and puts that in the stream's URL. Stored hashed; redeemed before the tenant
-- is known, so through a definer function.
CREATE TABLE atrium.event_tickets (
    ticket_hash   text        NOT NULL,
    tenant_id     uuid        NOT NULL,
    role          text        NOT NULL,
    user_id       uuid,
    session_id    uuid,
    api_key_id    uuid,
    valid_until   timestamptz NOT NULL,
    stream_until  timestamptz,
    CONSTRAINT event_tickets_pkey PRIMARY KEY (tenant_id, ticket_hash),
    CONSTRAINT event_tickets_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT event_tickets_credential CHECK ((session_id IS NOT NULL AND user_id IS NOT NULL) <> (api_key_id IS NOT NULL))
);
CREATE UNIQUE INDEX event_tickets_ticket_hash_key ON atrium.event_tickets (ticket_hash);
CREATE INDEX event_tickets_valid_idx ON atrium.event_tickets (valid_until);
COMMENT ON TABLE atrium.event_tickets IS 'One-time tickets for GET /v1/events from browsers (EventSource sends no headers): valid 60 seconds, deleted when used.';
COMMENT ON COLUMN atrium.event_tickets.ticket_hash IS 'SHA-256 of the ticket; the ticket itself is never stored.';
COMMENT ON COLUMN atrium.event_tickets.tenant_id IS 'The tenant of the credential that asked for it.';
COMMENT ON COLUMN atrium.event_tickets.role IS 'That credential''s role.';
COMMENT ON COLUMN atrium.event_tickets.user_id IS 'The user, for a session credential.';
COMMENT ON COLUMN atrium.event_tickets.session_id IS 'The session: the stream ends when it is revoked.';
COMMENT ON COLUMN atrium.event_tickets.api_key_id IS 'The API key, for a key credential.';
COMMENT ON COLUMN atrium.event_tickets.valid_until IS 'Redeemable until then.';
COMMENT ON COLUMN atrium.event_tickets.stream_until IS 'When the access token behind it expires: the stream ends then.';
ALTER TABLE atrium.event_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.event_tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.event_tickets
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
COMMENT ON POLICY tenant_isolation ON atrium.event_tickets IS 'Rows are visible and writable only within their own tenant scope.';
CREATE POLICY definer_access ON atrium.event_tickets TO atrium_definer USING (true) WITH CHECK (true);
GRANT INSERT ON atrium.event_tickets TO atrium_app;
GRANT SELECT, DELETE ON atrium.event_tickets TO atrium_definer;

CREATE FUNCTION atrium.redeem_event_ticket(p_ticket_hash text)
    RETURNS TABLE (tenant_id uuid, role text, user_id uuid, session_id uuid, api_key_id uuid, stream_until timestamptz, valid boolean)
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM atrium.event_tickets t WHERE t.ticket_hash = p_ticket_hash
    RETURNING t.tenant_id, t.role, t.user_id, t.session_id, t.api_key_id, t.stream_until, t.valid_until > now()
$$;
COMMENT ON FUNCTION atrium.redeem_event_ticket(text) IS 'Uses up a ticket (found by its hash); valid is false when it had expired.';

CREATE FUNCTION atrium.prune_event_tickets() RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM atrium.event_tickets t WHERE t.valid_until < now() - interval '1 minute' RETURNING 1)
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION atrium.prune_event_tickets() IS 'Deletes tickets that expired unused.';

CREATE VIEW atrium_admin.recent_changes AS
    SELECT c.position, c.occurred_at, t.slug AS tenant, c.tenant_id, c.collection_name AS collection, c.record_id,
           c.operation, c.version, c.actor_kind, c.actor_id, c.fields
    FROM atrium.record_changes c
    JOIN atrium.tenants t ON t.tenant_id = c.tenant_id
    WHERE c.occurred_at > now() - interval '1 day';
COMMENT ON VIEW atrium_admin.recent_changes IS 'Record changes of the last 24 hours in every tenant (no record data); e.g. ORDER BY position DESC LIMIT 50.';
COMMENT ON COLUMN atrium_admin.recent_changes.position IS 'Position in the change log.';
COMMENT ON COLUMN atrium_admin.recent_changes.occurred_at IS 'When the writing transaction began.';
COMMENT ON COLUMN atrium_admin.recent_changes.tenant IS 'Tenant slug.';
COMMENT ON COLUMN atrium_admin.recent_changes.tenant_id IS 'Tenant id.';
COMMENT ON COLUMN atrium_admin.recent_changes.collection IS 'Collection name at the time.';
COMMENT ON COLUMN atrium_admin.recent_changes.record_id IS 'The record.';
COMMENT ON COLUMN atrium_admin.recent_changes.operation IS 'create, update or delete.';
COMMENT ON COLUMN atrium_admin.recent_changes.version IS 'Version after the write (deleted version for a delete).';
COMMENT ON COLUMN atrium_admin.recent_changes.actor_kind IS 'user or apikey.';
COMMENT ON COLUMN atrium_admin.recent_changes.actor_id IS 'Who wrote.';
COMMENT ON COLUMN atrium_admin.recent_changes.fields IS 'Fields the write changed.';
ALTER VIEW atrium_admin.recent_changes OWNER TO atrium_definer;
GRANT SELECT ON atrium_admin.recent_changes TO atrium_admin;

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'atrium.change_horizon()', 'atrium.change_feed(bigint, bigint, text[], integer)', 'atrium.change_pruned_through()',
        'atrium.prune_changes(interval, integer)', 'atrium.redeem_event_ticket(text)', 'atrium.prune_event_tickets()'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
END
$$;
