-- Tenant data: collections (a schema and access rules each) and their records, with the side
-- tables that make filtering on declared fields indexable and "unique" enforceable, the record
-- audit trail and stored idempotent responses.
--
-- Records of every collection share one table, keyed (tenant_id, collection_id, record_id).
-- Fields marked "indexed" (and every reference) are also written, typed, to record_values,
-- whose btree indexes serve equality, range and prefix filters without creating indexes at
-- run time; "unique" fields get a row in record_unique_values, whose key enforces uniqueness.

CREATE TABLE atrium.collections (
    tenant_id     uuid        NOT NULL,
    collection_id uuid        NOT NULL,
    name          text        NOT NULL,
    definition    jsonb       NOT NULL,
    version       bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT collections_pkey PRIMARY KEY (tenant_id, collection_id),
    CONSTRAINT collections_name_key UNIQUE (tenant_id, name),
    CONSTRAINT collections_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT collections_name_format CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$')
);
COMMENT ON TABLE atrium.collections IS 'A tenant''s collections: each has a name, typed fields with constraints, and access rules per operation (definition).';
COMMENT ON COLUMN atrium.collections.tenant_id IS 'The owning tenant.';
COMMENT ON COLUMN atrium.collections.collection_id IS 'Collection id (random UUID).';
COMMENT ON COLUMN atrium.collections.name IS 'URL name, unique within the tenant: a lower-case letter, then letters, digits, _ or -.';
COMMENT ON COLUMN atrium.collections.definition IS 'Fields ({name: {type, required, unique, default, min, max, minLength, maxLength, pattern, indexed, values, collection}}) and rules ({read|create|update|delete: {role, own}}).';
COMMENT ON COLUMN atrium.collections.version IS 'Incremented on every definition change; servers cache definitions by it.';
COMMENT ON COLUMN atrium.collections.created_at IS 'When it was created.';
COMMENT ON COLUMN atrium.collections.updated_at IS 'When its definition last changed.';

CREATE TABLE atrium.records (
    tenant_id       uuid        NOT NULL,
    collection_id   uuid        NOT NULL,
    record_id       uuid        NOT NULL,
    version         bigint      NOT NULL DEFAULT 1,
    data            jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      uuid        NOT NULL,
    created_by_kind text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      uuid        NOT NULL,
    updated_by_kind text        NOT NULL,
    CONSTRAINT records_pkey PRIMARY KEY (tenant_id, collection_id, record_id),
    CONSTRAINT records_collection_fkey FOREIGN KEY (tenant_id, collection_id)
        REFERENCES atrium.collections (tenant_id, collection_id) ON DELETE CASCADE,
    CONSTRAINT records_data_object CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT records_actor_kinds CHECK (created_by_kind IN ('user', 'apikey') AND updated_by_kind IN ('user', 'apikey'))
);
CREATE INDEX records_created_idx ON atrium.records (tenant_id, collection_id, created_at, record_id);
CREATE INDEX records_updated_idx ON atrium.records (tenant_id, collection_id, updated_at, record_id);
CREATE INDEX records_created_by_idx ON atrium.records (tenant_id, collection_id, created_by, record_id);
CREATE INDEX records_updated_by_idx ON atrium.records (tenant_id, collection_id, updated_by, record_id);
CREATE INDEX records_version_idx ON atrium.records (tenant_id, collection_id, version, record_id);
COMMENT ON TABLE atrium.records IS 'Records of every collection: the data exactly as validated, plus system fields. Filters on system fields use the indexes on this table.';
COMMENT ON COLUMN atrium.records.tenant_id IS 'The owning tenant.';
COMMENT ON COLUMN atrium.records.collection_id IS 'The collection.';
COMMENT ON COLUMN atrium.records.record_id IS 'Record id (random UUID).';
COMMENT ON COLUMN atrium.records.version IS 'Starts at 1, incremented on every change; the ETag.';
COMMENT ON COLUMN atrium.records.data IS 'The fields, as validated against the collection definition.';
COMMENT ON COLUMN atrium.records.created_at IS 'When it was created.';
COMMENT ON COLUMN atrium.records.created_by IS 'User or API key that created it (rules with "own" compare against this).';
COMMENT ON COLUMN atrium.records.created_by_kind IS 'user or apikey.';
COMMENT ON COLUMN atrium.records.updated_at IS 'When it last changed.';
COMMENT ON COLUMN atrium.records.updated_by IS 'User or API key that last changed it.';
COMMENT ON COLUMN atrium.records.updated_by_kind IS 'user or apikey.';

