-- Citus: spreads Atrium's tables over the workers, after the migrations. `atrium migrate` runs
-- this on every run when the `citus` extension is installed in the database, as the connecting
-- user (a superuser of the coordinator). Safe to run again: tables already distributed are left
-- alone, so a later migration's new table is distributed by the next run.
--
-- Tenant tables are distributed by tenant_id and co-located: all of one tenant's rows live on
-- one worker, and a query that names its tenant goes to that worker alone. Tables without a
-- tenant (tenants themselves, users and what hangs off them, the deployment's own state) become
-- reference tables, copied to every node.
--
-- Citus refuses to distribute a table while a foreign key links it to a table that is not
-- distributed yet, and turns a table that a reference table's foreign key reaches into a
-- "Citus local table" that can never be distributed. So the foreign keys of the tables still to
-- distribute are set aside, every table is distributed, then the keys are added back: those
-- between tenant tables (co-located, checked on the tenant's worker) and between reference
-- tables. Not those from a tenant table to a reference table (tenant_id to tenants, user_id to
-- users): with such a key Citus must send all of a transaction's work on a worker over one
-- connection, and it opens one per role, so no transaction could combine atrium_app's writes
-- with a SECURITY DEFINER function's (sign-up, sign-in and most of the identity flows do).
-- What those keys did is done by the writers instead: rows are only ever written for the
-- tenant and user the transaction just created or authenticated, and deleting a tenant
-- deletes its rows table by table (atrium.tenant_delete).
--
-- A unique index without tenant_id cannot exist on a distributed table (uniqueness would have
-- to be checked across workers). Those on tenant tables index random secrets and ids (session
-- ids, hashes of 256-bit tokens) that are unique by construction; they become plain indexes
-- for the lookups they serve. Every key that carries meaning (a tenant's slug, a user's email,
-- a record's unique field) keeps its unique constraint: on a reference table or within the
-- tenant.

SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
-- The triggers on tenant tables run on the shards; migration 017 made them fit for it (they
-- work only on the rows of their own tenant, which share the shard's worker).
SET LOCAL citus.enable_unsafe_triggers TO on;

DO $$
DECLARE
    reference_tables text[] := ARRAY[
        'tenants', 'users', 'account_tokens', 'user_mfa', 'mfa_recovery_codes', 'mfa_challenges',
        'login_failures', 'login_addresses', 'mail_outbox', 'servers', 'change_log_state',
        'webhook_fanout_state'
    ];
    tenant_tables text[] := ARRAY[
        'memberships', 'sessions', 'refresh_tokens', 'revoked_sessions', 'api_keys', 'invitations',
        'auth_events', 'collections', 'records', 'record_values', 'record_unique_values',
        'record_audit', 'idempotency_keys', 'record_changes', 'event_tickets', 'webhooks',
        'webhook_deliveries'
    ];
    pending regclass[];
    table_name text;
    unplaced text;
    fk record;
    ix record;
BEGIN
    SELECT pg_catalog.array_agg(c.oid::regclass) INTO pending
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'atrium'::regnamespace AND c.relkind = 'r'
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = c.oid);
    IF pending IS NULL THEN
        RETURN;
    END IF;

    SELECT pg_catalog.string_agg(c.relname, ', ') INTO unplaced
    FROM pg_catalog.pg_class c
    WHERE c.oid = ANY (pending) AND NOT (c.relname = ANY (reference_tables || tenant_tables));
    IF unplaced IS NOT NULL THEN
        RAISE EXCEPTION 'sql/citus/distribute.sql does not say how to distribute %', unplaced
            USING HINT = 'add each new table to reference_tables or tenant_tables';
    END IF;

    CREATE TEMPORARY TABLE atrium_citus_foreign_keys ON COMMIT DROP AS
        SELECT k.conrelid::regclass AS on_table, k.conname AS name, pg_catalog.pg_get_constraintdef(k.oid) AS definition,
               (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = k.conrelid) = ANY (tenant_tables)
                   AND (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = k.confrelid) = ANY (reference_tables) AS to_reference
        FROM pg_catalog.pg_constraint k
        WHERE k.contype = 'f' AND (k.conrelid = ANY (pending) OR k.confrelid = ANY (pending));
    FOR fk IN SELECT * FROM atrium_citus_foreign_keys LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.on_table, fk.name);
    END LOOP;

    FOR ix IN
        SELECT i.indexrelid::regclass AS index_name, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
               EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid) AS is_constraint,
               c.relname AS table_name
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
        WHERE i.indrelid = ANY (pending) AND i.indisunique AND c.relname = ANY (tenant_tables)
          AND NOT EXISTS (
              SELECT FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = i.indrelid AND a.attname = 'tenant_id' AND a.attnum = ANY (i.indkey)
          )
    LOOP
        IF ix.is_constraint THEN
            RAISE EXCEPTION 'unique constraint % on atrium.% has no tenant_id', ix.index_name, ix.table_name;
        END IF;
        EXECUTE pg_catalog.format('DROP INDEX %s', ix.index_name);
        EXECUTE pg_catalog.replace(ix.definition, 'CREATE UNIQUE INDEX', 'CREATE INDEX');
    END LOOP;

    FOREACH table_name IN ARRAY reference_tables LOOP
        IF pg_catalog.format('atrium.%I', table_name)::regclass = ANY (pending) THEN
            PERFORM create_reference_table(pg_catalog.format('atrium.%I', table_name));
            -- The rows were copied to the shards; the coordinator's own copy is left on disk otherwise.
            PERFORM truncate_local_data_after_distributing_table(pg_catalog.format('atrium.%I', table_name));
        END IF;
    END LOOP;
    FOREACH table_name IN ARRAY tenant_tables LOOP
        IF pg_catalog.format('atrium.%I', table_name)::regclass = ANY (pending) THEN
            IF table_name = 'memberships' THEN
                PERFORM create_distributed_table('atrium.memberships', 'tenant_id');
            ELSE
                PERFORM create_distributed_table(pg_catalog.format('atrium.%I', table_name), 'tenant_id', colocate_with => 'atrium.memberships');
            END IF;
            PERFORM truncate_local_data_after_distributing_table(pg_catalog.format('atrium.%I', table_name));
        END IF;
    END LOOP;

    FOR fk IN SELECT * FROM atrium_citus_foreign_keys WHERE NOT to_reference LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.on_table, fk.name, fk.definition);
    END LOOP;
