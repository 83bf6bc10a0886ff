-- What running on Citus (tenant tables distributed by tenant_id, tenant-less tables as
-- reference tables; see sql/citus/distribute.sql) needs of the schema, made so that plain
-- PostgreSQL keeps every guarantee. Each change says which Citus rule it meets.

-- Citus sends a transaction's work on each worker over one connection per role: a row that a
-- SECURITY DEFINER function wrote (as atrium_definer) cannot be followed by atrium_app's own
-- writes to tables kept on the same nodes (every reference table, and each tenant's co-located
-- shards) in that transaction. Sign-up writes the user through atrium.auth_create_user, so its
-- tenant row goes through a definer function too. It creates only the tenant the transaction
-- is scoped to, as the tenant policy let atrium_app do.
CREATE FUNCTION atrium.tenant_create(p_tenant uuid, p_name text, p_slug text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_tenant IS DISTINCT FROM NULLIF(current_setting('atrium.tenant_id', true), '')::uuid THEN
        RAISE EXCEPTION 'a tenant can only be created in a transaction scoped to it'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO atrium.tenants (tenant_id, name, slug) VALUES (p_tenant, p_name, p_slug);
END
$$;
COMMENT ON FUNCTION atrium.tenant_create(uuid, text, text) IS
    'Creates the tenant the current transaction is scoped to (sign-up, where the user row is written by atrium_definer in the same transaction).';

-- INSERT … ON CONFLICT DO UPDATE on a distributed or reference table may only use immutable
-- functions in its SET clause: the time is taken once, into a variable.
CREATE OR REPLACE FUNCTION atrium.server_heartbeat(p_server uuid, p_expiry interval) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now constant timestamptz := now();
    live integer;
BEGIN
    INSERT INTO atrium.servers AS s (server_id, started_at, seen_at) VALUES (p_server, v_now, v_now)
        ON CONFLICT (server_id) DO UPDATE SET seen_at = v_now;
    DELETE FROM atrium.servers s WHERE s.seen_at < v_now - p_expiry;
    SELECT count(*) INTO live FROM atrium.servers;
    RETURN live;
END
$$;

-- Nor may an UPDATE of a distributed or reference table call a volatile function
-- (clock_timestamp()) for its rows: the time is read once into a variable. Otherwise as in
-- migration 014.
CREATE OR REPLACE FUNCTION atrium.auth_issue_account_token(
    p_user uuid, p_purpose text, p_email text, p_token_hash text, p_code_hash text, p_lifetime interval,
    p_spacing interval, p_per_hour integer
) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wait integer := 0;
    last_issued timestamptz;
    issued_in_hour integer;
    oldest_in_hour timestamptz;
    v_now timestamptz;
BEGIN
    -- One issuer per user at a time, so two requests cannot both pass the limits.
    PERFORM 1 FROM atrium.users u WHERE u.user_id = p_user FOR UPDATE;
    SELECT max(t.created_at), count(*), min(t.created_at) INTO last_issued, issued_in_hour, oldest_in_hour
    FROM atrium.account_tokens t
    WHERE t.user_id = p_user AND t.purpose = p_purpose AND t.created_at > now() - interval '1 hour';
    IF last_issued > clock_timestamp() - p_spacing THEN
        wait := ceil(extract(epoch FROM last_issued + p_spacing - clock_timestamp()))::integer;
    ELSIF issued_in_hour >= p_per_hour THEN
        wait := ceil(extract(epoch FROM oldest_in_hour + interval '1 hour' - clock_timestamp()))::integer;
    END IF;
    IF wait > 0 THEN
        -- The whole transaction goes, the mail it was to send with it.
        RAISE EXCEPTION 'too many mails of this kind; retry in % seconds', wait USING ERRCODE = 'AT010', DETAIL = wait::text;
    END IF;
    v_now := clock_timestamp();
    UPDATE atrium.account_tokens t SET expires_at = least(t.expires_at, v_now)
    WHERE t.user_id = p_user AND t.purpose = p_purpose AND t.used_at IS NULL AND t.expires_at > v_now;
    -- Keep the table small: a few tokens a day past expiry go with every issue.
    DELETE FROM atrium.account_tokens t WHERE t.token_hash IN (
        SELECT a.token_hash FROM atrium.account_tokens a WHERE a.expires_at < now() - interval '1 day' LIMIT 20
    );
    INSERT INTO atrium.account_tokens (token_hash, user_id, purpose, email, code_hash, expires_at)
    VALUES (p_token_hash, p_user, p_purpose, p_email, p_code_hash, clock_timestamp() + p_lifetime);
END
$$;

-- Nor may its CASE or coalesce() call a function that is not immutable (now(), or adding an
-- interval to a timestamptz): the outcomes are applied one by one, each an UPDATE of one mail
-- by its key with the times computed beforehand. Otherwise as in migration 013.
CREATE OR REPLACE FUNCTION atrium.mail_complete(p_outcomes jsonb) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done integer := 0;
    changed integer;
    v_now constant timestamptz := now();
    v_next timestamptz;
    o record;
BEGIN
    -- Each outcome: {"mail_id", "lease", "sent": bool, "retry_in": seconds or null (give up), "error"}.
    FOR o IN
        SELECT x.mail_id, x.lease, x.sent, x.retry_in, x.error
        FROM jsonb_to_recordset(p_outcomes) AS x(mail_id uuid, lease uuid, sent boolean, retry_in double precision, error text)
    LOOP
        v_next := v_now + make_interval(secs => o.retry_in);
        UPDATE atrium.mail_outbox m SET
            attempts = m.attempts + 1,
            lease = NULL, lease_until = NULL,
            sent_at = CASE WHEN o.sent THEN v_now END,
            failed_at = CASE WHEN NOT o.sent AND o.retry_in IS NULL THEN v_now END,
            next_attempt_at = CASE WHEN NOT o.sent AND o.retry_in IS NOT NULL THEN v_next ELSE m.next_attempt_at END,
            last_error = coalesce(left(o.error, 1000), m.last_error),
            text_body = CASE WHEN o.sent OR o.retry_in IS NULL THEN NULL ELSE m.text_body END,
            html_body = CASE WHEN o.sent OR o.retry_in IS NULL THEN NULL ELSE m.html_body END
        WHERE m.mail_id = o.mail_id AND m.lease = o.lease;
        GET DIAGNOSTICS changed = ROW_COUNT;
        done := done + changed;
    END LOOP;
    RETURN done;
END
$$;

-- The same for the webhook outcomes. Otherwise as in migration 012.
CREATE OR REPLACE FUNCTION atrium.complete_webhook_deliveries(p_outcomes jsonb) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    found_webhook uuid;
    recorded integer := 0;
    disabled integer := 0;
    v_next timestamptz;
    v_now constant timestamptz := now();
BEGIN
    -- One update by key per outcome: each a cached plan and an index lookup, whatever the
    -- table's size.
    FOR o IN
        SELECT * FROM jsonb_to_recordset(p_outcomes) AS x(
            tenant_id uuid, delivery_id uuid, lease uuid, status text, retry_in float8, gone boolean,
            response_status integer, response_body text, duration_ms integer, error text)
    LOOP
        v_next := now() + o.retry_in * interval '1 second';
        UPDATE atrium.webhook_deliveries d SET
            status = o.status, lease = NULL, lease_until = NULL,
            next_attempt_at = CASE WHEN o.status = 'pending' THEN v_next ELSE d.next_attempt_at END,
            completed_at = CASE WHEN o.status = 'pending' THEN NULL ELSE v_now END,
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

-- Webhook fan-out's INSERT … SELECT returns its rows to a count (Citus would run it as a COPY
-- into the shards, which row-level security refuses). Otherwise as in migration 012.
CREATE OR REPLACE FUNCTION atrium.webhook_fanout(p_through bigint, p_writers text[], p_limit integer) RETURNS integer
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
    WITH inserted AS (
        INSERT INTO atrium.webhook_deliveries (tenant_id, delivery_id, webhook_id, position, event_type)
        SELECT c.tenant_id, gen_random_uuid(), e.webhook_id, c.position, k.event_type
        FROM atrium.record_changes c
        CROSS JOIN LATERAL (SELECT 'record.' || CASE c.operation WHEN 'create' THEN 'created' WHEN 'update' THEN 'updated' ELSE 'deleted' END AS event_type) k
        JOIN atrium.webhooks e ON e.tenant_id = c.tenant_id AND e.enabled AND c.position > e.after_position
        WHERE c.position > lowest AND c.position <= upto
          AND k.event_type = ANY (e.events)
          AND (e.collections IS NULL OR c.collection_name = ANY (e.collections))
        ORDER BY c.position
        RETURNING 1
    )
    SELECT count(*) INTO made FROM inserted;
    UPDATE atrium.webhook_fanout_state SET after_position = upto;
    RETURN made;