CREATE TABLE atrium.record_values (
    tenant_id     uuid    NOT NULL,
    collection_id uuid    NOT NULL,
    record_id     uuid    NOT NULL,
    field         text    NOT NULL,
    position      integer NOT NULL DEFAULT 0,
    text_value    text COLLATE "C",
    num_value     numeric,
    time_value    timestamptz,
    CONSTRAINT record_values_pkey PRIMARY KEY (tenant_id, collection_id, record_id, field, position),
    CONSTRAINT record_values_record_fkey FOREIGN KEY (tenant_id, collection_id, record_id)
        REFERENCES atrium.records (tenant_id, collection_id, record_id) ON DELETE CASCADE,
    CONSTRAINT record_values_one_value CHECK (num_nonnulls(text_value, num_value, time_value) = 1)
);
CREATE INDEX record_values_text_idx ON atrium.record_values (tenant_id, collection_id, field, text_value, record_id) WHERE text_value IS NOT NULL;
CREATE INDEX record_values_num_idx ON atrium.record_values (tenant_id, collection_id, field, num_value, record_id) WHERE num_value IS NOT NULL;
CREATE INDEX record_values_time_idx ON atrium.record_values (tenant_id, collection_id, field, time_value, record_id) WHERE time_value IS NOT NULL;
COMMENT ON TABLE atrium.record_values IS 'Typed copies of indexed field values (one row per value; array fields one per element) so filters on them use btree indexes. Every reference field is kept here too, so the records pointing at a record can be found.';
COMMENT ON COLUMN atrium.record_values.tenant_id IS 'The owning tenant.';
COMMENT ON COLUMN atrium.record_values.collection_id IS 'The record''s collection.';
COMMENT ON COLUMN atrium.record_values.record_id IS 'The record.';
COMMENT ON COLUMN atrium.record_values.field IS 'Field name.';
COMMENT ON COLUMN atrium.record_values.position IS '0, or the element''s index in an array field.';
COMMENT ON COLUMN atrium.record_values.text_value IS 'Value of string, text, enum, reference and array fields (byte order collation, so prefixes are ranges).';
COMMENT ON COLUMN atrium.record_values.num_value IS 'Value of integer, number and boolean (0/1) fields.';
COMMENT ON COLUMN atrium.record_values.time_value IS 'Value of datetime and date fields.';

CREATE TABLE atrium.record_unique_values (
    tenant_id     uuid NOT NULL,
    collection_id uuid NOT NULL,
    field         text NOT NULL,
    value_key     text NOT NULL,
    record_id     uuid NOT NULL,
    CONSTRAINT record_unique_values_pkey PRIMARY KEY (tenant_id, collection_id, field, value_key),
    CONSTRAINT record_unique_values_record_fkey FOREIGN KEY (tenant_id, collection_id, record_id)
        REFERENCES atrium.records (tenant_id, collection_id, record_id) ON DELETE CASCADE
);
CREATE INDEX record_unique_values_record_idx ON atrium.record_unique_values (tenant_id, collection_id, record_id);
COMMENT ON TABLE atrium.record_unique_values IS 'One row per value of a field marked unique; the primary key makes a second record with the same value fail.';
COMMENT ON COLUMN atrium.record_unique_values.tenant_id IS 'The owning tenant.';
COMMENT ON COLUMN atrium.record_unique_values.collection_id IS 'The collection.';
COMMENT ON COLUMN atrium.record_unique_values.field IS 'The unique field.';
COMMENT ON COLUMN atrium.record_unique_values.value_key IS 'The value in canonical JSON text.';
COMMENT ON COLUMN atrium.record_unique_values.record_id IS 'The record holding it.';