END
$$;

-- Notifications and triggers that cannot work on the shards. A NOTIFY made on a worker reaches
-- no server (they LISTEN on the coordinator), and a transaction that made one on each of two
-- workers cannot commit ("cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or
-- NOTIFY"). On Citus the service sends the collection notifications itself and reads the
-- revocations every second instead (Database.runsOnCitus); the revocation trigger still
-- records every ended session, without the NOTIFY. The trigger on users would update the
-- sessions of every tenant from a reference table's copy on each node: atrium_admin.disable_user
-- ends them itself (migration 017).
-- (Each through EXECUTE: Citus passes some commands on to the workers as the text of the
-- statement that ran them, which must then be one command, not this whole script.)
DO $$
BEGIN
    EXECUTE 'DROP TRIGGER IF EXISTS collections_announce_change ON atrium.collections';
    EXECUTE 'DROP TRIGGER IF EXISTS users_disable_ends_sessions ON atrium.users';
    EXECUTE $function$
CREATE OR REPLACE FUNCTION atrium.announce_revocation() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    ended atrium.sessions;
    why text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        ended := OLD;
        why := coalesce(OLD.revoked_reason, 'deleted');
    ELSE
        ended := NEW;
        why := NEW.revoked_reason;
    END IF;
    INSERT INTO atrium.revoked_sessions (tenant_id, session_id, reason)
    VALUES (ended.tenant_id, ended.session_id, why)
    ON CONFLICT (tenant_id, session_id) DO NOTHING;
    RETURN NULL;
END
$body$
$function$;
    -- Claiming webhook deliveries: PostgreSQL's single statement joins endpoints and
    -- deliveries across tenants and locks rows of many shards, which Citus cannot plan. This
    -- one goes endpoint by endpoint, each query naming its tenant, under the same caps.
    EXECUTE $function$
CREATE OR REPLACE FUNCTION atrium.claim_webhook_deliveries(
    p_lease interval, p_limit integer, p_per_endpoint integer, p_per_tenant integer,
    p_busy_webhooks uuid[], p_busy_webhook_counts integer[], p_busy_tenants uuid[], p_busy_tenant_counts integer[])
    RETURNS TABLE (d_tenant uuid, d_delivery uuid, d_webhook uuid, d_url text, d_secret text, d_previous_secret text,
                   d_attempt integer, d_event_type text, d_payload text, d_lease uuid, d_position bigint,
                   c_position bigint, c_tenant uuid, c_occurred_at timestamptz, c_collection_id uuid, c_collection_name text,
                   c_record_id uuid, c_operation text, c_version bigint, c_actor_id uuid, c_actor_kind text,
                   c_created_at timestamptz, c_created_by uuid, c_created_by_kind text, c_updated_at timestamptz,
                   c_read_role text, c_read_own boolean, c_fields text[], c_data text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    v_now constant timestamptz := now();
    v_until constant timestamptz := now() + p_lease;
    endpoint record;
    due record;
    ids uuid[];
    free integer;
    tenant_free integer;
    taken integer := 0;
    tenant_taken jsonb := '{}';
    v_lease uuid;
BEGIN
    -- Endpoint by endpoint, in random order, each query naming its tenant (one shard): the
    -- same caps as the single statement PostgreSQL runs (migration 012).
    FOR endpoint IN SELECT e.tenant_id, e.webhook_id, e.ordered FROM atrium.webhooks e WHERE e.enabled ORDER BY random() LOOP
        EXIT WHEN taken >= p_limit;
        free := CASE WHEN endpoint.ordered THEN 1 ELSE p_per_endpoint END
            - coalesce(p_busy_webhook_counts[array_position(p_busy_webhooks, endpoint.webhook_id)], 0);
        tenant_free := p_per_tenant - coalesce(p_busy_tenant_counts[array_position(p_busy_tenants, endpoint.tenant_id)], 0)
            - coalesce((tenant_taken ->> endpoint.tenant_id::text)::integer, 0);
        CONTINUE WHEN free <= 0 OR tenant_free <= 0;
        IF endpoint.ordered THEN
            SELECT d.delivery_id, d.next_attempt_at, d.lease, d.lease_until INTO due
            FROM atrium.webhook_deliveries d
            WHERE d.tenant_id = endpoint.tenant_id AND d.webhook_id = endpoint.webhook_id AND d.status = 'pending'
            ORDER BY d.position NULLS FIRST LIMIT 1;
            CONTINUE WHEN NOT FOUND OR due.next_attempt_at > v_now OR (due.lease IS NOT NULL AND due.lease_until > v_now);
            ids := ARRAY[due.delivery_id];
        ELSE
            SELECT array_agg(x.delivery_id) INTO ids FROM (
                SELECT d.delivery_id FROM atrium.webhook_deliveries d
                WHERE d.tenant_id = endpoint.tenant_id AND d.webhook_id = endpoint.webhook_id AND d.status = 'pending'
                  AND d.next_attempt_at <= v_now AND (d.lease IS NULL OR d.lease_until <= v_now)
                ORDER BY d.next_attempt_at
                LIMIT least(free, tenant_free, p_limit - taken)
            ) x;
            CONTINUE WHEN ids IS NULL;
        END IF;
        FOR due IN
            SELECT d.delivery_id FROM atrium.webhook_deliveries d
            WHERE d.tenant_id = endpoint.tenant_id AND d.delivery_id = ANY (ids)
              AND d.status = 'pending' AND d.next_attempt_at <= v_now AND (d.lease IS NULL OR d.lease_until <= v_now)
            FOR UPDATE SKIP LOCKED
        LOOP
            v_lease := gen_random_uuid();
            UPDATE atrium.webhook_deliveries d
            SET attempts = d.attempts + 1, lease = v_lease, lease_until = v_until, last_attempt_at = v_now
            WHERE d.tenant_id = endpoint.tenant_id AND d.delivery_id = due.delivery_id;
            RETURN QUERY
                SELECT l.tenant_id, l.delivery_id, l.webhook_id, e.url, e.secret,
                       CASE WHEN e.previous_secret_until > v_now THEN e.previous_secret END,
                       l.attempts, l.event_type, l.payload, l.lease, l.position,
                       c.position, c.tenant_id, c.occurred_at, c.collection_id, c.collection_name, c.record_id, c.operation,
                       c.version, c.actor_id, c.actor_kind, c.created_at, c.created_by, c.created_by_kind, c.updated_at,
                       c.read_role, c.read_own, c.fields, c.data::text
                FROM atrium.webhook_deliveries l
                JOIN atrium.webhooks e ON e.tenant_id = l.tenant_id AND e.webhook_id = l.webhook_id
                LEFT JOIN atrium.record_changes c ON c.tenant_id = l.tenant_id AND c.position = l.position
                WHERE l.tenant_id = endpoint.tenant_id AND l.delivery_id = due.delivery_id;
            taken := taken + 1;
            tenant_taken := jsonb_set(tenant_taken, ARRAY[endpoint.tenant_id::text],
                                      to_jsonb(coalesce((tenant_taken ->> endpoint.tenant_id::text)::integer, 0) + 1));
        END LOOP;
    END LOOP;
END
$body$;
$function$;
    EXECUTE $comment$COMMENT ON FUNCTION atrium.announce_revocation() IS 'Trigger: records an ended session in revoked_sessions (on Citus without a NOTIFY: servers read the list every second).'$comment$;
END
$$;