END
$$;

-- Citus takes no subquery inside INSERT … VALUES: it is asked first. Otherwise as in migration 009.
CREATE OR REPLACE FUNCTION atrium.auth_login_begin(p_account text, p_address text, p_attempt uuid)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wait integer;
    recognized boolean;
BEGIN
    -- Attempts on one account, and from one address, take turns until their transaction
    -- commits (always in this order, so two attempts cannot wait for each other): each sees
    -- the reservations made before it.
    PERFORM pg_advisory_xact_lock(hashtextextended('atrium login account ' || p_account, 0));
    PERFORM pg_advisory_xact_lock(hashtextextended('atrium login address ' || p_address, 0));
    wait := atrium.auth_login_throttle(p_account, p_address);
    IF wait = 0 THEN
        recognized := EXISTS (
            SELECT 1 FROM atrium.login_addresses a
            WHERE a.account = p_account AND a.client_address = p_address AND a.last_success_at > now() - interval '30 days');
        INSERT INTO atrium.login_failures (account, client_address, recognized, attempt_id)
        VALUES (p_account, p_address, recognized, p_attempt);
    END IF;
    RETURN wait;
END
$$;

-- A row lock must reach one shard: the tenant is read into a variable first, so the query names
-- it as a constant Citus routes by (an expression over current_setting is not routed).
CREATE OR REPLACE FUNCTION atrium.require_collection_version(p_collection uuid, p_version bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant constant uuid := NULLIF(current_setting('atrium.tenant_id', true), '')::uuid;
BEGIN
    -- FOR SHARE: a definition change (FOR UPDATE) waits for this write, and the other way round.
    PERFORM 1 FROM atrium.collections c
    WHERE c.tenant_id = v_tenant AND c.collection_id = p_collection AND c.version = p_version
    FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the collection definition changed' USING ERRCODE = 'AT003';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION atrium.require_records(p_collection uuid, p_ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant constant uuid := NULLIF(current_setting('atrium.tenant_id', true), '')::uuid;
    found integer;
    wanted integer;
BEGIN
    -- FOR KEY SHARE keeps the referenced records from being deleted until this write commits.
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM atrium.records r
        WHERE r.tenant_id = v_tenant AND r.collection_id = p_collection AND r.record_id = ANY (p_ids)
        FOR KEY SHARE
    ) existing;
    SELECT count(DISTINCT id) INTO wanted FROM unnest(p_ids) AS id;
    IF found < wanted THEN
        RAISE EXCEPTION 'a referenced record does not exist' USING ERRCODE = 'AT002';
    END IF;
