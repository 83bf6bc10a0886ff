-- The atrium schema and the one way the service tells PostgreSQL which tenant a transaction
-- belongs to.

CREATE SCHEMA atrium AUTHORIZATION atrium_owner;
COMMENT ON SCHEMA atrium IS 'Atrium: tenants, identity and tenant data. Every tenant table has row-level security keyed on atrium.tenant_id.';

GRANT USAGE ON SCHEMA atrium TO atrium_app;

-- Functions are executable by PUBLIC by default; in this schema every grant is explicit.
ALTER DEFAULT PRIVILEGES FOR ROLE atrium_owner IN SCHEMA atrium REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Sets the tenant for the current transaction only (SET LOCAL). Every tenant policy compares
-- tenant_id with this setting. SET LOCAL rather than set_config(..., true) because on Citus only
-- SET LOCAL reaches the worker shards; on plain PostgreSQL the two are the same.
-- No "SET search_path" clause on purpose: a function with a SET clause undoes every SET LOCAL
-- made inside it when it returns. Calls are schema-qualified instead.
CREATE FUNCTION atrium.set_tenant(tenant uuid) RETURNS void
    LANGUAGE plpgsql
    VOLATILE
AS $$
BEGIN
    IF tenant IS NULL THEN
        SET LOCAL atrium.tenant_id = '';
    ELSE
        EXECUTE pg_catalog.format('SET LOCAL atrium.tenant_id = %L', tenant::text);
    END IF;
END
$$;

COMMENT ON FUNCTION atrium.set_tenant(uuid) IS
    'Scopes the current transaction to one tenant (SET LOCAL atrium.tenant_id); NULL means no tenant, which sees no tenant rows.';
GRANT EXECUTE ON FUNCTION atrium.set_tenant(uuid) TO atrium_app;

-- The tenant of the current transaction, for ad-hoc use in psql; policies inline the expression.
CREATE FUNCTION atrium.current_tenant() RETURNS uuid
    LANGUAGE sql
    STABLE
AS $$ SELECT NULLIF(pg_catalog.current_setting('atrium.tenant_id', true), '')::uuid $$;

COMMENT ON FUNCTION atrium.current_tenant() IS 'The tenant set by atrium.set_tenant in this transaction, or NULL.';
GRANT EXECUTE ON FUNCTION atrium.current_tenant() TO atrium_app;