CREATE TABLE atrium.record_audit (
    tenant_id       uuid        NOT NULL,
    audit_id        uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id        uuid        NOT NULL,
    actor_kind      text        NOT NULL,
    request_id      text,
    collection_id   uuid        NOT NULL,
    collection_name text        NOT NULL,
    record_id       uuid        NOT NULL,
    operation       text        NOT NULL,
    changes         jsonb       NOT NULL,
    CONSTRAINT record_audit_pkey PRIMARY KEY (tenant_id, audit_id),
    CONSTRAINT record_audit_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT record_audit_operation_check CHECK (operation IN ('create', 'update', 'delete')),
    CONSTRAINT record_audit_actor_kind_check CHECK (actor_kind IN ('user', 'apikey'))
);
CREATE INDEX record_audit_time_idx ON atrium.record_audit (tenant_id, occurred_at DESC, audit_id DESC);
CREATE INDEX record_audit_record_idx ON atrium.record_audit (tenant_id, record_id, occurred_at DESC);
COMMENT ON TABLE atrium.record_audit IS 'Append-only log of every record write: who, when, which request, which record, and each changed field''s before and after. atrium_app may only INSERT and SELECT. Goes with its tenant.';
COMMENT ON COLUMN atrium.record_audit.tenant_id IS 'The owning tenant.';
COMMENT ON COLUMN atrium.record_audit.audit_id IS 'Entry id.';
COMMENT ON COLUMN atrium.record_audit.occurred_at IS 'When the write happened.';
COMMENT ON COLUMN atrium.record_audit.actor_id IS 'User or API key that wrote.';
COMMENT ON COLUMN atrium.record_audit.actor_kind IS 'user or apikey.';
COMMENT ON COLUMN atrium.record_audit.request_id IS 'X-Request-ID of the write.';
COMMENT ON COLUMN atrium.record_audit.collection_id IS 'The collection.';
COMMENT ON COLUMN atrium.record_audit.collection_name IS 'Its name at the time.';
COMMENT ON COLUMN atrium.record_audit.record_id IS 'The record.';
COMMENT ON COLUMN atrium.record_audit.operation IS 'create, update or delete.';
COMMENT ON COLUMN atrium.record_audit.changes IS '{field: {before, after}} for each field that changed (absent side omitted).';

CREATE TABLE atrium.idempotency_keys (
    tenant_id       uuid        NOT NULL,
    principal_id    uuid        NOT NULL,
    idempotency_key text        NOT NULL,
    request_hash    text        NOT NULL,
    status          integer     NOT NULL,
    headers         jsonb       NOT NULL,
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (tenant_id, principal_id, idempotency_key),
    CONSTRAINT idempotency_keys_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT idempotency_keys_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 255)
);
CREATE INDEX idempotency_keys_created_idx ON atrium.idempotency_keys (tenant_id, created_at);
COMMENT ON TABLE atrium.idempotency_keys IS 'Responses to POSTs sent with an Idempotency-Key, kept 24 hours and written in the same transaction as the write, so a retried request gets the first answer.';
COMMENT ON COLUMN atrium.idempotency_keys.tenant_id IS 'The tenant.';
COMMENT ON COLUMN atrium.idempotency_keys.principal_id IS 'User or API key that sent it (keys are per caller).';
COMMENT ON COLUMN atrium.idempotency_keys.idempotency_key IS 'The Idempotency-Key header value.';
COMMENT ON COLUMN atrium.idempotency_keys.request_hash IS 'SHA-256 of method, path and body: the same key with another request is refused.';
COMMENT ON COLUMN atrium.idempotency_keys.status IS 'HTTP status of the first response.';
COMMENT ON COLUMN atrium.idempotency_keys.headers IS 'Its headers worth replaying (Location, ETag).';
COMMENT ON COLUMN atrium.idempotency_keys.body IS 'Its body.';
COMMENT ON COLUMN atrium.idempotency_keys.created_at IS 'When it was stored; ignored and purged after 24 hours.';

DO $$
DECLARE
    tenant_table text;