END
$$;

-- A refresh token is found by its hash before its tenant is known; the lock is then taken
-- by tenant and hash, which Citus routes to the tenant's shard (a lock over all shards is
-- refused), and the time of the rotation is read into a variable (see above). Otherwise as in
-- migration 006.
CREATE OR REPLACE FUNCTION atrium.auth_refresh(p_token_hash text, p_new_hash text, p_grace_seconds integer)
    RETURNS TABLE (outcome text, tenant_id uuid, session_id uuid, user_id uuid, role text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner_tenant uuid;
    presented atrium.refresh_tokens;
    session atrium.sessions;
    latest timestamptz;
    member_role text;
    v_now timestamptz;
BEGIN
    SELECT r.tenant_id INTO owner_tenant FROM atrium.refresh_tokens r WHERE r.token_hash = p_token_hash;
    IF FOUND THEN
        SELECT * INTO presented FROM atrium.refresh_tokens r
        WHERE r.tenant_id = owner_tenant AND r.token_hash = p_token_hash FOR UPDATE;
    END IF;
    IF owner_tenant IS NULL OR presented.token_hash IS NULL THEN
        RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::text;
        RETURN;
    END IF;
    -- Serialise refreshes of one session: concurrent ones see each other's rotation.
    SELECT * INTO session FROM atrium.sessions s
    WHERE s.tenant_id = presented.tenant_id AND s.session_id = presented.session_id FOR UPDATE;
    IF session.revoked_at IS NOT NULL OR session.expires_at <= now() THEN
        RETURN QUERY SELECT 'invalid'::text, presented.tenant_id, presented.session_id, session.user_id, NULL::text;
        RETURN;
    END IF;
    IF presented.superseded_at IS NOT NULL THEN
        SELECT max(r.superseded_at) INTO latest FROM atrium.refresh_tokens r
        WHERE r.tenant_id = presented.tenant_id AND r.session_id = presented.session_id;
        IF presented.superseded_at < latest OR now() - presented.superseded_at > make_interval(secs => p_grace_seconds) THEN
            -- An old token came back: someone kept a copy. End the whole family.
            UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'refresh_token_reused'
            WHERE s.tenant_id = presented.tenant_id AND s.session_id = presented.session_id;
            INSERT INTO atrium.auth_events (tenant_id, kind, user_id, subject_id)
            VALUES (presented.tenant_id, 'refresh_token_reused', session.user_id, presented.session_id);
            RETURN QUERY SELECT 'reused'::text, presented.tenant_id, presented.session_id, session.user_id, NULL::text;
            RETURN;
        END IF;
        -- Within the grace window the token just replaced counts as a retry of that refresh.
    END IF;
    SELECT m.role INTO member_role
    FROM atrium.memberships m JOIN atrium.users u ON u.user_id = m.user_id
    WHERE m.tenant_id = presented.tenant_id AND m.user_id = session.user_id AND u.disabled_at IS NULL;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'invalid'::text, presented.tenant_id, presented.session_id, session.user_id, NULL::text;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    UPDATE atrium.refresh_tokens r SET superseded_at = v_now
    WHERE r.tenant_id = presented.tenant_id AND r.session_id = presented.session_id AND r.superseded_at IS NULL;
    INSERT INTO atrium.refresh_tokens (tenant_id, token_hash, session_id)
    VALUES (presented.tenant_id, p_new_hash, presented.session_id);
    UPDATE atrium.sessions s SET last_refreshed_at = now()
    WHERE s.tenant_id = presented.tenant_id AND s.session_id = presented.session_id;
    RETURN QUERY SELECT 'rotated'::text, presented.tenant_id, presented.session_id, session.user_id, member_role;
END
$$;

-- Citus cannot plan these SQL-language functions with parameters; the same queries in PL/pgSQL
-- it can (and PL/pgSQL keeps their plans for the session).
CREATE OR REPLACE FUNCTION atrium.auth_user_tenants(p_user uuid)
    RETURNS TABLE (tenant_id uuid, name text, slug text, role text, joined_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT t.tenant_id, t.name, t.slug, m.role, m.created_at
        FROM atrium.memberships m
        JOIN atrium.tenants t ON t.tenant_id = m.tenant_id
        WHERE m.user_id = p_user
        ORDER BY t.name, t.tenant_id;
END
$$;

CREATE OR REPLACE FUNCTION atrium.auth_invitation(p_token_hash text)
    RETURNS TABLE (tenant_id uuid, invitation_id uuid, email text, role text, expires_at timestamptz,
                   accepted_at timestamptz, revoked_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT i.tenant_id, i.invitation_id, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at
        FROM atrium.invitations i WHERE i.token_hash = p_token_hash;
END
$$;


-- Triggers on tenant tables run on Citus's shards. There TG_TABLE_NAME is the shard's name
-- (memberships_102008) and a query that is not routed to the same tenant is a distributed query
-- from inside a shard, which Citus refuses. Each trigger below touches only rows of its own
-- tenant (one shard group, on one worker) and tests no table name.

-- A role change ends the member's sessions in that tenant (their tokens carry the old role).
-- Was one function for memberships and users, telling them apart by TG_TABLE_NAME.
CREATE FUNCTION atrium.end_member_sessions_on_role_change() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'role_changed'
    WHERE s.tenant_id = NEW.tenant_id AND s.user_id = NEW.user_id AND s.revoked_at IS NULL;
    RETURN NULL;
END
$$;
ALTER FUNCTION atrium.end_member_sessions_on_role_change() OWNER TO atrium_definer;
REVOKE ALL ON FUNCTION atrium.end_member_sessions_on_role_change() FROM PUBLIC;
COMMENT ON FUNCTION atrium.end_member_sessions_on_role_change() IS 'Trigger: ends the sessions of a member whose role changed, in that tenant.';
DROP TRIGGER memberships_role_change_ends_sessions ON atrium.memberships;
CREATE TRIGGER memberships_role_change_ends_sessions
    AFTER UPDATE OF role ON atrium.memberships
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION atrium.end_member_sessions_on_role_change();

-- Disabling a user ends all of their sessions, in every tenant.
CREATE FUNCTION atrium.end_user_sessions_on_disable() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'user_disabled'
    WHERE s.user_id = NEW.user_id AND s.revoked_at IS NULL;
    RETURN NULL;
END
$$;
ALTER FUNCTION atrium.end_user_sessions_on_disable() OWNER TO atrium_definer;
REVOKE ALL ON FUNCTION atrium.end_user_sessions_on_disable() FROM PUBLIC;
COMMENT ON FUNCTION atrium.end_user_sessions_on_disable() IS 'Trigger: ends every session of a user who was disabled (on Citus, where users is a reference table, atrium_admin.disable_user does it instead: see sql/citus/distribute.sql).';
DROP TRIGGER users_disable_ends_sessions ON atrium.users;
CREATE TRIGGER users_disable_ends_sessions
    AFTER UPDATE OF disabled_at ON atrium.users
    FOR EACH ROW WHEN (OLD.disabled_at IS NULL AND NEW.disabled_at IS NOT NULL)
    EXECUTE FUNCTION atrium.end_user_sessions_on_disable();
DROP FUNCTION atrium.end_sessions_on_change();

-- On Citus users is a reference table, whose trigger cannot reach the sessions of every tenant
-- (sql/citus/distribute.sql drops it there): disabling a user from psql ends their sessions in
-- the function itself. Otherwise as in migration 007.
CREATE OR REPLACE FUNCTION atrium_admin.disable_user(p_email text)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target uuid;
    live integer;
BEGIN
    -- On Citus: one connection per worker for the whole transaction, which reads and writes
    -- sessions on every worker and then writes a reference table (users).
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
    SELECT u.user_id INTO target FROM atrium.users u WHERE u.email_normalized = lower(p_email) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user with email %', p_email USING ERRCODE = 'P0002';
    END IF;
    SELECT count(*) INTO live FROM atrium.sessions s WHERE s.user_id = target AND s.revoked_at IS NULL;
    -- What the trigger on users does, done here too for Citus, where that trigger cannot run.
    UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'user_disabled'
    WHERE s.user_id = target AND s.revoked_at IS NULL
      AND EXISTS (SELECT FROM atrium.users u WHERE u.user_id = target AND u.disabled_at IS NULL);
    UPDATE atrium.users u SET disabled_at = now(), updated_at = now() WHERE u.user_id = target AND u.disabled_at IS NULL;
    IF FOUND THEN
        INSERT INTO atrium.auth_events (tenant_id, kind, subject_id, detail)
        VALUES ('00000000-0000-0000-0000-000000000000', 'user_disabled', target, jsonb_build_object('by', session_user, 'via', 'psql'));
    END IF;
    RETURN live;
END
$$;

-- The last owner can be neither demoted nor removed. Two concurrent demotions used to take
-- turns on the tenant's row, a reference table that a shard cannot lock; they now take turns
-- on a transaction-level advisory lock named after the tenant, taken on the node that holds
-- the tenant's memberships (the only one a demotion's trigger runs on). Deleting a tenant
-- removes its owners too: atrium.tenant_delete says so for its transaction.
CREATE OR REPLACE FUNCTION atrium.keep_an_owner() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF pg_catalog.pg_trigger_depth() > 1 OR OLD.role <> 'owner'
       OR pg_catalog.current_setting('atrium.deleting_tenant', true) = OLD.tenant_id::text THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.role = 'owner' THEN
        RETURN NEW;
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('atrium owners ' || OLD.tenant_id::text, 0));
    IF NOT EXISTS (
        SELECT 1 FROM atrium.memberships m
        WHERE m.tenant_id = OLD.tenant_id AND m.role = 'owner' AND m.user_id <> OLD.user_id
    ) THEN
        RAISE EXCEPTION 'the last owner of a tenant can be neither demoted nor removed'
            USING ERRCODE = 'AT001', HINT = 'make another member an owner first';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

-- Deleting a tenant deletes everything in it. On PostgreSQL the foreign keys to atrium.tenants
-- cascade; on Citus those keys do not exist (see sql/citus/distribute.sql), so each table whose
-- rows hang off the tenant is emptied of it here, children through their own co-located keys.
-- One definer call does all of it, the event included: on Citus one transaction writes a
-- tenant's shards as one role. The auth events and revoked sessions stay, as they always did.
CREATE FUNCTION atrium.tenant_delete(p_user uuid, p_api_key uuid, p_address text, p_request_id text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant constant uuid := NULLIF(current_setting('atrium.tenant_id', true), '')::uuid;
    v_table text;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'atrium.tenant_delete needs a transaction scoped to the tenant' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- SET LOCAL, not set_config: on Citus only SET LOCAL reaches the triggers on the shards.
    EXECUTE format('SET LOCAL atrium.deleting_tenant = %L', v_tenant::text);
    INSERT INTO atrium.auth_events (tenant_id, kind, user_id, api_key_id, client_address, request_id)
    VALUES (v_tenant, 'tenant_deleted', p_user, p_api_key, p_address, p_request_id);
    DELETE FROM atrium.tenants t WHERE t.tenant_id = v_tenant;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    FOREACH v_table IN ARRAY ARRAY['webhooks', 'event_tickets', 'record_changes', 'idempotency_keys', 'record_audit',
                                    'collections', 'invitations', 'api_keys', 'memberships'] LOOP
        EXECUTE format('DELETE FROM atrium.%I x WHERE x.tenant_id = $1', v_table) USING v_tenant;
    END LOOP;
    RETURN true;
END
$$;
COMMENT ON FUNCTION atrium.tenant_delete(uuid, uuid, text, text) IS
    'Deletes the tenant the transaction is scoped to and everything in it, recording who did (DELETE /v1/tenant). False when it was already gone.';

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY['atrium.tenant_create(uuid, text, text)', 'atrium.tenant_delete(uuid, uuid, text, text)'] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
END
$$;
-- (A DELETE … WHERE reads the rows it deletes, hence SELECT.)
GRANT SELECT, DELETE ON atrium.webhooks, atrium.event_tickets, atrium.record_changes, atrium.idempotency_keys, atrium.record_audit,
    atrium.collections, atrium.invitations, atrium.api_keys, atrium.memberships, atrium.tenants TO atrium_definer;

-- The atrium_admin views. Citus runs the shard queries of a view over distributed or reference
-- tables as the user who queries the view, not as the view's owner, so an administrator (who
-- has no access to the atrium schema) was refused ("permission denied for schema atrium").
-- Each view now reads a SECURITY DEFINER function of the same query, which runs as its owner
-- there too; the views keep their names, columns, comments and grants.
DO $$
DECLARE
    v record;
    columns text;
BEGIN
    FOR v IN
        SELECT c.oid, c.relname FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'atrium_admin'::regnamespace AND c.relkind = 'v' ORDER BY c.relname
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
        INTO columns
        FROM pg_catalog.pg_attribute a WHERE a.attrelid = v.oid AND a.attnum > 0 AND NOT a.attisdropped;
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION atrium_admin.%I() RETURNS TABLE (%s) LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L',
            v.relname || '_rows', columns, pg_catalog.pg_get_viewdef(v.oid)
        );
        EXECUTE pg_catalog.format('ALTER FUNCTION atrium_admin.%I() OWNER TO atrium_definer', v.relname || '_rows');
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION atrium_admin.%I() FROM PUBLIC', v.relname || '_rows');
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION atrium_admin.%I() TO atrium_admin', v.relname || '_rows');
        EXECUTE pg_catalog.format(
            'COMMENT ON FUNCTION atrium_admin.%I() IS %L', v.relname || '_rows',
            'The rows of the view atrium_admin.' || v.relname || ', read as its owner (see migration 017).'
        );
        EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW atrium_admin.%I AS SELECT * FROM atrium_admin.%I()', v.relname, v.relname || '_rows');
    END LOOP;