BEGIN
    FOREACH tenant_table IN ARRAY ARRAY['collections', 'records', 'record_values', 'record_unique_values', 'record_audit', 'idempotency_keys'] LOOP
        EXECUTE format('ALTER TABLE atrium.%I ENABLE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format('ALTER TABLE atrium.%I FORCE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format($policy$
            CREATE POLICY tenant_isolation ON atrium.%I
                USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
                WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
        $policy$, tenant_table);
        EXECUTE format('COMMENT ON POLICY tenant_isolation ON atrium.%I IS %L', tenant_table,
                       'Rows are visible and writable only within their own tenant scope.');
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.collections, atrium.records, atrium.record_values, atrium.record_unique_values TO atrium_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.idempotency_keys TO atrium_app;
GRANT SELECT, INSERT ON atrium.record_audit TO atrium_app;

-- Definitions change rarely and are read on every request: servers cache them and drop an
-- entry when this notification names it.
CREATE FUNCTION atrium.announce_collection_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed atrium.collections;
BEGIN
    changed := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    PERFORM pg_notify('atrium_collections', changed.tenant_id::text || ':' || changed.name);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION atrium.announce_collection_change() IS 'Trigger: NOTIFY atrium_collections with tenant_id:name whenever a collection changes, so caches drop it.';
CREATE TRIGGER collections_announce_change
    AFTER INSERT OR UPDATE OR DELETE ON atrium.collections
    FOR EACH ROW EXECUTE FUNCTION atrium.announce_collection_change();

-- Guards used inside record writes (SECURITY INVOKER: they run under the tenant policies).

CREATE FUNCTION atrium.require_collection_version(p_collection uuid, p_version bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- FOR SHARE: a definition change (FOR UPDATE) waits for this write, and the other way round.
    PERFORM 1 FROM atrium.collections c
    WHERE c.tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid
      AND c.collection_id = p_collection AND c.version = p_version
    FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the collection definition changed' USING ERRCODE = 'AT003';
    END IF;
END
$$;
COMMENT ON FUNCTION atrium.require_collection_version(uuid, bigint) IS 'Inside a record write: fails (AT003) unless the collection still has the definition version the record was validated against, and holds it until commit.';

CREATE FUNCTION atrium.require_records(p_collection uuid, p_ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found integer;
    wanted integer;
BEGIN
    -- FOR KEY SHARE keeps the referenced records from being deleted until this write commits.
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM atrium.records r
        WHERE r.tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid
          AND r.collection_id = p_collection AND r.record_id = ANY (p_ids)
        FOR KEY SHARE
    ) existing;
    SELECT count(DISTINCT id) INTO wanted FROM unnest(p_ids) AS id;
    IF found < wanted THEN
        RAISE EXCEPTION 'a referenced record does not exist' USING ERRCODE = 'AT002';
    END IF;
END
$$;
COMMENT ON FUNCTION atrium.require_records(uuid, uuid[]) IS 'Inside a record write: fails (AT002) unless every id names a record of that collection (of the current tenant), and keeps them from being deleted until commit.';

CREATE FUNCTION atrium.record_referrers(p_collection_name text, p_record uuid)
    RETURNS TABLE (collection text, record_id uuid)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.name, v.record_id
    FROM atrium.collections c
    CROSS JOIN LATERAL jsonb_each(c.definition->'fields') f
    JOIN atrium.record_values v
      ON v.tenant_id = c.tenant_id AND v.collection_id = c.collection_id AND v.field = f.key AND v.text_value = p_record::text
    WHERE c.tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid
      AND f.value->>'type' = 'reference' AND f.value->>'collection' = p_collection_name
    LIMIT 10
$$;
COMMENT ON FUNCTION atrium.record_referrers(text, uuid) IS 'Up to 10 records (of the current tenant) whose reference fields point at p_record of collection p_collection_name.';

CREATE FUNCTION atrium.claim_unique_values(p_tenant uuid, p_collection uuid, p_field text, p_rows jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    clashing uuid;
BEGIN
    -- ON CONFLICT DO NOTHING waits for a concurrent writer of the same value and skips the row
    -- if that writer commits; a skipped row is a clash, reported with the record that wanted it
    -- (PostgreSQL's own key detail is withheld from a role under row-level security).
    WITH wanted AS (
        SELECT u.record_id, u.value_key FROM jsonb_to_recordset(p_rows) AS u(record_id uuid, value_key text)
    ), claimed AS (
        INSERT INTO atrium.record_unique_values (tenant_id, collection_id, field, value_key, record_id)
        SELECT p_tenant, p_collection, p_field, w.value_key, w.record_id FROM wanted w
        ON CONFLICT ON CONSTRAINT record_unique_values_pkey DO NOTHING
        RETURNING record_id
    )
    SELECT w.record_id INTO clashing FROM wanted w
    WHERE w.record_id NOT IN (SELECT c.record_id FROM claimed c)
    LIMIT 1;
    IF clashing IS NOT NULL THEN
        RAISE EXCEPTION 'duplicate value for unique field %', p_field
            USING ERRCODE = 'unique_violation', DETAIL = clashing::text;
    END IF;
END
$$;
COMMENT ON FUNCTION atrium.claim_unique_values(uuid, uuid, text, jsonb) IS 'Inside a record write: records each {record_id, value_key} of a unique field; fails (23505, detail = the record id) if another record holds one of the values.';

GRANT EXECUTE ON FUNCTION atrium.require_collection_version(uuid, bigint), atrium.require_records(uuid, uuid[]),
    atrium.claim_unique_values(uuid, uuid, text, jsonb), atrium.record_referrers(text, uuid) TO atrium_app;