END
$$;

-- Citus plans no correlated subquery over distributed tables (the counts of the two overviews):
-- the same counts come from subqueries grouped by tenant (pushed down to the workers, joined on
-- the distribution column) or by user (run on their own, then joined), joined to the tenants
-- and users. Same columns and rows as before.
CREATE OR REPLACE FUNCTION atrium_admin.tenant_overview_rows()
    RETURNS TABLE (tenant_id uuid, name text, slug text, created_at timestamptz, members bigint, owners bigint,
                   live_sessions bigint, api_keys bigint, pending_invitations bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.tenant_id, t.name, t.slug, t.created_at,
           coalesce(m.members, 0), coalesce(m.owners, 0), coalesce(s.live, 0), coalesce(k.usable, 0), coalesce(i.pending, 0)
    FROM atrium.tenants t
    LEFT JOIN (SELECT m.tenant_id, count(*) AS members, count(*) FILTER (WHERE m.role = 'owner') AS owners
               FROM atrium.memberships m GROUP BY m.tenant_id) m ON m.tenant_id = t.tenant_id
    LEFT JOIN (SELECT s.tenant_id, count(*) AS live FROM atrium.sessions s
               WHERE s.revoked_at IS NULL AND s.expires_at > now() GROUP BY s.tenant_id) s ON s.tenant_id = t.tenant_id
    LEFT JOIN (SELECT k.tenant_id, count(*) AS usable FROM atrium.api_keys k
               WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) GROUP BY k.tenant_id) k ON k.tenant_id = t.tenant_id
    LEFT JOIN (SELECT i.tenant_id, count(*) AS pending FROM atrium.invitations i
               WHERE i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now() GROUP BY i.tenant_id) i ON i.tenant_id = t.tenant_id
$$;

CREATE OR REPLACE FUNCTION atrium_admin.user_overview_rows()
    RETURNS TABLE (user_id uuid, email text, created_at timestamptz, disabled_at timestamptz, tenants bigint, live_sessions bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH member_counts AS MATERIALIZED (
        SELECT m.user_id, count(*) AS tenants FROM atrium.memberships m GROUP BY m.user_id
    ), session_counts AS MATERIALIZED (
        SELECT s.user_id, count(*) AS live FROM atrium.sessions s
        WHERE s.revoked_at IS NULL AND s.expires_at > now() GROUP BY s.user_id
    )
    SELECT u.user_id, u.email, u.created_at, u.disabled_at, coalesce(m.tenants, 0), coalesce(s.live, 0)
    FROM atrium.users u
    LEFT JOIN member_counts m ON m.user_id = u.user_id
    LEFT JOIN session_counts s ON s.user_id = u.user_id
$$;
